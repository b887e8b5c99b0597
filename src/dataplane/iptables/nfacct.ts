// The two nfacct counters upstream's iptables mode counts packets into, created with the `nfacct`
// tool (netlink's nfnetlink_acct, which Node.js cannot speak itself) in the proxy's network
// namespace at start, and read back for the metrics on each scrape:
//   ct_state_invalid_dropped_pkts -> kubeproxy_iptables_ct_state_invalid_dropped_packets_total
//   localhost_nps_accepted_pkts   -> kubeproxy_iptables_localhost_nodeports_accepted_packets_total
// Without the tool or the kernel's nfacct match the rules go without the counter match and the
// metrics are absent, as upstream's are when its nfacct client cannot start.
import { Counter } from 'prom-client';
import { log } from '../../log/log.ts';
import type { Registry } from '../../metrics/registry.ts';
import { alpha } from '../../metrics/proxy.ts';
import type { ToolRunner } from '../common/mode.ts';
import type { NfacctCounters } from './options.ts';

export const CT_STATE_INVALID_DROPPED = 'ct_state_invalid_dropped_pkts';
export const LOCALHOST_NODEPORTS_ACCEPTED = 'localhost_nps_accepted_pkts';

const NFACCT_TIMEOUT_MS = 5_000;

/** `{ pkts = 00000000000000000042, bytes = ... } = name;` -> 42. */
export function parseNfacctPackets(output: string, name: string): number | undefined {
  for (const line of output.split('\n')) {
    const match = /^\s*\{\s*pkts\s*=\s*(\d+),\s*bytes\s*=\s*\d+\s*\}\s*=\s*(\S+?);?\s*$/.exec(line);
    if (match?.[2] === name) return Number(match[1]);
  }
  return undefined;
}

async function ensureOne(run: ToolRunner, name: string): Promise<boolean> {
  try {
    await run('nfacct', ['get', name], { timeoutMs: NFACCT_TIMEOUT_MS });
    return true;
  } catch {
    try {
      await run('nfacct', ['add', name], { timeoutMs: NFACCT_TIMEOUT_MS });
      return true;
    } catch (error) {
      log.v(1).info('nfacct counter not available; its rule goes without the counter', {
        counter: name,
        err: (error as Error).message.split('\n')[0] ?? '',
      });
      return false;
    }
  }
}

/** Creates both counters when missing; which exist afterwards. Never throws. */
export async function ensureNfacctCounters(run: ToolRunner): Promise<NfacctCounters> {
  return {
    ctStateInvalidDropped: await ensureOne(run, CT_STATE_INVALID_DROPPED),
    localhostNodePortsAccepted: await ensureOne(run, LOCALHOST_NODEPORTS_ACCEPTED),
  };
}

/** Registers the metric of each counter that exists; each scrape reads the kernel's count. */
export function registerNfacctMetrics(registry: Registry, counters: NfacctCounters, run: ToolRunner): void {
  const metric = (name: string, help: string, counter: string) =>
    new Counter({
      name,
      help: alpha(help),
      registers: [registry],
      async collect() {
        try {
          const { stdout } = await run('nfacct', ['get', counter], { timeoutMs: NFACCT_TIMEOUT_MS });
          const packets = parseNfacctPackets(stdout, counter);
          if (packets === undefined) return;
          this.reset();
          this.inc(packets);
        } catch (error) {
          log.error('Failed to collect nfacct counter', error, { counter });
        }
      },
    });
  if (counters.ctStateInvalidDropped) {
    metric(
      'kubeproxy_iptables_ct_state_invalid_dropped_packets_total',
      'packets dropped by iptables to work around conntrack problems',
      CT_STATE_INVALID_DROPPED,
    );
  }
  if (counters.localhostNodePortsAccepted) {
    metric(
      'kubeproxy_iptables_localhost_nodeports_accepted_packets_total',
      'Number of packets accepted on nodeports of loopback interface',
      LOCALHOST_NODEPORTS_ACCEPTED,
    );
  }
}
