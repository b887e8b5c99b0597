// What one service port contributes to the table: set/map elements, the endpoint class chains
// it needs, and (ClientIP affinity only) its own chains and sets. Pure, and computed once per
// ServicePortState object: unchanged states are reused by identity across snapshots, so a sync
// only recomputes the service ports that changed (docs/nftables-layout.md explains each piece).
import type { Endpoint, IPFamily, NodeContext, ServicePortState } from '../../model/types.ts';
import { primaryNodeIP } from '../../model/node.ts';
import { planOf, type FirewallPlan, type PlanNode } from '../../plan/service-port.ts';
import { flat, flatten } from '../../util/flat.ts';
import { cidrContains, parseCIDR, type ParsedCIDR, type ParsedIP } from '../../util/ip.ts';
import {
  affinitySet,
  classChain,
  dispatchMap,
  dnatTarget,
  endpointMap,
  escapeComment,
  gotoChain,
  hashName,
  nftFamily,
  proto,
  type Selector,
} from './names.ts';

/**
 * One element of one set or map, claimed by one service port (`owner`). `value` is '' for set
 * elements, `comment` '' for none. A dispatch element carries the endpoint map elements it
 * selects from (`children`), so the bookkeeping handles a whole endpoint selection as one unit:
 * whoever owns the dispatch key owns its endpoints.
 */
export interface Element {
  readonly owner: string;
  readonly set: string;
  readonly key: string;
  readonly value: string;
  readonly comment: string;
  readonly children?: Children | undefined;
}

/**
 * The endpoint map elements of one selection: slot i is `<prefix> . i : <endpoint i>`. The
 * texts are written out only when a transaction needs them: at 10k Services a record of them
 * would hold a third of a million strings.
 */
export interface Children {
  readonly set: string;
  readonly prefix: string;
  /** The model's own Endpoint objects, in slot order. */
  readonly endpoints: readonly Endpoint[];
}

export function slotKey(children: Children, slot: number): string {
  return `${children.prefix} . ${slot}`;
}

export function endpointText(ep: Endpoint): string {
  return `${ep.ip} . ${ep.port}`;
}

export interface ChainDef {
  readonly name: string;
  readonly rules: readonly string[];
}

export interface ServiceRecord {
  readonly state: ServicePortState;
  /** The node facts the record was computed with (node IPs matter to source ranges). */
  readonly nodeKey: string;
  readonly elements: readonly Element[];
  /** Endpoint class chains referenced by this record's dispatch elements. */
  readonly classChains: readonly string[];
  readonly affinityChains: readonly ChainDef[];
  /**
   * Endpoint addresses this service port puts in @hairpin (as `ip . ip`). Shared by every
   * Service an endpoint backs, so the renderer counts references instead of keeping claims.
   */
  readonly hairpin: readonly string[];
}

/** The node facts records depend on: the traffic plan's view of the node, and a key for it. */
export interface NodeFacts extends PlanNode {
  readonly key: string;
}

/** Node facts of one family: the primary node IP (bindAddress applied) is what plans use. */
export function nodeFacts(family: IPFamily, node: NodeContext): NodeFacts {
  const nodeIP = primaryNodeIP(node, family);
  return { family, nodeIP, key: nodeIP };
}

/** The chain service-ips sends a cluster IP / external IP to, and service-nodeports a node port. */
export const ENTRY_CLUSTER_IP = 'to-cluster-ip';
export const ENTRY_EXTERNAL_IP = 'to-external-ip';
export const ENTRY_EXTERNAL_IP_LOCAL = 'to-external-ip-local';
export const ENTRY_NODEPORT = 'to-nodeport';
export const ENTRY_NODEPORT_LOCAL = 'to-nodeport-local';

/**
 * Allowed sources of one LB VIP: the plan's source ranges, plus every VIP of the port when the
 * plan allows the node's own VIP-sourced traffic. Ranges inside another range are dropped: the
 * interval set rejects overlapping elements.
 */
function allowedSources(firewall: FirewallPlan, vips: readonly string[], family: IPFamily): string[] {
  const parsed: ParsedCIDR[] = [];
  for (const text of firewall.sourceRanges) {
    const cidr = parseCIDR(text);
    if (cidr) parsed.push(cidr);
  }
  if (firewall.allowVIPSources) {
    for (const vip of vips) {
      const cidr = parseCIDR(`${vip}/${family === 'IPv4' ? 32 : 128}`);
      if (cidr) parsed.push(cidr);
    }
  }
  const full = family === 'IPv4' ? 32 : 128;
  const kept: ParsedCIDR[] = [];
  for (const cidr of parsed.sort((a, b) => a.prefix - b.prefix)) {
    const network: ParsedIP = { family: cidr.family, text: '', value: cidr.network };
    if (!kept.some((other) => cidrContains(other, network))) kept.push(cidr);
  }
  return kept
    .map((cidr) => (cidr.prefix === full ? cidr.text.slice(0, cidr.text.indexOf('/')) : cidr.text))
    .sort();
}

export function buildRecord(state: ServicePortState, node: NodeFacts): ServiceRecord {
  const sp = state.servicePort;
  const sel = state.selection;
  const fam = nftFamily(node.family);
  const p = proto(sp.id.protocol);
  const comment = escapeComment(sp.id.printable);
  const elements: Element[] = [];
  const classChains = new Set<string>();
  const affinityChains = new Map<string, ChainDef>();
  const owner = sp.id.key;
  const add = (set: string, key: string, value = '', note = '', children?: Children): void => {
    elements.push({ owner, set, key, value, comment: note, children });
  };

  const plan = planOf(state, node);
  const hasAny = plan.hasEndpoints;
  // DROP (no local endpoints) or REJECT (none at all): the plan's verdict, in nft's words.
  const verdict = hasAny ? 'drop' : 'goto reject-chain';
  const affinity = plan.affinitySeconds;

  /**
   * Chain doing ClientIP affinity + random choice over `endpoints` (affinity services only).
   * Clients are remembered in the family's shared dynamic set `affinity-<proto>`, keyed
   * client . cluster IP . port . endpoint IP . endpoint port: one set for every Service instead
   * of upstream's set per endpoint, whose creation dominated full syncs (docs/nftables-layout.md).
   * nft cannot write a constant inside a concatenated lookup key, so the constant parts are
   * computed from a packet field with an all-zero mask (`ip daddr & 0.0.0.0 | 10.96.0.10`).
   */
  const affinityChain = (endpoints: readonly Endpoint[]): string => {
    const which =
      endpoints === sel.localEndpoints && endpoints !== sel.clusterEndpoints ? 'local' : 'cluster';
    const name = `affinity-${hashName(sp.id.key, 10)}-${which}`;
    if (affinityChains.has(name)) return name;
    const set = affinitySet(p);
    const zero = node.family === 'IPv4' ? '0.0.0.0' : '::';
    const constant = (ip: string, port: number): string =>
      `${fam} daddr & ${zero} | ${ip} . th dport & 0 | ${port}`;
    const lookup = (ep: Endpoint): string =>
      `${fam} saddr . ${constant(sp.clusterIP, sp.port)} . ${constant(ep.ip, ep.port)} @${set}`;
    const dnatTo = (ep: Endpoint): string => `meta l4proto ${p} dnat to ${dnatTarget(ep.ip, ep.port)}`;
    const remember = (ep: Endpoint): string =>
      `update @${set} { ${fam} saddr . ${sp.clusterIP} . ${sp.port} . ${ep.ip} . ${ep.port} timeout ${affinity}s } ${dnatTo(ep)}`;
    const rules: string[] = [];
    // A client seen recently goes back to its endpoint (and refreshes the timeout)...
    for (const ep of endpoints) rules.push(`${lookup(ep)} ${remember(ep)}`);
    // ...others pick uniformly: endpoint i with probability 1/(n-i) among those left.
    for (let i = 0; i < endpoints.length - 1; i++) {
      rules.push(`numgen random mod ${endpoints.length - i} == 0 ${remember(endpoints[i] as Endpoint)}`);
    }
    const last = endpoints[endpoints.length - 1] as Endpoint;
    rules.push(remember(last));
    // `update` fails when the set is full, and then its rule does not match: traffic must still
    // reach an endpoint, without being remembered.
    rules.push(dnatTo(last));
    affinityChains.set(name, { name, rules: rules.map(flatten) });
    return name;
  };

  /** Adds the dispatch element (and endpoint elements) that DNAT `key` to `endpoints`. */
  const dispatch = (
    selector: Selector,
    key: string,
    endpointKey: string,
    endpoints: readonly Endpoint[],
  ): void => {
    if (endpoints.length === 0) return;
    if (affinity > 0) {
      add(dispatchMap(selector), key, gotoChain(affinityChain(endpoints)));
      return;
    }
    const chain = classChain(selector, endpoints.length);
    classChains.add(chain);
    add(dispatchMap(selector), key, gotoChain(chain), '', {
      set: endpointMap(selector, p),
      prefix: endpointKey,
      endpoints,
    });
  };

  // Cluster IP.
  const cipKey = flat(sp.clusterIP, ' . ', p, ' . ', sp.port);
  add('cluster-ips', sp.clusterIP);
  if (plan.internal.kind === 'dnat') {
    add('service-ips', cipKey, gotoChain(ENTRY_CLUSTER_IP), comment);
    dispatch('ip', cipKey, flat(sp.clusterIP, ' . ', sp.port), plan.internal.endpoints);
  } else {
    add('no-endpoint-services', cipKey, verdict, comment);
  }

  // External IPs and load balancer IPs share one path (upstream's external chain).
  const externalEntry = sp.externalPolicyLocal ? ENTRY_EXTERNAL_IP_LOCAL : ENTRY_EXTERNAL_IP;
  const externals = new Set([...sp.externalIPs, ...sp.loadBalancerVIPs]);
  externals.delete(sp.clusterIP);
  for (const ip of [...externals].sort()) {
    const key = flat(ip, ' . ', p, ' . ', sp.port);
    if (hasAny) {
      const endpointKey = flat(ip, ' . ', sp.port);
      add('service-ips', key, gotoChain(externalEntry), comment);
      if (plan.external.kind === 'dnat') dispatch('ip', key, endpointKey, plan.external.endpoints);
      if (plan.externalShortcut) dispatch('ip-shortcut', key, endpointKey, plan.externalShortcut);
    }
    if (plan.external.kind !== 'dnat') add('no-endpoint-services', key, verdict, comment);
  }

  // loadBalancerSourceRanges: checked in filter before DNAT; other sources are dropped.
  const vips = [...new Set(sp.loadBalancerVIPs)].sort();
  if (plan.firewall) {
    const sources = allowedSources(plan.firewall, vips, node.family);
    for (const vip of vips) {
      const key = flat(vip, ' . ', p, ' . ', sp.port);
      add('firewall-ips', key, '', comment);
      for (const source of sources) add('firewall-allow', flat(key, ' . ', source));
    }
  }

  // Node port.
  if (sp.nodePort > 0) {
    const key = flat(p, ' . ', sp.nodePort);
    if (hasAny) {
      add(
        'service-nodeports',
        key,
        gotoChain(sp.externalPolicyLocal ? ENTRY_NODEPORT_LOCAL : ENTRY_NODEPORT),
        comment,
      );
      const endpointKey = String(sp.nodePort);
      if (plan.external.kind === 'dnat') dispatch('nodeport', key, endpointKey, plan.external.endpoints);
      if (plan.externalShortcut) dispatch('nodeport-shortcut', key, endpointKey, plan.externalShortcut);
    }
    if (plan.external.kind !== 'dnat') add('no-endpoint-nodeports', key, verdict, comment);
  }

  // Hairpin: an endpoint that reaches itself through the service must be masqueraded. Only a
  // sender on this node goes through this node's DNAT, so only endpoints on this node (or of
  // unknown node) can hairpin here; listing all 100k pod IPs of a big cluster would double the
  // cost of a full sync for nothing.
  const hairpin = new Set<string>();
  for (const ep of plan.reachable) if (ep.isLocal || ep.nodeName === '') hairpin.add(ep.ip);

  return {
    state,
    nodeKey: node.key,
    elements,
    classChains: [...classChains].sort(),
    affinityChains: [...affinityChains.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    ),
    hairpin: [...hairpin].sort(),
  };
}
