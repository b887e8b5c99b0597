// The IPVS mode as the registry (dataplane/modes.ts) sees it: its metric, its cleaner, the
// families this host can program (iptables for the family works), and one proxier per family.
// Deprecated upstream since v1.35 (the daemon logs its start-up notice and records it as a Node
// Event, as upstream does), fully supported here.
import { log } from '../../log/log.ts';
import type { IPFamily } from '../../model/types.ts';
import { nodePortAddressesFor } from '../../plan/node-ports.ts';
import type { Backend } from '../../sync/backend.ts';
import { execTool } from '../../util/exec.ts';
import { toolWorks, type ModeDefinition } from '../common/mode.ts';
import { localDetectorFor } from '../common/settings.ts';
import { detectIptablesBackend, iptablesTools, type IptablesBackend } from '../xtables/index.ts';
import { ipvsCleaner } from './cleanup.ts';
import { IPVS_OWNER } from './owner.ts';
import { ipvsExplainer } from './explain.ts';
import { registerIpvsMetrics, type IpvsMetrics } from './metrics.ts';
import { DEFAULT_IPVS_SETTINGS, parseScheduler } from './options.ts';
import { createIpvsProxier, probeScheduler, type IpvsProxier } from './proxier.ts';

export const IPVS_DEPRECATION =
  "The ipvs proxier is now deprecated and may be removed in a future release. Please use 'nftables' instead.";

/** The proxier as a Backend that counts failed iptables-restore runs as upstream does. */
export function countedIpvsBackend(proxier: IpvsProxier, metrics: IpvsMetrics): Backend {
  return {
    family: proxier.family,
    mode: proxier.mode,
    postSyncHooks: { conntrackCleanup: true },
    rulesIntact: () => proxier.rulesIntact(),
    sync: async (request) => {
      try {
        return await proxier.sync(request);
      } catch (error) {
        metrics.restoreFailures.inc({ ip_family: proxier.family });
        throw error;
      }
    },
    start: () => proxier.start?.() ?? Promise.resolve(),
    close: () => proxier.close?.() ?? Promise.resolve(),
  };
}

export const ipvsMode: ModeDefinition = {
  name: 'ipvs',
  deprecation: { reason: 'IPVSDeprecation', note: IPVS_DEPRECATION },
  xtablesOwners: [IPVS_OWNER],
  cleaner: (run, keep) => ipvsCleaner(run, keep),
  explainer: ipvsExplainer,
  setUp: ({ registry, settings, run = execTool }) => {
    const metrics = registerIpvsMetrics(registry);
    const ipvs = settings.ipvs ?? DEFAULT_IPVS_SETTINGS;
    let backend: Promise<IptablesBackend> | undefined;
    const chooseBackend = () => (backend ??= detectIptablesBackend(run));
    // One probe per scheduler for both families: the IPVS table is host-wide.
    const probes = new Map<string, Promise<void>>();
    const probeOnce = (name: string): Promise<void> => {
      let probe = probes.get(name);
      if (!probe) {
        probe = probeScheduler(run, name);
        probes.set(name, probe);
      }
      return probe;
    };
    return {
      supportsFamily: async (family: IPFamily) =>
        toolWorks(run, iptablesTools(await chooseBackend(), family).save, ['-t', 'nat']),
      createBackend: async (family, { node }) => {
        const scheduler = parseScheduler(ipvs.scheduler);
        if ('error' in scheduler) throw new Error(scheduler.error);
        if (ipvs.scheduler === '') log.info('IPVS scheduler not specified, use rr by default');
        const proxier = createIpvsProxier(
          {
            family,
            scheduler: scheduler.scheduler,
            masqueradeBit: settings.masqueradeBit,
            masqueradeAll: settings.masqueradeAll,
            localDetector: localDetectorFor(settings, family, node),
            nodePortAddresses: nodePortAddressesFor(settings.nodePortAddresses, family, node.ips[family]),
            settings: ipvs,
            backend: await chooseBackend(),
            syncPeriodMs: settings.syncPeriodMs,
          },
          { run, probeScheduler: probeOnce },
        );
        await proxier.init();
        return countedIpvsBackend(proxier, metrics);
      },
    };
  },
};
