// Benchmark workloads: a deterministic cluster state of N Services x M endpoints, shaped like a
// real cluster (mostly ClusterIP, some NodePort and LoadBalancer, a few with ClientIP affinity or
// Local traffic policies, 1-3 ports), plus the single-endpoint changes the latency figures make.
// Pure: the same options give the same objects, byte for byte.
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import { endpointSlice, service, type PortSpec } from '../test/support/objects.ts';

export interface ProbeTarget {
  /** Real pods (echo servers) the probe Service sends to. */
  readonly endpoints: readonly { readonly ip: string; readonly node: string }[];
  /** Port the echo servers listen on. */
  readonly targetPort: number;
}

export interface WorkloadOptions {
  readonly services: number;
  readonly endpointsPerService: number;
  readonly seed?: number;
  /** Share of Services with ClientIP affinity (default 0.03). */
  readonly affinity?: number;
  /** Ports of every Service; default mixed: 1 (70 %), 2 (20 %) or 3 (10 %). */
  readonly portsPerService?: number | undefined;
  /** Adds the probe Service, named so that it sorts (and its rules come) after every other one. */
  readonly probe?: ProbeTarget;
}

/** What a change touched and what the kernel must show afterwards. */
export interface EndpointChange {
  readonly slice: EndpointSlice;
  readonly namespace: string;
  readonly service: string;
  /** `namespace/name:portName` of the first port (the one a check looks at). */
  readonly printable: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
  readonly endpointsPerService: number;
  readonly added: { readonly ip: string; readonly port: number };
  readonly removed: { readonly ip: string; readonly port: number };
}

interface Port {
  readonly name: string;
  readonly port: number;
  readonly targetPort: number;
  readonly protocol: 'TCP' | 'UDP';
}

/** One generated Service and what a change to it needs. */
export interface WorkloadService {
  readonly name: string;
  readonly namespace: string;
  readonly clusterIP: string;
  readonly ports: readonly Port[];
  readonly endpoints: readonly { readonly ip: string; readonly node: string }[];
  /** Plain dispatch for its first port (no affinity, internal policy Cluster, TCP): changes go here. */
  readonly changeable: boolean;
}

export interface Workload {
  readonly options: WorkloadOptions;
  readonly services: readonly WorkloadService[];
  readonly objects: readonly (Service | EndpointSlice)[];
  /** Indices into `services` of the ones single-endpoint changes may touch. */
  readonly changeable: readonly number[];
  /** The probe Service, when asked for. */
  readonly probe: WorkloadService | undefined;
  readonly counts: Readonly<Record<string, number>>;
}

export const NAMESPACE = 'bench';
export const PROBE_NAMESPACE = 'zz-probe';
export const PROBE_SERVICE = 'zz-last';
export const PROBE_CLUSTER_IP = '10.96.255.250';
export const PROBE_PORT = 80;
const NODE_PORT_MIN = 30000;
const NODE_PORT_MAX = 32767;
/** Cluster IPs come from 10.96.0.0/16 after the first 16 addresses; the probe takes .255.250. */
export const MAX_SERVICES = 65_000;

/** mulberry32: tiny, fast, good enough for shaping a workload; never for anything secret. */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function ipv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
}

const CLUSTER_IP_BASE = (10 << 24) | (96 << 16);
/** Endpoints of the generated Services: 10.128.0.0/9 (nothing answers there; rules only). */
const ENDPOINT_BASE = (10 << 24) | (128 << 16);
/** Endpoints that changes bring in: 10.64.0.0/10, each change a new address. */
const CHANGE_BASE = (10 << 24) | (64 << 16);
/** LoadBalancer ingress IPs: 100.64.0.0/10. */
const LB_BASE = (100 << 24) | (64 << 16);

export function serviceName(index: number): string {
  return `svc-${String(index).padStart(6, '0')}`;
}

function endpointIP(index: number, perService: number, e: number): string {
  return ipv4(ENDPOINT_BASE + index * perService + e);
}

/** The address change number `n` (counted from 0) brings in. */
export function changeIP(n: number): string {
  return ipv4(CHANGE_BASE + n);
}

function sliceFor(
  svc: WorkloadService,
  endpoints: readonly { readonly ip: string; readonly node: string }[],
): EndpointSlice {
  return endpointSlice({
    service: svc.name,
    namespace: svc.namespace,
    ports: svc.ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.protocol })),
    endpoints: endpoints.map((ep) => ({ ip: ep.ip, node: ep.node })),
  });
}

export function generateWorkload(options: WorkloadOptions): Workload {
  const { services: n, endpointsPerService: m } = options;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SERVICES)
    throw new Error(`workload: services must be an integer in [1, ${MAX_SERVICES}], got ${n}`);
  if (!Number.isInteger(m) || m < 1 || m > 1000)
    throw new Error(`workload: endpointsPerService must be an integer in [1, 1000], got ${m}`);
  const random = rng(options.seed ?? 1);
  let nextNodePort = NODE_PORT_MIN;
  const takeNodePorts = (count: number): number[] | undefined => {
    if (nextNodePort + count - 1 > NODE_PORT_MAX) return undefined;
    const ports = Array.from({ length: count }, (_, i) => nextNodePort + i);
    nextNodePort += count;
    return ports;
  };
  const counts: Record<string, number> = {
    ClusterIP: 0,
    NodePort: 0,
    LoadBalancer: 0,
    affinity: 0,
    externalLocal: 0,
    internalLocal: 0,
    sourceRanges: 0,
    ports: 0,
    endpoints: 0,
  };
  const services: WorkloadService[] = [];
  const objects: (Service | EndpointSlice)[] = [];
  const changeable: number[] = [];
  let lbCount = 0;

  for (let i = 0; i < n; i++) {
    const name = serviceName(i);
    const clusterIP = ipv4(CLUSTER_IP_BASE + 16 + i);
    const r = random();
    const portCount = options.portsPerService ?? (r < 0.7 ? 1 : r < 0.9 ? 2 : 3);
    const ports: Port[] = [];
    for (let p = 0; p < portCount; p++) {
      // The second port of some Services is UDP (DNS-like); the first is always TCP.
      const udp = p === 1 && random() < 0.3;
      ports.push({
        name: `p${p}`,
        port: [80, 443, 9090][p] ?? 80,
        targetPort: 8080 + p,
        protocol: udp ? 'UDP' : 'TCP',
      });
    }
    const kind = random();
    let type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' =
      kind < 0.05 ? 'LoadBalancer' : kind < 0.15 ? 'NodePort' : 'ClusterIP';
    const externalLocal = type !== 'ClusterIP' && random() < 0.3;
    // Node ports are a scarce range (2768): once it is used up, the rest are ClusterIP.
    let nodePorts: number[] | undefined;
    let healthCheckNodePort: number | undefined;
    if (type !== 'ClusterIP') {
      nodePorts = takeNodePorts(portCount + (type === 'LoadBalancer' && externalLocal ? 1 : 0));
      if (!nodePorts) type = 'ClusterIP';
      else if (type === 'LoadBalancer' && externalLocal) healthCheckNodePort = nodePorts[portCount];
    }
    const affinity = random() < (options.affinity ?? 0.03);
    const internalLocal = random() < 0.02;
    const sourceRanges = type === 'LoadBalancer' && random() < 0.2;
    const endpoints = Array.from({ length: m }, (_, e) => ({
      ip: endpointIP(i, m, e),
      node: e % 2 === 0 ? 'node1' : 'node2',
    }));
    const portSpecs: PortSpec[] = ports.map((p, k) => ({
      name: p.name,
      port: p.port,
      targetPort: p.targetPort,
      protocol: p.protocol,
      ...(nodePorts && type !== 'ClusterIP' ? { nodePort: nodePorts[k] ?? 0 } : {}),
    }));
    objects.push(
      service({
        name,
        namespace: NAMESPACE,
        type,
        clusterIPs: [clusterIP],
        ports: portSpecs,
        ...(type !== 'ClusterIP' ? { externalTrafficPolicy: externalLocal ? 'Local' : 'Cluster' } : {}),
        internalTrafficPolicy: internalLocal ? 'Local' : 'Cluster',
        ...(type === 'LoadBalancer' ? { loadBalancerIPs: [ipv4(LB_BASE + lbCount++)] } : {}),
        ...(sourceRanges ? { loadBalancerSourceRanges: ['192.0.2.0/24'] } : {}),
        ...(healthCheckNodePort !== undefined ? { healthCheckNodePort } : {}),
        ...(affinity ? { sessionAffinityTimeoutSeconds: 10800 } : {}),
      }),
    );
    const svc: WorkloadService = {
      name,
      namespace: NAMESPACE,
      clusterIP,
      ports,
      endpoints,
      changeable: !affinity && !internalLocal,
    };
    services.push(svc);
    objects.push(sliceFor(svc, endpoints));
    if (svc.changeable) changeable.push(i);
    counts[type] = (counts[type] ?? 0) + 1;
    if (affinity) counts['affinity'] = (counts['affinity'] ?? 0) + 1;
    if (externalLocal && type !== 'ClusterIP') counts['externalLocal'] = (counts['externalLocal'] ?? 0) + 1;
    if (internalLocal) counts['internalLocal'] = (counts['internalLocal'] ?? 0) + 1;
    if (sourceRanges) counts['sourceRanges'] = (counts['sourceRanges'] ?? 0) + 1;
    counts['ports'] = (counts['ports'] ?? 0) + portCount;
    counts['endpoints'] = (counts['endpoints'] ?? 0) + m * portCount;
  }

  let probe: WorkloadService | undefined;
  if (options.probe) {
    probe = {
      name: PROBE_SERVICE,
      namespace: PROBE_NAMESPACE,
      clusterIP: PROBE_CLUSTER_IP,
      ports: [{ name: '', port: PROBE_PORT, targetPort: options.probe.targetPort, protocol: 'TCP' }],
      endpoints: options.probe.endpoints,
      changeable: false,
    };
    objects.push(
      service({
        name: probe.name,
        namespace: probe.namespace,
        clusterIPs: [probe.clusterIP],
        ports: [{ port: PROBE_PORT, targetPort: options.probe.targetPort }],
      }),
      sliceFor(probe, probe.endpoints),
    );
  }
  return { options, services, objects, changeable, probe, counts };
}

/**
 * Change number `n` (from 0): the Service it picks (spread over the changeable ones with a
 * stride, so consecutive changes hit different Services) gets one endpoint replaced by a new
 * address. `current` holds each Service's endpoints as changed so far and is updated.
 */
export function endpointChange(
  workload: Workload,
  n: number,
  current: Map<number, { ip: string; node: string }[]>,
): EndpointChange {
  const pool = workload.changeable;
  if (pool.length === 0) throw new Error('workload: no Service can take endpoint changes');
  // A stride coprime with the pool size visits every Service before repeating one.
  let stride = 7919 % pool.length || 1;
  while (gcd(stride, pool.length) !== 1) stride++;
  const index = pool[(n * stride) % pool.length] ?? 0;
  const svc = workload.services[index];
  if (!svc) throw new Error(`workload: no Service #${index}`);
  const endpoints = current.get(index) ?? svc.endpoints.map((ep) => ({ ...ep }));
  const slot = n % endpoints.length;
  const old = endpoints[slot];
  if (!old) throw new Error(`workload: Service ${svc.name} has no endpoint slot ${slot}`);
  const first = svc.ports[0];
  if (!first) throw new Error(`workload: Service ${svc.name} has no ports`);
  const fresh = { ip: changeIP(n), node: old.node };
  endpoints[slot] = fresh;
  current.set(index, endpoints);
  return {
    slice: sliceFor(svc, endpoints),
    namespace: svc.namespace,
    service: svc.name,
    printable: `${svc.namespace}/${svc.name}${first.name ? `:${first.name}` : ''}`,
    clusterIP: svc.clusterIP,
    port: first.port,
    protocol: first.protocol,
    endpointsPerService: endpoints.length,
    added: { ip: fresh.ip, port: first.targetPort },
    removed: { ip: old.ip, port: first.targetPort },
  };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The objects as one JSON `List` for `apiserver-main --objects` (fast preload). */
export function manifestJSON(objects: readonly object[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
}
