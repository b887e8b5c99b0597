// The nftables mode's own metrics, registered only when this mode runs (as upstream does), with
// upstream's names, help texts and labels.
import { Counter } from 'prom-client';
import { alpha } from '../../metrics/proxy.ts';
import { FAMILY_LABEL, type Registry } from '../../metrics/registry.ts';

export function registerNftablesMetrics(registry: Registry) {
  const registers = [registry];
  return {
    syncFailures: new Counter({
      name: 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total',
      help: alpha('Cumulative proxy nftables sync failures'),
      labelNames: FAMILY_LABEL,
      registers,
    }),
    // Registered for dashboards that expect it; nothing increments it yet (we never clean up
    // stale objects in a separate transaction that could fail on its own).
    cleanupFailures: new Counter({
      name: 'kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total',
      help: alpha('Cumulative proxy nftables cleanup failures'),
      labelNames: FAMILY_LABEL,
      registers,
    }),
  };
}

export type NftablesMetrics = ReturnType<typeof registerNftablesMetrics>;
