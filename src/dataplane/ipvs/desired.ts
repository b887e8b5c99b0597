// What the IPVS mode wants in the kernel for one family, computed from the snapshot alone: the
// virtual servers with their real servers, the ipset members, the addresses bound on kube-ipvs0
// and the node-originated source-range drops (modes-ipvs-userspace.md 1.7-1.9, 1.13). Pure; the
// proxier diffs it against what it applied (or read) and the renderers write only the difference.
//
// IPVS's traffic policies are upstream's, not the plan's verdicts: a virtual server with the
// Local policy and no local endpoint falls back to every endpoint of the cluster (upstream PR
// #97081), where the iptables and nftables modes drop. And IPVS has no eTP=Local shortcut for
// pods and the node: they get what the virtual server has. The flow tables document both.
import type { Endpoint, IPFamily, Protocol, ProxySnapshot, ServicePortState } from '../../model/types.ts';
import { planNodeOf, type PlanNode } from '../../plan/service-port.ts';
import { cidrContains, joinHostPort, parseCIDR, parseIP } from '../../util/ip.ts';
import { SET_KEYS, type SetKey } from './names.ts';
import type { IpvsScheduler } from './options.ts';

export interface RealServer {
  readonly ip: string;
  readonly port: number;
}

export interface VirtualServer {
  readonly family: IPFamily;
  readonly ip: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly scheduler: IpvsScheduler;
  /** ClientIP affinity: persistence timeout in seconds; 0 without. */
  readonly persistentSeconds: number;
  /** Sorted by `ip:port`. */
  readonly realServers: readonly RealServer[];
}

/** `10.96.0.10:80/TCP`, `[fd00::a]:53/UDP`: a virtual server's identity, as upstream logs it. */
export function vsKey(vs: Pick<VirtualServer, 'ip' | 'port' | 'protocol'>): string {
  return `${joinHostPort(vs.ip, vs.port)}/${vs.protocol}`;
}

export function rsKey(rs: RealServer): string {
  return joinHostPort(rs.ip, rs.port);
}

/** A node-originated packet to this LB VIP is dropped (KUBE-IPVS-OUT-FILTER, 1.10.3 filter 5). */
export interface OutFilterDrop {
  readonly vip: string;
  readonly protocol: Protocol;
  readonly port: number;
}

export interface IpvsDesired {
  readonly family: IPFamily;
  /** By vsKey, in snapshot order. */
  readonly virtualServers: ReadonlyMap<string, VirtualServer>;
  /** Every set's members in the form `ipset` lists them. */
  readonly sets: Readonly<Record<SetKey, ReadonlySet<string>>>;
  /** Addresses to bind on kube-ipvs0. */
  readonly bind: ReadonlySet<string>;
  readonly outFilter: readonly OutFilterDrop[];
  /** Service ports that use the Local policy somewhere and fell back to every endpoint. */
  readonly localFallbacks: { readonly internal: number; readonly external: number };
}

/** The host facts a sync reads besides the snapshot. */
export interface IpvsHostView {
  /** Node IPs for NodePort virtual servers (1.7.3): addresses of the family not on kube-ipvs0. */
  readonly nodePortIPs: readonly string[];
  /** Every address of the family on another interface than kube-ipvs0. */
  readonly otherInterfaceAddresses: readonly string[];
}

export interface IpvsDesiredOptions {
  readonly family: IPFamily;
  readonly scheduler: IpvsScheduler;
}

/** What one service port adds; cached by state identity while the context is the same. */
interface Contribution {
  readonly virtualServers: readonly VirtualServer[];
  readonly members: readonly (readonly [SetKey, string])[];
  readonly bind: readonly string[];
  readonly outFilter: readonly OutFilterDrop[];
  readonly fallbackInternal: boolean;
  readonly fallbackExternal: boolean;
}

const lower = (protocol: Protocol): string => protocol.toLowerCase();

/** Upstream's per-VS choice: the policy's endpoints, and every endpoint when Local has none here. */
function realServersFor(
  state: ServicePortState,
  policyLocal: boolean,
): { realServers: RealServer[]; fellBack: boolean } {
  const selection = state.selection;
  let chosen: readonly Endpoint[] = selection.clusterEndpoints;
  let fellBack = false;
  if (policyLocal) {
    if (selection.localEndpoints.length > 0) chosen = selection.localEndpoints;
    else fellBack = selection.hasAnyEndpoints;
  }
  return { realServers: chosen.map((ep) => ({ ip: ep.ip, port: ep.port })), fellBack };
}

function contribution(
  state: ServicePortState,
  options: IpvsDesiredOptions,
  node: PlanNode,
  host: IpvsHostView,
): Contribution {
  const sp = state.servicePort;
  const protocol = sp.id.protocol;
  const proto = lower(protocol);
  const virtualServers: VirtualServer[] = [];
  const members: [SetKey, string][] = [];
  const bind: string[] = [];
  const outFilter: OutFilterDrop[] = [];
  const persistentSeconds = sp.sessionAffinity.type === 'ClientIP' ? sp.sessionAffinity.timeoutSeconds : 0;
  const vs = (ip: string, port: number, realServers: readonly RealServer[]): VirtualServer => ({
    family: options.family,
    ip,
    port,
    protocol,
    scheduler: options.scheduler,
    persistentSeconds,
    realServers,
  });
  const internal = realServersFor(state, sp.internalPolicyLocal);
  const external = realServersFor(state, sp.externalPolicyLocal);
  const hasExternal = sp.externalIPs.length > 0 || sp.loadBalancerVIPs.length > 0 || sp.nodePort !== 0;

  // Hairpin: every local endpoint may reach itself through the service.
  for (const ep of state.selection.allReachable)
    if (ep.isLocal) members.push(['loopBack', `${ep.ip},${proto}:${String(ep.port)},${ep.ip}`]);

  members.push(['clusterIP', `${sp.clusterIP},${proto}:${String(sp.port)}`]);
  virtualServers.push(vs(sp.clusterIP, sp.port, internal.realServers));
  bind.push(sp.clusterIP);

  for (const ip of sp.externalIPs) {
    members.push([
      sp.externalPolicyLocal ? 'externalIPLocal' : 'externalIP',
      `${ip},${proto}:${String(sp.port)}`,
    ]);
    virtualServers.push(vs(ip, sp.port, external.realServers));
    if (!host.otherInterfaceAddresses.includes(ip)) bind.push(ip);
  }

  const nodeIP = parseIP(node.nodeIP);
  for (const vip of sp.loadBalancerVIPs) {
    const entry = `${vip},${proto}:${String(sp.port)}`;
    members.push(['loadBalancer', entry]);
    if (sp.externalPolicyLocal) members.push(['loadBalancerLocal', entry]);
    if (sp.loadBalancerSourceRanges.length > 0) {
      members.push(['loadBalancerFW', entry]);
      let allowNode = false;
      for (const range of sp.loadBalancerSourceRanges) {
        // ipset lists a host network without its prefix length.
        members.push(['loadBalancerSourceCIDR', `${entry},${range.replace(/\/(32|128)$/, '')}`]);
        const cidr = parseCIDR(range);
        if (cidr && nodeIP && cidrContains(cidr, nodeIP)) allowNode = true;
      }
      if (allowNode) members.push(['loadBalancerSourceIP', `${entry},${vip}`]);
      else outFilter.push({ vip, protocol, port: sp.port });
    }
    virtualServers.push(vs(vip, sp.port, external.realServers));
    if (!host.otherInterfaceAddresses.includes(vip)) bind.push(vip);
  }

  // Without a node IP for NodePorts the node port and what follows it are skipped (1.7.3).
  if (sp.nodePort !== 0 && host.nodePortIPs.length > 0) {
    const port = String(sp.nodePort);
    switch (protocol) {
      case 'TCP':
      case 'UDP': {
        const [all, local]: [SetKey, SetKey] =
          protocol === 'TCP' ? ['nodePortTCP', 'nodePortLocalTCP'] : ['nodePortUDP', 'nodePortLocalUDP'];
        members.push([all, port]);
        if (sp.externalPolicyLocal) members.push([local, port]);
        break;
      }
      case 'SCTP':
        for (const ip of host.nodePortIPs) {
          members.push(['nodePortSCTP', `${ip},sctp:${port}`]);
          if (sp.externalPolicyLocal) members.push(['nodePortLocalSCTP', `${ip},sctp:${port}`]);
        }
        break;
    }
    for (const ip of host.nodePortIPs) virtualServers.push(vs(ip, sp.nodePort, external.realServers));
  }
  if (sp.healthCheckNodePort !== 0 && (sp.nodePort === 0 || host.nodePortIPs.length > 0))
    members.push(['healthCheckNodePort', String(sp.healthCheckNodePort)]);

  return {
    virtualServers,
    members,
    bind,
    outFilter,
    fallbackInternal: internal.fellBack,
    fallbackExternal: hasExternal && external.fellBack,
  };
}

/** Remembers contributions between syncs: an unchanged service port costs a map lookup. */
export class DesiredCache {
  #key = '';
  #byState = new WeakMap<ServicePortState, Contribution>();

  get(state: ServicePortState, key: string, make: () => Contribution): Contribution {
    if (key !== this.#key) {
      this.#key = key;
      this.#byState = new WeakMap();
    }
    let found = this.#byState.get(state);
    if (!found) {
      found = make();
      this.#byState.set(state, found);
    }
    return found;
  }
}

export function desiredState(
  snapshot: ProxySnapshot,
  options: IpvsDesiredOptions,
  host: IpvsHostView,
  cache: DesiredCache = new DesiredCache(),
): IpvsDesired {
  const node = planNodeOf(snapshot);
  const key = JSON.stringify([options, node, host]);
  const virtualServers = new Map<string, VirtualServer>();
  const sets = Object.fromEntries(SET_KEYS.map((k) => [k, new Set<string>()])) as Record<SetKey, Set<string>>;
  const bind = new Set<string>();
  const outFilter: OutFilterDrop[] = [];
  let internal = 0;
  let external = 0;
  // Two Services listing the same external IP (or load balancer IP) and port contend for one
  // virtual server: the smallest service port key wins, as in the other modes (the nftables
  // ledger, the iptables rule order), whatever order the Services arrived in.
  const owners = new Map<string, string>();
  for (const state of snapshot.servicePorts.values()) {
    const c = cache.get(state, key, () => contribution(state, options, node, host));
    const owner = state.servicePort.id.key;
    for (const vs of c.virtualServers) {
      const id = vsKey(vs);
      const current = owners.get(id);
      if (current !== undefined && current < owner) continue;
      owners.set(id, owner);
      virtualServers.set(id, vs);
    }
    for (const [set, member] of c.members) sets[set].add(member);
    for (const ip of c.bind) bind.add(ip);
    outFilter.push(...c.outFilter);
    if (c.fallbackInternal) internal++;
    if (c.fallbackExternal) external++;
  }
  for (const ip of bind) sets.ipvsIPs.add(ip);
  return {
    family: options.family,
    virtualServers,
    sets,
    bind,
    outFilter,
    localFallbacks: { internal, external },
  };
}
