// The IPVS mode's own metric: upstream counts failed iptables-restore runs in IPVS mode under the
// iptables mode's name (issue 11); the usual sync metrics are the sync loop's.
import { Counter } from 'prom-client';
import { alpha } from '../../metrics/proxy.ts';
import { FAMILY_LABEL, type Registry } from '../../metrics/registry.ts';

export function registerIpvsMetrics(registry: Registry) {
  return {
    restoreFailures: new Counter({
      name: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
      help: alpha('Cumulative proxy iptables restore failures'),
      labelNames: FAMILY_LABEL,
      registers: [registry],
    }),
  };
}

export type IpvsMetrics = ReturnType<typeof registerIpvsMetrics>;
