// The running proxy: startup order of upstream-behavior.md 9.1, then informers feeding one model
// per IP family, each with its own sync loop and proxier (dual-stack is two proxiers side by side,
// architecture rule 7). Everything mode-specific arrives through `createProxier`.
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { writeFile } from 'node:fs/promises';
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import type { KubeRequester } from '../k8s/client.ts';
import { EventRecorder } from '../k8s/events.ts';
import type { Reflector } from '../k8s/reflector.ts';
import { watchNode, type WatchTuning } from '../k8s/watches.ts';
import { log } from '../log/log.ts';
import type { ProxyModel } from '../model/tracker.ts';
import { formatProblem } from '../model/problem.ts';
import { Intake } from './intake.ts';
import type { IPFamily, ProxySnapshot } from '../model/types.ts';
import { applyConntrackSettings, type ConntrackSettings } from '../conntrack/sysctls.ts';
import { ConntrackReconciler, type Runner as ConntrackRunner } from '../conntrack/reconciler.ts';
import { nodePortCIDRsFor, type NodePortAddressSetting } from '../dataplane/factory.ts';
import {
  healthCheckAddresses,
  localInterfaceAddresses,
  ServiceHealthServer,
} from '../server/service-health.ts';
import { ProxyHealth } from '../server/health.ts';
import { healthzHandler, metricsHandler, serveHttp, type RunningServer } from '../server/http.ts';
import { createProxyMetrics, type ProxyMetrics } from '../server/metrics.ts';
import { FamilySync } from '../sync/family-sync.ts';
import type { Proxier, SyncResult } from '../sync/proxier.ts';
import { parseCIDR, parseIP } from '../util/ip.ts';
import { memoryRelease } from '../util/memory.ts';
import type { Sysctl } from '../util/sysctl.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** What the daemon learned about its node before creating proxiers. */
export interface NodeInfo {
  readonly name: string;
  readonly primaryFamily: IPFamily;
  readonly ips: Readonly<Record<IPFamily, readonly string[]>>;
  readonly podCIDRs: readonly string[];
}

export interface DaemonSettings {
  readonly mode: 'iptables' | 'nftables';
  readonly nodeName: string;
  readonly client: KubeRequester;
  readonly syncPeriodMs: number;
  readonly minSyncPeriodMs: number;
  readonly healthz: HostPort | undefined;
  readonly metrics: HostPort | undefined;
  readonly bindAddressHardFail: boolean;
  /** bindAddress when it is a specific IP: overrides the node's primary IP (spec 1.7). */
  readonly bindAddress: string | undefined;
  readonly conntrack: ConntrackSettings;
  readonly sysctl: Sysctl;
  readonly oomScoreAdj: number | undefined;
  readonly initOnly: boolean;
  /** NodeCIDR local detection needs spec.podCIDRs before starting. */
  readonly requirePodCIDRs: boolean;
  readonly configz: () => unknown;
  /** Which families the dataplane can program on this host. */
  readonly supportsFamily: (family: IPFamily) => Promise<boolean>;
  readonly createProxier: (family: IPFamily, node: NodeInfo, metrics: ProxyMetrics) => Promise<Proxier>;
  /** Called when the daemon must exit with an error (node deleted, node IPs changed, hard fail). */
  readonly onFatal: (message: string) => void;
  readonly nodeWaitTimeoutMs?: number;
  readonly watchTuning?: WatchTuning<never>;
  readonly startTimeMs?: number;
  /** Where service health check servers listen (spec 6.2); default all addresses. */
  readonly nodePortAddresses?: NodePortAddressSetting;
  /** How the `conntrack` tool runs (tests); default execTool. */
  readonly conntrackRunner?: ConntrackRunner;
}

export interface RunningDaemon {
  readonly syncs: readonly FamilySync[];
  readonly health: ProxyHealth;
  readonly metrics: ProxyMetrics | undefined;
  stop(): Promise<void>;
}

const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** Node addresses per family, InternalIP first, then ExternalIP, then anything else. */
export function nodeAddresses(node: Node): Record<IPFamily, string[]> {
  const rank = (type: string) => (type === 'InternalIP' ? 0 : type === 'ExternalIP' ? 1 : 2);
  const addresses = [...(node.status?.addresses ?? [])].sort((a, b) => rank(a.type) - rank(b.type));
  const result: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  for (const address of addresses) {
    const ip = parseIP(address.address);
    if (ip && !result[ip.family].includes(ip.text)) result[ip.family].push(ip.text);
  }
  return result;
}

function nodeInfoOf(node: Node, bindAddress: string | undefined): NodeInfo {
  const ips = nodeAddresses(node);
  const first = (node.status?.addresses ?? []).map((a) => parseIP(a.address)).find((ip) => ip !== undefined);
  let primaryFamily: IPFamily = first?.family ?? 'IPv4';
  const bind = bindAddress ? parseIP(bindAddress) : undefined;
  if (bind && bind.value !== 0n) {
    primaryFamily = bind.family;
    ips[bind.family] = [bind.text, ...ips[bind.family].filter((ip) => ip !== bind.text)];
  }
  if (ips.IPv4.length === 0) ips.IPv4.push('127.0.0.1');
  if (ips.IPv6.length === 0) ips.IPv6.push('::1');
  return { name: node.metadata?.name ?? '', primaryFamily, ips, podCIDRs: canonicalPodCIDRs(node) };
}

/** spec.podCIDRs (or the legacy spec.podCIDR), parsed: a malformed entry is left out. */
function canonicalPodCIDRs(node: Node): string[] {
  const texts = node.spec?.podCIDRs ?? (node.spec?.podCIDR ? [node.spec.podCIDR] : []);
  return texts.map((text) => parseCIDR(text)?.text).filter((text): text is string => text !== undefined);
}

function nodeEligible(node: Node): boolean {
  if (node.metadata?.deletionTimestamp) return false;
  return !(node.spec?.taints ?? []).some((taint) => taint.key === TO_BE_DELETED_TAINT);
}

function usableNode(node: Node | undefined, requirePodCIDRs: boolean): node is Node {
  if (!node || (node.status?.addresses ?? []).length === 0) return false;
  return !requirePodCIDRs || (node.spec?.podCIDRs ?? []).length > 0;
}

async function waitForNode(watch: Reflector<Node>, settings: DaemonSettings): Promise<Node> {
  const deadline = Date.now() + (settings.nodeWaitTimeoutMs ?? 300_000);
  let logged = false;
  for (;;) {
    const node = watch.get(settings.nodeName);
    if (usableNode(node, settings.requirePodCIDRs)) return node;
    if (Date.now() > deadline) {
      throw new Error(
        settings.requirePodCIDRs
          ? `timed out waiting for Node ${settings.nodeName} to have addresses and spec.podCIDRs (detectLocalMode NodeCIDR)`
          : `timed out waiting for Node ${settings.nodeName} to exist with addresses`,
      );
    }
    if (!logged) {
      log.info('Waiting for the Node object', { node: settings.nodeName });
      logged = true;
    }
    // Polls the informer cache (a map lookup), so a short interval costs nothing and saves
    // up to a second of cold start.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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

export async function runDaemon(settings: DaemonSettings): Promise<RunningDaemon> {
  const startTimeMs = settings.startTimeMs ?? Date.now();
  const recorder = new EventRecorder({ client: settings.client, nodeName: settings.nodeName });
  const tuning = settings.watchTuning ?? {};
  const stoppers: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop().catch(() => undefined);
  };

  // 1. Our Node: its addresses decide the families, its zone feeds topology.
  // Until the proxiers exist the reflector's cache is all we need; handlers are swapped in below.
  const nodeHandlers: { update: (node: Node) => void; remove: () => void } = {
    update: () => undefined,
    remove: () => undefined,
  };
  const nodeWatch = watchNode(
    settings.client,
    settings.nodeName,
    {
      onAdd: (node) => nodeHandlers.update(node),
      onUpdate: (_old, node) => nodeHandlers.update(node),
      onDelete: () => nodeHandlers.remove(),
    },
    tuning,
  );
  nodeWatch.start();
  stoppers.push(() => nodeWatch.stop());

  // Services and EndpointSlices are listed while the Node is looked up and the proxiers are
  // created (intake.ts); --init-only never needs them.
  const metrics = createProxyMetrics(settings.mode);
  const intake = new Intake({
    client: settings.client,
    nodeName: settings.nodeName,
    proxyStartTimeMs: startTimeMs,
    metrics,
    onProblem: (problem) => {
      log.error('Skipping invalid object', undefined, { problem: formatProblem(problem) });
    },
    tuning,
  });
  if (!settings.initOnly) {
    intake.start();
    stoppers.push(() => intake.stop());
  }

  try {
    const node = await waitForNode(nodeWatch, settings);
    const info = nodeInfoOf(node, settings.bindAddress);
    log.info('Node found', {
      node: info.name,
      primaryFamily: info.primaryFamily,
      ipv4: info.ips.IPv4,
      ipv6: info.ips.IPv6,
      podCIDRs: info.podCIDRs,
    });
    const health = new ProxyHealth({ syncPeriodMs: settings.syncPeriodMs });
    health.setNodeEligible(nodeEligible(node));

    // 2. Conntrack sysctls (fatal on error, with the way out in the message).
    await applyConntrackSettings(settings.conntrack, settings.sysctl, cpuCount(), undefined);

    // 3. Families and proxiers.
    const families: IPFamily[] = [info.primaryFamily];
    const secondary: IPFamily = info.primaryFamily === 'IPv4' ? 'IPv6' : 'IPv4';
    const ipv6Available = secondary !== 'IPv6' || existsSync('/proc/net/if_inet6');
    if (ipv6Available && (await settings.supportsFamily(secondary))) families.push(secondary);
    else log.info('Running in single-stack mode', { ipFamily: info.primaryFamily });
    const proxiers = await Promise.all(
      families.map((family) => settings.createProxier(family, info, metrics)),
    );
    if (settings.initOnly) {
      log.info('Initialisation done (--init-only), exiting');
      await stopAll();
      return { syncs: [], health, metrics: undefined, stop: () => Promise.resolve() };
    }

    // 4. Models and sync loops, one per family.
    const models = intake.useFamilies(proxiers.map((proxier) => proxier.family));
    for (const model of models) model.setNode(node);
    // After each successful sync: service health checks and stale UDP conntrack entries (2.3).
    const npa = settings.nodePortAddresses ?? { kind: 'all' };
    const serviceHealth = new ServiceHealthServer({
      addresses:
        npa.kind === 'all'
          ? undefined
          : healthCheckAddresses(
              Object.fromEntries(
                families.map((family) => {
                  const cidrs = nodePortCIDRsFor(npa, family, info);
                  return [family, cidrs.kind === 'all' ? [] : cidrs.cidrs];
                }),
              ),
              localInterfaceAddresses(),
            ),
      health,
      recorder,
      nodeName: settings.nodeName,
    });
    stoppers.push(() => serviceHealth.close());
    const conntrack = new ConntrackReconciler({
      metrics,
      ...(settings.conntrackRunner ? { runner: settings.conntrackRunner } : {}),
    });
    // Syncs leave garbage V8 keeps; give it back once the loop is quiet (src/util/memory.ts).
    const release = memoryRelease();
    const afterSync = async (snapshot: ProxySnapshot, result: SyncResult) => {
      release.synced(result.full);
      logProgrammed(snapshot);
      const steps = await Promise.allSettled([conntrack.afterSync(snapshot), serviceHealth.update(snapshot)]);
      for (const step of steps) {
        if (step.status === 'rejected') {
          log.error('Post-sync step failed', step.reason, { ipFamily: snapshot.family });
        }
      }
    };
    const syncs = proxiers.map(
      (proxier, i) =>
        new FamilySync({
          proxier,
          source: models[i] as ProxyModel,
          health,
          metrics,
          minSyncPeriodMs: settings.minSyncPeriodMs,
          syncPeriodMs: settings.syncPeriodMs,
          startTimeMs,
          afterSync,
        }),
    );
    stoppers.push(async () => {
      for (const sync of syncs) sync.stop();
      await Promise.all(syncs.map((sync) => sync.whenIdle()));
    });

    if (settings.oomScoreAdj !== undefined) {
      await writeFile('/proc/self/oom_score_adj', String(settings.oomScoreAdj)).catch((error: unknown) => {
        log.error('Failed to set oom_score_adj', error, { value: settings.oomScoreAdj });
      });
    }

    // 5. Servers.
    const servers: RunningServer[] = [];
    const fatalBind = (what: string, reason: string) => (error: Error) => {
      void recorder.nodeEvent(
        'Warning',
        reason,
        'StartKubeProxy',
        `Failed to start ${what}: ${error.message}`,
      );
      settings.onFatal(`failed to start ${what}: ${error.message}`);
    };
    if (settings.healthz) {
      servers.push(
        serveHttp({
          name: 'healthz',
          ...settings.healthz,
          handler: healthzHandler(health, metrics),
          hardFail: settings.bindAddressHardFail,
          onFatal: fatalBind('proxier healthz server', 'FailedToStartProxierHealthcheck'),
        }),
      );
    }
    if (settings.metrics) {
      servers.push(
        serveHttp({
          name: 'metrics',
          ...settings.metrics,
          handler: metricsHandler({
            metrics,
            mode: settings.mode,
            configz: settings.configz,
            debug: () => ({
              mode: settings.mode,
              node: settings.nodeName,
              families: syncs.map((sync) => {
                const last = sync.latestResult;
                return {
                  ipFamily: sync.family,
                  successfulSyncs: sync.successfulSyncs,
                  lastSync: last && {
                    at: new Date(last.at).toISOString(),
                    full: last.full,
                    renderSeconds: last.renderSeconds,
                    applySeconds: last.applySeconds,
                    ...last.details,
                  },
                };
              }),
            }),
          }),
          hardFail: settings.bindAddressHardFail,
          onFatal: fatalBind('metrics server', 'FailedToStartMetricServer'),
        }),
      );
    }
    stoppers.push(async () => {
      await Promise.all(servers.map((server) => server.close()));
    });

    // 6. Informers (started above): every event goes to every family's model; a real change asks
    // for a sync once the loops run (before that, the first sync picks everything up, and nothing
    // is "queued" for healthz: upstream requests syncs only once both informers have synced).
    let started = false;
    intake.onChange(() => {
      if (!started) return;
      models.forEach((model, i) => {
        if (model.hasPendingChanges()) syncs[i]?.requestSync();
      });
    });
    intake.whenSynced(() => {
      started = true;
      for (const sync of syncs) sync.start();
    });

    // 7. Our Node from now on: topology changes force a full sync; deletion, new IPs or (with
    // NodeCIDR detection) new podCIDRs end us so we restart with them, as upstream does.
    const initialIPs = JSON.stringify(nodeAddresses(node));
    const initialPodCIDRs = JSON.stringify(info.podCIDRs);
    nodeHandlers.update = (updated) => {
      health.setNodeEligible(nodeEligible(updated));
      if (JSON.stringify(nodeAddresses(updated)) !== initialIPs) {
        settings.onFatal(`the IPs of Node ${settings.nodeName} changed; restarting to pick them up`);
        return;
      }
      if (settings.requirePodCIDRs && JSON.stringify(canonicalPodCIDRs(updated)) !== initialPodCIDRs) {
        settings.onFatal(`the podCIDRs of Node ${settings.nodeName} changed; restarting to pick them up`);
        return;
      }
      models.forEach((model, i) => {
        if (model.setNode(updated).topologyChanged) {
          log.info('Node topology changed, forcing a full sync', { node: settings.nodeName });
          syncs[i]?.requestFullSync();
        }
      });
    };
    nodeHandlers.remove = () => {
      health.setNodeEligible(false);
      settings.onFatal(`Node ${settings.nodeName} was deleted`);
    };
    // The Node may have changed (or gone) while proxiers were being created: replay it.
    const latest = nodeWatch.get(settings.nodeName);
    if (!latest) nodeHandlers.remove();
    else if (latest.metadata?.resourceVersion !== node.metadata?.resourceVersion) nodeHandlers.update(latest);

    void recorder.starting();
    log.info('kube-proxy started', { mode: settings.mode, families, node: settings.nodeName });
    return { syncs, health, metrics, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function cpuCount(): number {
  // Upstream counts the node's online CPUs, not the process's cpuset.
  return Math.max(1, cpus().length);
}
