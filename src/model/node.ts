// Node -> NodeContext of one IP family. Pure.
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import type { IPFamily, NodeContext } from './types.ts';
import { describeValue, type Problem } from './problem.ts';
import { arrayField, field, isRecord, parseExactIP, parseTrimmedCIDR, stringField } from './validate.ts';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';

export function emptyNodeContext(name: string): NodeContext {
  return { name, zone: '', labels: {}, podCIDRs: [], nodeIPs: [] };
}

export function nodeContextFromNode(
  node: Node,
  family: IPFamily,
  name: string,
): { context: NodeContext; problems: Problem[] } {
  const raw: unknown = node;
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
    else if (parsed.family === family) podCIDRs.add(parsed.text);
  });

  // InternalIP addresses first, then ExternalIP (upstream's node IP preference).
  const addresses = arrayField(field(raw, 'status'), 'addresses') ?? [];
  const nodeIPs = new Set<string>();
  for (const type of ['InternalIP', 'ExternalIP']) {
    addresses.forEach((entry, i) => {
      if (stringField(entry, 'type') !== type) return;
      const value = field(entry, 'address');
      const parsed = parseExactIP(value);
      if (!parsed) problem(`status.addresses[${i}].address`, `invalid IP ${describeValue(value)}, ignored`);
      else if (parsed.family === family) nodeIPs.add(parsed.text);
    });
  }

  return {
    context: { name, zone, labels, podCIDRs: [...podCIDRs], nodeIPs: [...nodeIPs] },
    problems,
  };
}
