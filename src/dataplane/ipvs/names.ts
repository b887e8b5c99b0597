// The names the IPVS mode shares with upstream (modes-ipvs-userspace.md 1.7, 1.9, 1.10): the
// dummy interface, the 17 ipsets with their types and rule comments, the iptables chains. Tools,
// dashboards and runbooks written for upstream look for exactly these.
import type { IPFamily } from '../../model/types.ts';

/** The dummy interface holding every virtual address. */
export const IPVS_INTERFACE = 'kube-ipvs0';

export type SetType = 'hash:ip' | 'hash:ip,port' | 'hash:ip,port,ip' | 'hash:ip,port,net' | 'bitmap:port';

/** Our handle for each set; the kernel name comes from setName(). */
export type SetKey =
  | 'loopBack'
  | 'clusterIP'
  | 'externalIP'
  | 'externalIPLocal'
  | 'loadBalancer'
  | 'loadBalancerLocal'
  | 'loadBalancerFW'
  | 'loadBalancerSourceCIDR'
  | 'loadBalancerSourceIP'
  | 'nodePortTCP'
  | 'nodePortLocalTCP'
  | 'nodePortUDP'
  | 'nodePortLocalUDP'
  | 'nodePortSCTP'
  | 'nodePortLocalSCTP'
  | 'healthCheckNodePort'
  | 'ipvsIPs';

export interface SetSpec {
  /** The IPv4 name; IPv6 names are derived (setName). */
  readonly name: string;
  readonly type: SetType;
  /** The `--comment` of the iptables rules that use the set (upstream's text). */
  readonly comment: string;
}

/** In upstream's order (the order sets are created and reconciled). */
export const SETS: Readonly<Record<SetKey, SetSpec>> = {
  loopBack: {
    name: 'KUBE-LOOP-BACK',
    type: 'hash:ip,port,ip',
    comment: 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose',
  },
  clusterIP: {
    name: 'KUBE-CLUSTER-IP',
    type: 'hash:ip,port',
    comment: 'Kubernetes service cluster ip + port for masquerade purpose',
  },
  externalIP: {
    name: 'KUBE-EXTERNAL-IP',
    type: 'hash:ip,port',
    comment: 'Kubernetes service external ip + port for masquerade and filter purpose',
  },
  externalIPLocal: {
    name: 'KUBE-EXTERNAL-IP-LOCAL',
    type: 'hash:ip,port',
    comment: 'Kubernetes service external ip + port with externalTrafficPolicy=local',
  },
  loadBalancer: { name: 'KUBE-LOAD-BALANCER', type: 'hash:ip,port', comment: 'Kubernetes service lb portal' },
  loadBalancerLocal: {
    name: 'KUBE-LOAD-BALANCER-LOCAL',
    type: 'hash:ip,port',
    comment: 'Kubernetes service load balancer ip + port with externalTrafficPolicy=local',
  },
  loadBalancerFW: {
    name: 'KUBE-LOAD-BALANCER-FW',
    type: 'hash:ip,port',
    comment: 'Kubernetes service load balancer ip + port for load balancer with sourceRange',
  },
  loadBalancerSourceCIDR: {
    name: 'KUBE-LOAD-BALANCER-SOURCE-CIDR',
    type: 'hash:ip,port,net',
    comment: 'Kubernetes service load balancer ip + port + source cidr for packet filter purpose',
  },
  loadBalancerSourceIP: {
    name: 'KUBE-LOAD-BALANCER-SOURCE-IP',
    type: 'hash:ip,port,ip',
    comment: 'Kubernetes service load balancer ip + port + source IP for packet filter purpose',
  },
  nodePortTCP: {
    name: 'KUBE-NODE-PORT-TCP',
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport TCP port for masquerade purpose',
  },
  nodePortLocalTCP: {
    name: 'KUBE-NODE-PORT-LOCAL-TCP',
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport TCP port with externalTrafficPolicy=local',
  },
  nodePortUDP: {
    name: 'KUBE-NODE-PORT-UDP',
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport UDP port for masquerade purpose',
  },
  nodePortLocalUDP: {
    name: 'KUBE-NODE-PORT-LOCAL-UDP',
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport UDP port with externalTrafficPolicy=local',
  },
  nodePortSCTP: {
    name: 'KUBE-NODE-PORT-SCTP-HASH',
    type: 'hash:ip,port',
    comment: "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'",
  },
  nodePortLocalSCTP: {
    name: 'KUBE-NODE-PORT-LOCAL-SCTP-HASH',
    type: 'hash:ip,port',
    comment: "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'",
  },
  healthCheckNodePort: {
    name: 'KUBE-HEALTH-CHECK-NODE-PORT',
    type: 'bitmap:port',
    comment: 'Kubernetes health check node port',
  },
  ipvsIPs: { name: 'KUBE-IPVS-IPS', type: 'hash:ip', comment: 'Addresses on the ipvs interface' },
};

export const SET_KEYS = Object.keys(SETS) as SetKey[];

/** ipset names are at most 31 characters (ipset 7.17 rejects 32). */
export const MAX_SET_NAME = 31;

/** The kernel name of a set: IPv6 replaces the leading `KUBE-` with `KUBE-6-`, cut to 31 characters. */
export function setName(key: SetKey, family: IPFamily): string {
  const name = SETS[key].name;
  if (family === 'IPv4') return name;
  return `KUBE-6-${name.slice('KUBE-'.length)}`.slice(0, MAX_SET_NAME);
}

/** Every set name this mode may have created, both families: what cleanup destroys. */
export function allSetNames(): string[] {
  return (['IPv4', 'IPv6'] as const).flatMap((family) => SET_KEYS.map((key) => setName(key, family)));
}

// iptables chains (1.10.1).
export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_NODE_PORT = 'KUBE-NODE-PORT';
export const KUBE_LOAD_BALANCER = 'KUBE-LOAD-BALANCER';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
export const KUBE_SOURCE_RANGES_FIREWALL = 'KUBE-SOURCE-RANGES-FIREWALL';
export const KUBE_IPVS_FILTER = 'KUBE-IPVS-FILTER';
export const KUBE_IPVS_OUT_FILTER = 'KUBE-IPVS-OUT-FILTER';

/** In the order the restore input declares them. */
export const NAT_CHAINS = [
  KUBE_SERVICES,
  KUBE_POSTROUTING,
  KUBE_NODE_PORT,
  KUBE_LOAD_BALANCER,
  KUBE_MARK_MASQ,
];
export const FILTER_CHAINS = [
  KUBE_FORWARD,
  KUBE_NODE_PORT,
  KUBE_PROXY_FIREWALL,
  KUBE_SOURCE_RANGES_FIREWALL,
  KUBE_IPVS_FILTER,
  KUBE_IPVS_OUT_FILTER,
];
