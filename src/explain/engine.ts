// The explain engine: one packet, one node's state, and the full answer to "where does this
// packet go, and why". Every decision comes from the traffic plan (plan/packet.ts,
// plan/service-port.ts) and the model's selection; nothing is decided here again. This module
// only names the Kubernetes field behind each decision, lists the endpoints with the reason they
// are or are not used, and asks the mode's tracer for the exact rule path over the rules the
// mode renders for the same state. Pure.
import type { ModeExplainer, RenderedRules } from '../dataplane/common/explain.ts';
import { localDetectorFor } from '../dataplane/common/settings.ts';
import { formatOutcome, TraceError, type FlowOutcome, type TraceResult } from '../dataplane/common/trace.ts';
import { MODES, type ModeName } from '../dataplane/modes.ts';
import { primaryNodeIP } from '../model/node.ts';
import { describeValue } from '../model/problem.ts';
import { topologyMode } from '../model/selection.ts';
import type { Endpoint, IPFamily, Protocol, ServicePortState } from '../model/types.ts';
import { isFromLocalPod, type LocalTrafficDetector } from '../plan/local-traffic.ts';
import { addressesInside, localhostNodePortsEffective, nodePortAddressesFor } from '../plan/node-ports.ts';
import {
  decideFrontend,
  firewallAllows,
  tracePacketThroughPlan,
  type FrontendDecision,
  type TrafficContext,
} from '../plan/packet.ts';
import { planOf, type Frontend, type ServicePortPlan } from '../plan/service-port.ts';
import { cidrContains, isLoopback, parseCIDR, parseIP, type ParsedIP } from '../util/ip.ts';
import { localAddressesOf, snapshotOf, type ExplainFamily, type ExplainState } from './state.ts';
import {
  EXPLAIN_API_VERSION,
  type Arrival,
  type Decision,
  type ExplainedEndpoint,
  type Explanation,
  type MatchKind,
  type PathStep,
} from './types.ts';

/** Bad input to explain (an address that is not one, mixed families): the message names it. */
export class ExplainError extends Error {
  override readonly name = 'ExplainError';
}

/** The packet to explain, as the CLI flags and the HTTP query give it. */
export interface PacketQuery {
  readonly src: string;
  readonly dst: string;
  readonly dport: number;
  readonly proto?: Protocol | undefined;
  /** How the packet arrives; inferred from the source address when absent. */
  readonly from?: Arrival | undefined;
  /** The interface it arrives on (only BridgeInterface / InterfaceNamePrefix detection reads it). */
  readonly iif?: string | undefined;
}

export const CAVEAT_SCOPE = "kube-proxy's view only: NetworkPolicy, routing and the CNI decide the rest";

const FRONTEND_MATCH: Readonly<Record<Frontend, MatchKind>> = {
  'cluster IP': 'clusterIP',
  'external IP': 'externalIP',
  'load balancer IP': 'loadBalancerIP',
  'node port': 'nodePort',
};

/** The mode's explainer, when the mode has one. */
export function explainerOf(mode: string): ModeExplainer | undefined {
  return Object.hasOwn(MODES, mode) ? MODES[mode as ModeName].explainer : undefined;
}

function requireIP(text: string, flag: string): ParsedIP {
  const ip = parseIP(text);
  if (!ip) throw new ExplainError(`${flag} ${describeValue(text)} is not an IP address`);
  return ip;
}

/** Checks the query, naming the offending flag. */
function checkQuery(query: PacketQuery): { src: ParsedIP; dst: ParsedIP; proto: Protocol } {
  const src = requireIP(query.src, '--src');
  const dst = requireIP(query.dst, '--dst');
  if (src.family !== dst.family) {
    throw new ExplainError(
      `--src ${src.text} is an ${src.family} address and --dst ${dst.text} an ${dst.family} one: a packet has one family`,
    );
  }
  if (!Number.isInteger(query.dport) || query.dport < 1 || query.dport > 65535) {
    throw new ExplainError(`--dport ${describeValue(query.dport)} is not a port number (1-65535)`);
  }
  return { src, dst, proto: query.proto ?? 'TCP' };
}

function inAnyCIDR(ip: ParsedIP, cidrs: readonly string[]): boolean {
  return cidrs.some((text) => {
    const cidr = parseCIDR(text);
    return cidr !== undefined && cidr.family === ip.family && cidrContains(cidr, ip);
  });
}

/** The interface a packet from `from` is assumed to arrive on when the caller named none. */
function assumedInterface(from: Arrival, detector: LocalTrafficDetector): string | undefined {
  if (from === 'node') return undefined;
  if (from === 'external') return 'eth0';
  switch (detector.kind) {
    case 'bridge':
      return detector.iface;
    case 'prefix':
      return `${detector.prefix}0`;
    case 'cidr':
    case 'none':
      return 'veth0';
  }
}

function detectionText(detector: LocalTrafficDetector): string {
  switch (detector.kind) {
    case 'none':
      return 'none';
    case 'cidr':
      return `source in ${detector.cidr}`;
    case 'bridge':
      return `arrives on ${detector.iface}`;
    case 'prefix':
      return `arrives on ${detector.prefix}*`;
  }
}

/** The plan's context for one family, with the mode's node-port facts. */
function trafficContext(
  state: ExplainState,
  family: ExplainFamily,
  detector: LocalTrafficDetector,
  explainer: ModeExplainer | undefined,
): TrafficContext {
  const localAddresses = localAddressesOf(family);
  const resolved = nodePortAddressesFor(state.settings.nodePortAddresses, family.family, family.node.nodeIPs);
  return {
    family: family.family,
    node: { family: family.family, nodeIP: primaryNodeIP(family.node, family.family) },
    localAddresses,
    localDetector: detector,
    masqueradeAll: state.settings.masqueradeAll,
    nodePortAddresses: resolved,
    nodePortIPs: resolved.matchAll ? [] : addressesInside(resolved, localAddresses),
    localhostNodePorts: localhostNodePortsEffective(
      resolved,
      state.settings.localhostNodePorts,
      explainer?.localhostNodePorts ?? false,
    ),
  };
}

interface Client {
  readonly src: ParsedIP;
  readonly from: Arrival;
  readonly iif: string | undefined;
  readonly fromNode: boolean;
  readonly fromLocalPod: boolean;
}

function ratio(count: number, total: number): string {
  return `${count} of ${total}`;
}

function nodeList(endpoints: readonly Endpoint[]): string {
  const nodes = [...new Set(endpoints.map((ep) => ep.nodeName || '(no node)'))];
  return nodes.join(', ');
}

/** The decisions behind a packet that reached a frontend, in the order the rules take them. */
function decisionsFor(
  state: ServicePortState,
  plan: ServicePortPlan,
  frontend: Frontend,
  decision: FrontendDecision,
  client: Client,
  ctx: TrafficContext,
  node: { name: string; zone: string },
): Decision[] {
  const sp = plan.servicePort;
  const out: Decision[] = [];
  const external = frontend !== 'cluster IP';

  if (frontend === 'load balancer IP') {
    if (sp.loadBalancerSourceRanges.length === 0) {
      out.push({
        step: 'sourceRanges',
        outcome: 'none set',
        because: 'no loadBalancerSourceRanges: every source may reach the load balancer IP',
        fields: ['spec.loadBalancerSourceRanges'],
      });
    } else if (!plan.firewall) {
      out.push({
        step: 'sourceRanges',
        outcome: 'not enforced',
        because: 'the port has no usable endpoints, so no firewall is written',
        fields: ['spec.loadBalancerSourceRanges'],
      });
    } else {
      const allowed = firewallAllows(plan, client.src.text);
      out.push({
        step: 'sourceRanges',
        outcome: allowed ? 'allowed' : 'dropped',
        because: allowed
          ? `${client.src.text} is inside ${plan.firewall.sourceRanges.join(', ')}`
          : `${client.src.text} is outside ${plan.firewall.sourceRanges.join(', ') || '(no range of this family)'}`,
        fields: ['spec.loadBalancerSourceRanges'],
      });
      if (!allowed) return out;
    }
  }

  const shortcut =
    external && plan.externalShortcut !== undefined && (client.fromLocalPod || client.fromNode);
  const policyLocal = external ? sp.externalPolicyLocal : sp.internalPolicyLocal;
  const policyField = external ? 'spec.externalTrafficPolicy' : 'spec.internalTrafficPolicy';
  const verdict = external ? plan.external : plan.internal;
  if (shortcut) {
    out.push({
      step: 'trafficPolicy',
      outcome: 'Local, not applied',
      because: `externalTrafficPolicy=Local does not apply to ${client.fromNode ? 'the node itself' : 'pods on this node'}: endpoints anywhere in the cluster`,
      fields: ['spec.externalTrafficPolicy'],
    });
  } else if (verdict.kind === 'drop') {
    out.push({
      step: 'trafficPolicy',
      outcome: 'Local: dropped',
      because: `${policyField.slice(5)}=Local and none of the ${state.endpoints.filter((ep) => ep.ready).length} ready endpoints is on ${node.name}`,
      fields: [policyField, 'endpoints[].nodeName'],
    });
  } else {
    out.push({
      step: 'trafficPolicy',
      outcome: policyLocal ? 'Local' : 'Cluster',
      because: policyLocal
        ? `${policyField.slice(5)}=Local: only endpoints on ${node.name}`
        : `${policyField.slice(5)}=Cluster: endpoints anywhere in the cluster`,
      fields: [policyField],
    });
  }

  // Topology hints only narrow the cluster-wide set (model/selection.ts).
  const usesCluster = decision.kind === 'dnat' && (shortcut || !policyLocal);
  if (usesCluster) {
    const mode = topologyMode(state.endpoints, node);
    const ready = state.endpoints.filter((ep) => ep.ready);
    const someHints = ready.some((ep) => ep.zoneHints !== undefined || ep.nodeHints !== undefined);
    out.push({
      step: 'topology',
      outcome: mode,
      because:
        mode === 'PreferSameNode'
          ? `every ready endpoint has node hints and some are for ${node.name}`
          : mode === 'PreferSameZone'
            ? `every ready endpoint has zone hints and some are for zone ${describeValue(node.zone)}`
            : someHints
              ? 'hints ignored: not every ready endpoint has them, or none is for this node or zone'
              : 'the endpoints carry no hints',
      fields: [
        'spec.trafficDistribution',
        'endpoints[].hints.forZones',
        'endpoints[].hints.forNodes',
        'Node label topology.kubernetes.io/zone',
      ],
    });
  }

  const readyCount = state.endpoints.filter((ep) => ep.ready).length;
  out.push({
    step: 'readiness',
    outcome: `${ratio(readyCount, state.endpoints.length)} ready`,
    because: 'ready endpoints take new connections; the others only as a fallback or not at all',
    fields: ['endpoints[].conditions.ready'],
  });
  if (decision.kind === 'dnat' && decision.endpoints.every((ep) => !ep.ready)) {
    out.push({
      step: 'terminatingFallback',
      outcome: 'used',
      because: 'no usable endpoint is ready: endpoints still serving while terminating take the traffic',
      fields: ['endpoints[].conditions.serving', 'endpoints[].conditions.terminating'],
    });
  }

  if (decision.kind !== 'dnat') {
    if (decision.kind === 'reject') {
      out.push({
        step: 'noEndpoints',
        outcome: 'rejected',
        because: 'no ready (or serving terminating) endpoint in any EndpointSlice of the Service',
        fields: ['EndpointSlice endpoints[]', 'endpoints[].conditions'],
      });
    }
    return out;
  }

  out.push({
    step: 'sessionAffinity',
    outcome: plan.affinitySeconds > 0 ? 'ClientIP' : 'None',
    because:
      plan.affinitySeconds > 0
        ? `a client that connected in the last ${plan.affinitySeconds}s goes back to the same endpoint`
        : 'each new connection picks an endpoint at random',
    fields:
      plan.affinitySeconds > 0
        ? ['spec.sessionAffinity', 'spec.sessionAffinityConfig.clientIP.timeoutSeconds']
        : ['spec.sessionAffinity'],
  });

  out.push(masqueradeDecision(plan, frontend, decision.masquerade, client, ctx, shortcut));

  const hairpin = decision.endpoints.some((ep) => ep.ip === client.src.text);
  out.push({
    step: 'hairpin',
    outcome: hairpin ? 'yes' : 'no',
    because: hairpin
      ? 'the client is one of the endpoints: its connection to itself is masqueraded, or the reply would bypass the NAT'
      : 'the client is not one of the endpoints',
    fields: [],
  });
  return out;
}

function masqueradeDecision(
  plan: ServicePortPlan,
  frontend: Frontend,
  masquerade: boolean,
  client: Client,
  ctx: TrafficContext,
  shortcut: boolean,
): Decision {
  const yes = masquerade ? 'yes' : 'no';
  if (frontend === 'cluster IP') {
    if (ctx.masqueradeAll) {
      return { step: 'masquerade', outcome: yes, because: 'masqueradeAll is set', fields: ['masqueradeAll'] };
    }
    const fields = ['detectLocalMode', 'clusterCIDR'];
    if (ctx.localDetector.kind === 'none') {
      return {
        step: 'masquerade',
        outcome: yes,
        because: 'local traffic detection is off for this family, so only masqueradeAll would masquerade',
        fields,
      };
    }
    return {
      step: 'masquerade',
      outcome: yes,
      because: client.fromLocalPod
        ? `the source is a pod on this node (${detectionText(ctx.localDetector)})`
        : `the source is not a pod on this node (local means ${detectionText(ctx.localDetector)}): the reply must come back through this node`,
      fields,
    };
  }
  if (shortcut) {
    return {
      step: 'masquerade',
      outcome: yes,
      because: client.fromNode
        ? "the node's own traffic to an external frontend is masqueraded"
        : 'pod traffic to an external frontend keeps its source',
      fields: ['spec.externalTrafficPolicy'],
    };
  }
  return {
    step: 'masquerade',
    outcome: yes,
    because: plan.masqueradeExternal
      ? 'externalTrafficPolicy=Cluster: the endpoint may be on another node, so the reply must come back through this one'
      : 'externalTrafficPolicy=Local: the endpoint is on this node and sees the client address',
    fields: ['spec.externalTrafficPolicy'],
  };
}

/** Why an endpoint that is not used is not, in the order selection rules it out. */
function whyNotEligible(
  ep: Endpoint,
  state: ServicePortState,
  decision: FrontendDecision,
  localOnly: boolean,
  node: { name: string; zone: string },
): string {
  if (decision.kind === 'drop' && localOnly)
    return `on ${ep.nodeName || 'no node'}, not ${node.name}: the traffic policy is Local`;
  if (decision.kind === 'drop') return 'the packet is dropped before an endpoint is chosen';
  if (!ep.ready && !(ep.serving && ep.terminating)) {
    return ep.terminating
      ? 'terminating and no longer serving (conditions.serving=false)'
      : 'not ready (conditions.ready=false)';
  }
  if (!ep.ready) return 'serving but terminating: used only when no endpoint is ready';
  if (localOnly && !ep.isLocal)
    return `on ${ep.nodeName || 'no node'}, not ${node.name}: the traffic policy is Local`;
  const mode = topologyMode(state.endpoints, node);
  if (mode === 'PreferSameZone')
    return `its zone hints (${(ep.zoneHints ?? []).join(', ')}) do not name zone ${node.zone}`;
  if (mode === 'PreferSameNode')
    return `its node hints (${(ep.nodeHints ?? []).join(', ')}) do not name ${node.name}`;
  return 'not selected';
}

function endpointsFor(
  state: ServicePortState,
  decision: FrontendDecision,
  localOnly: boolean,
  affinitySeconds: number,
  explainer: ModeExplainer | undefined,
  node: { name: string; zone: string },
): ExplainedEndpoint[] {
  const chosen = decision.kind === 'dnat' ? decision.endpoints.map((ep) => ep.endpoint) : [];
  const count = chosen.length;
  return state.endpoints.map((ep) => {
    const slot = chosen.indexOf(ep.endpoint);
    const base = {
      endpoint: ep.endpoint,
      node: ep.nodeName,
      local: ep.isLocal,
      ready: ep.ready,
      serving: ep.serving,
      terminating: ep.terminating,
      ...(ep.zoneHints ? { zoneHints: ep.zoneHints } : {}),
    };
    if (slot < 0) {
      return { ...base, eligible: false, why: whyNotEligible(ep, state, decision, localOnly, node) };
    }
    const probability = explainer?.slotProbability?.(slot, count);
    return {
      ...base,
      eligible: true,
      ...(affinitySeconds > 0
        ? { why: `sticky: a client bound to it in the last ${affinitySeconds}s always comes back here` }
        : {}),
      chance: 1 / count,
      ...(probability !== undefined ? { ruleProbability: probability } : {}),
      slot,
    };
  });
}

/** The near-miss hints for a service port that did not DNAT (or did, with surprises). */
function serviceHints(
  state: ServicePortState,
  plan: ServicePortPlan,
  frontend: Frontend,
  decision: FrontendDecision,
  explainState: ExplainState,
  family: IPFamily,
  client: Client,
): string[] {
  const sp = state.servicePort;
  const hints: string[] = [];
  const name = sp.id.service;
  if (decision.kind === 'reject') {
    if (state.endpoints.length === 0) {
      hints.push(...sliceHints(explainState, name, sp.id.portName, sp.id.protocol, family));
    } else {
      const notReady = state.endpoints.filter((ep) => !ep.ready);
      hints.push(
        `all ${state.endpoints.length} endpoints of ${sp.id.printable} are not ready (conditions.ready=false) and none is serving while terminating: check the pods' readiness probes`,
      );
      if (notReady.some((ep) => ep.terminating))
        hints.push('some endpoints are terminating: the pods are being deleted');
    }
  }
  if (decision.kind === 'drop') {
    if (frontend === 'load balancer IP' && plan.firewall && !firewallAllows(plan, client.src.text)) {
      hints.push(
        `add the client's range to spec.loadBalancerSourceRanges (now ${plan.firewall.sourceRanges.join(', ')}) to let ${client.src.text} in`,
      );
    } else {
      const field = frontend === 'cluster IP' ? 'spec.internalTrafficPolicy' : 'spec.externalTrafficPolicy';
      const ready = state.endpoints.filter((ep) => ep.ready || (ep.serving && ep.terminating));
      hints.push(
        `all ${ready.length} usable endpoints are on other nodes (${nodeList(ready)}) and ${field} is Local: set it to Cluster, or run an endpoint on ${explainState.node}`,
      );
      if (frontend !== 'cluster IP' && sp.healthCheckNodePort !== 0) {
        hints.push(
          `the health check node port ${sp.healthCheckNodePort} answers 503 on this node, so a load balancer that follows it sends no traffic here`,
        );
      }
    }
  }
  return hints;
}

/** Why no endpoint joined a service port, from the raw EndpointSlices when the source has them. */
function sliceHints(
  state: ExplainState,
  service: string,
  portName: string,
  protocol: Protocol,
  family: IPFamily,
): string[] {
  const portText = `${portName === '' ? '(unnamed)' : describeValue(portName)}/${protocol}`;
  if (state.slices === undefined) {
    return [
      `no endpoint of any EndpointSlice joins port ${portText} of ${service}: check that the Service's selector matches ready pods and that the slices' ports[].name and protocol equal the Service port's`,
    ];
  }
  const slices = state.slices.filter((slice) => slice.service === service);
  if (slices.length === 0) {
    return [
      `no EndpointSlice is labelled kubernetes.io/service-name=${service.slice(service.indexOf('/') + 1)} in namespace ${service.slice(0, service.indexOf('/'))}: the Service has no selector, or no pod matches it`,
    ];
  }
  const hints: string[] = [];
  for (const slice of slices) {
    if (slice.addressType !== family) {
      hints.push(
        `EndpointSlice ${slice.slice} has addressType ${slice.addressType}; this packet is ${family}`,
      );
      continue;
    }
    const names = slice.ports.map(
      (p) => `${p.name === '' ? '(unnamed)' : describeValue(p.name)}/${p.protocol}`,
    );
    if (!slice.ports.some((p) => p.name === portName && p.protocol === protocol)) {
      hints.push(
        `EndpointSlice ${slice.slice} has port ${names.join(', ') || '(none)'}, the Service port is ${portText}: ports[].name and protocol must equal the Service port's`,
      );
    } else if (slice.endpoints === 0) {
      hints.push(`EndpointSlice ${slice.slice} lists no endpoints`);
    }
  }
  return hints;
}

/**
 * The rule path: the first explored path whole, hook by hook, then what each other random
 * choice (another endpoint's rule or element) adds, marked with the choices that lead there.
 */
function pathFor(rendered: RenderedRules, trace: TraceResult): PathStep[] {
  const steps: PathStep[] = [];
  const seen = new Set<string>();
  trace.paths.forEach((path, index) => {
    let hook: string | undefined;
    let priority: number | undefined;
    for (const rule of path.rules) {
      const place = rendered.hookOf(rule.table, rule.chain);
      if (place) {
        hook = place.hook;
        priority = place.priority;
      }
      const key = `${rule.table}\u0000${rule.chain}\u0000${rule.rule}\u0000${rule.element?.text ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      steps.push({
        table: rule.table,
        ...(hook !== undefined ? { hook } : {}),
        ...(priority !== undefined ? { priority } : {}),
        chain: rule.chain,
        rule: rendered.quote(rule.table, rule.chain, rule.rule),
        matched: true,
        ...(index > 0 ? { why: `another random choice (${path.choices.join(', ')})` } : {}),
        ...(rule.element ? { element: rule.element } : {}),
      });
    }
  });
  return steps;
}

// A full render per question would cost a render of every Service (a second at 10k Services):
// the rules of a family are kept while its state object is the same one. The live proxy hands
// out the same ExplainFamily until the next sync changes its generation.
const renderedCache = new WeakMap<
  ExplainFamily,
  { explainer: ModeExplainer; settings: ExplainState['settings']; rendered: RenderedRules }
>();

function renderedRules(explainer: ModeExplainer, state: ExplainState, family: ExplainFamily): RenderedRules {
  const cached = renderedCache.get(family);
  if (cached?.explainer === explainer && cached.settings === state.settings) return cached.rendered;
  const rendered = explainer.render({
    family: family.family,
    snapshot: snapshotOf(family),
    settings: state.settings,
    node: {
      name: family.node.name,
      primaryFamily: family.family,
      ips: { IPv4: [], IPv6: [], [family.family]: family.node.nodeIPs },
      podCIDRs: family.node.podCIDRs,
    },
    hostAddresses: family.hostAddresses,
  });
  renderedCache.set(family, { explainer, settings: state.settings, rendered });
  return rendered;
}

/** The verdict in the tracers' vocabulary, to compare with what the rules do. */
export function verdictOutcome(verdict: Explanation['verdict']): FlowOutcome {
  switch (verdict.action) {
    case 'DNAT':
      return { kind: 'endpoints', endpoints: [...(verdict.to ?? [])].sort(), masquerade: verdict.snat };
    case 'REJECT':
      return { kind: 'reject' };
    case 'DROP':
      return { kind: 'drop' };
    case 'ACCEPT':
    case 'NOT_HANDLED':
      return { kind: 'pass', masquerade: false };
  }
}

/** The verdict a mode's rules give, for a mode that departs from the plan on purpose. */
function verdictOfTrace(outcome: FlowOutcome, planned: Explanation['verdict']): Explanation['verdict'] {
  switch (outcome.kind) {
    case 'endpoints':
      return {
        action: 'DNAT',
        to: outcome.endpoints,
        snat: outcome.masquerade,
        because: `${outcome.endpoints.length} endpoint${outcome.endpoints.length === 1 ? '' : 's'} by the mode's rules${outcome.masquerade ? ', source masqueraded' : ', client address kept'} (${planned.because})`,
      };
    case 'reject':
      return { action: 'REJECT', snat: false, because: `rejected by the mode's rules (${planned.because})` };
    case 'drop':
      return { action: 'DROP', snat: false, because: `dropped by the mode's rules (${planned.because})` };
    case 'pass':
      return {
        action: 'NOT_HANDLED',
        snat: false,
        because: `left alone by the mode's rules (${planned.because})`,
      };
  }
}

function sameOutcome(a: FlowOutcome, b: FlowOutcome): boolean {
  if (a.kind === 'pass' && b.kind === 'pass') return true;
  return formatOutcome(a) === formatOutcome(b);
}

/** Explains one packet against one node's state. Throws ExplainError on bad input only. */
export function explain(state: ExplainState, query: PacketQuery): Explanation {
  const { src, dst, proto } = checkQuery(query);
  const family = state.families.find((f) => f.family === dst.family);
  const explainer = explainerOf(state.mode);
  const source = {
    kind: state.source.kind,
    node: state.node,
    mode: state.mode,
    family: dst.family,
    ...(family?.generation !== undefined ? { modelGeneration: family.generation } : {}),
    ...(state.source.from !== undefined ? { from: state.source.from } : {}),
  };
  const caveats: string[] = [CAVEAT_SCOPE];
  if (!family) {
    return {
      apiVersion: EXPLAIN_API_VERSION,
      kind: 'Explanation',
      source,
      packet: {
        protocol: proto,
        src: src.text,
        dst: dst.text,
        dport: query.dport,
        arrival: {
          from: query.from ?? 'external',
          hook: query.from === 'node' ? 'output' : 'prerouting',
          inferred: query.from === undefined,
        },
      },
      source_class: { localDetection: { mode: 'none', matched: false }, isNodeAddress: false },
      match: { kind: 'none' },
      decisions: [],
      endpoints: [],
      verdict: {
        action: 'NOT_HANDLED',
        snat: false,
        because: `this proxy programs no ${dst.family} rules (families: ${state.families.map((f) => f.family).join(', ') || 'none'})`,
      },
      path: [],
      hints: [],
      caveats,
    };
  }

  const detector = localDetectorFor(state.settings, family.family, { podCIDRs: family.node.podCIDRs });
  const ctx = trafficContext(state, family, detector, explainer);
  const isNodeAddress = isLoopback(src) || ctx.localAddresses.includes(src.text);
  const from: Arrival =
    query.from ??
    (isNodeAddress
      ? 'node'
      : isFromLocalPod(detector, { ip: src.text, inInterface: query.iif }) ||
          inAnyCIDR(src, [...family.node.podCIDRs, ...state.settings.clusterCIDRs])
        ? 'pod'
        : 'external');
  const iif = query.iif ?? assumedInterface(from, detector);
  const client: Client = {
    src,
    from,
    iif,
    fromNode: from === 'node' || isNodeAddress,
    fromLocalPod: from !== 'node' && isFromLocalPod(detector, { ip: src.text, inInterface: iif }),
  };
  if (query.from === undefined) {
    caveats.push(
      `arrival inferred from the source address: ${from === 'node' ? 'a node address' : from === 'pod' ? 'inside the pod network' : 'neither a node address nor in the pod network'} (use --from to override)`,
    );
  }

  const outcome = tracePacketThroughPlan(family.servicePorts.values(), ctx, {
    source: src.text,
    destination: dst.text,
    port: query.dport,
    protocol: proto,
    fromNode: from === 'node',
    inInterface: iif,
  });

  let match: Explanation['match'];
  let decisions: Decision[] = [];
  let endpoints: ExplainedEndpoint[] = [];
  let verdict: Explanation['verdict'];
  const hints: string[] = [];
  const node = { name: family.node.name, zone: family.node.zone };

  if (outcome.kind === 'not a service') {
    const result = notAService(family, ctx, explainer, dst, query.dport, proto);
    match = result.match;
    verdict = result.verdict;
    hints.push(...result.hints);
  } else {
    const servicePortState = family.servicePorts.get(outcome.servicePort);
    if (!servicePortState) throw new Error(`plan matched ${outcome.servicePort}, which the state lacks`);
    const plan = planOf(servicePortState, ctx.node);
    const decision = decideFrontend(plan, outcome.frontend, ctx, {
      source: src.text,
      fromNode: client.fromNode,
      fromLocalPod: client.fromLocalPod,
    });
    const sp = plan.servicePort;
    match = { kind: FRONTEND_MATCH[outcome.frontend], servicePort: sp.id.printable, key: sp.id.key };
    decisions = decisionsFor(servicePortState, plan, outcome.frontend, decision, client, ctx, node);
    const external = outcome.frontend !== 'cluster IP';
    const shortcut =
      external && plan.externalShortcut !== undefined && (client.fromLocalPod || client.fromNode);
    const localOnly = !shortcut && (external ? sp.externalPolicyLocal : sp.internalPolicyLocal);
    endpoints = endpointsFor(servicePortState, decision, localOnly, plan.affinitySeconds, explainer, node);
    hints.push(
      ...serviceHints(servicePortState, plan, outcome.frontend, decision, state, family.family, client),
    );
    const where = `the ${outcome.frontend} of ${sp.id.printable}`;
    if (outcome.kind === 'dnat') {
      const to = [...new Set(outcome.destinations.map((d) => d.endpoint))].sort();
      const snat = outcome.destinations.some((d) => d.masquerade);
      verdict = {
        action: 'DNAT',
        to,
        snat,
        because: `${where} with ${to.length} usable endpoint${to.length === 1 ? '' : 's'}${snat ? ', source masqueraded' : ', client address kept'}`,
      };
    } else if (
      outcome.kind === 'reject' &&
      from === 'node' &&
      (outcome.frontend === 'external IP' || outcome.frontend === 'load balancer IP') &&
      !ctx.localAddresses.includes(dst.text) &&
      explainer?.rejectsNodeTrafficToRemoteExternalFrontends === false
    ) {
      verdict = {
        action: 'NOT_HANDLED',
        snat: false,
        because: `${where} has no endpoints, but in the ${state.mode} mode the REJECT for it only sees packets arriving at or forwarded by the node: the node's own packet leaves untouched`,
      };
    } else {
      verdict = {
        action: outcome.kind === 'drop' ? 'DROP' : 'REJECT',
        snat: false,
        because: `${where}: ${outcome.because[outcome.because.length - 1] ?? outcome.kind}`,
      };
    }
  }

  let path: PathStep[] = [];
  let pathSyntax: Explanation['pathSyntax'];
  if (!explainer) {
    caveats.push(`the ${state.mode} mode has no rule tracer: no rule path is shown`);
  } else {
    try {
      const rendered = renderedRules(explainer, state, family);
      const trace = rendered.trace(
        {
          family: family.family,
          protocol: proto,
          sourceIP: src.text,
          destIP: dst.text,
          destPort: query.dport,
          origin: from === 'node' ? { kind: 'local' } : { kind: 'arriving', iif: iif ?? 'eth0' },
        },
        { localAddresses: ctx.localAddresses },
      );
      path = pathFor(rendered, trace);
      pathSyntax = rendered.syntax;
      caveats.push(
        `rules quoted as this proxy renders them for the state (${rendered.syntax} syntax); the kernel may print constants differently`,
      );
      if (!sameOutcome(trace.outcome, verdictOutcome(verdict)) && explainer.verdictFromRules !== undefined) {
        const planned = formatOutcome(verdictOutcome(verdict));
        verdict = verdictOfTrace(trace.outcome, verdict);
        const reached = new Set(verdict.to ?? []);
        if (match.kind === 'none' && reached.size > 0) {
          // The plan sees no frontend where the mode's rules capture one (userspace: node ports
          // on loopback): name the service port whose node port the rules took.
          const taken = [...family.servicePorts.values()].find(
            (s) =>
              s.servicePort.nodePort === query.dport &&
              s.servicePort.id.protocol === proto &&
              [...reached].every((to) => s.endpoints.some((ep) => ep.endpoint === to)),
          );
          if (taken) {
            match = {
              kind: 'nodePort',
              servicePort: taken.servicePort.id.printable,
              key: taken.servicePort.id.key,
            };
            endpoints = taken.endpoints.map((ep) => ({
              endpoint: ep.endpoint,
              node: ep.nodeName,
              local: ep.isLocal,
              ready: ep.ready,
              serving: ep.serving,
              terminating: ep.terminating,
              eligible: false,
            }));
          }
        }
        endpoints = endpoints.map((ep) => {
          const eligible = reached.has(ep.endpoint);
          const { chance: _chance, ruleProbability: _rp, slot: _slot, ...rest } = ep;
          return {
            ...rest,
            eligible,
            ...(eligible ? { chance: 1 / reached.size } : {}),
            why: eligible
              ? `reached by the ${state.mode} rules (the plan: ${describeValue(planned)})`
              : (ep.why ?? `not reached by the ${state.mode} rules`),
          };
        });
        caveats.push(
          `the ${state.mode} mode departs from the traffic plan here (the plan: ${describeValue(planned)}); the verdict and endpoints are what its rules do: ${explainer.verdictFromRules}`,
        );
      } else if (!sameOutcome(trace.outcome, verdictOutcome(verdict))) {
        caveats.push(
          `the rendered rules give ${describeValue(formatOutcome(trace.outcome))} where the plan gives ${describeValue(formatOutcome(verdictOutcome(verdict)))}: a bug, please report it`,
        );
      }
    } catch (error) {
      if (!(error instanceof TraceError)) throw error;
      caveats.push(`the rule path could not be traced: ${error.message}`);
    }
  }

  return {
    apiVersion: EXPLAIN_API_VERSION,
    kind: 'Explanation',
    source,
    packet: {
      protocol: proto,
      src: src.text,
      dst: dst.text,
      dport: query.dport,
      arrival: {
        from,
        hook: from === 'node' ? 'output' : 'prerouting',
        ...(iif !== undefined ? { iif } : {}),
        inferred: query.from === undefined,
      },
    },
    source_class: {
      localDetection: { mode: state.settings.detectLocalMode, matched: client.fromLocalPod },
      isNodeAddress,
    },
    match,
    decisions,
    endpoints,
    verdict,
    path,
    ...(pathSyntax !== undefined ? { pathSyntax } : {}),
    hints,
    caveats,
  };
}

/** A packet no frontend took: another port of a cluster IP, a health check port, or nothing known. */
function notAService(
  family: ExplainFamily,
  ctx: TrafficContext,
  explainer: ModeExplainer | undefined,
  dst: ParsedIP,
  dport: number,
  proto: Protocol,
): { match: Explanation['match']; verdict: Explanation['verdict']; hints: string[] } {
  const states = [...family.servicePorts.values()];
  const isLocal = isLoopback(dst) || ctx.localAddresses.includes(dst.text);
  const health = states.find(
    (s) => isLocal && proto === 'TCP' && s.servicePort.healthCheckNodePort === dport,
  );
  if (health) {
    return {
      match: {
        kind: 'healthCheckNodePort',
        servicePort: health.servicePort.id.printable,
        key: health.servicePort.id.key,
      },
      verdict: {
        action: 'NOT_HANDLED',
        snat: false,
        because: `the health check node port of ${health.servicePort.id.printable}: kube-proxy's own server answers it (200 with local endpoints, 503 without)`,
      },
      hints: [],
    };
  }
  const sameIP = states.filter((s) => s.servicePort.clusterIP === dst.text);
  const first = sameIP[0];
  if (first) {
    const served = sameIP.map((s) => `${s.servicePort.port}/${s.servicePort.id.protocol}`).join(', ');
    const reject = explainer?.rejectsUnusedClusterIPPorts ?? false;
    return {
      match: { kind: 'clusterIPOtherPort', servicePort: first.servicePort.id.service },
      verdict: {
        action: reject ? 'REJECT' : 'NOT_HANDLED',
        snat: false,
        because: `${dst.text} is the cluster IP of ${first.servicePort.id.service}, which serves ${served}, not ${dport}/${proto}${reject ? ': rejected (cluster-ips-check)' : ': no rule matches, routing decides'}`,
      },
      hints: [
        `${first.servicePort.id.service} serves ${served} on ${dst.text}: check the port number and protocol (spec.ports[].port, spec.ports[].protocol)`,
      ],
    };
  }
  const serviceCIDR = (family.serviceCIDRs ?? []).find((text) => {
    const cidr = parseCIDR(text);
    return cidr !== undefined && cidrContains(cidr, dst);
  });
  if (serviceCIDR !== undefined && explainer?.dropsUnallocatedClusterIPs === true) {
    return {
      match: { kind: 'none' },
      verdict: {
        action: 'DROP',
        snat: false,
        because: `${dst.text} is inside the service CIDR ${serviceCIDR} but no Service holds it: dropped (cluster-ips-check)`,
      },
      hints: [`no Service has the cluster IP ${dst.text}: check the address (kubectl get services -A)`],
    };
  }
  const hints: string[] = [];
  const nodePorts = states.filter(
    (s) => s.servicePort.nodePort === dport && s.servicePort.id.protocol === proto,
  );
  for (const s of nodePorts) {
    hints.push(
      `${dport} is the node port of ${s.servicePort.id.printable}, but ${dst.text} does not take node ports here (nodePortAddresses; addresses that do: ${ctx.nodePortAddresses.matchAll ? 'every local address' : ctx.nodePortIPs.join(', ') || 'none'})`,
    );
  }
  const notProgrammed = family.skipped
    .filter((skip) => skip.addresses.includes(dst.text))
    .map((skip) => ({ service: skip.service, reason: skip.reason }));
  for (const skip of notProgrammed)
    hints.push(`${skip.service} has ${dst.text} but is not programmed: ${skip.reason}`);
  return {
    match: { kind: 'none', ...(notProgrammed.length > 0 ? { notProgrammed } : {}) },
    verdict: {
      action: 'NOT_HANDLED',
      snat: false,
      because: `${dst.text}:${dport}/${proto} is not a Service frontend this proxy knows: its rules leave the packet alone`,
    },
    hints,
  };
}
