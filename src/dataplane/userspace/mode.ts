// The userspace mode as the registry (dataplane/modes.ts) sees it: its sync metrics, its cleaner,
// the families this host can capture, and one backend per family. Both families' proxiers share
// one data path (its per-connection metrics are registered once), each closing only its own
// listeners.
import type { IPFamily } from '../../model/types.ts';
import type { Backend } from '../../sync/backend.ts';
import { execTool } from '../../util/exec.ts';
import { isLoopback, parseIP } from '../../util/ip.ts';
import { toolWorks, type ModeDefinition } from '../common/mode.ts';
import { DEFAULT_USERSPACE_SETTINGS, localDetectorFor, type NodeInfo } from '../common/settings.ts';
import { detectIptablesBackend, iptablesTools, type IptablesBackend } from '../xtables/index.ts';
import { userspaceCleaner } from './cleanup.ts';
import { createDataPath, type DataPathSetup } from './data-path.ts';
import { createUserspaceProxier, type ListenerPool, type UserspaceProxier } from './proxier.ts';
import { registerUserspaceSyncMetrics, type UserspaceSyncMetrics } from './sync-metrics.ts';

const WILDCARD: Readonly<Record<IPFamily, string>> = { IPv4: '0.0.0.0', IPv6: '::' };

/**
 * Where a family's listeners bind (spec 2.2): --bind-address when it is a specific address of
 * the family, else the family's unspecified address. Loopback is refused, as upstream did
 * ("cannot proxy on localhost"): pods' redirected traffic could never reach it.
 */
export function listenIPFor(bindAddress: string, family: IPFamily): string {
  const ip = parseIP(bindAddress);
  if (ip === undefined || ip.family !== family || ip.value === 0n) return WILDCARD[family];
  if (isLoopback(ip)) throw new Error(`cannot proxy on localhost (--bind-address ${bindAddress})`);
  return ip.text;
}

/**
 * Where the node's own traffic is DNATed (spec 2.2 hostIP): the node's IP of the family
 * (--bind-address first), else the host's first non-loopback address of the family.
 */
export function hostIPFor(
  family: IPFamily,
  node: Pick<NodeInfo, 'ips'>,
  hostAddresses: readonly string[],
): string {
  for (const text of [...node.ips[family], ...hostAddresses]) {
    const ip = parseIP(text);
    if (ip?.family === family && !isLoopback(ip) && ip.value !== 0n) return ip.text;
  }
  throw new Error(`userspace mode: this node has no ${family} address to send its own service traffic to`);
}

/** Whether a client address is this node's: loopback, a node IP or an interface address. */
export function nodeAddressCheck(
  family: IPFamily,
  node: Pick<NodeInfo, 'ips'>,
  hostAddresses: readonly string[],
): (ip: string) => boolean {
  const own = new Set<string>();
  for (const text of [...node.ips[family], ...hostAddresses]) {
    const ip = parseIP(text);
    if (ip?.family === family) own.add(ip.text);
  }
  return (text) => {
    const ip = parseIP(text);
    return ip !== undefined && (isLoopback(ip) || own.has(ip.text));
  };
}

/** The proxier as a Backend whose syncs move the mode's metrics. */
export function countedBackend(proxier: UserspaceProxier, metrics: UserspaceSyncMetrics): Backend {
  const labels = { ip_family: proxier.family };
  return {
    family: proxier.family,
    mode: proxier.mode,
    ...(proxier.postSyncHooks ? { postSyncHooks: proxier.postSyncHooks } : {}),
    start: () => proxier.start(),
    close: () => proxier.close(),
    rulesIntact: () => proxier.rulesIntact(),
    sync: async (request) => {
      try {
        const result = await proxier.sync(request);
        const { counts } = result;
        metrics.listeners.set(labels, counts.listeners);
        if (counts.openFailures > 0) metrics.openFailures.inc(labels, counts.openFailures);
        metrics.rules.set({ table: 'nat', ...labels }, counts.natRules);
        metrics.rules.set({ table: 'filter', ...labels }, counts.filterRules);
        return result;
      } catch (error) {
        metrics.syncFailures.inc(labels);
        throw error;
      }
    },
  };
}

/** The mode with a given data path (tests pass a fake one). */
export function defineUserspaceMode(
  makeDataPath: (setup: DataPathSetup) => ListenerPool = createDataPath,
): ModeDefinition {
  return {
    name: 'userspace',
    cleaner: (run) => userspaceCleaner(run),
    setUp: ({ registry, settings, run = execTool }) => {
      const metrics = registerUserspaceSyncMetrics(registry);
      const userspace = settings.userspace ?? DEFAULT_USERSPACE_SETTINGS;
      // One backend choice for both families, as the iptables mode: never mix legacy and nft.
      let backend: Promise<IptablesBackend> | undefined;
      const chooseBackend = () => (backend ??= detectIptablesBackend(run));
      let pool: ListenerPool | undefined;
      return {
        supportsFamily: async (family: IPFamily) =>
          userspace.capture === 'address'
            ? toolWorks(run, 'ip', [family === 'IPv4' ? '-4' : '-6', 'addr', 'show'])
            : toolWorks(run, iptablesTools(await chooseBackend(), family).save, ['-t', 'nat']),
        createBackend: async (family, { node, hostAddresses }) => {
          pool ??= makeDataPath({
            registry,
            udpIdleTimeoutMs: userspace.udpIdleTimeoutMs,
            drainMs: userspace.drainMs,
          });
          const proxier = createUserspaceProxier(
            {
              family,
              listenIP: listenIPFor(userspace.bindAddress, family),
              hostIP: hostIPFor(family, node, hostAddresses),
              localDetector: localDetectorFor(settings, family, node),
              isNodeAddress: nodeAddressCheck(family, node, hostAddresses),
              portRange: userspace.portRange,
              balancerPolicy: userspace.balancer ?? 'round-robin',
              capture: userspace.capture ?? 'nat',
              ...(userspace.capture === 'address' ? {} : { backend: await chooseBackend() }),
            },
            pool,
            { run },
          );
          return countedBackend(proxier, metrics);
        },
      };
    },
  };
}

export const userspaceMode: ModeDefinition = defineUserspaceMode();
