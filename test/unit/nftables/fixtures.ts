// Hand-built snapshots for the nftables renderer tests: just enough of the model's contract
// (src/model/types.ts) to describe service ports, endpoints and the selection for this node.
import type {
  Endpoint,
  EndpointSelection,
  IPFamily,
  Protocol,
  ProxySnapshot,
  ServicePortState,
} from '../../../src/model/types.ts';
import type { NftablesOptions } from '../../../src/dataplane/nftables/options.ts';

export interface EndpointSpec {
  readonly ip: string;
  readonly port?: number;
  readonly local?: boolean;
  readonly ready?: boolean;
  readonly terminating?: boolean;
  readonly nodeName?: string;
}

export interface PortSpec {
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
  readonly sourceRanges?: readonly string[];
  readonly affinitySeconds?: number;
  readonly externalLocal?: boolean;
  readonly internalLocal?: boolean;
  readonly endpoints?: readonly EndpointSpec[];
  readonly targetPort?: number;
}

function endpoint(spec: EndpointSpec, targetPort: number): Endpoint {
  const port = spec.port ?? targetPort;
  const ready = spec.ready ?? !spec.terminating;
  return {
    ip: spec.ip,
    port,
    endpoint: spec.ip.includes(':') ? `[${spec.ip}]:${port}` : `${spec.ip}:${port}`,
    ready,
    serving: ready || Boolean(spec.terminating),
    terminating: Boolean(spec.terminating),
    nodeName: spec.nodeName ?? (spec.local ? 'node-a' : 'node-b'),
    isLocal: Boolean(spec.local),
    zoneHints: undefined,
    nodeHints: undefined,
  };
}

/** Spec 1.5 without topology: ready endpoints, else serving+terminating ones. */
function select(endpoints: readonly Endpoint[], spec: PortSpec): EndpointSelection {
  const externallyAccessible =
    (spec.nodePort ?? 0) > 0 ||
    (spec.externalIPs ?? []).length > 0 ||
    (spec.loadBalancerVIPs ?? []).length > 0;
  const usesLocal = Boolean(spec.internalLocal) || (Boolean(spec.externalLocal) && externallyAccessible);
  const usesCluster = !spec.internalLocal || externallyAccessible;
  const usable = (list: readonly Endpoint[]): Endpoint[] => {
    const ready = list.filter((ep) => ep.ready);
    return ready.length > 0 ? ready : list.filter((ep) => ep.serving && ep.terminating);
  };
  const cluster = usesCluster ? usable(endpoints) : [];
  const local = usesLocal ? usable(endpoints.filter((ep) => ep.isLocal)) : [];
  const hasAny = usable(endpoints).length > 0;
  const union = [...new Map([...cluster, ...local].map((ep) => [ep.endpoint, ep])).values()].sort((a, b) =>
    a.endpoint < b.endpoint ? -1 : 1,
  );
  return {
    clusterEndpoints: cluster,
    localEndpoints: local,
    allReachable: !usesLocal ? cluster : !usesCluster ? local : union,
    hasAnyEndpoints: hasAny,
  };
}

export function port(spec: PortSpec): ServicePortState {
  const namespace = spec.namespace ?? 'ns';
  const portName = spec.portName ?? 'p';
  const protocol = spec.protocol ?? 'TCP';
  const service = `${namespace}/${spec.name}`;
  const printable = portName ? `${service}:${portName}` : service;
  const targetPort = spec.targetPort ?? 8080;
  const endpoints = (spec.endpoints ?? [])
    .map((ep) => endpoint(ep, targetPort))
    .sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1));
  return {
    servicePort: {
      id: {
        namespace,
        name: spec.name,
        portName,
        protocol,
        key: `${printable}/${protocol}`,
        printable,
        service,
      },
      family: spec.family ?? (spec.clusterIP.includes(':') ? 'IPv6' : 'IPv4'),
      clusterIP: spec.clusterIP,
      port: spec.port,
      nodePort: spec.nodePort ?? 0,
      externalIPs: spec.externalIPs ?? [],
      loadBalancerVIPs: spec.loadBalancerVIPs ?? [],
      loadBalancerSourceRanges: spec.sourceRanges ?? [],
      healthCheckNodePort: 0,
      sessionAffinity: spec.affinitySeconds
        ? { type: 'ClientIP', timeoutSeconds: spec.affinitySeconds }
        : { type: 'None' },
      externalPolicyLocal: Boolean(spec.externalLocal),
      internalPolicyLocal: Boolean(spec.internalLocal),
    },
    endpoints,
    selection: select(endpoints, spec),
  };
}

export function snapshot(
  ports: readonly ServicePortState[],
  options: { family?: IPFamily; nodeIPs?: readonly string[]; serviceCIDRs?: readonly string[] } = {},
): ProxySnapshot {
  const family = options.family ?? 'IPv4';
  const sorted = [...ports].sort((a, b) => (a.servicePort.id.key < b.servicePort.id.key ? -1 : 1));
  return {
    family,
    node: {
      name: 'node-a',
      zone: '',
      labels: {},
      podCIDRs: [],
      nodeIPs: options.nodeIPs ?? (family === 'IPv4' ? ['192.168.0.10'] : ['fd00:192::10']),
    },
    servicePorts: new Map(sorted.map((sp) => [sp.servicePort.id.key, sp])),
    serviceCIDRs: options.serviceCIDRs ?? [],
    changedServices: new Set(sorted.map((sp) => sp.servicePort.id.service)),
    udpEndpointsChanged: false,
    triggerTimes: new Map(),
    serviceChanges: 0,
    endpointChanges: 0,
  };
}

export const OPTIONS_V4: NftablesOptions = {
  family: 'IPv4',
  masqueradeBit: 14,
  masqueradeAll: false,
  localDetector: { kind: 'cidr', cidr: '10.244.0.0/16' },
  nodePortAddresses: { kind: 'ips', ips: ['192.168.0.10'] },
};

export const OPTIONS_V6: NftablesOptions = {
  family: 'IPv6',
  masqueradeBit: 14,
  masqueradeAll: false,
  localDetector: { kind: 'cidr', cidr: 'fd00:10:244::/56' },
  nodePortAddresses: { kind: 'ips', ips: ['fd00:192::10'] },
};
