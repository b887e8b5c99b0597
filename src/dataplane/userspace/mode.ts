// The userspace mode as the registry (dataplane/modes.ts) sees it: its sync metrics, its cleaner,
// the families this host can capture, and one backend per family. Both families' proxiers share
// one data path (its per-connection metrics are registered once), each closing only its own
// listeners.
import type { IPFamily } from '../../model/types.ts';
import type { Backend } from '../../sync/backend.ts';
import { execTool } from '../../util/exec.ts';
import { toolWorks, type ModeDefinition } from '../common/mode.ts';
import { DEFAULT_USERSPACE_SETTINGS, localDetectorFor } from '../common/settings.ts';
import { detectIptablesBackend, iptablesTools, type IptablesBackend } from '../xtables/index.ts';
import { hostIPFor, listenIPFor, nodeAddressCheck } from './addresses.ts';
import { userspaceCleaner } from './cleanup.ts';
import { USERSPACE_OWNER } from './owner.ts';
import { userspaceExplainer } from './explain.ts';
import { createDataPath, type DataPathSetup } from './data-path.ts';
import { createUserspaceProxier, type ListenerPool, type UserspaceProxier } from './proxier.ts';
import { registerUserspaceSyncMetrics, type UserspaceSyncMetrics } from './sync-metrics.ts';

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
    xtablesOwners: [USERSPACE_OWNER],
    cleaner: (run, keep) => userspaceCleaner(run, keep),
    explainer: userspaceExplainer,
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
