// ServiceCIDR objects (networking.k8s.io/v1): the ranges cluster IPs are allocated from. The
// nftables mode drops traffic to an address inside them that no Service holds, as upstream's
// does (docs/compatibility.md, "ServiceCIDRs"). Pure: parses one untrusted object into the
// canonical CIDRs of one family, reporting each entry it cannot use.
import type { IPFamily } from './types.ts';
import { describeValue, type Problem } from './problem.ts';
import { arrayField, field, stringField } from './validate.ts';
import { parseCIDR } from '../util/ip.ts';

/** The part of a ServiceCIDR the proxy reads (kubernetes-types has no ServiceCIDR yet). */
export interface ServiceCIDR {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
  };
  readonly spec?: { readonly cidrs?: readonly string[] };
}

export interface ParsedServiceCIDR {
  /** metadata.name; undefined when the object has none (then it is skipped whole). */
  readonly name: string | undefined;
  /** spec.cidrs of the family, canonical, in the object's order. */
  readonly cidrs: readonly string[];
  readonly problems: readonly Problem[];
}

export function parseServiceCIDR(obj: unknown, family: IPFamily): ParsedServiceCIDR {
  const name = stringField(field(obj, 'metadata'), 'name');
  const problems: Problem[] = [];
  const report = (fieldPath: string, message: string): void => {
    problems.push({ kind: 'ServiceCIDR', namespace: '', name: name ?? '', field: fieldPath, message });
  };
  if (name === undefined || name === '') {
    report('metadata.name', `${describeValue(name)} is not a name, the object is ignored`);
    return { name: undefined, cidrs: [], problems };
  }
  const spec = field(obj, 'spec');
  const entries = arrayField(spec, 'cidrs');
  if (entries === undefined) {
    if (field(spec, 'cidrs') !== undefined)
      report('spec.cidrs', `${describeValue(field(spec, 'cidrs'))} is not a list`);
    return { name, cidrs: [], problems };
  }
  const cidrs: string[] = [];
  entries.forEach((entry, i) => {
    // The API server only stores canonical CIDRs; anything else did not come from it.
    const parsed = typeof entry === 'string' && entry === entry.trim() ? parseCIDR(entry) : undefined;
    if (!parsed) {
      report(`spec.cidrs[${String(i)}]`, `${describeValue(entry)} is not a CIDR, ignored`);
      return;
    }
    if (parsed.family === family && !cidrs.includes(parsed.text)) cidrs.push(parsed.text);
  });
  return { name, cidrs, problems };
}
