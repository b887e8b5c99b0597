// The traffic plan of one service port: its frontends and, for each kind of arriving packet,
// what happens to it (spec 3.5, upstream's per-service decisions). Every mode's renderer
// translates this into its rule language; conntrack cleanup, service health checks, metrics and
// the explainer read it. A decision made here is made nowhere else. Pure.
import type { Endpoint, IPFamily, ProxySnapshot, ServicePort, ServicePortState } from '../model/types.ts';
import { primaryNodeIP } from '../model/node.ts';
import { cidrContains, parseCIDR, parseIP } from '../util/ip.ts';

/** What traffic of one kind that reached a frontend gets. */
export type Verdict =
  /** DNAT to one of these endpoints (never empty), chosen at random (or by affinity). */
  | { readonly kind: 'dnat'; readonly policy: 'Cluster' | 'Local'; readonly endpoints: readonly Endpoint[] }
  /** Endpoints exist, but none on this node and the traffic policy is Local. */
  | { readonly kind: 'drop'; readonly reason: 'no local endpoints' }
  /** No usable endpoint anywhere: the client is told at once (ICMP port unreachable / TCP RST). */
  | { readonly kind: 'reject'; readonly reason: 'no endpoints' };

/** How a packet reaches a service port. */
export type Frontend = 'cluster IP' | 'external IP' | 'load balancer IP' | 'node port';

/** One service address of a port (the node port has none: it is open on node addresses). */
export interface FrontendAddress {
  readonly frontend: Exclude<Frontend, 'node port'>;
  readonly ip: string;
}

/** loadBalancerSourceRanges of a service port that has them, LB VIPs and endpoints. */
export interface FirewallPlan {
  /** Canonical CIDRs of the family: sources allowed to reach the LB VIPs. */
  readonly sourceRanges: readonly string[];
  /**
   * A range covers the node's IP: the node's own requests, which may leave with a VIP as their
   * source (the VIP is a local address on some load balancers), are allowed too.
   */
  readonly allowVIPSources: boolean;
}

/** The node facts a plan depends on; the key changes whenever a plan could. */
export interface PlanNode {
  readonly family: IPFamily;
  /** The node's primary IP of the family, bindAddress applied (model/node.ts primaryNodeIP). */
  readonly nodeIP: string;
}

export interface ServicePortPlan {
  readonly state: ServicePortState;
  /** The node facts this plan was made with. */
  readonly node: PlanNode;
  readonly servicePort: ServicePort;
  /** Some usable endpoint exists anywhere in the cluster. */
  readonly hasEndpoints: boolean;
  /** The cluster IP, then external IPs, then load balancer IPs, each at servicePort.port. */
  readonly addresses: readonly FrontendAddress[];
  /** Has a node port, external IPs or load balancer IPs. */
  readonly externallyAccessible: boolean;
  /** Traffic to the cluster IP (internalTrafficPolicy), from pods and from the node. */
  readonly internal: Verdict;
  /**
   * Traffic to external IPs, LB VIPs and the node port that comes from outside this node
   * (externalTrafficPolicy). Meaningful only when externallyAccessible.
   */
  readonly external: Verdict;
  /**
   * eTP=Local with endpoints: traffic from a local pod or from the node itself to an external
   * frontend is handled as if it went out to the load balancer and came back, so neither policy
   * applies: it goes to `clusterEndpoints`, the node's own masqueraded. Undefined otherwise.
   */
  readonly externalShortcut: readonly Endpoint[] | undefined;
  /** External traffic (eTP=Cluster) is masqueraded: the reply must come back through this node. */
  readonly masqueradeExternal: boolean;
  /** Undefined when the port has no source ranges, no LB VIPs or no endpoints. */
  readonly firewall: FirewallPlan | undefined;
  /** ClientIP affinity timeout in seconds; 0 without affinity. */
  readonly affinitySeconds: number;
  /** The endpoint set cluster-policy traffic uses, when some traffic uses it (else empty). */
  readonly clusterEndpoints: readonly Endpoint[];
  /** The endpoint set local-policy traffic uses, when some traffic uses it (else empty). */
  readonly localEndpoints: readonly Endpoint[];
  /** Every endpoint some traffic may reach. */
  readonly reachable: readonly Endpoint[];
}

function verdict(
  hasEndpoints: boolean,
  policyLocal: boolean,
  cluster: readonly Endpoint[],
  local: readonly Endpoint[],
): Verdict {
  if (!hasEndpoints) return { kind: 'reject', reason: 'no endpoints' };
  if (policyLocal) {
    return local.length > 0
      ? { kind: 'dnat', policy: 'Local', endpoints: local }
      : { kind: 'drop', reason: 'no local endpoints' };
  }
  // hasEndpoints means the cluster-wide selection is not empty (model/selection.ts).
  return { kind: 'dnat', policy: 'Cluster', endpoints: cluster };
}

function firewallPlan(sp: ServicePort, node: PlanNode, hasEndpoints: boolean): FirewallPlan | undefined {
  if (!hasEndpoints || sp.loadBalancerVIPs.length === 0 || sp.loadBalancerSourceRanges.length === 0) {
    return undefined;
  }
  const nodeIP = parseIP(node.nodeIP);
  const sourceRanges: string[] = [];
  let allowVIPSources = false;
  for (const text of sp.loadBalancerSourceRanges) {
    const cidr = parseCIDR(text);
    if (!cidr || cidr.family !== node.family) continue;
    sourceRanges.push(cidr.text);
    if (nodeIP && cidrContains(cidr, nodeIP)) allowVIPSources = true;
  }
  return { sourceRanges, allowVIPSources };
}

/** The plan of one service port. Cheap; callers that keep plans cache them by state identity. */
export function planServicePort(state: ServicePortState, node: PlanNode): ServicePortPlan {
  const sp = state.servicePort;
  const selection = state.selection;
  const hasEndpoints = selection.hasAnyEndpoints;
  const externallyAccessible =
    sp.nodePort !== 0 || sp.loadBalancerVIPs.length > 0 || sp.externalIPs.length > 0;
  const internal = verdict(
    hasEndpoints,
    sp.internalPolicyLocal,
    selection.clusterEndpoints,
    selection.localEndpoints,
  );
  const external = verdict(
    hasEndpoints,
    sp.externalPolicyLocal,
    selection.clusterEndpoints,
    selection.localEndpoints,
  );
  const externalShortcut =
    hasEndpoints && externallyAccessible && sp.externalPolicyLocal ? selection.clusterEndpoints : undefined;
  // Which endpoint sets some traffic uses (upstream: usesClusterPolicyChain / usesLocalPolicyChain).
  const usesCluster = !sp.internalPolicyLocal || externallyAccessible;
  const usesLocal = sp.internalPolicyLocal || (sp.externalPolicyLocal && externallyAccessible);
  return {
    state,
    node,
    servicePort: sp,
    hasEndpoints,
    addresses: [
      { frontend: 'cluster IP', ip: sp.clusterIP },
      ...sp.externalIPs.map((ip) => ({ frontend: 'external IP' as const, ip })),
      ...sp.loadBalancerVIPs.map((ip) => ({ frontend: 'load balancer IP' as const, ip })),
    ],
    externallyAccessible,
    internal,
    external,
    externalShortcut,
    masqueradeExternal: !sp.externalPolicyLocal,
    firewall: firewallPlan(sp, node, hasEndpoints),
    affinitySeconds: sp.sessionAffinity.type === 'ClientIP' ? sp.sessionAffinity.timeoutSeconds : 0,
    clusterEndpoints: usesCluster ? selection.clusterEndpoints : [],
    localEndpoints: usesLocal ? selection.localEndpoints : [],
    reachable: selection.allReachable,
  };
}

// Memoised by state identity: the renderers, the sync loop, conntrack cleanup and the explainer
// ask for the same unchanged states every sync, and a state object never changes. A plan made
// for another node IP is made again.
const plans = new WeakMap<ServicePortState, ServicePortPlan>();

/** planServicePort, computed once per state object (and node). */
export function planOf(state: ServicePortState, node: PlanNode): ServicePortPlan {
  const cached = plans.get(state);
  if (cached !== undefined && cached.node.nodeIP === node.nodeIP && cached.node.family === node.family) {
    return cached;
  }
  const plan = planServicePort(state, node);
  plans.set(state, plan);
  return plan;
}

/** A traffic kind whose verdict is "no local endpoints": what the no-local-endpoints gauges count. */
export function dropsForNoLocalEndpoints(plan: ServicePortPlan): { internal: boolean; external: boolean } {
  return {
    internal: plan.internal.kind === 'drop',
    external: plan.externallyAccessible && plan.external.kind === 'drop',
  };
}

/** The plan's view of a snapshot's node. */
export function planNodeOf(snapshot: ProxySnapshot): PlanNode {
  return { family: snapshot.family, nodeIP: primaryNodeIP(snapshot.node, snapshot.family) };
}

/** The plans of every service port of a snapshot, in its (sorted) order. */
export function* plansOf(snapshot: ProxySnapshot): Generator<ServicePortPlan> {
  const node = planNodeOf(snapshot);
  for (const state of snapshot.servicePorts.values()) yield planOf(state, node);
}
