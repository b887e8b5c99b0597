// Turns the effective configuration into one proxier per IP family for the chosen mode, and wraps
// it so the mode's failure counters and rule gauges move as upstream's do. This is the only place
// that knows every mode; the daemon and sync loop see just the Proxier interface.
import type { IPFamily } from '../model/types.ts';
import type { ProxyMetrics } from '../server/metrics.ts';
import type { Proxier, SyncRequest, SyncResult } from '../sync/proxier.ts';
import { parseIP } from '../util/ip.ts';
import {
  localTrafficDetector,
  type DetectLocalMode,
  type LocalTrafficDetector,
} from '../plan/local-traffic.ts';
import { addressesInside, nodePortAddressesFor, type NodePortAddressSetting } from '../plan/node-ports.ts';
import { log } from '../log/log.ts';
import type { NodeInfo } from '../cli/daemon.ts';
import { createIptablesProxier, detectIptablesBackend, type IptablesBackend } from './iptables/index.ts';
import type { Runner } from './iptables/backend.ts';
import { execTool } from '../util/exec.ts';
import { networkInterfaces } from 'node:os';
import { createNftablesProxier } from './nftables/proxier.ts';
import type { NftablesOptions } from './nftables/options.ts';

export type { DetectLocalMode, NodePortAddressSetting };

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

/** The one local-traffic detector of a family, for every mode (plan/local-traffic.ts). */
export function localDetectorFor(
  settings: DataplaneSettings,
  family: IPFamily,
  node: Pick<NodeInfo, 'podCIDRs'>,
): LocalTrafficDetector {
  return localTrafficDetector(
    { ...settings, mode: settings.detectLocalMode, podCIDRs: node.podCIDRs },
    family,
  );
}

/** `--nodeport-addresses` of one family for the iptables proxier: `primary` resolved to the node IP. */
export function nodePortCIDRsFor(
  setting: NodePortAddressSetting,
  family: IPFamily,
  node: NodeInfo,
): { kind: 'all' } | { kind: 'cidrs'; cidrs: string[] } {
  const resolved = nodePortAddressesFor(setting, family, node.ips[family]);
  return resolved.matchAll ? { kind: 'all' } : { kind: 'cidrs', cidrs: [...resolved.cidrs] };
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
            localDetector: localDetectorFor(settings, family, node),
            nodePortAddresses: nodePortCIDRsFor(settings.nodePortAddresses, family, node),
            localhostNodePorts: settings.localhostNodePorts,
            backend: await chooseBackend(),
            syncPeriodMs: settings.syncPeriodMs,
          },
          { run },
        );
        // init() logs what it chose (backend, --random-fully, localhost node ports).
        await proxier.init();
        return withMetrics(proxier, metrics);
      },
    };
  }
  return {
    // nftables has both families in one tool; IPv6 availability is checked by the daemon.
    supportsFamily: () => Promise.resolve(true),
    createProxier: async (family, node, metrics) => {
      const options: NftablesOptions = {
        family,
        masqueradeBit: settings.masqueradeBit,
        masqueradeAll: settings.masqueradeAll,
        localDetector: localDetectorFor(settings, family, node),
        nodePortAddresses: nftNodePortAddresses(settings.nodePortAddresses, family, node),
      };
      const proxier = await createNftablesProxier(options, {
        run,
        skipKernelCheck: Boolean(process.env['KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK']),
      });
      log.info('Using nftables proxier', {
        ipFamily: family,
        nodePortAddresses: options.nodePortAddresses.kind === 'all' ? 'all' : options.nodePortAddresses.ips,
      });
      return withMetrics(proxier, metrics);
    },
  };
}

/** This host's own interface addresses of a family (the process runs in the node's namespace). */
function localAddresses(family: IPFamily): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((address) => address !== undefined && address.family === family && !address.internal)
    .map((address) => parseIP(address?.address ?? '')?.text)
    .filter((ip): ip is string => ip !== undefined);
}

/** nftables takes concrete IPs: the node's and this host's addresses inside the CIDRs. */
export function nftNodePortAddresses(
  setting: NodePortAddressSetting,
  family: IPFamily,
  node: NodeInfo,
): NftablesOptions['nodePortAddresses'] {
  const resolved = nodePortAddressesFor(setting, family, node.ips[family]);
  if (resolved.matchAll) return { kind: 'all' };
  return { kind: 'ips', ips: addressesInside(resolved, [...node.ips[family], ...localAddresses(family)]) };
}
