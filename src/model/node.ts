// The one Node parser: Node object -> what the proxy knows about its node. Pure.
//
// The daemon (families, node-port addresses, restarts on IP changes), the model (zone, labels,
// node IPs of a family) and through it every renderer and the traffic plan read the node through
// this one function, so they cannot disagree about which addresses the node has or which one is
// primary. Upstream's rules: node IPs are the InternalIP addresses, then the ExternalIP ones
// (other address types are not IPs of the node); a bindAddress that is a specific IP is the
// node's primary IP of its family, and decides the primary family.
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import type { IPFamily, NodeContext } from './types.ts';
import { describeValue, type Problem } from './problem.ts';
import { parseIP } from '../util/ip.ts';
import { arrayField, field, isRecord, parseExactIP, parseTrimmedCIDR, stringField } from './validate.ts';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** Everything the proxy uses of its Node, both families at once. */
export interface ParsedNode {
  readonly name: string;
  /** Label topology.kubernetes.io/zone, '' when absent. */
  readonly zone: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Node IPs per family: bindAddress first when it is one, then InternalIP, then ExternalIP. */
  readonly ips: Readonly<Record<IPFamily, readonly string[]>>;
  /** The family of bindAddress when it is a specific IP, else of the first node IP (IPv4 if none). */
  readonly primaryFamily: IPFamily;
  /** spec.podCIDRs (or the legacy spec.podCIDR), canonical, both families, in the object's order. */
  readonly podCIDRs: readonly string[];
  /** Fields that were malformed and left out. */
  readonly problems: readonly Problem[];
}

export interface NodeParseOptions {
  /** --bind-address: when a specific IP (not 0.0.0.0 or ::) it is the node's primary IP. */
  readonly bindAddress?: string | undefined;
}

const ADDRESS_TYPES = ['InternalIP', 'ExternalIP'] as const;

export function parseNode(node: Node, options: NodeParseOptions = {}): ParsedNode {
  const raw: unknown = node;
  const name = stringField(field(raw, 'metadata'), 'name') ?? '';
  const problems: Problem[] = [];
  const problem = (fieldPath: string, message: string): void => {
    problems.push({ kind: 'Node', namespace: '', name, field: fieldPath, message });
  };

  const rawLabels = field(field(raw, 'metadata'), 'labels');
  // fromEntries defines own properties, so a `__proto__` label stays a plain label.
  const labels: Readonly<Record<string, string>> = Object.fromEntries(
    isRecord(rawLabels)
      ? Object.entries(rawLabels).filter((entry): entry is [string, string] => typeof entry[1] === 'string')
      : [],
  );
  const zone = Object.hasOwn(labels, ZONE_LABEL) ? (labels[ZONE_LABEL] ?? '') : '';

  const spec = field(raw, 'spec');
  const cidrTexts =
    arrayField(spec, 'podCIDRs') ?? (field(spec, 'podCIDR') !== undefined ? [field(spec, 'podCIDR')] : []);
  const podCIDRs = new Set<string>();
  cidrTexts.forEach((value, i) => {
    const parsed = parseTrimmedCIDR(value);
    if (!parsed) problem(`spec.podCIDRs[${i}]`, `invalid CIDR ${describeValue(value)}, ignored`);
    else podCIDRs.add(parsed.text);
  });

  const ips: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  const addresses = arrayField(field(raw, 'status'), 'addresses') ?? [];
  for (const type of ADDRESS_TYPES) {
    addresses.forEach((entry, i) => {
      if (stringField(entry, 'type') !== type) return;
      const value = field(entry, 'address');
      const parsed = parseExactIP(value);
      if (!parsed) problem(`status.addresses[${i}].address`, `invalid IP ${describeValue(value)}, ignored`);
      else if (!ips[parsed.family].includes(parsed.text)) ips[parsed.family].push(parsed.text);
    });
  }
  const firstFamily = ADDRESS_TYPES.flatMap((type) =>
    addresses.filter((entry) => stringField(entry, 'type') === type),
  )
    .map((entry) => parseExactIP(field(entry, 'address'))?.family)
    .find((family) => family !== undefined);
  let primaryFamily: IPFamily = firstFamily ?? 'IPv4';

  const bind = options.bindAddress ? parseIP(options.bindAddress) : undefined;
  if (bind && bind.value !== 0n) {
    primaryFamily = bind.family;
    ips[bind.family] = [bind.text, ...ips[bind.family].filter((ip) => ip !== bind.text)];
  }

  return { name, zone, labels, ips, primaryFamily, podCIDRs: [...podCIDRs], problems };
}

/** One family's view of the node, as the model and the renderers take it. */
export function nodeContextOf(parsed: ParsedNode, family: IPFamily): NodeContext {
  return {
    name: parsed.name,
    zone: parsed.zone,
    labels: parsed.labels,
    podCIDRs: parsed.podCIDRs.filter((cidr) => parseIP(cidr.slice(0, cidr.indexOf('/')))?.family === family),
    nodeIPs: parsed.ips[family],
  };
}

export function emptyNodeContext(name: string): NodeContext {
  return { name, zone: '', labels: {}, podCIDRs: [], nodeIPs: [] };
}

/**
 * The node's IP of a family that source-range and node-port decisions use (upstream's single
 * bindAddress-aware node IP); the loopback address when the node has none of the family.
 */
export function primaryNodeIP(node: NodeContext, family: IPFamily): string {
  return node.nodeIPs[0] ?? (family === 'IPv4' ? '127.0.0.1' : '::1');
}
