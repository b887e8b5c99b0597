// The cluster states the packet-flow tables run against: the same Services and pods as the
// end-to-end traffic scenarios (test/e2e/traffic-scenarios.ts), built from API objects by the real
// model, one snapshot per family. Mode-neutral: every runner renders them its own way.
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { IPFamily, ProxySnapshot } from '../../../src/model/types.ts';
import { endpointSlice, node, service, type EndpointSpec } from '../../support/objects.ts';
import { modelWith, NODE } from '../conntrack/snapshot.ts';

/** One family's view of a cluster, as the proxy on NODE sees it. */
export interface FlowCluster {
  readonly name: string;
  readonly family: IPFamily;
  readonly snapshot: ProxySnapshot;
  /** Addresses on the proxy's node (the tracers' `fib`/`addrtype LOCAL`). */
  readonly localAddresses: readonly string[];
  /** The cluster's pod CIDRs of this family (the local-traffic detector's ClusterCIDR). */
  readonly clusterCIDRs: readonly string[];
}

/** Addresses the rows use. Pods a and b run on this node (NODE), c on another one. */
export const V4 = {
  node: '192.168.0.10',
  /** The node's second IPv4 address: not the one upstream checks source ranges against. */
  secondNodeIP: '192.168.5.10',
  clusterCIDR: '10.244.0.0/16',
  serviceCIDR: '10.96.0.0/16',
  /** Inside the service CIDR, held by no Service. */
  unallocated: '10.96.9.9',
  client: '10.244.1.9',
  a: '10.244.1.2',
  b: '10.244.1.3',
  c: '10.244.2.2',
  outside: '192.0.2.100',
  elsewhere: '198.51.100.200',
} as const;

export const V6 = {
  node: 'fd00:192::10',
  clusterCIDR: 'fd00:10:244::/56',
  serviceCIDR: 'fd00:10:96::/112',
  unallocated: 'fd00:10:96::99',
  client: 'fd00:10:244:1::9',
  a: 'fd00:10:244:1::2',
  b: 'fd00:10:244:1::3',
  c: 'fd00:10:244:2::2',
  outside: '2001:db8::100',
} as const;

type Pod = 'a' | 'b' | 'c';
const POD_NODE: Readonly<Record<Pod, string>> = { a: NODE, b: NODE, c: 'node2' };

function ep(family: IPFamily, pod: Pod, extra: Partial<EndpointSpec> = {}): EndpointSpec {
  return { ip: (family === 'IPv4' ? V4 : V6)[pod], node: POD_NODE[pod], pod, ...extra };
}

/** A Service with one port `http` 80 -> 8080 (unless told otherwise) and its slice. */
function withSlice(
  family: IPFamily,
  spec: Parameters<typeof service>[0],
  endpoints: readonly EndpointSpec[],
  port: { name?: string; port: number; protocol?: 'TCP' | 'UDP' | 'SCTP' } = { name: 'http', port: 8080 },
): (Service | EndpointSlice)[] {
  const slice = endpointSlice({
    service: spec.name,
    family,
    ports: [{ name: port.name ?? '', port: port.port }],
    endpoints,
  });
  // The builder knows TCP and UDP; SCTP is the same object with another protocol.
  const ports = slice.ports?.map((p) => ({ ...p, protocol: port.protocol ?? 'TCP' }));
  return [service(spec), { ...slice, ...(ports ? { ports } : {}) }];
}

const http = (nodePort?: number) => [
  { name: 'http', port: 80, targetPort: 8080, ...(nodePort !== undefined ? { nodePort } : {}) },
];

function build(
  name: string,
  family: IPFamily,
  objects: readonly (Service | EndpointSlice)[],
  localAddresses: readonly string[],
): FlowCluster {
  const nodeIP = family === 'IPv4' ? V4.node : V6.node;
  // (the node's other addresses come with `localAddresses`)
  const clusterCIDR = family === 'IPv4' ? V4.clusterCIDR : V6.clusterCIDR;
  const model = modelWith(family, objects);
  // The cluster's ServiceCIDR object (the default one an API server creates): cluster IPs come
  // from it, and an address inside it that no Service holds is "unallocated".
  model.upsertServiceCIDR({
    metadata: { name: 'kubernetes' },
    spec: { cidrs: [V4.serviceCIDR, V6.serviceCIDR] },
  });
  model.setNode(
    node({
      name: NODE,
      ips: [V4.node, V4.secondNodeIP, V6.node],
      podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
      zone: 'zone-a',
    }),
  );
  return {
    name,
    family,
    snapshot: model.snapshot(),
    localAddresses: [nodeIP, ...localAddresses],
    clusterCIDRs: [clusterCIDR],
  };
}

/** The e2e scenarios' Services, IPv4. */
function standardV4(): FlowCluster {
  const f: IPFamily = 'IPv4';
  const objects: (Service | EndpointSlice)[] = [
    service({ name: 'empty', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', port: 80 }] }),
    service({
      name: 'np-empty',
      type: 'NodePort',
      clusterIPs: ['10.96.1.83'],
      ports: http(30083),
      externalIPs: ['198.51.100.8'],
    }),
    ...withSlice(f, { name: 'web', clusterIPs: ['10.96.0.10'], ports: http() }, [
      ep(f, 'a'),
      ep(f, 'b'),
      ep(f, 'c'),
    ]),
    ...withSlice(
      f,
      { name: 'np-cluster', type: 'NodePort', clusterIPs: ['10.96.1.80'], ports: http(30080) },
      [ep(f, 'a'), ep(f, 'c')],
    ),
    ...withSlice(
      f,
      {
        name: 'np-local',
        type: 'NodePort',
        clusterIPs: ['10.96.1.81'],
        ports: http(30081),
        externalTrafficPolicy: 'Local',
      },
      [ep(f, 'a'), ep(f, 'c')],
    ),
    ...withSlice(
      f,
      {
        name: 'np-remote',
        type: 'NodePort',
        clusterIPs: ['10.96.1.82'],
        ports: http(30082),
        externalTrafficPolicy: 'Local',
      },
      [ep(f, 'c')],
    ),
    ...withSlice(
      f,
      {
        name: 'lb-allow',
        type: 'LoadBalancer',
        clusterIPs: ['10.96.2.90'],
        ports: http(30090),
        loadBalancerIPs: ['203.0.113.10'],
        loadBalancerSourceRanges: [`${V4.outside}/32`],
      },
      [ep(f, 'a')],
    ),
    ...withSlice(
      f,
      {
        name: 'lb-deny',
        type: 'LoadBalancer',
        clusterIPs: ['10.96.2.91'],
        ports: http(30091),
        loadBalancerIPs: ['203.0.113.11'],
        loadBalancerSourceRanges: ['10.0.0.0/8'],
      },
      [ep(f, 'a')],
    ),
    ...withSlice(
      f,
      {
        name: 'lb-node',
        type: 'LoadBalancer',
        clusterIPs: ['10.96.2.92'],
        ports: http(30092),
        loadBalancerIPs: ['203.0.113.12'],
        loadBalancerSourceRanges: ['192.168.0.0/24'],
      },
      [ep(f, 'a')],
    ),
    ...withSlice(
      f,
      {
        name: 'lb-second',
        type: 'LoadBalancer',
        clusterIPs: ['10.96.2.94'],
        ports: http(30094),
        loadBalancerIPs: ['203.0.113.14'],
        loadBalancerSourceRanges: ['192.168.5.0/24'],
      },
      [ep(f, 'a')],
    ),
    ...withSlice(
      f,
      {
        name: 'lb-local',
        type: 'LoadBalancer',
        clusterIPs: ['10.96.2.93'],
        ports: http(30093),
        loadBalancerIPs: ['203.0.113.13'],
        externalTrafficPolicy: 'Local',
      },
      [ep(f, 'a'), ep(f, 'c')],
    ),
    ...withSlice(
      f,
      { name: 'ext', clusterIPs: ['10.96.0.30'], ports: http(), externalIPs: ['198.51.100.7'] },
      [ep(f, 'a'), ep(f, 'c')],
    ),
    ...withSlice(
      f,
      { name: 'sticky', clusterIPs: ['10.96.0.50'], ports: http(), sessionAffinityTimeoutSeconds: 600 },
      [ep(f, 'a'), ep(f, 'b'), ep(f, 'c')],
    ),
    ...withSlice(
      f,
      { name: 'itp', clusterIPs: ['10.96.0.60'], ports: http(), internalTrafficPolicy: 'Local' },
      [ep(f, 'a'), ep(f, 'c')],
    ),
    ...withSlice(
      f,
      { name: 'itp-remote', clusterIPs: ['10.96.0.61'], ports: http(), internalTrafficPolicy: 'Local' },
      [ep(f, 'c')],
    ),
    ...withSlice(f, { name: 'term', clusterIPs: ['10.96.0.70'], ports: http() }, [
      ep(f, 'a', { ready: false, serving: true, terminating: true }),
      ep(f, 'b', { ready: false, serving: false, terminating: true }),
    ]),
    ...withSlice(f, { name: 'topo', clusterIPs: ['10.96.0.80'], ports: http() }, [
      ep(f, 'a', { zones: ['zone-a'] }),
      ep(f, 'b', { zones: ['zone-b'] }),
      ep(f, 'c', { zones: ['zone-b'] }),
    ]),
    ...withSlice(
      f,
      {
        name: 'dns',
        clusterIPs: ['10.96.0.53'],
        ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }],
      },
      [ep(f, 'a'), ep(f, 'b')],
      { name: 'dns', port: 5353, protocol: 'UDP' },
    ),
    ...withSlice(
      f,
      {
        name: 'sctp',
        clusterIPs: ['10.96.0.90'],
        ports: [{ name: 'assoc', port: 9999, protocol: 'SCTP' }],
      },
      [ep(f, 'a')],
      { name: 'assoc', port: 9999, protocol: 'SCTP' },
    ),
    ...withSlice(f, { name: 'dual', clusterIPs: ['10.96.0.100', 'fd00:10:96::100'], ports: http() }, [
      ep(f, 'a'),
    ]),
  ];
  // The LB IPs of lb-node and lb-second are also bound on the node (as MetalLB in L2 mode or
  // kube-vip do): the node's own requests to them leave with the LB IP as source.
  return build('standard IPv4', f, objects, [V4.secondNodeIP, '203.0.113.12', '203.0.113.14']);
}

/** IPv6 half of the cluster: the e2e web6 Service, a node port and the dual-stack Service. */
function standardV6(): FlowCluster {
  const f: IPFamily = 'IPv6';
  const objects: (Service | EndpointSlice)[] = [
    ...withSlice(f, { name: 'web6', clusterIPs: ['fd00:10:96::10'], ports: http() }, [
      ep(f, 'a'),
      ep(f, 'b'),
    ]),
    ...withSlice(f, { name: 'np6', type: 'NodePort', clusterIPs: ['fd00:10:96::80'], ports: http(30080) }, [
      ep(f, 'a'),
      ep(f, 'c'),
    ]),
    service({ name: 'empty6', clusterIPs: ['fd00:10:96::20'], ports: [{ name: 'http', port: 80 }] }),
    ...withSlice(f, { name: 'dual', clusterIPs: ['10.96.0.100', 'fd00:10:96::100'], ports: http() }, [
      ep(f, 'b'),
    ]),
  ];
  return build('standard IPv6', f, objects, []);
}

export const CLUSTERS = { v4: standardV4(), v6: standardV6() } as const;
export type ClusterName = keyof typeof CLUSTERS;
