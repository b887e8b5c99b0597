// Conntrack sizing and timeouts at startup, as upstream v1.36 (upstream-behavior.md 9.2 and its
// erratum in docs/compatibility.md): nf_conntrack_max = max(maxPerCore x CPUs, min) with no cap,
// written whenever it differs (lowered too), then the conntrack hash size raised to max/4 when it is
// smaller; every other sysctl written when it differs. A failure is fatal with a message that says
// how to turn the step off, because inside a network namespace nf_conntrack_max is read-only.
//
// On a stock kernel nothing has loaded nf_conntrack when the proxy starts: the
// net/netfilter/nf_conntrack_* sysctls do not exist until the first rule that needs conntrack is
// loaded (by our own sync). Upstream runs fine on such a node, so a missing sysctl is not an
// error: it is left pending and set, with a log line, once it appears (watchPendingSysctls).
import { log } from '../log/log.ts';
import type { Sysctl } from '../util/sysctl.ts';
import type { EffectiveConntrack } from '../config/effective.ts';

/** Conntrack settings in kernel units (whole seconds), as the effective configuration holds them. */
export type ConntrackSettings = EffectiveConntrack;

const MAX_KEY = 'net/netfilter/nf_conntrack_max';
/**
 * The nf_conntrack module's hash size, in sysfs: relative to /proc/sys, so it goes through the same
 * Sysctl port (and its fake) as the sysctls.
 */
export const HASHSIZE_KEY = '../../sys/module/nf_conntrack/parameters/hashsize';

export function desiredConntrackMax(settings: ConntrackSettings, cpus: number): number {
  if (settings.maxPerCore <= 0) return 0;
  const scaled = settings.maxPerCore * cpus;
  return scaled > settings.min ? scaled : settings.min;
}

/** One sysctl the proxy wants: `atLeast` only ever raises the value (the hash size). */
export interface WantedSysctl {
  readonly key: string;
  readonly value: number;
  readonly atLeast: boolean;
}

/** The sysctls the settings ask for, in the order they are written. */
export function wantedConntrackSysctls(settings: ConntrackSettings, cpus: number): WantedSysctl[] {
  const wanted: WantedSysctl[] = [];
  const max = desiredConntrackMax(settings, cpus);
  if (max > 0) {
    wanted.push({ key: MAX_KEY, value: max, atLeast: false });
    wanted.push({ key: HASHSIZE_KEY, value: Math.floor(max / 4), atLeast: true });
  }
  const timeouts: [string, number][] = [
    ['net/netfilter/nf_conntrack_tcp_timeout_established', settings.tcpEstablishedTimeoutSeconds],
    ['net/netfilter/nf_conntrack_tcp_timeout_close_wait', settings.tcpCloseWaitTimeoutSeconds],
    ['net/netfilter/nf_conntrack_udp_timeout', settings.udpTimeoutSeconds],
    ['net/netfilter/nf_conntrack_udp_timeout_stream', settings.udpStreamTimeoutSeconds],
  ];
  for (const [key, seconds] of timeouts)
    if (seconds > 0) wanted.push({ key, value: seconds, atLeast: false });
  if (settings.tcpBeLiberal)
    wanted.push({ key: 'net/netfilter/nf_conntrack_tcp_be_liberal', value: 1, atLeast: false });
  return wanted;
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function writeError(wanted: WantedSysctl, current: string, error: unknown): Error {
  const message = (error as Error).message;
  if (wanted.key === MAX_KEY)
    return new Error(
      `cannot set ${MAX_KEY} to ${String(wanted.value)} (is ${current}): ${message}. ` +
        'It is read-only inside a network namespace or container without the right privileges; ' +
        'run with --conntrack-max-per-core=0 (conntrack.maxPerCore: 0) to leave it alone.',
      { cause: error },
    );
  return new Error(`cannot set sysctl ${wanted.key} to ${String(wanted.value)} (is ${current}): ${message}`, {
    cause: error,
  });
}

/**
 * Writes one sysctl when it differs. 'missing' when the key does not exist (nf_conntrack not
 * loaded yet); any other failure throws.
 */
async function ensure(sysctl: Sysctl, wanted: WantedSysctl): Promise<'set' | 'missing'> {
  let current: string;
  try {
    current = await sysctl.read(wanted.key);
  } catch (error) {
    if (isMissing(error)) return 'missing';
    throw new Error(`cannot read sysctl ${wanted.key}: ${(error as Error).message}`, { cause: error });
  }
  const satisfied = wanted.atLeast ? Number(current) >= wanted.value : current === String(wanted.value);
  if (satisfied) return 'set';
  try {
    await sysctl.write(wanted.key, String(wanted.value));
  } catch (error) {
    if (isMissing(error)) return 'missing';
    throw writeError(wanted, current, error);
  }
  if (wanted.key === MAX_KEY) log.info('Setting nf_conntrack_max', { nfConntrackMax: wanted.value });
  else if (wanted.key === HASHSIZE_KEY)
    log.info('Setting conntrack hashsize', { conntrackHashsize: wanted.value });
  else log.info('Set sysctl', { key: wanted.key, value: wanted.value });
  return 'set';
}

/**
 * Applies the conntrack sysctls and returns those that do not exist yet (nf_conntrack not loaded);
 * the caller hands them to watchPendingSysctls. Any other failure throws (fatal at start).
 */
export async function applyConntrackSettings(
  settings: ConntrackSettings,
  sysctl: Sysctl,
  cpus: number,
): Promise<WantedSysctl[]> {
  const pending: WantedSysctl[] = [];
  for (const wanted of wantedConntrackSysctls(settings, cpus))
    if ((await ensure(sysctl, wanted)) === 'missing') pending.push(wanted);
  if (pending.length > 0)
    log.info('Conntrack sysctls do not exist yet (nf_conntrack not loaded); setting them once they do', {
      sysctls: pending.map((wanted) => wanted.key),
    });
  return pending;
}

export interface PendingSysctlWatch {
  /** Tries the pending sysctls once now; true when none is left. */
  check(): Promise<boolean>;
  stop(): void;
}

/**
 * Polls the pending sysctls every `intervalMs` and sets each once it exists. A write that fails
 * for another reason is logged and dropped (the proxy is running; the rules are in place).
 */
export function watchPendingSysctls(
  pending: readonly WantedSysctl[],
  sysctl: Sysctl,
  intervalMs = 1000,
): PendingSysctlWatch {
  let left = [...pending];
  let busy: Promise<boolean> | undefined;
  const once = async (): Promise<boolean> => {
    const still: WantedSysctl[] = [];
    for (const wanted of left) {
      try {
        if ((await ensure(sysctl, wanted)) === 'missing') still.push(wanted);
      } catch (error) {
        log.error('Failed to set conntrack sysctl', error, { key: wanted.key });
      }
    }
    left = still;
    if (left.length === 0) stop();
    return left.length === 0;
  };
  const check = (): Promise<boolean> => {
    busy ??= once().finally(() => {
      busy = undefined;
    });
    return busy;
  };
  const timer = left.length > 0 ? setInterval(() => void check(), intervalMs) : undefined;
  timer?.unref();
  function stop(): void {
    if (timer !== undefined) clearInterval(timer);
  }
  return { check, stop };
}
