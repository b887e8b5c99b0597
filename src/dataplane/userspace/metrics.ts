// The userspace data path's per-connection metrics, per service port and endpoint. Upstream's
// userspace mode had none; names follow Prometheus conventions under kubeproxy_userspace_.
// `service_port` is the printable service port (`namespace/name:port`), `endpoint` is `ip:port`.
import { Counter, Gauge } from 'prom-client';
import type { Registry } from '../../metrics/registry.ts';

export function registerDataPathMetrics(registry: Registry) {
  const registers = [registry];
  return {
    active: new Gauge({
      name: 'kubeproxy_userspace_active_connections',
      help: 'Open proxied TCP connections and UDP flows, per service port and endpoint',
      labelNames: ['service_port', 'protocol', 'endpoint'] as const,
      registers,
    }),
    connections: new Counter({
      name: 'kubeproxy_userspace_connections_total',
      help: 'Proxied TCP connections and UDP flows opened, per service port and endpoint',
      labelNames: ['service_port', 'protocol', 'endpoint'] as const,
      registers,
    }),
    connectFailures: new Counter({
      name: 'kubeproxy_userspace_connect_failures_total',
      help: 'Connects to an endpoint that failed (reason: refused, timeout, error); the next endpoint is tried',
      labelNames: ['service_port', 'endpoint', 'reason'] as const,
      registers,
    }),
    ejections: new Counter({
      name: 'kubeproxy_userspace_endpoint_ejections_total',
      help: 'Times an endpoint was skipped for a back-off period after a failed connect (passive health)',
      labelNames: ['service_port', 'endpoint'] as const,
      registers,
    }),
    bytes: new Counter({
      name: 'kubeproxy_userspace_bytes_total',
      help: 'Bytes forwarded (direction: to_endpoint, to_client), counted when a connection or flow ends',
      labelNames: ['service_port', 'protocol', 'endpoint', 'direction'] as const,
      registers,
    }),
    refused: new Counter({
      name: 'kubeproxy_userspace_refused_total',
      help: 'New connections or flows not forwarded (reason: no_endpoints, dropped, all_failed, flow_limit)',
      labelNames: ['service_port', 'protocol', 'reason'] as const,
      registers,
    }),
  };
}

export type DataPathMetrics = ReturnType<typeof registerDataPathMetrics>;
