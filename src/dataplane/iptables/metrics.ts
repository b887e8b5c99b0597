// The iptables mode's own metrics, registered only when this mode runs (as upstream does), with
// upstream's names, help texts and labels.
import { Counter, Gauge } from 'prom-client';
import { alpha } from '../../metrics/proxy.ts';
import { FAMILY_LABEL, type Registry } from '../../metrics/registry.ts';

export function registerIptablesMetrics(registry: Registry) {
  const registers = [registry];
  return {
    restoreFailures: new Counter({
      name: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
      help: alpha('Cumulative proxy iptables restore failures'),
      labelNames: FAMILY_LABEL,
      registers,
    }),
    partialRestoreFailures: new Counter({
      name: 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
      help: alpha('Cumulative proxy iptables partial restore failures'),
      labelNames: FAMILY_LABEL,
      registers,
    }),
    rulesTotal: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_iptables_total',
      help: alpha('Total number of iptables rules owned by kube-proxy'),
      labelNames: ['table', 'ip_family'] as const,
      registers,
    }),
    rulesLast: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_iptables_last',
      help: alpha('Number of iptables rules written by kube-proxy in last sync'),
      labelNames: ['table', 'ip_family'] as const,
      registers,
    }),
  };
}

export type IptablesMetrics = ReturnType<typeof registerIptablesMetrics>;
