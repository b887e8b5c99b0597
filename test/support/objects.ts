// Builders for the API objects the end-to-end tests, benchmarks and demo create: terse to write,
// shaped exactly as the API server would store them.
import type { Service, ServicePort } from 'kubernetes-types/core/v1.d.ts';
import { nodeObject } from '../../src/playground/objects.ts';
import type { Endpoint, EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';

export interface PortSpec {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number;
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP';
  readonly nodePort?: number;
}

export interface ServiceSpec {
  readonly name: string;
  readonly namespace?: string;
  readonly type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  readonly clusterIPs: readonly string[];
  readonly ports: readonly PortSpec[];
  readonly externalTrafficPolicy?: 'Cluster' | 'Local';
  readonly internalTrafficPolicy?: 'Cluster' | 'Local';
  readonly loadBalancerIPs?: readonly string[];
  readonly loadBalancerSourceRanges?: readonly string[];
  readonly externalIPs?: readonly string[];
  readonly healthCheckNodePort?: number;
  readonly sessionAffinityTimeoutSeconds?: number;
  readonly labels?: Readonly<Record<string, string>>;
}

export function service(spec: ServiceSpec): Service {
  const families = spec.clusterIPs.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4'));
  const ports: ServicePort[] = spec.ports.map((p) => ({
    name: p.name ?? '',
    port: p.port,
    protocol: p.protocol ?? 'TCP',
    targetPort: p.targetPort ?? p.port,
    ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
  }));
  const type = spec.type ?? 'ClusterIP';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: spec.name, namespace: spec.namespace ?? 'default', labels: { ...spec.labels } },
    spec: {
      type,
      clusterIP: spec.clusterIPs[0] ?? '',
      clusterIPs: [...spec.clusterIPs],
      ipFamilies: families,
      ipFamilyPolicy: families.length > 1 ? 'PreferDualStack' : 'SingleStack',
      ports,
      ...(type !== 'ClusterIP' ? { externalTrafficPolicy: spec.externalTrafficPolicy ?? 'Cluster' } : {}),
      internalTrafficPolicy: spec.internalTrafficPolicy ?? 'Cluster',
      ...(spec.loadBalancerSourceRanges
        ? { loadBalancerSourceRanges: [...spec.loadBalancerSourceRanges] }
        : {}),
      ...(spec.externalIPs ? { externalIPs: [...spec.externalIPs] } : {}),
      ...(spec.healthCheckNodePort !== undefined ? { healthCheckNodePort: spec.healthCheckNodePort } : {}),
      ...(spec.sessionAffinityTimeoutSeconds !== undefined
        ? {
            sessionAffinity: 'ClientIP',
            sessionAffinityConfig: { clientIP: { timeoutSeconds: spec.sessionAffinityTimeoutSeconds } },
          }
        : { sessionAffinity: 'None' }),
    },
    status: {
      loadBalancer: { ingress: (spec.loadBalancerIPs ?? []).map((ip) => ({ ip })) },
    },
  };
}

export interface EndpointSpec {
  readonly ip: string;
  readonly node: string;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
  readonly zones?: readonly string[];
  readonly pod?: string;
}

export interface SliceSpec {
  readonly service: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly family?: 'IPv4' | 'IPv6';
  readonly ports: readonly {
    readonly name?: string;
    readonly port: number;
    readonly protocol?: 'TCP' | 'UDP';
  }[];
  readonly endpoints: readonly EndpointSpec[];
  readonly triggerTime?: Date;
}

export function endpointSlice(spec: SliceSpec): EndpointSlice {
  const family = spec.family ?? 'IPv4';
  const endpoints: Endpoint[] = spec.endpoints.map((ep) => ({
    addresses: [ep.ip],
    conditions: {
      ready: ep.ready ?? true,
      serving: ep.serving ?? true,
      terminating: ep.terminating ?? false,
    },
    nodeName: ep.node,
    ...(ep.zones ? { hints: { forZones: ep.zones.map((name) => ({ name })) } } : {}),
    ...(ep.pod ? { targetRef: { kind: 'Pod', name: ep.pod, namespace: spec.namespace ?? 'default' } } : {}),
  }));
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: spec.name ?? `${spec.service}-${family === 'IPv4' ? 'v4' : 'v6'}`,
      namespace: spec.namespace ?? 'default',
      labels: {
        'kubernetes.io/service-name': spec.service,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
      ...(spec.triggerTime
        ? {
            annotations: {
              'endpoints.kubernetes.io/last-change-trigger-time': spec.triggerTime.toISOString(),
            },
          }
        : {}),
    },
    addressType: family,
    ports: spec.ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP' })),
    endpoints,
  };
}

/** A Node object (the playground's builder, which the namespace cluster registers too). */
export const node = nodeObject;
