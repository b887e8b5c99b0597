// The packet-flow table, mode-neutral, in the notation of upstream's proxier tests
// (packetFlowTest): a source, a destination and port, and what must happen: the endpoints a new
// connection can reach (`ip:port, ip:port`), `REJECT`, `DROP`, or `` (no service rule touches
// it), and whether it is masqueraded. Every runner (runners.ts) must give exactly this, except
// where a row names a mode whose upstream behaves otherwise, with the reason.
//
// The rows cover what the end-to-end traffic scenarios cover (test/e2e/traffic-scenarios.ts),
// and the traffic kinds those cannot reach from their namespaces.
import type { Protocol } from '../../../src/model/types.ts';
import { V4, V6, type ClusterName } from './clusters.ts';
import type { RunnerName } from './runners.ts';

/** Who sends: a pod on this node, the node itself, or a client outside the cluster. */
export type Sender = 'pod' | 'node' | 'outside';

export interface Expectation {
  readonly output: string;
  readonly masq: boolean;
}

export interface FlowRow extends Expectation {
  readonly name: string;
  readonly cluster: ClusterName;
  readonly from: Sender;
  readonly sourceIP: string;
  readonly destIP: string;
  readonly destPort: number;
  readonly protocol?: Protocol;
  /** A mode that differs from the row, on purpose: what it does instead, and why. */
  readonly modes?: Partial<Record<RunnerName, Expectation & { readonly reason: string }>>;
}

/** The interface a packet from each sender arrives on (the node's own packets arrive on none). */
export const INTERFACES: Readonly<Record<Exclude<Sender, 'node'>, string>> = {
  pod: 'veth-client',
  outside: 'eth0',
};

const ep = (ip: string, port = 8080): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
const eps = (...ips: string[]): string => ips.map((ip) => ep(ip)).join(', ');

const NFT_DROPS_UNALLOCATED =
  "upstream's nftables mode drops traffic to an address inside the ServiceCIDRs that no Service holds " +
  '(cluster-ips-check, "Drop traffic to unallocated ClusterIPs"); its iptables and IPVS modes ignore ServiceCIDRs';
const NFT_REJECTS_UNUSED_PORTS =
  "upstream's nftables mode rejects traffic to a port a cluster IP does not serve (cluster-ips-check); " +
  "upstream's iptables mode has no rule for it";

// The IPVS mode's differences are upstream's IPVS behaviour (modes-ipvs-userspace.md 1.8-1.13).
const IPVS_FILTER_REJECTS =
  "upstream's IPVS mode binds every cluster IP on kube-ipvs0 and KUBE-IPVS-FILTER rejects new connections to any " +
  'port of it that is not a service port (PR #108460)';
const IPVS_NO_LOCALHOST_NODE_PORTS =
  "upstream's IPVS mode never serves node ports on loopback addresses (no virtual server on 127.0.0.1)";
const IPVS_NO_SHORTCUT =
  "upstream's IPVS mode has no eTP=Local shortcut for pods and the node: a virtual server has one real server set, " +
  'and the *-LOCAL sets skip masquerade for every client';
const IPVS_LOCAL_FALLBACK =
  "upstream's IPVS mode falls back to every endpoint when eTP=Local has none on this node (PR #97081), " +
  'where iptables and nftables drop; external clients then get replies from a pod address';
const IPVS_OUT_FILTER_VIP_SOURCE =
  "upstream's IPVS mode drops the node's own traffic to a source-ranged LB IP only when its source is the VIP " +
  '(the address the kernel picks for an address bound on kube-ipvs0; KUBE-IPVS-OUT-FILTER matches -s VIP); a ' +
  'socket bound to the node IP is not filtered and is masqueraded through KUBE-LOAD-BALANCER';
const IPVS_ITP_LOCAL_EMPTY =
  'upstream computes cluster endpoints only for ports that use them: an internalTrafficPolicy Local port ' +
  'without local endpoints gets a virtual server without real servers, which the kernel answers with an ICMP ' +
  'port unreachable (ip_vs_leave) instead of dropping';

const v4 = (row: Omit<FlowRow, 'cluster'>): FlowRow => ({ cluster: 'v4', ...row });
const v6 = (row: Omit<FlowRow, 'cluster'>): FlowRow => ({ cluster: 'v6', ...row });
const pod = { from: 'pod', sourceIP: V4.client } as const;
const node = { from: 'node', sourceIP: V4.node } as const;
const outside = { from: 'outside', sourceIP: V4.outside } as const;

export const FLOWS: readonly FlowRow[] = [
  // Cluster IP.
  v4({
    name: 'cluster IP from a pod: every endpoint, source kept',
    ...pod,
    destIP: '10.96.0.10',
    destPort: 80,
    output: eps(V4.a, V4.b, V4.c),
    masq: false,
  }),
  v4({
    name: 'cluster IP from the node: masqueraded',
    ...node,
    destIP: '10.96.0.10',
    destPort: 80,
    output: eps(V4.a, V4.b, V4.c),
    masq: true,
  }),
  v4({
    name: 'cluster IP from outside: masqueraded',
    ...outside,
    destIP: '10.96.0.10',
    destPort: 80,
    output: eps(V4.a, V4.b, V4.c),
    masq: true,
  }),
  v4({
    name: 'cluster IP, a port it does not serve',
    ...pod,
    destIP: '10.96.0.10',
    destPort: 81,
    output: '',
    masq: false,
    modes: {
      ipvs: { output: 'REJECT', masq: false, reason: IPVS_FILTER_REJECTS },
      nftables: { output: 'REJECT', masq: false, reason: NFT_REJECTS_UNUSED_PORTS },
    },
  }),
  v4({
    name: 'an unallocated cluster IP (inside the ServiceCIDR, no Service holds it)',
    ...pod,
    destIP: V4.unallocated,
    destPort: 80,
    output: '',
    masq: false,
    modes: { nftables: { output: 'DROP', masq: false, reason: NFT_DROPS_UNALLOCATED } },
  }),
  v4({
    name: 'an unallocated cluster IP from the node',
    ...node,
    destIP: V4.unallocated,
    destPort: 80,
    output: '',
    masq: false,
    modes: { nftables: { output: 'DROP', masq: false, reason: NFT_DROPS_UNALLOCATED } },
  }),
  v4({
    name: 'an unallocated cluster IP from outside',
    ...outside,
    destIP: V4.unallocated,
    destPort: 80,
    output: '',
    masq: false,
    modes: { nftables: { output: 'DROP', masq: false, reason: NFT_DROPS_UNALLOCATED } },
  }),
  v4({
    name: 'a pod address, no service involved',
    ...pod,
    destIP: V4.c,
    destPort: 8080,
    output: '',
    masq: false,
  }),
  v4({
    name: 'dual-stack service, IPv4 half',
    ...pod,
    destIP: '10.96.0.100',
    destPort: 80,
    output: eps(V4.a),
    masq: false,
  }),

  // Protocols.
  v4({
    name: 'UDP cluster IP',
    ...pod,
    destIP: '10.96.0.53',
    destPort: 53,
    protocol: 'UDP',
    output: `${ep(V4.a, 5353)}, ${ep(V4.b, 5353)}`,
    masq: false,
  }),
  v4({
    name: 'TCP to a UDP-only cluster IP port',
    ...pod,
    destIP: '10.96.0.53',
    destPort: 53,
    output: '',
    masq: false,
    modes: {
      ipvs: { output: 'REJECT', masq: false, reason: IPVS_FILTER_REJECTS },
      nftables: { output: 'REJECT', masq: false, reason: NFT_REJECTS_UNUSED_PORTS },
    },
  }),
  v4({
    name: 'SCTP cluster IP',
    ...pod,
    destIP: '10.96.0.90',
    destPort: 9999,
    protocol: 'SCTP',
    output: ep(V4.a, 9999),
    masq: false,
    modes: {
      userspace: {
        output: '',
        masq: false,
        reason:
          'Node.js has no SCTP sockets: the userspace mode does not proxy SCTP service ports (upstream refused SCTP too)',
      },
    },
  }),

  // No endpoints: REJECT, wherever the packet comes from.
  v4({
    name: 'no endpoints, cluster IP from a pod',
    ...pod,
    destIP: '10.96.0.20',
    destPort: 80,
    output: 'REJECT',
    masq: false,
  }),
  v4({
    name: 'no endpoints, cluster IP from the node',
    ...node,
    destIP: '10.96.0.20',
    destPort: 80,
    output: 'REJECT',
    masq: false,
  }),
  v4({
    name: 'no endpoints, node port from outside',
    ...outside,
    destIP: V4.node,
    destPort: 30083,
    output: 'REJECT',
    masq: false,
  }),
  v4({
    name: 'no endpoints, external IP from outside',
    ...outside,
    destIP: '198.51.100.8',
    destPort: 80,
    output: 'REJECT',
    masq: false,
  }),
  v4({
    name: 'no endpoints, external IP from the node',
    ...node,
    destIP: '198.51.100.8',
    destPort: 80,
    output: 'REJECT',
    masq: false,
    modes: {
      iptables: {
        output: '',
        masq: false,
        reason:
          "upstream's iptables mode writes that REJECT in KUBE-EXTERNAL-SERVICES, which hangs off INPUT and " +
          "FORWARD only: the node's own packet to an external IP it does not hold leaves untouched",
      },
      userspace: {
        output: '',
        masq: false,
        reason:
          "upstream's userspace capture takes the node's own packets to an external IP only when the node " +
          'holds that address (KUBE-PORTALS-HOST -m addrtype --dst-type LOCAL): others leave untouched',
      },
    },
  }),

  // Node ports, externalTrafficPolicy Cluster: any endpoint, masqueraded.
  v4({
    name: 'node port (eTP Cluster) from outside',
    ...outside,
    destIP: V4.node,
    destPort: 30080,
    output: eps(V4.a, V4.c),
    masq: true,
  }),
  v4({
    name: 'node port (eTP Cluster) from a pod',
    ...pod,
    destIP: V4.node,
    destPort: 30080,
    output: eps(V4.a, V4.c),
    masq: true,
  }),
  v4({
    name: 'node port (eTP Cluster) from the node',
    ...node,
    destIP: V4.node,
    destPort: 30080,
    output: eps(V4.a, V4.c),
    masq: true,
  }),
  v4({
    name: 'node port on 127.0.0.1 from the node',
    from: 'node',
    sourceIP: '127.0.0.1',
    destIP: '127.0.0.1',
    destPort: 30080,
    output: eps(V4.a, V4.c),
    masq: true,
    modes: {
      ipvs: { output: '', masq: false, reason: IPVS_NO_LOCALHOST_NODE_PORTS },
      nftables: {
        output: '',
        masq: false,
        reason:
          "localhost node ports are an iptables-mode feature; upstream's nftables mode ignores loopback node port addresses (docs/nftables-layout.md)",
      },
    },
  }),
  v4({
    name: 'a node port nobody uses',
    ...outside,
    destIP: V4.node,
    destPort: 30999,
    output: '',
    masq: false,
  }),

  // externalTrafficPolicy Local: outside clients reach local endpoints only, source kept; pods and
  // the node itself are short-circuited to every endpoint (the node masqueraded).
  v4({
    name: 'node port (eTP Local) from outside: local endpoint, source kept',
    ...outside,
    destIP: V4.node,
    destPort: 30081,
    output: eps(V4.a),
    masq: false,
  }),
  v4({
    name: 'node port (eTP Local) from a pod: every endpoint',
    ...pod,
    destIP: V4.node,
    destPort: 30081,
    output: eps(V4.a, V4.c),
    masq: false,
    modes: { ipvs: { output: eps(V4.a), masq: false, reason: IPVS_NO_SHORTCUT } },
  }),
  v4({
    name: 'node port (eTP Local) from the node: every endpoint, masqueraded',
    ...node,
    destIP: V4.node,
    destPort: 30081,
    output: eps(V4.a, V4.c),
    masq: true,
    modes: { ipvs: { output: eps(V4.a), masq: false, reason: IPVS_NO_SHORTCUT } },
  }),
  v4({
    name: 'node port (eTP Local) without local endpoints, from outside',
    ...outside,
    destIP: V4.node,
    destPort: 30082,
    output: 'DROP',
    masq: false,
    modes: { ipvs: { output: eps(V4.c), masq: false, reason: IPVS_LOCAL_FALLBACK } },
  }),
  v4({
    name: 'node port (eTP Local) without local endpoints, from a pod',
    ...pod,
    destIP: V4.node,
    destPort: 30082,
    output: eps(V4.c),
    masq: false,
  }),
  v4({
    name: 'node port (eTP Local) without local endpoints, from the node',
    ...node,
    destIP: V4.node,
    destPort: 30082,
    output: eps(V4.c),
    masq: true,
    modes: { ipvs: { output: eps(V4.c), masq: false, reason: IPVS_NO_SHORTCUT } },
  }),
  v4({
    name: 'cluster IP of an eTP Local service: internal policy applies',
    ...pod,
    destIP: '10.96.1.81',
    destPort: 80,
    output: eps(V4.a, V4.c),
    masq: false,
  }),
  v4({
    name: 'LB IP (eTP Local) from outside',
    ...outside,
    destIP: '203.0.113.13',
    destPort: 80,
    output: eps(V4.a),
    masq: false,
  }),
  v4({
    name: 'LB IP (eTP Local) from a pod',
    ...pod,
    destIP: '203.0.113.13',
    destPort: 80,
    output: eps(V4.a, V4.c),
    masq: false,
    modes: { ipvs: { output: eps(V4.a), masq: false, reason: IPVS_NO_SHORTCUT } },
  }),
  v4({
    name: 'LB IP (eTP Local) from the node',
    ...node,
    destIP: '203.0.113.13',
    destPort: 80,
    output: eps(V4.a, V4.c),
    masq: true,
    modes: { ipvs: { output: eps(V4.a), masq: false, reason: IPVS_NO_SHORTCUT } },
  }),

  // External IPs (eTP Cluster).
  v4({
    name: 'external IP from outside',
    ...outside,
    destIP: '198.51.100.7',
    destPort: 80,
    output: eps(V4.a, V4.c),
    masq: true,
  }),
  v4({
    name: 'external IP from a pod',
    ...pod,
    destIP: '198.51.100.7',
    destPort: 80,
    output: eps(V4.a, V4.c),
    masq: true,
  }),

  // loadBalancerSourceRanges.
  v4({
    name: 'LB IP, source inside the ranges',
    ...outside,
    destIP: '203.0.113.10',
    destPort: 80,
    output: eps(V4.a),
    masq: true,
  }),
  v4({
    name: 'LB IP, source outside the ranges',
    from: 'outside',
    sourceIP: V4.elsewhere,
    destIP: '203.0.113.10',
    destPort: 80,
    output: 'DROP',
    masq: false,
  }),
  v4({
    name: 'LB IP whose ranges exclude the client',
    ...outside,
    destIP: '203.0.113.11',
    destPort: 80,
    output: 'DROP',
    masq: false,
  }),
  v4({
    name: 'LB IP whose ranges exclude the node, from the node',
    ...node,
    destIP: '203.0.113.10',
    destPort: 80,
    output: 'DROP',
    masq: false,
    modes: { ipvs: { output: eps(V4.a), masq: true, reason: IPVS_OUT_FILTER_VIP_SOURCE } },
  }),
  v4({
    name: 'LB IP whose ranges cover the node, from the node',
    ...node,
    destIP: '203.0.113.12',
    destPort: 80,
    output: eps(V4.a),
    masq: true,
  }),
  v4({
    name: 'LB IP whose ranges cover the node, from the node with the LB IP as source',
    from: 'node',
    sourceIP: '203.0.113.12',
    destIP: '203.0.113.12',
    destPort: 80,
    output: eps(V4.a),
    masq: true,
  }),
  v4({
    name: "LB IP whose ranges cover only the node's second IP, from the node with the LB IP as source",
    from: 'node',
    sourceIP: '203.0.113.14',
    destIP: '203.0.113.14',
    destPort: 80,
    output: 'DROP',
    masq: false,
  }),
  v4({
    name: 'node port of a source-ranged LB: ranges do not apply',
    ...outside,
    destIP: V4.node,
    destPort: 30091,
    output: eps(V4.a),
    masq: true,
  }),
  v4({
    name: 'cluster IP of a source-ranged LB: ranges do not apply',
    ...pod,
    destIP: '10.96.2.91',
    destPort: 80,
    output: eps(V4.a),
    masq: false,
  }),

  // Endpoint selection.
  v4({
    name: 'internalTrafficPolicy Local from a pod: local endpoints only',
    ...pod,
    destIP: '10.96.0.60',
    destPort: 80,
    output: eps(V4.a),
    masq: false,
  }),
  v4({
    name: 'internalTrafficPolicy Local from the node',
    ...node,
    destIP: '10.96.0.60',
    destPort: 80,
    output: eps(V4.a),
    masq: true,
  }),
  v4({
    name: 'internalTrafficPolicy Local without local endpoints',
    ...pod,
    destIP: '10.96.0.61',
    destPort: 80,
    output: 'DROP',
    masq: false,
    modes: { ipvs: { output: 'REJECT', masq: false, reason: IPVS_ITP_LOCAL_EMPTY } },
  }),
  v4({
    name: "topology hints: the node's zone only",
    ...pod,
    destIP: '10.96.0.80',
    destPort: 80,
    output: eps(V4.a),
    masq: false,
  }),
  v4({
    name: 'no ready endpoint: serving terminating ones take over',
    ...pod,
    destIP: '10.96.0.70',
    destPort: 80,
    output: eps(V4.a),
    masq: false,
  }),
  v4({
    name: 'ClientIP affinity: a new client may get any endpoint',
    ...pod,
    destIP: '10.96.0.50',
    destPort: 80,
    output: eps(V4.a, V4.b, V4.c),
    masq: false,
  }),

  // Hairpin: an endpoint reaching itself through its service is masqueraded (else it would
  // answer itself directly and the connection would break).
  v4({
    name: 'hairpin: an endpoint reaching itself',
    from: 'pod',
    sourceIP: V4.a,
    destIP: '10.96.2.90',
    destPort: 80,
    output: eps(V4.a),
    masq: true,
  }),
  v4({
    name: 'no hairpin: another local pod',
    from: 'pod',
    sourceIP: V4.b,
    destIP: '10.96.2.90',
    destPort: 80,
    output: eps(V4.a),
    masq: false,
  }),

  // IPv6 (the other half of a dual-stack node).
  v6({
    name: 'IPv6 cluster IP from a pod',
    from: 'pod',
    sourceIP: V6.client,
    destIP: 'fd00:10:96::10',
    destPort: 80,
    output: eps(V6.a, V6.b),
    masq: false,
  }),
  v6({
    name: 'IPv6 unallocated cluster IP from a pod',
    from: 'pod',
    sourceIP: V6.client,
    destIP: V6.unallocated,
    destPort: 80,
    output: '',
    masq: false,
    modes: { nftables: { output: 'DROP', masq: false, reason: NFT_DROPS_UNALLOCATED } },
  }),
  v6({
    name: 'IPv6 cluster IP from the node',
    from: 'node',
    sourceIP: V6.node,
    destIP: 'fd00:10:96::10',
    destPort: 80,
    output: eps(V6.a, V6.b),
    masq: true,
  }),
  v6({
    name: 'IPv6 node port from outside',
    from: 'outside',
    sourceIP: V6.outside,
    destIP: V6.node,
    destPort: 30080,
    output: eps(V6.a, V6.c),
    masq: true,
  }),
  v6({
    name: 'IPv6 no endpoints',
    from: 'pod',
    sourceIP: V6.client,
    destIP: 'fd00:10:96::20',
    destPort: 80,
    output: 'REJECT',
    masq: false,
  }),
  v6({
    name: 'dual-stack service, IPv6 half',
    from: 'pod',
    sourceIP: V6.client,
    destIP: 'fd00:10:96::100',
    destPort: 80,
    output: eps(V6.b),
    masq: false,
  }),
  v6({
    name: 'no localhost node ports on IPv6',
    from: 'node',
    sourceIP: '::1',
    destIP: '::1',
    destPort: 30080,
    output: '',
    masq: false,
    modes: {
      userspace: {
        output: eps(V6.a, V6.c),
        masq: true,
        reason:
          "upstream's userspace capture (KUBE-NODEPORT-HOST, no -d) takes node ports on every local address, " +
          '::1 included: the proxy listens itself, so no route_localnet is needed',
      },
    },
  }),
];
