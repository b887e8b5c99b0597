// Builders for API objects used by the model tests. Objects are plain JSON as the API server
// sends them; `raw` casts let tests feed deliberately malformed ones.
import type { Node, Service, ServicePort as ApiServicePort } from 'kubernetes-types/core/v1.d.ts';
import type { Endpoint as ApiEndpoint, EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import type { ProxySnapshot } from '../../../src/model/types.ts';

export function rawService(value: unknown): Service {
  return value as Service;
}

export function rawSlice(value: unknown): EndpointSlice {
  return value as EndpointSlice;
}

export interface ServiceOptions {
  namespace?: string;
  name?: string;
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ipFamilies?: string[];
  ports?: ApiServicePort[];
  externalIPs?: string[];
  loadBalancerSourceRanges?: string[];
  externalTrafficPolicy?: string;
  internalTrafficPolicy?: string;
  healthCheckNodePort?: number;
  sessionAffinity?: string;
  timeoutSeconds?: number;
  ingress?: { ip?: string; hostname?: string; ipMode?: string }[];
}

export function service(options: ServiceOptions = {}): Service {
  const clusterIP = options.clusterIP ?? '10.96.0.10';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: options.namespace ?? 'default', name: options.name ?? 'web' },
    spec: {
      type: options.type ?? 'ClusterIP',
      clusterIP,
      ...(options.clusterIPs ? { clusterIPs: options.clusterIPs } : {}),
      ...(options.ipFamilies ? { ipFamilies: options.ipFamilies } : {}),
      ports: options.ports ?? [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }],
      ...(options.externalIPs ? { externalIPs: options.externalIPs } : {}),
      ...(options.loadBalancerSourceRanges
        ? { loadBalancerSourceRanges: options.loadBalancerSourceRanges }
        : {}),
      ...(options.externalTrafficPolicy ? { externalTrafficPolicy: options.externalTrafficPolicy } : {}),
      ...(options.internalTrafficPolicy ? { internalTrafficPolicy: options.internalTrafficPolicy } : {}),
      ...(options.healthCheckNodePort !== undefined
        ? { healthCheckNodePort: options.healthCheckNodePort }
        : {}),
      ...(options.sessionAffinity ? { sessionAffinity: options.sessionAffinity } : {}),
      ...(options.timeoutSeconds !== undefined
        ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: options.timeoutSeconds } } }
        : {}),
    },
    ...(options.ingress ? { status: { loadBalancer: { ingress: options.ingress } } } : {}),
  };
}

export interface EndpointOptions {
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  nodeName?: string;
  zones?: string[];
  nodes?: string[];
}

export function ep(address: string, options: EndpointOptions = {}): ApiEndpoint {
  const conditions: Record<string, boolean> = {};
  if (options.ready !== undefined) conditions['ready'] = options.ready;
  if (options.serving !== undefined) conditions['serving'] = options.serving;
  if (options.terminating !== undefined) conditions['terminating'] = options.terminating;
  const hints: Record<string, { name: string }[]> = {};
  if (options.zones) hints['forZones'] = options.zones.map((name) => ({ name }));
  if (options.nodes) hints['forNodes'] = options.nodes.map((name) => ({ name }));
  return {
    addresses: [address],
    conditions,
    ...(options.nodeName !== undefined ? { nodeName: options.nodeName } : {}),
    ...(options.zones || options.nodes ? { hints } : {}),
  };
}

export interface SliceOptions {
  namespace?: string;
  name?: string;
  service?: string | null;
  addressType?: string;
  ports?: { name?: string | null; port?: number | null; protocol?: string }[];
  endpoints?: ApiEndpoint[];
  triggerTime?: string;
}

export function slice(options: SliceOptions = {}): EndpointSlice {
  const labels: Record<string, string> = {};
  if (options.service !== null) labels['kubernetes.io/service-name'] = options.service ?? 'web';
  return rawSlice({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace: options.namespace ?? 'default',
      name: options.name ?? 'web-abc',
      labels,
      ...(options.triggerTime
        ? { annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': options.triggerTime } }
        : {}),
    },
    addressType: options.addressType ?? 'IPv4',
    ports: options.ports ?? [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: options.endpoints ?? [ep('10.244.1.5')],
  });
}

export function node(
  name: string,
  options: { zone?: string; podCIDRs?: string[]; addresses?: { type: string; address: string }[] } = {},
): Node {
  return {
    metadata: {
      name,
      labels: options.zone !== undefined ? { 'topology.kubernetes.io/zone': options.zone } : {},
    },
    spec: options.podCIDRs ? { podCIDRs: options.podCIDRs } : {},
    status: { addresses: options.addresses ?? [] },
  };
}

/**
 * A copy of a snapshot whose service port map stays as it was: the model changes its map in
 * place at the next snapshot() (ProxySnapshot.servicePorts), so tests comparing two snapshots
 * keep the earlier one this way.
 */
export function frozen(snapshot: ProxySnapshot): ProxySnapshot {
  return { ...snapshot, servicePorts: new Map(snapshot.servicePorts) };
}
