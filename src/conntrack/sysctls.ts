// Conntrack sizing and timeouts at startup (upstream-behavior.md 9.2). A value is written only
// when it differs, nf_conntrack_max is only ever raised, and a failure is fatal with a message that
// says how to turn the step off, because inside a network namespace nf_conntrack_max is read-only.
import { log } from '../log/log.ts';
import type { Sysctl } from '../util/sysctl.ts';
import type { EffectiveConntrack } from '../config/effective.ts';

/** Conntrack settings in kernel units (whole seconds), as the effective configuration holds them. */
export type ConntrackSettings = EffectiveConntrack;

/** Recent upstream caps the computed maximum. */
const MAX_CAP = 1_048_576;

export function desiredConntrackMax(settings: ConntrackSettings, cpus: number): number {
  if (settings.maxPerCore <= 0) return 0;
  return Math.min(Math.max(settings.maxPerCore * cpus, settings.min), MAX_CAP);
}

async function ensure(sysctl: Sysctl, key: string, value: number): Promise<void> {
  let current: string;
  try {
    current = await sysctl.read(key);
  } catch (error) {
    throw new Error(`cannot read sysctl ${key}: ${(error as Error).message}`, { cause: error });
  }
  if (current === String(value)) return;
  try {
    await sysctl.write(key, String(value));
  } catch (error) {
    throw new Error(
      `cannot set sysctl ${key} to ${String(value)} (is ${current}): ${(error as Error).message}`,
      { cause: error },
    );
  }
  log.info('Set sysctl', { key, value });
}

export async function applyConntrackSettings(
  settings: ConntrackSettings,
  sysctl: Sysctl,
  cpus: number,
): Promise<void> {
  const max = desiredConntrackMax(settings, cpus);
  if (max > 0) {
    const current = Number(await sysctl.read('net/netfilter/nf_conntrack_max').catch(() => '0'));
    if (max > current) {
      try {
        await sysctl.write('net/netfilter/nf_conntrack_max', String(max));
        log.info('Setting nf_conntrack_max', { nfConntrackMax: max });
      } catch (error) {
        throw new Error(
          `cannot raise net/netfilter/nf_conntrack_max to ${String(max)}: ${(error as Error).message}. ` +
            'It is read-only inside a network namespace or container without the right privileges; ' +
            'run with --conntrack-max-per-core=0 (conntrack.maxPerCore: 0) to leave it alone.',
          { cause: error },
        );
      }
    }
  }
  const timeouts: [string, number][] = [
    ['net/netfilter/nf_conntrack_tcp_timeout_established', settings.tcpEstablishedTimeoutSeconds],
    ['net/netfilter/nf_conntrack_tcp_timeout_close_wait', settings.tcpCloseWaitTimeoutSeconds],
    ['net/netfilter/nf_conntrack_udp_timeout', settings.udpTimeoutSeconds],
    ['net/netfilter/nf_conntrack_udp_timeout_stream', settings.udpStreamTimeoutSeconds],
  ];
  for (const [key, seconds] of timeouts) if (seconds > 0) await ensure(sysctl, key, seconds);
  if (settings.tcpBeLiberal) await ensure(sysctl, 'net/netfilter/nf_conntrack_tcp_be_liberal', 1);
}
