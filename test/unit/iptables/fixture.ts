// Hand-built snapshots for the iptables tests. The endpoint selection here is a small version of
// spec 1.5 (no topology hints), enough to give the renderer consistent input; the model's own
// tests cover the real one.
import type {
  Endpoint,
  EndpointSelection,
  IPFamily,
  ProxySnapshot,
  Protocol,
  ServicePortState,
} from '../../../src/model/types.ts';
import { joinHostPort } from '../../../src/util/ip.ts';

export interface EndpointSpec {
  readonly ip: string;
  readonly port: number;
  readonly local?: boolean;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

export interface ServiceSpec {
  readonly namespace?: string;
  readonly name: string;
  readonly portName?: string;
  readonly protocol?: Protocol;
  readonly family?: IPFamily;
  readonly clusterIP: string;
  readonly port: number;
  readonly nodePort?: number;
  readonly externalIPs?: readonly string[];
  readonly loadBalancerVIPs?: readonly string[];
  readonly loadBalancerSourceRanges?: readonly string[];
  readonly healthCheckNodePort?: number;
  /** ClientIP affinity timeout; undefined = no affinity. */
  readonly affinitySeconds?: number | undefined;
  readonly externalPolicyLocal?: boolean;
  readonly internalPolicyLocal?: boolean;
  readonly endpoints?: readonly EndpointSpec[];
}

export const NODE_NAME = 'node-a';

function endpoint(spec: EndpointSpec): Endpoint {
  const ready = spec.ready ?? true;
  return {
    ip: spec.ip,
    port: spec.port,
    endpoint: joinHostPort(spec.ip, spec.port),
    ready,
    serving: spec.serving ?? ready,
    terminating: spec.terminating ?? false,
    nodeName: spec.local ? NODE_NAME : 'node-b',
    isLocal: spec.local ?? false,
    zoneHints: undefined,
    nodeHints: undefined,
  };
}

const byEndpoint = (a: Endpoint, b: Endpoint): number =>
  a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0;

function select(endpoints: readonly Endpoint[], usesCluster: boolean, usesLocal: boolean): EndpointSelection {
  const fallback = (list: readonly Endpoint[]): readonly Endpoint[] => {
    const ready = list.filter((e) => e.ready);
    return ready.length > 0 ? ready : list.filter((e) => e.serving && e.terminating);
  };
  const clusterEndpoints = usesCluster ? fallback(endpoints) : [];
  let hasAnyEndpoints = clusterEndpoints.length > 0;
  if (!usesLocal) {
    return { clusterEndpoints, localEndpoints: [], allReachable: clusterEndpoints, hasAnyEndpoints };
  }
  if (endpoints.some((e) => e.ready || (e.serving && e.terminating))) hasAnyEndpoints = true;
  const localReady = endpoints.filter((e) => e.isLocal && e.ready);
  const localEndpoints = fallback(endpoints.filter((e) => e.isLocal));
  let allReachable: readonly Endpoint[];
  if (!usesCluster) allReachable = localEndpoints;
  else if (localReady.length > 0 || localEndpoints.length === 0) allReachable = clusterEndpoints;
  else allReachable = [...new Set([...clusterEndpoints, ...localEndpoints])].sort(byEndpoint);
  return { clusterEndpoints, localEndpoints, allReachable, hasAnyEndpoints };
}

export function servicePortState(spec: ServiceSpec): ServicePortState {
  const namespace = spec.namespace ?? 'default';
  const portName = spec.portName ?? '';
  const protocol = spec.protocol ?? 'TCP';
  const service = `${namespace}/${spec.name}`;
  const printable = portName === '' ? service : `${service}:${portName}`;
  const nodePort = spec.nodePort ?? 0;
  const externalIPs = spec.externalIPs ?? [];
  const loadBalancerVIPs = spec.loadBalancerVIPs ?? [];
  const externallyAccessible = nodePort !== 0 || externalIPs.length > 0 || loadBalancerVIPs.length > 0;
  const internalPolicyLocal = spec.internalPolicyLocal ?? false;
  const externalPolicyLocal = spec.externalPolicyLocal ?? false;
  const endpoints = (spec.endpoints ?? []).map(endpoint).sort(byEndpoint);
  return {
    servicePort: {
      id: {
        namespace,
        name: spec.name,
        portName,
        protocol,
        key: `${service}:${portName}/${protocol}`,
        printable,
        service,
      },
      family: spec.family ?? (spec.clusterIP.includes(':') ? 'IPv6' : 'IPv4'),
      clusterIP: spec.clusterIP,
      port: spec.port,
      nodePort,
      externalIPs,
      loadBalancerVIPs,
      loadBalancerSourceRanges: spec.loadBalancerSourceRanges ?? [],
      healthCheckNodePort: spec.healthCheckNodePort ?? 0,
      sessionAffinity:
        spec.affinitySeconds === undefined
          ? { type: 'None' }
          : { type: 'ClientIP', timeoutSeconds: spec.affinitySeconds },
      externalPolicyLocal,
      internalPolicyLocal,
    },
    endpoints,
    selection: select(
      endpoints,
      !internalPolicyLocal || externallyAccessible,
      internalPolicyLocal || (externalPolicyLocal && externallyAccessible),
    ),
  };
}

export interface SnapshotSpec {
  readonly family?: IPFamily;
  readonly podCIDRs?: readonly string[];
  readonly nodeIPs?: readonly string[];
  /** Services (namespace/name) changed since the previous snapshot; default: all of them. */
  readonly changed?: readonly string[];
}

export function snapshot(states: readonly ServicePortState[], spec: SnapshotSpec = {}): ProxySnapshot {
  const family = spec.family ?? 'IPv4';
  const sorted = [...states].sort((a, b) =>
    a.servicePort.id.key < b.servicePort.id.key ? -1 : a.servicePort.id.key > b.servicePort.id.key ? 1 : 0,
  );
  return {
    family,
    node: {
      name: NODE_NAME,
      zone: '',
      labels: {},
      podCIDRs: spec.podCIDRs ?? [],
      nodeIPs: spec.nodeIPs ?? [family === 'IPv4' ? '192.168.0.10' : 'fd00:1::10'],
    },
    servicePorts: new Map(sorted.map((s) => [s.servicePort.id.key, s])),
    serviceCIDRs: [],
    changedServices: new Set(spec.changed ?? states.map((s) => s.servicePort.id.service)),
    udpEndpointsChanged: false,
    triggerTimes: new Map(),
    serviceChanges: 0,
    endpointChanges: 0,
  };
}

/**
 * `count` ClusterIP service ports with `endpoints` endpoints each, every fifth with a node port:
 * the shape of a large cluster for the chunking tests and bench/iptables-chunks.ts.
 */
export function manyServicePorts(count: number, endpoints: number): ServicePortState[] {
  return Array.from({ length: count }, (_, i) =>
    servicePortState({
      name: `svc${i}`,
      portName: 'http',
      clusterIP: `10.96.${Math.floor(i / 200)}.${(i % 200) + 1}`,
      port: 80,
      ...(i % 5 === 0 ? { nodePort: 30000 + (i % 2000) } : {}),
      endpoints: Array.from({ length: endpoints }, (_, n) => ({
        ip: `10.${100 + n}.${Math.floor(i / 200)}.${(i % 200) + 1}`,
        port: 8080,
      })),
    }),
  );
}
