// What the API server and the cloud fill in on a Service the user applies: a cluster IP from the
// service range, node ports (30000-32767), a health-check node port for a LoadBalancer with
// externalTrafficPolicy Local, and a load-balancer ingress IP from 203.0.113.0/24 (the topology
// routes that range to node1, as a cloud load balancer would). Values the user gave, or that the
// Service already had, are kept. Pure: the caller passes what is in use.
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import { isRecord } from '../model/validate.ts';
import { ManifestError } from './workloads.ts';

export interface InUse {
  readonly clusterIPs: ReadonlySet<string>;
  readonly nodePorts: ReadonlySet<number>;
  readonly ingressIPs: ReadonlySet<string>;
}

function firstFree<T>(candidates: Iterable<T>, used: ReadonlySet<T>, what: string): T {
  for (const candidate of candidates) if (!used.has(candidate)) return candidate;
  throw new ManifestError(`no ${what} left`);
}

function* range(from: number, to: number): Generator<number> {
  for (let i = from; i <= to; i++) yield i;
}

function* serviceIPs(): Generator<string> {
  // 10.96.0.1 is the kubernetes Service's by convention; lessons use 10.96.0.10 and up.
  for (const i of range(10, 250)) yield `10.96.0.${i}`;
  for (const j of range(1, 255)) for (const i of range(1, 254)) yield `10.96.${j}.${i}`;
}

/**
 * The Service with its allocations filled in; `previous` is the stored one, when updating, and
 * `inUse` what the other Services hold.
 */
export function allocate(service: Service, previous: Service | undefined, inUse: InUse): Service {
  const spec = { ...(service.spec ?? {}) };
  const type = spec.type ?? 'ClusterIP';
  const name = service.metadata?.name ?? '';
  if (type === 'ExternalName') return { ...service, spec };
  const usedIPs = new Set(inUse.clusterIPs);
  const usedPorts = new Set(inUse.nodePorts);
  const clusterIP = spec.clusterIP ?? previous?.spec?.clusterIP;
  if (clusterIP === undefined || clusterIP === '') {
    const ip = firstFree(serviceIPs(), usedIPs, 'service IP');
    spec.clusterIP = ip;
    spec.clusterIPs = [ip];
  } else {
    if (clusterIP !== 'None' && usedIPs.has(clusterIP)) {
      throw new ManifestError(`Service ${name}: spec.clusterIP ${clusterIP} is already allocated`);
    }
    spec.clusterIP = clusterIP;
    spec.clusterIPs = [clusterIP];
  }
  if (spec.clusterIP !== 'None') {
    spec.ipFamilies = ['IPv4'];
    spec.ipFamilyPolicy = 'SingleStack';
  }
  const wantsNodePorts = type === 'NodePort' || type === 'LoadBalancer';
  const ports = (spec.ports ?? []).map((port, i) => {
    if (!isRecord(port)) throw new ManifestError(`Service ${name}: spec.ports[${i}] must be a mapping`);
    if (!wantsNodePorts) {
      const { nodePort: _dropped, ...rest } = port;
      return rest;
    }
    const mine = port.nodePort;
    const before = previous?.spec?.ports?.find(
      (p) => p.port === port.port && (p.protocol ?? 'TCP') === (port.protocol ?? 'TCP'),
    )?.nodePort;
    if (mine !== undefined && usedPorts.has(mine)) {
      throw new ManifestError(`Service ${name}: spec.ports[${i}].nodePort ${mine} is already allocated`);
    }
    const nodePort = mine ?? before ?? firstFree(range(30000, 32767), usedPorts, 'node port');
    usedPorts.add(nodePort);
    return { ...port, nodePort };
  });
  spec.ports = ports;
  const local = spec.externalTrafficPolicy === 'Local';
  if (type === 'LoadBalancer' && local) {
    spec.healthCheckNodePort =
      spec.healthCheckNodePort ??
      previous?.spec?.healthCheckNodePort ??
      firstFree(range(30000, 32767), usedPorts, 'node port');
  } else delete spec.healthCheckNodePort;
  let status = service.status;
  if (type === 'LoadBalancer') {
    const had = previous?.status?.loadBalancer?.ingress?.[0]?.ip;
    const ip = had ?? firstFreeIngress(inUse.ingressIPs);
    status = { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } };
  } else if (status !== undefined) status = {};
  return { ...service, spec, ...(status !== undefined ? { status } : {}) };
}

function firstFreeIngress(used: ReadonlySet<string>): string {
  return firstFree(
    (function* () {
      for (const i of range(10, 250)) yield `203.0.113.${i}`;
    })(),
    used,
    'load-balancer IP',
  );
}

/** What a set of stored Services holds, for allocate(). */
export function inUseBy(services: readonly Service[]): InUse {
  const clusterIPs = new Set<string>(['10.96.0.1']);
  const nodePorts = new Set<number>();
  const ingressIPs = new Set<string>();
  for (const svc of services) {
    for (const ip of svc.spec?.clusterIPs ?? [svc.spec?.clusterIP ?? '']) if (ip !== '') clusterIPs.add(ip);
    for (const port of svc.spec?.ports ?? []) if (port.nodePort !== undefined) nodePorts.add(port.nodePort);
    if (svc.spec?.healthCheckNodePort !== undefined) nodePorts.add(svc.spec.healthCheckNodePort);
    for (const ingress of svc.status?.loadBalancer?.ingress ?? []) if (ingress.ip) ingressIPs.add(ingress.ip);
  }
  return { clusterIPs, nodePorts, ingressIPs };
}
