// The healthz and metrics HTTP servers (upstream-behavior.md 6.1, 6.3), and the /debug/proxy view
// of what each family's dataplane is doing. A server that cannot bind is fatal when
// bindAddressHardFail is set, with a Node event as upstream sends.
import { explainRoutes, type LiveState } from '../explain/routes.ts';
import type { EventRecorder } from '../k8s/events.ts';
import type { ProxyMetrics } from '../metrics/proxy.ts';
import type { ProxyHealth } from '../server/health.ts';
import { debugRoutesHandler, type DebugRoute } from '../server/debug-routes.ts';
import { healthzHandler, metricsHandler, serveHttp, type RunningServer } from '../server/http.ts';
import type { FamilySync } from '../sync/family-sync.ts';
import type { VerifyReport } from '../verify/verify.ts';
import { SliMetrics } from '../metrics/component.ts';
import { zpagesRoutes, type ZPagesSource } from '../server/zpages.ts';
import { EventHub } from '../ui/events.ts';
import { uiRoutes } from '../ui/routes.ts';
import { loadAssets, pageRoutes } from '../ui/static.ts';
import { syncView } from '../ui/views.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface ServersSettings {
  readonly modeName: string;
  readonly nodeName: string;
  readonly healthz: HostPort | undefined;
  readonly metrics: HostPort | undefined;
  readonly bindAddressHardFail: boolean;
  readonly configz: () => unknown;
  readonly onFatal: (message: string) => void;
  /** enableProfiling: /debug/pprof/* and /debug/flags/v on the metrics server. */
  readonly profiling?: boolean;
  /** /flagz and /statusz. */
  readonly zpages?: ZPagesSource;
  /** Peers besides loopback the debug routes and the web page answer (--debug-handlers-allowed-cidrs). */
  readonly debugAllowedCIDRs?: readonly string[];
}

/** Every path the metrics server answers (for /statusz and docs/compatibility.md). */
export const METRICS_SERVER_PATHS = [
  '/configz',
  '/flagz',
  '/healthz',
  '/healthz/ping',
  '/metrics',
  '/metrics/slis',
  '/proxyMode',
  '/statusz',
] as const;

/** Our own debug paths on the metrics server (loopback peers only). */
export const DEBUG_PATHS = [
  '/debug/proxy',
  '/debug/proxy/explain',
  '/debug/proxy/state',
  '/debug/proxy/verify',
] as const;

/** /debug/proxy: per family, the last sync's figures and a summary of what it applied. */
export function debugView(modeName: string, nodeName: string, syncs: readonly FamilySync[]): unknown {
  return {
    mode: modeName,
    node: nodeName,
    families: syncs.map((sync) => {
      const last = sync.latestResult;
      const applied = sync.lastApplied;
      let endpoints = 0;
      const services = new Set<string>();
      for (const state of applied.servicePorts.values()) {
        endpoints += state.endpoints.length;
        services.add(state.servicePort.id.service);
      }
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
        lastApplied: {
          services: services.size,
          servicePorts: applied.servicePorts.size,
          endpoints,
        },
      };
    }),
  };
}

export function startServers(
  settings: ServersSettings,
  parts: {
    readonly health: ProxyHealth;
    readonly metrics: ProxyMetrics;
    readonly recorder: EventRecorder;
    readonly syncs: readonly FamilySync[];
    /** The live state behind /debug/proxy/explain and /debug/proxy/state. */
    readonly explain?: LiveState;
    /** Runs a verify (/debug/proxy/verify); `resync`: ask for a full sync on drift. */
    readonly verify?: (resync: boolean) => Promise<VerifyReport>;
    /** Objects the model skipped, as formatProblem prints them (the web page's problem list). */
    readonly problems?: () => readonly string[];
  },
): RunningServer[] {
  const { health, metrics, recorder, syncs } = parts;
  // The web page's live updates: every sync attempt and every verify, as they happen.
  const hub = new EventHub();
  const unsubscribe = syncs.map((sync) => sync.onSync((record) => hub.publish('sync', syncView(record))));
  let lastVerify: VerifyReport | undefined;
  const runVerify = parts.verify;
  const verify =
    runVerify &&
    (async (resync: boolean): Promise<VerifyReport> => {
      const report = await runVerify(resync);
      lastVerify = report;
      hub.publish('verify', report);
      return report;
    });
  const explain = parts.explain;
  const routes: Record<string, DebugRoute> = {
    ...(explain ? explainRoutes(explain) : {}),
    ...(explain
      ? uiRoutes({
          state: explain.state,
          syncs,
          problems: parts.problems ?? (() => []),
          lastVerify: () => lastVerify,
        })
      : {}),
    ...(verify
      ? {
          '/debug/proxy/verify': async (params) => ({
            status: 200,
            body: await verify(params.get('resync') !== 'false'),
          }),
        }
      : {}),
  };
  const pages = { ...pageRoutes(loadAssets()), '/debug/proxy/events': hub.route };
  const servers: RunningServer[] = [];
  const fatalBind = (what: string, reason: string) => (error: Error) => {
    void recorder.nodeEvent('Warning', reason, 'StartKubeProxy', `Failed to start ${what}: ${error.message}`);
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
          mode: settings.modeName,
          configz: settings.configz,
          slis: new SliMetrics(),
          ...(settings.zpages ? { zpages: zpagesRoutes(settings.zpages) } : {}),
          profiling: settings.profiling === true,
          debug: () => debugView(settings.modeName, settings.nodeName, syncs),
          routes: debugRoutesHandler(routes, pages, {
            ...(settings.debugAllowedCIDRs ? { allowedCIDRs: settings.debugAllowedCIDRs } : {}),
          }),
        }),
        hardFail: settings.bindAddressHardFail,
        onFatal: fatalBind('metrics server', 'FailedToStartMetricServer'),
      }),
    );
  }
  // Stops the event stream with the servers (their close ends the connections).
  servers.push({
    listening: Promise.resolve(0),
    close: () => {
      for (const stop of unsubscribe) stop();
      hub.close();
      return Promise.resolve();
    },
  });
  return servers;
}
