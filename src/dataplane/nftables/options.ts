// Settings of one nftables proxier (one IP family). They are fixed for the proxier's life: the
// CLI resolves flags and configuration (detect-local mode, node port addresses, ServiceCIDRs)
// into these plain values, and a change means a new proxier, whose first sync rebuilds the table.
import type { IPFamily } from '../../model/types.ts';
import { isLoopback, parseCIDR, parseIP } from '../../util/ip.ts';

/** How "traffic from a local pod" is recognised (spec 3.7). `none`: not at all. */
export type LocalDetector =
  | { readonly kind: 'none' }
  /** ClusterCIDR or NodeCIDR mode: CIDRs of this family (the CLI picks clusterCIDR or podCIDRs). */
  | { readonly kind: 'cidr'; readonly cidrs: readonly string[] }
  /** BridgeInterface mode: packets arriving on this interface. */
  | { readonly kind: 'bridge'; readonly iface: string }
  /** InterfaceNamePrefix mode: packets arriving on an interface whose name starts with this. */
  | { readonly kind: 'prefix'; readonly prefix: string };

/**
 * Where NodePorts are accepted. `all`: every local address but loopback (upstream's match-all).
 * `ips`: exactly these addresses; the CLI resolves `primary` (the default) and CIDRs to the
 * node's IPs of this family. Loopback addresses are ignored, as upstream's nftables mode does.
 */
export type NodePortAddresses =
  { readonly kind: 'all' } | { readonly kind: 'ips'; readonly ips: readonly string[] };

export interface NftablesOptions {
  readonly family: IPFamily;
  /** Bit of the packet mark that asks for masquerade (default 14, i.e. 0x00004000). */
  readonly masqueradeBit: number;
  /** Masquerade every packet sent to a cluster IP. */
  readonly masqueradeAll: boolean;
  readonly localDetector: LocalDetector;
  readonly nodePortAddresses: NodePortAddresses;
  /** ServiceCIDRs of this family; when given, traffic to unallocated cluster IPs is dropped. */
  readonly serviceCIDRs?: readonly string[] | undefined;
}

const IFACE = /^[A-Za-z0-9_.:@-]{1,15}$/;

/** Throws, naming the field, when an option could not be rendered safely. */
export function validateOptions(options: NftablesOptions): void {
  const fam = options.family;
  if (!Number.isInteger(options.masqueradeBit) || options.masqueradeBit < 0 || options.masqueradeBit > 31) {
    throw new Error(`nftables options: masqueradeBit ${options.masqueradeBit} is not an integer in [0, 31]`);
  }
  const cidrs = (field: string, list: readonly string[]): void => {
    for (const text of list) {
      const cidr = parseCIDR(text);
      if (!cidr || cidr.family !== fam || cidr.text !== text) {
        throw new Error(
          `nftables options: ${field} entry ${JSON.stringify(text)} is not a canonical ${fam} CIDR`,
        );
      }
    }
  };
  const detector = options.localDetector;
  if (detector.kind === 'cidr') cidrs('localDetector.cidrs', detector.cidrs);
  if (detector.kind === 'bridge' && !IFACE.test(detector.iface)) {
    throw new Error(
      `nftables options: localDetector.iface ${JSON.stringify(detector.iface)} is not an interface name`,
    );
  }
  if (detector.kind === 'prefix' && !IFACE.test(detector.prefix)) {
    throw new Error(
      `nftables options: localDetector.prefix ${JSON.stringify(detector.prefix)} is not an interface name prefix`,
    );
  }
  if (options.nodePortAddresses.kind === 'ips') {
    for (const text of options.nodePortAddresses.ips) {
      const ip = parseIP(text);
      if (!ip || ip.family !== fam || ip.text !== text) {
        throw new Error(
          `nftables options: nodePortAddresses entry ${JSON.stringify(text)} is not a canonical ${fam} address`,
        );
      }
    }
  }
  cidrs('serviceCIDRs', options.serviceCIDRs ?? []);
}

/** Node port addresses that end up in @nodeport-ips: this family, no loopback, sorted, unique. */
export function nodePortIPs(options: NftablesOptions): string[] {
  if (options.nodePortAddresses.kind !== 'ips') return [];
  const out = new Set<string>();
  for (const text of options.nodePortAddresses.ips) {
    const ip = parseIP(text);
    if (ip && ip.family === options.family && !isLoopback(ip)) out.add(ip.text);
  }
  return [...out].sort();
}

/** Text that changes whenever anything in the rendered skeleton would change. */
export function optionsFingerprint(options: NftablesOptions): string {
  return JSON.stringify([
    options.family,
    options.masqueradeBit,
    options.masqueradeAll,
    options.localDetector,
    options.nodePortAddresses.kind,
    nodePortIPs(options),
    options.serviceCIDRs ?? [],
  ]);
}
