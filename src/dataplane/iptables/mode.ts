// The iptables mode as the registry (dataplane/modes.ts) sees it: its metrics, its cleaner, the
// families this host can program, and one backend per family that counts its own failures and
// sets its rule gauges from the render's counts.
import { iptablesVerifier } from './verify.ts';
import { iptablesExplainer } from './explain.ts';
import type { IPFamily } from '../../model/types.ts';
import type { Backend, SyncRequest, SyncResult } from '../../sync/backend.ts';
import { execTool } from '../../util/exec.ts';
import { toolWorks, type ModeDefinition } from '../common/mode.ts';
import { localDetectorFor, nodePortCIDRsFor } from '../common/settings.ts';
import { detectIptablesBackend, type IptablesBackend } from './backend.ts';
import { iptablesCleaner } from './cleanup.ts';
import { IPTABLES_OWNER } from './owner.ts';
import { registerIptablesMetrics, type IptablesMetrics } from './metrics.ts';
import { ensureNfacctCounters, registerNfacctMetrics } from './nfacct.ts';
import type { NfacctCounters } from './options.ts';
import { createIptablesProxier, type IptablesProxier } from './proxier.ts';

/** The proxier as a Backend whose syncs move the iptables metrics as upstream's do. */
export function countedBackend(proxier: IptablesProxier, metrics: IptablesMetrics): Backend {
  const labels = { ip_family: proxier.family };
  let firstSync = true;
  return {
    family: proxier.family,
    mode: proxier.mode,
    postSyncHooks: { conntrackCleanup: true },
    rulesIntact: () => proxier.rulesIntact(),
    sync: async (request: SyncRequest): Promise<SyncResult> => {
      // The first sync is always full, whatever was asked.
      const partial = !request.full && !firstSync;
      try {
        const result = await proxier.sync(request);
        firstSync = false;
        const { counts } = result;
        // The filter table is rewritten whole every sync; nat keeps untouched service chains.
        metrics.rulesTotal.set({ table: 'filter', ...labels }, counts.filterRules);
        metrics.rulesLast.set({ table: 'filter', ...labels }, counts.filterRules);
        metrics.rulesTotal.set({ table: 'nat', ...labels }, counts.natRulesTotal);
        metrics.rulesLast.set({ table: 'nat', ...labels }, counts.natRulesWritten);
        return result;
      } catch (error) {
        metrics.restoreFailures.inc(labels);
        if (partial) metrics.partialRestoreFailures.inc(labels);
        throw error;
      }
    },
  };
}

export const iptablesMode: ModeDefinition = {
  name: 'iptables',
  explainer: iptablesExplainer,
  verifier: iptablesVerifier,
  xtablesOwners: [IPTABLES_OWNER],
  cleaner: (run, keep) => iptablesCleaner(run, keep),
  setUp: ({ registry, settings, run = execTool }) => {
    const metrics = registerIptablesMetrics(registry);
    // One backend choice for both families: never mix legacy and nft (issue 3).
    let backend: Promise<IptablesBackend> | undefined;
    const chooseBackend = () => (backend ??= detectIptablesBackend(run));
    // The nfacct counters are per network namespace, shared by both families: created once.
    let nfacct: Promise<NfacctCounters> | undefined;
    const ensureCounters = () =>
      (nfacct ??= ensureNfacctCounters(run).then((counters) => {
        registerNfacctMetrics(registry, counters, run);
        return counters;
      }));
    return {
      supportsFamily: async (family: IPFamily) => {
        const tool = `${family === 'IPv4' ? 'iptables' : 'ip6tables'}-${await chooseBackend()}-save`;
        return toolWorks(run, tool, ['-t', 'nat']);
      },
      createBackend: async (family, { node }) => {
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
            nfacct: await ensureCounters(),
          },
          { run },
        );
        // init() logs what it chose (backend, --random-fully, localhost node ports).
        await proxier.init();
        return countedBackend(proxier, metrics);
      },
    };
  },
};
