// The core kubeproxy_* metrics, the ones every mode reports, with upstream's names, types, labels
// and buckets (upstream-behavior.md 6.4). Mode-specific metrics (iptables restore failures and rule
// gauges, nftables sync failures) are registered by their mode folder only when that mode runs,
// as upstream does.
import { Counter, Gauge, Histogram, exponentialBuckets } from 'prom-client';
import { FAMILY_LABEL as FAMILY, createRegistry, type Registry } from './registry.ts';

function networkProgrammingBuckets(): number[] {
  const buckets = [0.25, 0.5];
  for (let s = 1; s <= 59; s++) buckets.push(s);
  for (let s = 60; s <= 115; s += 5) buckets.push(s);
  for (let s = 120; s <= 300; s += 30) buckets.push(s);
  return buckets;
}

/** The core metrics on `registry`, or on a new registry (with Node's default metrics unless told not to). */
export function createProxyMetrics(options: { defaultMetrics?: boolean; registry?: Registry } = {}) {
  const registry = options.registry ?? createRegistry(options);
  const registers = [registry];
  const syncBuckets = exponentialBuckets(0.001, 2, 15);

  const metrics = {
    registry,
    syncProxyRulesDuration: new Histogram({
      name: 'kubeproxy_sync_proxy_rules_duration_seconds',
      help: 'SyncProxyRules latency in seconds',
      labelNames: FAMILY,
      buckets: syncBuckets,
      registers,
    }),
    syncFullProxyRulesDuration: new Histogram({
      name: 'kubeproxy_sync_full_proxy_rules_duration_seconds',
      help: 'SyncProxyRules latency in seconds for full resyncs',
      labelNames: FAMILY,
      buckets: syncBuckets,
      registers,
    }),
    syncPartialProxyRulesDuration: new Histogram({
      name: 'kubeproxy_sync_partial_proxy_rules_duration_seconds',
      help: 'SyncProxyRules latency in seconds for partial resyncs',
      labelNames: FAMILY,
      buckets: syncBuckets,
      registers,
    }),
    networkProgrammingDuration: new Histogram({
      name: 'kubeproxy_network_programming_duration_seconds',
      help: 'In Cluster Network Programming Latency in seconds',
      labelNames: FAMILY,
      buckets: networkProgrammingBuckets(),
      registers,
    }),
    syncProxyRulesLastTimestamp: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
      help: 'The last time proxy rules were successfully synced',
      labelNames: FAMILY,
      registers,
    }),
    syncProxyRulesLastQueuedTimestamp: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
      help: 'The last time a sync of proxy rules was queued',
      labelNames: FAMILY,
      registers,
    }),
    endpointChangesPending: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
      help: 'Pending proxy rules Endpoint changes',
      labelNames: FAMILY,
      registers,
    }),
    serviceChangesPending: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_service_changes_pending',
      help: 'Pending proxy rules Service changes',
      registers,
    }),
    endpointChangesTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total',
      help: 'Cumulative proxy rules Endpoint changes',
      registers,
    }),
    serviceChangesTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_service_changes_total',
      help: 'Cumulative proxy rules Service changes',
      registers,
    }),
    noLocalEndpointsTotal: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      help: 'Number of services with a Local traffic policy and no endpoints',
      labelNames: ['traffic_policy', 'ip_family'] as const,
      registers,
    }),
    proxyHealthzTotal: new Counter({
      name: 'kubeproxy_proxy_healthz_total',
      help: 'Cumulative proxy healthz HTTP status',
      labelNames: ['code'] as const,
      registers,
    }),
    proxyLivezTotal: new Counter({
      name: 'kubeproxy_proxy_livez_total',
      help: 'Cumulative proxy livez HTTP status',
      labelNames: ['code'] as const,
      registers,
    }),
    conntrackReconcilerSyncDuration: new Histogram({
      name: 'kubeproxy_conntrack_reconciler_sync_duration_seconds',
      help: 'ReconcileConntrackFlowsLatency latency in seconds',
      labelNames: FAMILY,
      buckets: exponentialBuckets(0.001, 2, 15),
      registers,
    }),
    conntrackReconcilerDeletedEntries: new Counter({
      name: 'kubeproxy_conntrack_reconciler_deleted_entries_total',
      help: 'Cumulative conntrack flows deleted by conntrack reconciler',
      labelNames: FAMILY,
      registers,
    }),
  };

  return metrics;
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
