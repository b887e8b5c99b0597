// The core kubeproxy_* metrics, the ones every mode reports, with upstream's names, types, labels
// and buckets (upstream-behavior.md 6.4). Mode-specific metrics (iptables restore failures and rule
// gauges, nftables sync failures) are registered by their mode folder only when that mode runs,
// as upstream does.
import { Counter, Gauge, Histogram, exponentialBuckets } from 'prom-client';
import { helpOf } from './component.ts';
import { FAMILY_LABEL as FAMILY, createRegistry, type Registry } from './registry.ts';

/** Every kubeproxy_* metric is ALPHA upstream; component-base puts that in front of the HELP text. */
export const alpha = (help: string): string => helpOf('ALPHA', help);

/**
 * Upstream merges its linear ranges onto a slice that starts with one 0, so the histogram has an
 * `le="0"` bucket; dashboards that read the exposition as is see it.
 */
function networkProgrammingBuckets(): number[] {
  const buckets = [0, 0.25, 0.5];
  for (let s = 1; s <= 59; s++) buckets.push(s);
  for (let s = 60; s <= 115; s += 5) buckets.push(s);
  for (let s = 120; s <= 300; s += 30) buckets.push(s);
  return buckets;
}

/** The modes whose proxiers do partial syncs and where upstream registers the full/partial histograms. */
const FULL_PARTIAL_MODES: ReadonlySet<string> = new Set(['iptables', 'nftables']);

/**
 * The core metrics on `registry`, or on a new registry (with Node's default metrics unless told
 * not to). `mode`: the full/partial sync histograms exist only in the modes upstream registers
 * them for (every mode when not given, for tests that do not care).
 */
export function createProxyMetrics(
  options: { defaultMetrics?: boolean; registry?: Registry; mode?: string } = {},
) {
  const registry = options.registry ?? createRegistry(options);
  const registers = [registry];
  const syncBuckets = exponentialBuckets(0.001, 2, 15);
  const fullPartial = options.mode === undefined || FULL_PARTIAL_MODES.has(options.mode);

  const metrics = {
    registry,
    syncProxyRulesDuration: new Histogram({
      name: 'kubeproxy_sync_proxy_rules_duration_seconds',
      help: alpha('SyncProxyRules latency in seconds'),
      labelNames: FAMILY,
      buckets: syncBuckets,
      registers,
    }),
    syncFullProxyRulesDuration: fullPartial
      ? new Histogram({
          name: 'kubeproxy_sync_full_proxy_rules_duration_seconds',
          help: alpha('SyncProxyRules latency in seconds for full resyncs'),
          labelNames: FAMILY,
          buckets: syncBuckets,
          registers,
        })
      : undefined,
    syncPartialProxyRulesDuration: fullPartial
      ? new Histogram({
          name: 'kubeproxy_sync_partial_proxy_rules_duration_seconds',
          help: alpha('SyncProxyRules latency in seconds for partial resyncs'),
          labelNames: FAMILY,
          buckets: syncBuckets,
          registers,
        })
      : undefined,
    networkProgrammingDuration: new Histogram({
      name: 'kubeproxy_network_programming_duration_seconds',
      help: alpha('In Cluster Network Programming Latency in seconds'),
      labelNames: FAMILY,
      buckets: networkProgrammingBuckets(),
      registers,
    }),
    syncProxyRulesLastTimestamp: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
      help: alpha('The last time proxy rules were successfully synced'),
      labelNames: FAMILY,
      registers,
    }),
    syncProxyRulesLastQueuedTimestamp: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
      help: alpha('The last time a sync of proxy rules was queued'),
      labelNames: FAMILY,
      registers,
    }),
    // One gauge for every family, without ip_family, as upstream's.
    endpointChangesPending: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
      help: alpha('Pending proxy rules Endpoint changes'),
      registers,
    }),
    serviceChangesPending: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_service_changes_pending',
      help: alpha('Pending proxy rules Service changes'),
      registers,
    }),
    endpointChangesTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total',
      help: alpha('Cumulative proxy rules Endpoint changes'),
      registers,
    }),
    serviceChangesTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_service_changes_total',
      help: alpha('Cumulative proxy rules Service changes'),
      registers,
    }),
    noLocalEndpointsTotal: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      help: alpha('Number of services with a Local traffic policy and no endpoints'),
      labelNames: ['traffic_policy', 'ip_family'] as const,
      registers,
    }),
    proxyHealthzTotal: new Counter({
      name: 'kubeproxy_proxy_healthz_total',
      help: alpha('Cumulative proxy healthz HTTP status'),
      labelNames: ['code'] as const,
      registers,
    }),
    proxyLivezTotal: new Counter({
      name: 'kubeproxy_proxy_livez_total',
      help: alpha('Cumulative proxy livez HTTP status'),
      labelNames: ['code'] as const,
      registers,
    }),
    conntrackReconcilerSyncDuration: new Histogram({
      name: 'kubeproxy_conntrack_reconciler_sync_duration_seconds',
      help: alpha('ReconcileConntrackFlowsLatency latency in seconds'),
      labelNames: FAMILY,
      buckets: exponentialBuckets(0.001, 2, 15),
      registers,
    }),
    conntrackReconcilerDeletedEntries: new Counter({
      name: 'kubeproxy_conntrack_reconciler_deleted_entries_total',
      help: alpha('Cumulative conntrack flows deleted by conntrack reconciler'),
      labelNames: FAMILY,
      registers,
    }),
  };

  return metrics;
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
