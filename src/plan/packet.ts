// Where one packet goes, decided from the plans alone: the engine behind the packet-flow tables
// (each mode's tracer must agree with it) and the explainer. It walks the same decisions the
// renderers translate: which frontend the destination is, the source-range firewall, the
// internal or external verdict, the eTP=Local shortcut and masquerade. Pure.
import type { IPFamily, Protocol, ServicePortState } from '../model/types.ts';
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

function destinations(
  verdict: Extract<Verdict, { kind: 'dnat' }>,
  source: string,
  masquerade: boolean,
): Destination[] {
  // An endpoint reaching itself through the Service is always masqueraded (hairpin), or its
  // reply would go straight back to itself with the wrong source.
  return verdict.endpoints.map((ep) => ({
    endpoint: ep.endpoint,
    ip: ep.ip,
    port: ep.port,
    masquerade: masquerade || ep.ip === source,
  }));
}

function blocked(verdict: Exclude<Verdict, { kind: 'dnat' }>, hit: Hit, because: string[]): PacketOutcome {
  because.push(
    verdict.kind === 'reject'
      ? 'no ready (or serving terminating) endpoint in any EndpointSlice: rejected'
      : 'no endpoint on this node and the traffic policy is Local: dropped',
  );
  return { kind: verdict.kind, servicePort: hit.plan.servicePort.id.key, frontend: hit.frontend, because };
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
  const sp = plan.servicePort;
  const key = sp.id.key;
  const because: string[] = [
    `${packet.destination}:${packet.port}/${packet.protocol} is the ${frontend} of ${key}`,
  ];
  const fromNode = packet.fromNode || isLocalAddress(ctx, packet.source);
  const fromLocalPod =
    !packet.fromNode &&
    isFromLocalPod(ctx.localDetector, { ip: packet.source, inInterface: packet.inInterface });

  if (frontend === 'cluster IP') {
    if (plan.internal.kind !== 'dnat') return blocked(plan.internal, hit, because);
    because.push(
      sp.internalPolicyLocal
        ? 'spec.internalTrafficPolicy is Local: endpoints on this node only'
        : 'spec.internalTrafficPolicy is Cluster: endpoints anywhere',
    );
    // Traffic from outside the pod network may have been bounced here by another node.
    const masquerade = ctx.masqueradeAll || (ctx.localDetector.kind !== 'none' && !fromLocalPod);
    if (masquerade) {
      because.push(
        ctx.masqueradeAll ? 'masqueradeAll is set: masqueraded' : 'not from a local pod: masqueraded',
      );
    }
    return {
      kind: 'dnat',
      servicePort: key,
      frontend,
      destinations: destinations(plan.internal, packet.source, masquerade),
      because,
    };
  }

  if (frontend === 'load balancer IP' && plan.firewall) {
    const firewall = plan.firewall;
    const source = parseIP(packet.source);
    const allowed =
      (source !== undefined &&
        firewall.sourceRanges.some((range) => {
          const cidr = parseCIDR(range);
          return cidr !== undefined && cidrContains(cidr, source);
        })) ||
      (firewall.allowVIPSources && sp.loadBalancerVIPs.includes(packet.source));
    if (!allowed) {
      because.push(`source ${packet.source} is outside spec.loadBalancerSourceRanges: dropped`);
      return { kind: 'drop', servicePort: key, frontend, because };
    }
    because.push(`source ${packet.source} is inside spec.loadBalancerSourceRanges`);
  }

  if (plan.externalShortcut !== undefined && (fromLocalPod || fromNode)) {
    because.push(
      fromNode
        ? 'externalTrafficPolicy Local does not apply to the node itself: any endpoint, masqueraded'
        : 'externalTrafficPolicy Local does not apply to local pods: any endpoint',
    );
    const shortcut: Verdict = { kind: 'dnat', policy: 'Cluster', endpoints: plan.externalShortcut };
    return {
      kind: 'dnat',
      servicePort: key,
      frontend,
      destinations: destinations(shortcut, packet.source, fromNode),
      because,
    };
  }
  if (plan.external.kind !== 'dnat') return blocked(plan.external, hit, because);
  because.push(
    plan.masqueradeExternal
      ? 'spec.externalTrafficPolicy is Cluster: endpoints anywhere, masqueraded'
      : 'spec.externalTrafficPolicy is Local: endpoints on this node, client source kept',
  );
  return {
    kind: 'dnat',
    servicePort: key,
    frontend,
    destinations: destinations(plan.external, packet.source, plan.masqueradeExternal),
    because,
  };
}
