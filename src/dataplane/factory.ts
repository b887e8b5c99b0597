// Turns the effective configuration into one proxier per IP family for the chosen mode, and wraps
// it so the mode's failure counters and rule gauges move as upstream's do. This is the only place
// that knows every mode; the daemon and sync loop see just the Proxier interface.
import type { IPFamily } from '../model/types.ts';
import type { ProxyMetrics } from '../server/metrics.ts';
import type { Proxier, SyncRequest, SyncResult } from '../sync/proxier.ts';
import { parseCIDR, parseIP } from '../util/ip.ts';
import { log } from '../log/log.ts';
import type { NodeInfo } from '../cli/daemon.ts';
import { createIptablesProxier, detectIptablesBackend, type IptablesBackend } from './iptables/index.ts';
import type { LocalDetector } from './iptables/options.ts';
import type { Runner } from './iptables/backend.ts';
import { execTool } from '../util/exec.ts';

export type DetectLocalMode = 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';

export type NodePortAddressSetting =
  | { readonly kind: 'all' }
  | { readonly kind: 'primary' }
  | { readonly kind: 'cidrs'; readonly cidrs: readonly string[] };

export interface DataplaneSettings {
  readonly mode: 'iptables' | 'nftables';
  readonly masqueradeBit: number;
  readonly masqueradeAll: boolean;
  readonly detectLocalMode: DetectLocalMode;
  /** Canonical clusterCIDR entries (0, 1, or one per family). */
  readonly clusterCIDRs: readonly string[];
  readonly bridgeInterface: string;
  readonly interfaceNamePrefix: string;
  readonly nodePortAddresses: NodePortAddressSetting;
  readonly localhostNodePorts: boolean;
  readonly syncPeriodMs: number;
}

export function localDetectorFor(settings: DataplaneSettings, family: IPFamily): LocalDetector {
  switch (settings.detectLocalMode) {
    case 'ClusterCIDR': {
      const cidrs = settings.clusterCIDRs.filter((cidr) => parseCIDR(cidr)?.family === family);
      return cidrs.length > 0 ? { kind: 'cidr', cidrs } : { kind: 'none' };
    }
    case 'NodeCIDR':
      return { kind: 'node-cidr' };
    case 'BridgeInterface':
      return { kind: 'bridge', iface: settings.bridgeInterface };
    case 'InterfaceNamePrefix':
      return { kind: 'prefix', prefix: settings.interfaceNamePrefix };
  }
}

/** `primary` becomes the node's own IP of the family as a host CIDR (spec 8.1). */
export function nodePortCIDRsFor(
  setting: NodePortAddressSetting,
  family: IPFamily,
  node: NodeInfo,
): { kind: 'all' } | { kind: 'cidrs'; cidrs: string[] } {
  if (setting.kind === 'all') return { kind: 'all' };
  if (setting.kind === 'primary') {
    const cidrs = node.ips[family]
      .map((ip) => parseIP(ip))
      .filter(
        (ip) => ip !== undefined && !(ip.family === 'IPv4' ? ip.text.startsWith('127.') : ip.text === '::1'),
      )
      .slice(0, 1)
      .map((ip) => `${ip?.text ?? ''}/${family === 'IPv4' ? '32' : '128'}`);
    return { kind: 'cidrs', cidrs };
  }
  return { kind: 'cidrs', cidrs: [...setting.cidrs] };
}

/** Counts failures (and partial failures) and rule gauges around any proxier. */
export function withMetrics(proxier: Proxier, metrics: ProxyMetrics): Proxier {
  const labels = { ip_family: proxier.family };
  let firstSync = true;
  const wrapped: Proxier = {
    family: proxier.family,
    mode: proxier.mode,
    sync: async (request: SyncRequest): Promise<SyncResult> => {
      const partial = !request.full && !firstSync;
      try {
        const result = await proxier.sync(request);
        firstSync = false;
        const details = result.details ?? {};
        // The filter table is rewritten whole every sync; nat keeps untouched service chains.
        const gauges: [string, unknown, unknown][] = [
          ['filter', details['filterRules'], details['filterRules']],
          ['nat', details['natRulesTotal'], details['natRulesWritten']],
        ];
        for (const [table, total, last] of gauges) {
          if (typeof total === 'number') metrics.iptablesRulesTotal?.set({ table, ...labels }, total);
          if (typeof last === 'number') metrics.iptablesRulesLast?.set({ table, ...labels }, last);
        }
        return result;
      } catch (error) {
        metrics.iptablesRestoreFailures?.inc(labels);
        if (partial) metrics.iptablesPartialRestoreFailures?.inc(labels);
        metrics.nftablesSyncFailures?.inc(labels);
        throw error;
      }
    },
  };
  if (proxier.needsFullSync) wrapped.needsFullSync = proxier.needsFullSync.bind(proxier);
  return wrapped;
}

async function toolWorks(run: Runner, file: string, args: string[]): Promise<boolean> {
  try {
    await run(file, args, { timeoutMs: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export interface Dataplane {
  supportsFamily(family: IPFamily): Promise<boolean>;
  createProxier(family: IPFamily, node: NodeInfo, metrics: ProxyMetrics): Promise<Proxier>;
}

export function createDataplane(settings: DataplaneSettings, run: Runner = execTool): Dataplane {
  if (settings.mode === 'iptables') {
    // One backend choice for both families: never mix legacy and nft (issue 3).
    let backend: Promise<IptablesBackend> | undefined;
    const chooseBackend = () => (backend ??= detectIptablesBackend(run));
    return {
      supportsFamily: async (family) => {
        const tool = `${family === 'IPv4' ? 'iptables' : 'ip6tables'}-${await chooseBackend()}-save`;
        return toolWorks(run, tool, ['-t', 'nat']);
      },
      createProxier: async (family, node, metrics) => {
        const proxier = createIptablesProxier(
          {
            family,
            masqueradeBit: settings.masqueradeBit,
            masqueradeAll: settings.masqueradeAll,
            localDetector: localDetectorFor(settings, family),
            nodePortAddresses: nodePortCIDRsFor(settings.nodePortAddresses, family, node),
            localhostNodePorts: settings.localhostNodePorts,
            backend: await chooseBackend(),
            syncPeriodMs: settings.syncPeriodMs,
          },
          { run },
        );
        const info = await proxier.init();
        log.info('Using iptables proxier', { ipFamily: family, ...info });
        return withMetrics(proxier, metrics);
      },
    };
  }
  throw new Error(`proxy mode ${settings.mode} is not available`);
}
