// What runs after each successful sync of a family: give memory back once the loop is quiet,
// log what was programmed, update the service health check servers (every mode) and, for
// backends that opt in, delete stale UDP/SCTP conntrack entries (upstream-behavior.md 2.3, 7).
// A failing step is logged and never fails the sync: the rules are in place.
import { ConntrackReconciler, type Runner as ConntrackRunner } from '../conntrack/reconciler.ts';
import { nodePortCIDRsFor, type NodePortAddressSetting } from '../dataplane/common/settings.ts';
import type { Host } from '../host/host.ts';
import type { EventRecorder } from '../k8s/events.ts';
import { log } from '../log/log.ts';
import type { ProxyMetrics } from '../metrics/proxy.ts';
import type { IPFamily, ProxySnapshot } from '../model/types.ts';
import type { ProxyHealth } from '../server/health.ts';
import { healthCheckAddresses, ServiceHealthServer } from '../server/service-health.ts';
import type { Backend, SyncResult } from '../sync/backend.ts';
import { memoryRelease } from '../util/memory.ts';
import type { NodeInfo } from './node.ts';

export interface PostSyncSettings {
  readonly nodeName: string;
  readonly node: NodeInfo;
  readonly families: readonly IPFamily[];
  /** Where service health check servers listen (spec 6.2). */
  readonly nodePortAddresses: NodePortAddressSetting;
  readonly host: Host;
  readonly health: ProxyHealth;
  readonly recorder: EventRecorder;
  readonly metrics: ProxyMetrics;
  /** How the `conntrack` tool runs (tests); default execTool. */
  readonly conntrackRunner?: ConntrackRunner;
}

export type AfterSync = (snapshot: ProxySnapshot, result: SyncResult) => Promise<void>;

export interface PostSync {
  /** The hook for one backend's sync loop, with the steps that backend opted into. */
  hookFor(backend: Backend): AfterSync;
  close(): Promise<void>;
}

/** Beyond this many changed Services a sync logs a summary at -v=2 and the details at -v=4. */
const DETAILED_CHANGES_AT_V2 = 100;

/** Says what a sync programmed: one pass over the snapshot (never per changed Service). */
function logProgrammed(snapshot: ProxySnapshot): void {
  const changed = snapshot.changedServices;
  if (changed.size === 0) return;
  const verbose = log.v(changed.size <= DETAILED_CHANGES_AT_V2 ? 2 : 4);
  if (!verbose.enabled) {
    log.v(2).info('Services programmed', { ipFamily: snapshot.family, changedServices: changed.size });
    return;
  }
  const present = new Set<string>();
  for (const state of snapshot.servicePorts.values()) {
    const sp = state.servicePort;
    if (!changed.has(sp.id.service)) continue;
    present.add(sp.id.service);
    verbose.info('Service port programmed', {
      servicePort: sp.id.key,
      ipFamily: snapshot.family,
      clusterIP: `${sp.clusterIP}:${String(sp.port)}`,
      nodePort: sp.nodePort,
      endpoints: state.selection.allReachable.map((ep) => ep.endpoint),
    });
  }
  for (const service of changed) {
    if (!present.has(service))
      verbose.info('Service removed from the dataplane', { service, ipFamily: snapshot.family });
  }
}

/** Listen addresses of the service health check servers: undefined for all addresses. */
function healthServerAddresses(settings: PostSyncSettings): string[] | undefined {
  const npa = settings.nodePortAddresses;
  if (npa.kind === 'all') return undefined;
  return healthCheckAddresses(
    Object.fromEntries(
      settings.families.map((family) => {
        const cidrs = nodePortCIDRsFor(npa, family, settings.node);
        return [family, cidrs.kind === 'all' ? [] : cidrs.cidrs];
      }),
    ),
    settings.host.interfaceAddresses().map((entry) => entry.address),
  );
}

export function createPostSync(settings: PostSyncSettings): PostSync {
  const serviceHealth = new ServiceHealthServer({
    addresses: healthServerAddresses(settings),
    health: settings.health,
    recorder: settings.recorder,
    nodeName: settings.nodeName,
  });
  const conntrack = new ConntrackReconciler({
    metrics: settings.metrics,
    ...(settings.conntrackRunner ? { runner: settings.conntrackRunner } : {}),
  });
  // Syncs leave garbage V8 keeps; give it back once the loop is quiet (src/util/memory.ts).
  const release = memoryRelease();
  return {
    hookFor: (backend) => {
      const cleanConntrack = backend.postSyncHooks?.conntrackCleanup ?? false;
      return async (snapshot, result) => {
        release.synced(result.full);
        logProgrammed(snapshot);
        const steps = await Promise.allSettled([
          cleanConntrack ? conntrack.afterSync(snapshot) : Promise.resolve(),
          serviceHealth.update(snapshot),
        ]);
        for (const step of steps) {
          if (step.status === 'rejected') {
            log.error('Post-sync step failed', step.reason, { ipFamily: snapshot.family });
          }
        }
      };
    },
    close: () => serviceHealth.close(),
  };
}
