// The nftables mode as the registry (dataplane/modes.ts) sees it: its metrics, its cleaner, the
// families (both, in one tool) and one backend per family that counts its own failures.
import { nftablesVerifier } from './verify.ts';
import { nftablesExplainer } from './explain.ts';
import { log } from '../../log/log.ts';
import type { Backend } from '../../sync/backend.ts';
import { execTool } from '../../util/exec.ts';
import type { ModeDefinition } from '../common/mode.ts';
import { localDetectorFor, nftNodePortAddresses } from '../common/settings.ts';
import { nftablesCleaner } from './cleanup.ts';
import { registerNftablesMetrics, type NftablesMetrics } from './metrics.ts';
import type { NftablesOptions } from './options.ts';
import { NftSession } from './session.ts';
import { createNftablesProxier, type NftablesProxier } from './proxier.ts';

/** The proxier as a Backend whose failed syncs count in the nftables failure counter. */
export function countedBackend(proxier: NftablesProxier, metrics: NftablesMetrics): Backend {
  const labels = { ip_family: proxier.family };
  return {
    family: proxier.family,
    mode: proxier.mode,
    postSyncHooks: { conntrackCleanup: true },
    ...(proxier.followsHostAddresses === true ? { followsHostAddresses: true } : {}),
    rulesIntact: () => proxier.rulesIntact?.() ?? Promise.resolve(true),
    close: () => proxier.close?.() ?? Promise.resolve(),
    sync: async (request) => {
      try {
        return await proxier.sync(request);
      } catch (error) {
        metrics.syncFailures.inc(labels);
        throw error;
      }
    },
  };
}

export const nftablesMode: ModeDefinition = {
  name: 'nftables',
  explainer: nftablesExplainer,
  verifier: nftablesVerifier,
  xtablesOwners: [],
  cleaner: (run) => nftablesCleaner(run),
  setUp: ({ registry, settings, run = execTool }) => {
    const metrics = registerNftablesMetrics(registry);
    return {
      // nftables has both families in one tool; IPv6 availability is checked by the daemon.
      supportsFamily: () => Promise.resolve(true),
      createBackend: async (family, { node, hostAddresses, currentHostAddresses }) => {
        const options: NftablesOptions = {
          family,
          masqueradeBit: settings.masqueradeBit,
          masqueradeAll: settings.masqueradeAll,
          localDetector: localDetectorFor(settings, family, node),
          nodePortAddresses: nftNodePortAddresses(settings.nodePortAddresses, family, node, hostAddresses),
        };
        const proxier = await createNftablesProxier(options, {
          run,
          // A runner given by a test (another namespace, a fake) cannot host a long-lived nft;
          // KUBE_PROXY_NFT_SESSION=off is the operator's way back to one nft -f per sync.
          ...(run === execTool && process.env['KUBE_PROXY_NFT_SESSION'] !== 'off'
            ? { session: () => new NftSession() }
            : {}),
          skipKernelCheck: Boolean(process.env['KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK']),
          // `primary` and CIDRs are resolved against the host's addresses at every sync.
          ...(currentHostAddresses
            ? {
                nodePortIPs: () => {
                  const current = nftNodePortAddresses(
                    settings.nodePortAddresses,
                    family,
                    node,
                    currentHostAddresses(),
                  );
                  return current.kind === 'ips' ? current.ips : [];
                },
              }
            : {}),
        });
        log.info('Using nftables proxier', {
          ipFamily: family,
          nodePortAddresses: options.nodePortAddresses.kind === 'all' ? 'all' : options.nodePortAddresses.ips,
        });
        return countedBackend(proxier, metrics);
      },
    };
  },
};
