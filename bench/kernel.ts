// What the benchmark reads from and writes to the kernel itself, without kube-proxy: whether a
// changed endpoint is programmed (read back with the mode's own listing tool), the bare-tool
// floor (the same rule text through iptables-restore / nft -f), and which Service comes last.
import { CT_STATE_INVALID_DROPPED, LOCALHOST_NODEPORTS_ACCEPTED } from '../src/dataplane/iptables/nfacct.ts';
import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { endpointChainName } from '../src/dataplane/iptables/chains.ts';
import { stopProcess, type Netns } from '../test/support/netns.ts';
import { nsExec, type BenchMode } from './harness.ts';
import type { EndpointChange } from './workload.ts';

const WAIT = ['-w', '5', '-W', '100000'];

/** The iptables backend a mode writes with (IPVS mode's rules: Debian's default, nft). */
function backendOf(mode: BenchMode): 'legacy' | 'nft' {
  return mode === 'iptables-legacy' ? 'legacy' : 'nft';
}

const IPVSADM_PROTOCOL: Readonly<Record<EndpointChange['protocol'], string>> = { TCP: '-t', UDP: '-u' };

/** The parts of an IPVS mode dump (`### <tool>` headers, src/dataplane/ipvs/proxier.ts). */
function ipvsDumpParts(text: string): Map<string, string> {
  const parts = new Map<string, string>();
  for (const section of text.split(/^### /m).filter(Boolean)) {
    const newline = section.indexOf('\n');
    parts.set(section.slice(0, newline), section.slice(newline + 1));
  }
  return parts;
}

/**
 * Whether the kernel DNATs the change's Service to the added endpoint. nftables: the endpoint
 * map elements of the Service's cluster IP (one netlink get, not a table listing). iptables: the
 * endpoint's KUBE-SEP- chain and its DNAT rule (`-S CHAIN`).
 */
export async function endpointInKernel(ns: Netns, mode: BenchMode, change: EndpointChange): Promise<boolean> {
  const target = `${change.added.ip}:${change.added.port}`;
  try {
    if (mode === 'ipvs') {
      // One virtual server's real servers (a netlink get, not the whole table).
      const flag = IPVSADM_PROTOCOL[change.protocol];
      const out = await nsExec(ns, 'ipvsadm', ['-L', '-n', flag, `${change.clusterIP}:${change.port}`]);
      return out.stdout.includes(`-> ${target} `);
    }
    if (mode === 'nftables') {
      const proto = change.protocol.toLowerCase();
      const keys = Array.from(
        { length: change.endpointsPerService },
        (_, i) => `${change.clusterIP} . ${change.port} . ${i}`,
      ).join(', ');
      const out = await nsExec(ns, 'nft', [
        'get',
        'element',
        'ip',
        'kube-proxy',
        `ip-endpoints-${proto}`,
        `{ ${keys} }`,
      ]);
      return out.stdout.includes(`${change.added.ip} . ${change.added.port}`);
    }
    const chain = endpointChainName(change.printable, change.protocol, target);
    if (mode === 'iptables-legacy') {
      // `iptables-legacy -S` holds the xtables lock while it reads the whole table, and
      // kube-proxy's restore would wait for it (retrying every 100 ms): save takes no lock.
      const out = await nsExec(ns, 'iptables-legacy-save', ['-t', 'nat'], { timeoutMs: 300_000 });
      return out.stdout.includes(`-A ${chain} `) && out.stdout.includes(`--to-destination ${target}`);
    }
    const out = await nsExec(ns, 'iptables-nft', ['-t', 'nat', '-S', chain]);
    return out.stdout.includes(`--to-destination ${target}`);
  } catch {
    // Not there yet (missing element or chain makes the tool fail).
    return false;
  }
}

/** nftables: which of these endpoint addresses (with `port`) no cluster IP endpoint element has. */
export async function endpointsMissing(ns: Netns, ips: readonly string[], port: number): Promise<string[]> {
  const out = await nsExec(ns, 'nft', ['list', 'map', 'ip', 'kube-proxy', 'ip-endpoints-tcp'], {
    timeoutMs: 300_000,
  });
  return ips.filter((ip) => !out.stdout.includes(`: ${ip} . ${port}`));
}

/** Applies rule text with the bare tool in `ns`; returns the wall time in ms (process included). */
export async function bareApply(ns: Netns, mode: BenchMode, text: string): Promise<number> {
  const started = performance.now();
  if (mode === 'ipvs') {
    // What an IPVS sync runs, in its order: addresses on kube-ipvs0, sets, servers, rules.
    const parts = ipvsDumpParts(text);
    await nsExec(ns, 'ip', ['link', 'add', 'kube-ipvs0', 'type', 'dummy']).catch(() => undefined);
    const addresses = (parts.get('ip') ?? '').split('\n').filter(Boolean);
    if (addresses.length > 0)
      await nsExec(ns, 'ip', ['-force', '-batch', '-'], {
        input: addresses
          .map((ip) => `addr add ${ip}/${ip.includes(':') ? 128 : 32} dev kube-ipvs0\n`)
          .join(''),
      });
    await nsExec(ns, 'ipset', ['restore', '-exist'], { input: parts.get('ipset') ?? '' });
    await nsExec(ns, 'ipvsadm', ['-R'], { input: parts.get('ipvsadm') ?? '' });
    await nsExec(ns, 'iptables-nft-restore', [...WAIT, '--noflush', '--counters'], {
      input: parts.get('iptables') ?? '',
      timeoutMs: 1_800_000,
    });
  } else if (mode === 'nftables') {
    await nsExec(ns, 'nft', ['-f', '-'], { input: text, timeoutMs: 1_800_000 });
  } else {
    // The dump names the nfacct counters kube-proxy created in its own namespace at start.
    for (const counter of [CT_STATE_INVALID_DROPPED, LOCALHOST_NODEPORTS_ACCEPTED]) {
      if (text.includes(counter)) await nsExec(ns, 'nfacct', ['add', counter]).catch(() => undefined);
    }
    await nsExec(ns, `iptables-${backendOf(mode)}-restore`, [...WAIT, '--noflush', '--counters'], {
      input: text,
      timeoutMs: 1_800_000,
    });
  }
  return performance.now() - started;
}

/** Position of `clusterIP` among the cluster IP rules of nat KUBE-SERVICES (1-based) and their count. */
export async function servicesChainPosition(
  ns: Netns,
  mode: BenchMode,
  clusterIP: string,
): Promise<{ position: number; rules: number }> {
  const out = await nsExec(ns, `iptables-${backendOf(mode)}-save`, ['-t', 'nat'], { timeoutMs: 300_000 });
  const destinations = out.stdout
    .split('\n')
    .filter((line) => line.startsWith('-A KUBE-SERVICES -d '))
    .map((line) => line.split(' ')[3]);
  return { position: destinations.indexOf(`${clusterIP}/32`) + 1, rules: destinations.length };
}

/**
 * The kernel's own change notifications (`nft monitor new elements`), timestamped on arrival: it
 * sends them when a transaction commits, so they time an nftables change without polling. The
 * iptables modes are polled instead: legacy has no notifications, and for iptables-nft the
 * monitor loses events (every sync rewrites thousands of KUBE-SERVICES rules, which overflow its
 * socket), while reading one chain back costs only a few ms.
 */
export class KernelWatch {
  private lines: { at: number; text: string }[] = [];
  private readonly child: ChildProcess;
  private waiters: (() => void)[] = [];

  private constructor(child: ChildProcess) {
    this.child = child;
    if (!child.stdout) throw new Error('bench: nft monitor has no stdout');
    createInterface({ input: child.stdout }).on('line', (text) => {
      this.lines.push({ at: performance.now(), text });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async start(ns: Netns, mode: BenchMode): Promise<KernelWatch | undefined> {
    if (mode !== 'nftables') return undefined;
    const child = ns.spawn('nft', ['monitor', 'new', 'elements']);
    // nft prints nothing until an event; give it a moment to subscribe before the first change.
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (child.exitCode !== null) throw new Error('bench: nft monitor exited at start');
    return new KernelWatch(child);
  }

  /** The text a notification of this change contains. */
  static needle(change: EndpointChange): string {
    return `: ${change.added.ip} . ${change.added.port}`;
  }

  /** Forgets what was seen (call before the API write of a measured change). */
  reset(): void {
    this.lines = [];
  }

  /** performance.now() when a line with `needle` arrived, if one did. */
  find(needle: string): number | undefined {
    for (const line of this.lines) if (line.text.includes(needle)) return line.at;
    return undefined;
  }

  /**
   * Resolves when the next notification arrives or after `ms`: the caller is woken by the
   * notification itself, so neither a polling interval nor the polling's CPU (which competes
   * with kube-proxy and nft for the two cores) is in the figure.
   */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((wake) => wake !== done);
        resolve();
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(done);
    });
  }

  async stop(): Promise<void> {
    await stopProcess(this.child);
  }
}
