// Which of this node's addresses accept NodePort traffic (--nodeport-addresses, spec 8.1;
// upstream's NodePortAddresses). One setting type, resolved per family in one place; the modes
// render the result (iptables: `-d <ip>` jumps or a match-all addrtype rule; nftables:
// @nodeport-ips or `fib daddr type local`), and service health checks listen on the same
// addresses. Pure: the host's interface addresses are passed in.
import type { IPFamily } from '../model/types.ts';
import { cidrContains, isLoopback, parseCIDR, parseIP, type ParsedCIDR } from '../util/ip.ts';

/** The setting as configured. */
export type NodePortAddressSetting =
  /** Every local address (`--nodeport-addresses` unset in the iptables tradition). */
  | { readonly kind: 'all' }
  /** The node's primary IP of each family (upstream's `primary`, the default since v1.31). */
  | { readonly kind: 'primary' }
  /** CIDRs of either family; those of another family are ignored. */
  | { readonly kind: 'cidrs'; readonly cidrs: readonly string[] };

/** The setting resolved for one family. */
export interface NodePortAddresses {
  readonly family: IPFamily;
  /** Every local address accepts node ports: no CIDR of the family, or a /0. */
  readonly matchAll: boolean;
  /** Canonical CIDRs of the family; empty when matchAll. */
  readonly cidrs: readonly string[];
  /** An IPv4 CIDR covers 127.0.0.0 (or it is matchAll): localhost node ports are possible. */
  readonly containsIPv4Loopback: boolean;
}

/**
 * Resolves the setting for one family. `primary` becomes the node's first non-loopback IP of
 * the family as a host CIDR; a node without one matches all, as upstream does.
 */
export function nodePortAddressesFor(
  setting: NodePortAddressSetting,
  family: IPFamily,
  nodeIPs: readonly string[],
): NodePortAddresses {
  let texts: readonly string[];
  switch (setting.kind) {
    case 'all':
      texts = [];
      break;
    case 'primary': {
      const ip = nodeIPs.map((text) => parseIP(text)).find((p) => p?.family === family && !isLoopback(p));
      texts = ip ? [`${ip.text}/${family === 'IPv4' ? 32 : 128}`] : [];
      break;
    }
    case 'cidrs':
      texts = setting.cidrs;
      break;
  }
  const cidrs = texts.flatMap((text) => {
    const cidr = parseCIDR(text);
    return cidr && cidr.family === family ? [cidr] : [];
  });
  // Upstream: a CIDR whose network address is a loopback address, or that contains 127.0.0.0.
  const loopbackStart = parseIP('127.0.0.0');
  const containsIPv4Loopback =
    family === 'IPv4' &&
    (cidrs.length === 0 ||
      cidrs.some(
        (c) => c.network >> 24n === 127n || (loopbackStart !== undefined && cidrContains(c, loopbackStart)),
      ));
  const matchAll = cidrs.length === 0 || cidrs.some((c) => c.prefix === 0);
  return { family, matchAll, cidrs: matchAll ? [] : cidrs.map((c) => c.text), containsIPv4Loopback };
}

/** The candidate addresses (node IPs, interface addresses) of the family inside the CIDRs, unique, in order. */
export function addressesInside(addresses: NodePortAddresses, candidates: readonly string[]): string[] {
  const cidrs = addresses.cidrs.flatMap((text): ParsedCIDR[] => {
    const cidr = parseCIDR(text);
    return cidr ? [cidr] : [];
  });
  const out: string[] = [];
  for (const text of candidates) {
    const ip = parseIP(text);
    if (!ip || ip.family !== addresses.family || out.includes(ip.text)) continue;
    if (addresses.matchAll || cidrs.some((cidr) => cidrContains(cidr, ip))) out.push(ip.text);
  }
  return out;
}

/**
 * Localhost NodePorts (iptables.localhostNodePorts): only IPv4, and only when the node port
 * addresses cover 127.0.0.1. A mode without the feature (nftables) passes `supported: false`.
 */
export function localhostNodePortsEffective(
  addresses: NodePortAddresses,
  configured: boolean,
  supported = true,
): boolean {
  return supported && configured && addresses.family === 'IPv4' && addresses.containsIPv4Loopback;
}
