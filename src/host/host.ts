// Facts about the host the daemon runs on, behind one small port so the daemon can be tested with
// a fake (host/fake.ts): interface addresses, sysctls, /proc probes, oom_score_adj, CPU count.
// The process runs in the node's network namespace, so these are the node's.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, networkInterfaces } from 'node:os';
import type { IPFamily } from '../util/ip.ts';
import { procSysctl, type Sysctl } from '../util/sysctl.ts';

export interface HostAddress {
  readonly address: string;
  readonly family: IPFamily;
  /** Loopback and other addresses not reachable from outside. */
  readonly internal: boolean;
}

export interface Host {
  /** Every address on every interface (loopback included), as the kernel lists them now. */
  interfaceAddresses(): readonly HostAddress[];
  /** /proc/sys, keys with slashes: `net/netfilter/nf_conntrack_max`. */
  readonly sysctl: Sysctl;
  /** Whether the kernel has IPv6 at all (/proc/net/if_inet6 exists). */
  ipv6Available(): boolean;
  /** Writes /proc/self/oom_score_adj. */
  setOomScoreAdj(value: number): Promise<void>;
  /** The node's online CPUs (upstream counts those, not the process's cpuset). */
  cpuCount(): number;
}

export function realHost(): Host {
  return {
    interfaceAddresses: () =>
      Object.values(networkInterfaces()).flatMap((list) =>
        (list ?? [])
          // A zone-scoped address (`fe80::1%eth0`) cannot be bound or put in a rule as it is.
          .filter((entry) => !entry.address.includes('%'))
          .map((entry) => ({ address: entry.address, family: entry.family, internal: entry.internal })),
      ),
    sysctl: procSysctl(),
    ipv6Available: () => existsSync('/proc/net/if_inet6'),
    setOomScoreAdj: (value) => writeFile('/proc/self/oom_score_adj', String(value)),
    cpuCount: () => Math.max(1, cpus().length),
  };
}
