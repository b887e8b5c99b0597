// The running proxy: startup order of upstream-behavior.md 9.1, then informers feeding one model
// per IP family, each with its own sync loop and backend. This file only orchestrates; each job
// has its own module here (node lifecycle, families and backends, post-sync hooks, servers), and
// everything mode-specific arrives through the ModeDefinition.
import type { ConntrackSettings } from '../conntrack/sysctls.ts';
import { applyConntrackSettings, watchPendingSysctls } from '../conntrack/sysctls.ts';
import type { ModeDefinition, ToolRunner } from '../dataplane/common/mode.ts';
import type { DataplaneSettings } from '../dataplane/common/settings.ts';
import { realHost, type Host } from '../host/host.ts';
import type { KubeRequester } from '../k8s/client.ts';
import { EventRecorder } from '../k8s/events.ts';
import { Intake } from '../k8s/intake.ts';
import type { WatchTuning } from '../k8s/watches.ts';
import { log } from '../log/log.ts';
import { createProxyMetrics, type ProxyMetrics } from '../metrics/proxy.ts';
import type { Registry } from '../metrics/registry.ts';
import type { LiveState } from '../explain/routes.ts';
import { confirmPath } from '../verify/confirm.ts';
import { withConntrack } from '../explain/conntrack.ts';
import type { ExplainState } from '../explain/state.ts';
import { execTool } from '../util/exec.ts';
import {
  registerVerifyMetrics,
  verifyState,
  type VerifyMetrics,
  type VerifyReport,
} from '../verify/verify.ts';
import { emptyNodeContext } from '../model/node.ts';
import { formatProblem } from '../model/problem.ts';
import type { ProxyModel } from '../model/tracker.ts';
import type { IPFamily } from '../model/types.ts';
import { ProxyHealth } from '../server/health.ts';
import type { Runner as ConntrackRunner } from '../conntrack/reconciler.ts';
import type { AppliedState } from '../sync/applied.ts';
import { FamilySync } from '../sync/family-sync.ts';
import { reportIgnoredConfigFields } from './config-report.ts';
import { registerComponentMetrics } from '../metrics/component.ts';
import type { ZPagesSource } from '../server/zpages.ts';
import { chooseFamilies, closeBackends, createBackends } from './families.ts';
import { nodeInfoOf } from './node.ts';
import { NodeLifecycle, fallbackNode, nodeEligible } from './node-lifecycle.ts';
import { createPostSync } from './post-sync.ts';
import { HOST_ADDRESS_POLL_MS, watchHostAddresses } from './host-addresses.ts';
import { startServers, type HostPort } from './servers.ts';
import { ProblemLog } from '../ui/routes.ts';

export type { HostPort };

export type ComponentInfo = Parameters<typeof registerComponentMetrics>[1];

export interface DaemonSettings {
  /** The proxy mode, from the registry (dataplane/modes.ts). */
  readonly mode: ModeDefinition;
  /** What the mode's backends are built from. Its nodePortAddresses also place health check servers. */
  readonly dataplane: DataplaneSettings;
  readonly nodeName: string;
  readonly client: KubeRequester;
  /** The metrics registry, when the caller registered on it first (the API client's metrics). */
  readonly registry?: Registry;
  readonly syncPeriodMs: number;
  readonly minSyncPeriodMs: number;
  readonly healthz: HostPort | undefined;
  readonly metrics: HostPort | undefined;
  readonly bindAddressHardFail: boolean;
  /** bindAddress when it is a specific IP: overrides the node's primary IP (spec 1.7). */
  readonly bindAddress: string | undefined;
  readonly conntrack: ConntrackSettings;
  readonly oomScoreAdj: number | undefined;
  readonly initOnly: boolean;
  /** NodeCIDR local detection needs spec.podCIDRs before starting. */
  readonly requirePodCIDRs: boolean;
  readonly configz: () => unknown;
  /** enableProfiling: /debug/pprof/* and /debug/flags/v on the metrics server. */
  readonly profiling?: boolean;
  /** /flagz and /statusz. */
  readonly zpages?: ZPagesSource;
  /** kubernetes_build_info and kubernetes_feature_enabled. */
  readonly component?: ComponentInfo;
  /** The config file (for messages) and the fields of it that were ignored. */
  readonly configFile?: string;
  readonly ignoredConfigFields?: readonly string[];
  /** Called when the daemon must exit with an error (podCIDRs changed under NodeCIDR, hard fail). */
  readonly onFatal: (message: string) => void;
  /** Host facts (addresses, sysctls, /proc); default the real host. */
  readonly host?: Host;
  /** How the mode's tools run; default execTool. */
  readonly run?: ToolRunner;
  readonly nodeWaitTimeoutMs?: number;
  readonly watchTuning?: WatchTuning<never>;
  readonly startTimeMs?: number;
  /** How the `conntrack` tool runs (tests); default execTool. */
  readonly conntrackRunner?: ConntrackRunner;
  /** Peers besides loopback the debug routes and /ui answer (--debug-handlers-allowed-cidrs). */
  readonly debugAllowedCIDRs?: readonly string[];
  /** How often an API server without ServiceCIDRs is asked again (tests); default 60 s. */
  readonly serviceCIDRNotFoundRetryMs?: number;
  /** How often the host's addresses are read for backends that follow them (tests); default 5 s. */
  readonly hostAddressPollMs?: number;
}

export interface RunningDaemon {
  readonly syncs: readonly FamilySync[];
  readonly health: ProxyHealth;
  readonly metrics: ProxyMetrics | undefined;
  /** What the last successful sync of a family applied; undefined for a family not in use. */
  lastApplied(family: IPFamily): AppliedState | undefined;
  stop(): Promise<void>;
}

/** The node's view as the last successful syncs applied it, for /debug/proxy/explain and /state. */
function liveExplainState(parts: {
  readonly settings: DaemonSettings;
  readonly syncs: readonly FamilySync[];
  readonly models: readonly ProxyModel[];
  readonly host: Host;
}): LiveState {
  const { settings, syncs, models, host } = parts;
  // The same family objects while nothing changed, so the explainer keeps their rendered rules.
  let cached: { key: string; state: ExplainState } | undefined;
  return {
    state: () => {
      const addresses = host.interfaceAddresses();
      const generations = syncs.map((sync) => sync.lastApplied.generation);
      const key = JSON.stringify([generations, addresses, models.map((model) => model.node)]);
      if (cached?.key === key && generations.every((g) => g !== undefined)) return cached.state;
      const state: ExplainState = {
        source: { kind: 'live' },
        node: settings.nodeName,
        mode: settings.mode.name,
        settings: settings.dataplane,
        families: syncs.map((sync, i) => ({
          family: sync.family,
          node: models[i]?.node ?? emptyNodeContext(settings.nodeName),
          servicePorts: sync.lastApplied.servicePorts,
          hostAddresses: addresses.filter((a) => a.family === sync.family).map((a) => a.address),
          serviceCIDRs: sync.lastApplied.serviceCIDRs,
          // The watches never deliver what they exclude, and the model keeps no skip reasons.
          skipped: [],
          generation: sync.lastApplied.generation,
        })),
      };
      cached = { key, state };
      return state;
    },
    confirm: (explanation) => confirmPath(explanation, settings.run ?? execTool),
    conntrack: (explanation) => withConntrack(explanation, settings.conntrackRunner ?? execTool),
    lastSync: (family) => {
      const last = syncs.find((sync) => sync.family === family)?.latestResult;
      return (
        last && {
          at: new Date(last.at).toISOString(),
          full: last.full,
          renderSeconds: last.renderSeconds,
          applySeconds: last.applySeconds,
        }
      );
    },
  };
}

/**
 * /debug/proxy/verify: one verify at a time (a second caller shares the running one), after the
 * sync loops are idle, so a sync in flight is not taken for drift. Drift asks for a full sync of
 * the family: a partial sync never rewrites what it believes is in place.
 */
function verifier(parts: {
  readonly live: LiveState;
  readonly syncs: readonly FamilySync[];
  readonly run: ToolRunner;
  readonly metrics: VerifyMetrics;
}): (resync: boolean) => Promise<VerifyReport> {
  let running: Promise<VerifyReport> | undefined;
  const once = async (resync: boolean): Promise<VerifyReport> => {
    await Promise.all(parts.syncs.map((sync) => sync.whenIdle()));
    const report = await verifyState(parts.live.state(), parts.run);
    parts.metrics.observe(report);
    const actions: string[] = [];
    for (const family of report.families) {
      const drift = family.counts.missing + family.counts.unexpected + family.counts.changed;
      if (drift === 0) continue;
      log.warn('Dataplane drift', {
        ipFamily: family.family,
        missing: family.counts.missing,
        unexpected: family.counts.unexpected,
        changed: family.counts.changed,
        servicePorts: family.servicePorts.map((sp) => sp.servicePort).slice(0, 10),
      });
      if (!resync) continue;
      parts.syncs.find((sync) => sync.family === family.family)?.requestFullSync();
      actions.push(`full sync requested for ${family.family} (reason: drift)`);
    }
    return { ...report, actions };
  };
  return (resync) => {
    running ??= once(resync).finally(() => {
      running = undefined;
    });
    return running;
  };
}

export async function runDaemon(settings: DaemonSettings): Promise<RunningDaemon> {
  const startTimeMs = settings.startTimeMs ?? Date.now();
  const host = settings.host ?? realHost();
  const recorder = new EventRecorder({ client: settings.client, nodeName: settings.nodeName });
  const tuning = settings.watchTuning ?? {};
  const stoppers: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop().catch(() => undefined);
  };

  // 1. Our Node: its addresses decide the families, its zone feeds topology.
  const nodeLifecycle = new NodeLifecycle(settings.client, settings, tuning);
  nodeLifecycle.start();
  stoppers.push(() => nodeLifecycle.stop());

  // Services and EndpointSlices are listed while the Node is looked up and the backends are
  // created (k8s/intake.ts); --init-only never needs them.
  const metrics = createProxyMetrics({
    mode: settings.mode.name,
    ...(settings.registry ? { registry: settings.registry } : {}),
  });
  if (settings.component) registerComponentMetrics(metrics.registry, settings.component);
  reportIgnoredConfigFields({
    file: settings.configFile ?? '',
    fields: settings.ignoredConfigFields ?? [],
    registry: metrics.registry,
    recorder,
  });
  const mode = settings.mode.setUp({
    registry: metrics.registry,
    settings: settings.dataplane,
    ...(settings.run ? { run: settings.run } : {}),
  });
  // The last objects skipped as invalid, for the web page (the log has them too).
  const problems = new ProblemLog();
  const intake = new Intake({
    client: settings.client,
    nodeName: settings.nodeName,
    bindAddress: settings.bindAddress,
    proxyStartTimeMs: startTimeMs,
    metrics,
    onProblem: (problem) => {
      const line = formatProblem(problem);
      problems.add(line);
      log.error('Skipping invalid object', undefined, { problem: line });
    },
    tuning,
    ...(settings.serviceCIDRNotFoundRetryMs !== undefined
      ? { serviceCIDRNotFoundRetryMs: settings.serviceCIDRNotFoundRetryMs }
      : {}),
  });
  if (!settings.initOnly) {
    intake.start();
    stoppers.push(() => intake.stop());
  }

  try {
    const found = await nodeLifecycle.waitForNode();
    const node = found ?? fallbackNode(settings.nodeName, settings.bindAddress);
    const info = nodeInfoOf(node, settings.bindAddress);
    if (!found) {
      log.warn("Can't determine this node's IP, assuming the bind address or loopback", {
        node: settings.nodeName,
        ip: info.ips[info.primaryFamily][0] ?? '',
      });
    }
    log.info('Node found', {
      node: info.name,
      primaryFamily: info.primaryFamily,
      ipv4: info.ips.IPv4,
      ipv6: info.ips.IPv6,
      podCIDRs: info.podCIDRs,
    });
    const health = new ProxyHealth({ syncPeriodMs: settings.syncPeriodMs });
    health.setNodeEligible(nodeEligible(node));

    // 2. Conntrack sysctls (fatal on error, with the way out in the message). Those that do not
    // exist yet (nf_conntrack not loaded before our rules need it) are set once they appear.
    const pendingSysctls = await applyConntrackSettings(settings.conntrack, host.sysctl, host.cpuCount());
    if (pendingSysctls.length > 0) {
      const watch = watchPendingSysctls(pendingSysctls, host.sysctl);
      stoppers.push(() => {
        watch.stop();
        return Promise.resolve();
      });
    }

    // 3. Families and backends.
    const families = await chooseFamilies(info, mode, host);
    const currentHostAddresses = (): string[] => host.interfaceAddresses().map((address) => address.address);
    const backends = await createBackends(families, mode, info, currentHostAddresses(), currentHostAddresses);
    stoppers.push(() => closeBackends(backends));
    if (settings.initOnly) {
      log.info('Initialisation done (--init-only), exiting');
      await stopAll();
      return {
        syncs: [],
        health,
        metrics: undefined,
        lastApplied: () => undefined,
        stop: () => Promise.resolve(),
      };
    }
    for (const backend of backends) await backend.start?.();

    // 4. Models and sync loops, one per family, with the post-sync hooks each backend wants.
    const models = intake.useFamilies(backends.map((backend) => backend.family));
    for (const model of models) model.setNode(node);
    const postSync = createPostSync({
      nodeName: settings.nodeName,
      node: info,
      families,
      nodePortAddresses: settings.dataplane.nodePortAddresses,
      host,
      health,
      recorder,
      metrics,
      ...(settings.conntrackRunner ? { conntrackRunner: settings.conntrackRunner } : {}),
    });
    stoppers.push(() => postSync.close());
    const syncs = backends.map(
      (backend, i) =>
        new FamilySync({
          backend,
          source: models[i] as ProxyModel,
          health,
          metrics,
          minSyncPeriodMs: settings.minSyncPeriodMs,
          syncPeriodMs: settings.syncPeriodMs,
          startTimeMs,
          afterSync: postSync.hookFor(backend),
        }),
    );
    stoppers.push(async () => {
      for (const sync of syncs) sync.stop();
      await Promise.all(syncs.map((sync) => sync.whenIdle()));
    });

    if (settings.oomScoreAdj !== undefined) {
      await host.setOomScoreAdj(settings.oomScoreAdj).catch((error: unknown) => {
        log.error('Failed to set oom_score_adj', error, { value: settings.oomScoreAdj });
      });
    }

    // 5. Servers.
    const live = liveExplainState({ settings, syncs, models, host });
    const servers = startServers(
      { ...settings, modeName: settings.mode.name },
      {
        health,
        metrics,
        recorder,
        syncs,
        explain: live,
        problems: () => problems.list(),
        verify: verifier({
          live,
          syncs,
          run: settings.run ?? execTool,
          metrics: registerVerifyMetrics(metrics.registry),
        }),
      },
    );
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
    // Backends whose rules name the host's addresses (nftables' node port addresses) sync when
    // they change; the sync re-reads them.
    const following = syncs.filter((_sync, i) => backends[i]?.followsHostAddresses === true);
    if (following.length > 0) {
      const watch = watchHostAddresses(
        currentHostAddresses,
        settings.hostAddressPollMs ?? Math.min(settings.syncPeriodMs, HOST_ADDRESS_POLL_MS),
        () => {
          if (started) for (const sync of following) sync.requestSync();
        },
      );
      stoppers.push(() => {
        watch.stop();
        return Promise.resolve();
      });
    }

    // 7. Our Node from now on: topology changes force a full sync of the family.
    nodeLifecycle.follow(
      node,
      {
        health,
        setNode: (updated) => {
          models.forEach((model, i) => {
            if (model.setNode(updated).topologyChanged) {
              log.info('Node topology changed, forcing a full sync', { node: settings.nodeName });
              syncs[i]?.requestFullSync();
            }
          });
        },
      },
      { synthetic: !found },
    );

    void recorder.starting();
    const deprecation = settings.mode.deprecation;
    if (deprecation) {
      log.warn(deprecation.note);
      void recorder.nodeEvent('Warning', deprecation.reason, 'ProxyModeCheck', deprecation.note);
    }
    log.info('kube-proxy started', { mode: settings.mode.name, families, node: settings.nodeName });
    return {
      syncs,
      health,
      metrics,
      lastApplied: (family) => syncs.find((sync) => sync.family === family)?.lastApplied,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
