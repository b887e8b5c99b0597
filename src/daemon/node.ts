// The daemon's reading of its Node object: addresses per family (with bindAddress applied),
// primary family and podCIDRs. Moved unchanged from cli/daemon.ts; the one Node parser of the
// model (issue 10, item 1) replaces it.
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import type { NodeInfo } from '../dataplane/common/settings.ts';
import type { IPFamily } from '../model/types.ts';
import { parseCIDR, parseIP } from '../util/ip.ts';

export type { NodeInfo };

/** Node addresses per family, InternalIP first, then ExternalIP, then anything else. */
export function nodeAddresses(node: Node): Record<IPFamily, string[]> {
  const rank = (type: string) => (type === 'InternalIP' ? 0 : type === 'ExternalIP' ? 1 : 2);
  const addresses = [...(node.status?.addresses ?? [])].sort((a, b) => rank(a.type) - rank(b.type));
  const result: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  for (const address of addresses) {
    const ip = parseIP(address.address);
    if (ip && !result[ip.family].includes(ip.text)) result[ip.family].push(ip.text);
  }
  return result;
}

export function nodeInfoOf(node: Node, bindAddress: string | undefined): NodeInfo {
  const ips = nodeAddresses(node);
  const first = (node.status?.addresses ?? []).map((a) => parseIP(a.address)).find((ip) => ip !== undefined);
  let primaryFamily: IPFamily = first?.family ?? 'IPv4';
  const bind = bindAddress ? parseIP(bindAddress) : undefined;
  if (bind && bind.value !== 0n) {
    primaryFamily = bind.family;
    ips[bind.family] = [bind.text, ...ips[bind.family].filter((ip) => ip !== bind.text)];
  }
  if (ips.IPv4.length === 0) ips.IPv4.push('127.0.0.1');
  if (ips.IPv6.length === 0) ips.IPv6.push('::1');
  return { name: node.metadata?.name ?? '', primaryFamily, ips, podCIDRs: canonicalPodCIDRs(node) };
}

/** spec.podCIDRs (or the legacy spec.podCIDR), parsed: a malformed entry is left out. */
export function canonicalPodCIDRs(node: Node): string[] {
  const texts = node.spec?.podCIDRs ?? (node.spec?.podCIDR ? [node.spec.podCIDR] : []);
  return texts.map((text) => parseCIDR(text)?.text).filter((text): text is string => text !== undefined);
}
