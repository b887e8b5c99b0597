// Where one packet goes, decided from the plans alone: the engine behind the packet-flow tables
// (each mode's tracer must agree with it) and the explainer. It walks the same decisions the
// renderers translate: which frontend the destination is, the source-range firewall, the
// internal or external verdict, the eTP=Local shortcut and masquerade. Pure.
import type { Endpoint, IPFamily, Protocol, ServicePortState } from '../model/types.ts';
import { cidrContains, isLoopback, parseCIDR, parseIP } from '../util/ip.ts';
import { isFromLocalPod, type LocalTrafficDetector } from './local-traffic.ts';
import type { NodePortAddresses } from './node-ports.ts';
import { planOf, type Frontend, type PlanNode, type ServicePortPlan, type Verdict } from './service-port.ts';

/** What the node knows that decides a packet's fate besides the Services. */
export interface TrafficContext {
  readonly family: IPFamily;
  readonly node: PlanNode;
  /** This host's own addresses of the family (`addrtype LOCAL`, `fib daddr type local`). */
  readonly localAddresses: readonly string[];
  readonly localDetector: LocalTrafficDetector;
  readonly masqueradeAll: boolean;
  readonly nodePortAddresses: NodePortAddresses;
  /** When not matchAll: the local addresses inside the node port CIDRs. */
  readonly nodePortIPs: readonly string[];
  /** Localhost NodePorts are in effect (IPv4 iptables only: node-ports.ts). */
  readonly localhostNodePorts: boolean;
}

export interface Packet {
  readonly source: string;
  readonly destination: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** The interface a packet from the network arrived on; undefined for the node's own packets. */
  readonly inInterface?: string | undefined;
  /** Sent by this node itself (OUTPUT); otherwise it arrived from a pod or the network. */
  readonly fromNode: boolean;
}

/** One endpoint a packet may be sent to, and whether its source is rewritten on the way. */
export interface Destination {
  readonly endpoint: string;
  readonly ip: string;
  readonly port: number;
  readonly masquerade: boolean;
}

export type PacketOutcome =
  /** No Service frontend matches: the proxy's rules leave the packet alone. */
  | { readonly kind: 'not a service' }
  | {
      readonly kind: 'dnat';
      readonly servicePort: string;
      readonly frontend: Frontend;
      readonly destinations: readonly Destination[];
      /** The decisions that led here, in order, each naming the Kubernetes field behind it. */
      readonly because: readonly string[];
    }
  | {
      readonly kind: 'drop' | 'reject';
      readonly servicePort: string;
      readonly frontend: Frontend;
      readonly because: readonly string[];
    };

interface Hit {
  readonly plan: ServicePortPlan;
  readonly frontend: Frontend;
}

function isLocalAddress(ctx: TrafficContext, ip: string): boolean {
  return ctx.localAddresses.includes(ip);
}

/** Whether a node port on this destination address is open for a DNAT (spec 8.1). */
function acceptsNodePort(ctx: TrafficContext, destination: string): boolean {
  const ip = parseIP(destination);
  if (!ip || ip.family !== ctx.family) return false;
  if (isLoopback(ip)) return ctx.localhostNodePorts && ip.family === 'IPv4';
  if (ctx.nodePortAddresses.matchAll) return isLocalAddress(ctx, ip.text);
  return ctx.nodePortIPs.includes(ip.text);
}

function findFrontend(
  states: Iterable<ServicePortState>,
  ctx: TrafficContext,
  packet: Packet,
): Hit | undefined {
  const candidates: Hit[] = [];
  for (const state of states) {
    const sp = state.servicePort;
    if (sp.id.protocol !== packet.protocol) continue;
    if (sp.port === packet.port) {
      const plan = planOf(state, ctx.node);
      const address = plan.addresses.find((candidate) => candidate.ip === packet.destination);
      if (address?.frontend === 'cluster IP') return { plan, frontend: 'cluster IP' };
      if (address) candidates.push({ plan, frontend: address.frontend });
    }
    if (sp.nodePort !== 0 && sp.nodePort === packet.port) {
      const plan = planOf(state, ctx.node);
      // A node port without a DNAT (no endpoints, no local ones) is refused on every local
      // address, as the filter rules of every mode match any local destination.
      const open =
        plan.external.kind === 'dnat' || plan.externalShortcut !== undefined
          ? acceptsNodePort(ctx, packet.destination)
          : isLocalAddress(ctx, packet.destination) || acceptsNodePort(ctx, packet.destination);
      if (open) candidates.push({ plan, frontend: 'node port' });
    }
  }
  // Service addresses come before node ports: KUBE-NODEPORTS is the last rule of KUBE-SERVICES.
  return candidates.find((hit) => hit.frontend !== 'node port') ?? candidates[0];
}

function destinations(endpoints: readonly Endpoint[], source: string, masquerade: boolean): Destination[] {
  // An endpoint reaching itself through the Service is always masqueraded (hairpin), or its
  // reply would go straight back to itself with the wrong source.
  return endpoints.map((ep) => ({
    endpoint: ep.endpoint,
    ip: ep.ip,
    port: ep.port,
    masquerade: masquerade || ep.ip === source,
  }));
}

/** Who sent a packet to a frontend, as far as its fate depends on it. */
export interface ClientFacts {
  readonly source: string;
  /** Sent by the node itself, or with one of the node's addresses as its source. */
  readonly fromNode: boolean;
  /** The local-traffic detector calls it a local pod's (never for the node's own packets). */
  readonly fromLocalPod: boolean;
}

/** What the plan does with a packet that reached one frontend of a service port. */
export type FrontendDecision =
  | {
      readonly kind: 'dnat';
      /** Never empty. */
      readonly endpoints: readonly Endpoint[];
      /** Masqueraded on the way (an endpoint reaching itself is masqueraded whatever this says). */
      readonly masquerade: boolean;
      readonly because: readonly string[];
    }
  | { readonly kind: 'drop' | 'reject'; readonly because: readonly string[] };

/** The settings a frontend decision reads besides the plan. */
export type DecisionContext = Pick<TrafficContext, 'masqueradeAll' | 'localDetector'>;

function blocked(verdict: Exclude<Verdict, { kind: 'dnat' }>, because: string[]): FrontendDecision {
  because.push(
    verdict.kind === 'reject'
      ? 'no ready (or serving terminating) endpoint in any EndpointSlice: rejected'
      : 'no endpoint on this node and the traffic policy is Local: dropped',
  );
  return { kind: verdict.kind, because };
}

/** Whether loadBalancerSourceRanges let this source reach the port's LB VIPs (true without ranges). */
export function firewallAllows(plan: ServicePortPlan, source: string): boolean {
  const firewall = plan.firewall;
  if (!firewall) return true;
  const ip = parseIP(source);
  return (
    (ip !== undefined &&
      firewall.sourceRanges.some((range) => {
        const cidr = parseCIDR(range);
        return cidr !== undefined && cidrContains(cidr, ip);
      })) ||
    (firewall.allowVIPSources && plan.servicePort.loadBalancerVIPs.includes(source))
  );
}

/**
 * The fate of a packet from `client` that reached `frontend` of the plan's service port: the
 * source-range firewall (LB VIPs), the eTP=Local shortcut for local pods and the node, the
 * internal or external verdict, and masquerade. Every mode decides per frontend with this, the
 * kernel modes through their rules (checked by the flow tables), the userspace mode per
 * connection.
 */
export function decideFrontend(
  plan: ServicePortPlan,
  frontend: Frontend,
  ctx: DecisionContext,
  client: ClientFacts,
  because: string[] = [],
): FrontendDecision {
  const sp = plan.servicePort;
  if (frontend === 'cluster IP') {
    if (plan.internal.kind !== 'dnat') return blocked(plan.internal, because);
    because.push(
      sp.internalPolicyLocal
        ? 'spec.internalTrafficPolicy is Local: endpoints on this node only'
        : 'spec.internalTrafficPolicy is Cluster: endpoints anywhere',
    );
    // Traffic from outside the pod network may have been bounced here by another node.
    const masquerade = ctx.masqueradeAll || (ctx.localDetector.kind !== 'none' && !client.fromLocalPod);
    if (masquerade) {
      because.push(
        ctx.masqueradeAll ? 'masqueradeAll is set: masqueraded' : 'not from a local pod: masqueraded',
      );
    }
    return { kind: 'dnat', endpoints: plan.internal.endpoints, masquerade, because };
  }

  if (frontend === 'load balancer IP' && plan.firewall) {
    if (!firewallAllows(plan, client.source)) {
      because.push(`source ${client.source} is outside spec.loadBalancerSourceRanges: dropped`);
      return { kind: 'drop', because };
    }
    because.push(`source ${client.source} is inside spec.loadBalancerSourceRanges`);
  }

  if (plan.externalShortcut !== undefined && (client.fromLocalPod || client.fromNode)) {
    because.push(
      client.fromNode
        ? 'externalTrafficPolicy Local does not apply to the node itself: any endpoint, masqueraded'
        : 'externalTrafficPolicy Local does not apply to local pods: any endpoint',
    );
    return { kind: 'dnat', endpoints: plan.externalShortcut, masquerade: client.fromNode, because };
  }
  if (plan.external.kind !== 'dnat') return blocked(plan.external, because);
  because.push(
    plan.masqueradeExternal
      ? 'spec.externalTrafficPolicy is Cluster: endpoints anywhere, masqueraded'
      : 'spec.externalTrafficPolicy is Local: endpoints on this node, client source kept',
  );
  return { kind: 'dnat', endpoints: plan.external.endpoints, masquerade: plan.masqueradeExternal, because };
}

/** The fate of one packet of `ctx.family` given every service port state of that family. */
export function tracePacketThroughPlan(
  states: Iterable<ServicePortState>,
  ctx: TrafficContext,
  packet: Packet,
): PacketOutcome {
  const hit = findFrontend(states, ctx, packet);
  if (!hit) return { kind: 'not a service' };
  const { plan, frontend } = hit;
  const servicePort = plan.servicePort.id.key;
  const fromNode = packet.fromNode || isLocalAddress(ctx, packet.source);
  const fromLocalPod =
    !packet.fromNode &&
    isFromLocalPod(ctx.localDetector, { ip: packet.source, inInterface: packet.inInterface });
  const decision = decideFrontend(plan, frontend, ctx, { source: packet.source, fromNode, fromLocalPod }, [
    `${packet.destination}:${packet.port}/${packet.protocol} is the ${frontend} of ${servicePort}`,
  ]);
  if (decision.kind !== 'dnat')
    return { kind: decision.kind, servicePort, frontend, because: decision.because };
  return {
    kind: 'dnat',
    servicePort,
    frontend,
    destinations: destinations(decision.endpoints, packet.source, decision.masquerade),
    because: decision.because,
  };
}
