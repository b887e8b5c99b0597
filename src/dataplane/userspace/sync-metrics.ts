// The userspace mode's sync-level metrics (the data path registers its per-connection ones,
// kubeproxy_userspace_*, itself). Upstream's userspace mode had none beyond the core ones; these
// follow the other modes' kubeproxy_sync_proxy_rules_<mode>_* pattern.
import { Counter, Gauge } from 'prom-client';
import { FAMILY_LABEL, type Registry } from '../../metrics/registry.ts';

export function registerUserspaceSyncMetrics(registry: Registry) {
  const registers = [registry];
  return {
    syncFailures: new Counter({
      name: 'kubeproxy_sync_proxy_rules_userspace_sync_failures_total',
      help: 'Cumulative proxy userspace sync failures (the capture rules could not be written)',
      labelNames: FAMILY_LABEL,
      registers,
    }),
    openFailures: new Counter({
      name: 'kubeproxy_sync_proxy_rules_userspace_listener_open_failures_total',
      help: 'Cumulative userspace listeners that could not be opened (their service port frontends are not proxied)',
      labelNames: FAMILY_LABEL,
      registers,
    }),
    listeners: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_userspace_listeners',
      help: 'Number of userspace listeners (one per service port and frontend kind) after the last sync',
      labelNames: FAMILY_LABEL,
      registers,
    }),
    rules: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_userspace_iptables_rules',
      help: 'Number of capture rules written by the userspace mode in the last sync',
      labelNames: ['table', 'ip_family'] as const,
      registers,
    }),
  };
}

export type UserspaceSyncMetrics = ReturnType<typeof registerUserspaceSyncMetrics>;
