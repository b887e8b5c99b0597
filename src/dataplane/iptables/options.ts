// Settings of the iptables renderer, and their validation. Everything here ends up in rule
// text, so values that do not come from the validated snapshot (interface names, CIDRs from the
// configuration) are checked before any rule is written.
import type { IPFamily } from '../../model/types.ts';
import { cidrContains, parseCIDR, parseIP } from '../../util/ip.ts';

/** How to tell traffic from local pods apart (spec 3.7, upstream detectLocalMode). */
export type LocalDetector =
  /** No detection: the rules that need it (spec 3.5 steps 6-7) are not generated. */
  | { readonly kind: 'none' }
  /** ClusterCIDR: the first CIDR of the proxier's family is used; none of it means no detection. */
  | { readonly kind: 'cidr'; readonly cidrs: readonly string[] }
  /** NodeCIDR: the first of snapshot.node.podCIDRs (already of the family); none means no detection. */
  | { readonly kind: 'node-cidr' }
  /** BridgeInterface: `-i <iface>`. */
  | { readonly kind: 'bridge'; readonly iface: string }
  /** InterfaceNamePrefix: `-i <prefix>+`. */
  | { readonly kind: 'prefix'; readonly prefix: string };

export type NodePortAddresses =
  /** Accept NodePorts on every local address (upstream's default, `--nodeport-addresses` unset). */
  | { readonly kind: 'all' }
  /**
   * `--nodeport-addresses`: CIDRs of both families may be listed; those of other families are
   * ignored, and none of this family (or a 0.0.0.0/0, ::/0) means all addresses.
   */
  | { readonly kind: 'cidrs'; readonly cidrs: readonly string[] };

/** nfacct counters that exist on the host (upstream emits a rule that counts into one only then). */
export interface NfacctCounters {
  /** `ct_state_invalid_dropped_pkts` */
  readonly ctStateInvalidDropped: boolean;
  /** `localhost_nps_accepted_pkts` */
  readonly localhostNodePortsAccepted: boolean;
}

export const NO_NFACCT: NfacctCounters = { ctStateInvalidDropped: false, localhostNodePortsAccepted: false };

export interface IptablesOptions {
  readonly family: IPFamily;
  /** iptables.masqueradeBit (default 14): the mark is 1 << bit. */
  readonly masqueradeBit: number;
  /** iptables.masqueradeAll: masquerade all traffic to cluster IPs. */
  readonly masqueradeAll: boolean;
  readonly localDetector: LocalDetector;
  readonly nodePortAddresses: NodePortAddresses;
  /**
   * Local IPs of this family inside nodePortAddresses' CIDRs (apply resolves them with
   * `ip -j addr`); only used when nodePortAddresses is CIDRs that do not match everything.
   */
  readonly nodeIPsForNodePorts?: readonly string[];
  /** iptables.localhostNodePorts (default true); only ever effective for IPv4. */
  readonly localhostNodePorts: boolean;
  /** MASQUERADE gets `--random-fully` (iptables >= 1.6.2). */
  readonly randomFully: boolean;
  readonly nfacct: NfacctCounters;
  /** Drop ctstate INVALID in KUBE-FORWARD; false when nf_conntrack_tcp_be_liberal is set. */
  readonly conntrackInvalidDrop: boolean;
  /** Total endpoint count above which SVC->SEP and SEP rules lose their comments (upstream 1000). */
  readonly largeClusterThreshold?: number;
}

export const LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000;

// Linux interface names: at most 15 bytes, no slash, no whitespace. We accept a conservative
// subset so an interface name can never carry rule syntax.
const IFACE = /^[A-Za-z0-9_.@:-]{1,15}$/;

/** Problems with options, each naming the field; empty when the options are usable. */
export function validateIptablesOptions(options: IptablesOptions): string[] {
  const errors: string[] = [];
  if (!Number.isInteger(options.masqueradeBit) || options.masqueradeBit < 0 || options.masqueradeBit > 31) {
    errors.push(`masqueradeBit: ${options.masqueradeBit} is not an integer in 0..31`);
  }
  const detector = options.localDetector;
  if (detector.kind === 'cidr') {
    for (const cidr of detector.cidrs) {
      if (!parseCIDR(cidr)) errors.push(`localDetector.cidrs: ${JSON.stringify(cidr)} is not a CIDR`);
    }
  } else if (detector.kind === 'bridge' && !IFACE.test(detector.iface)) {
    errors.push(`localDetector.iface: ${JSON.stringify(detector.iface)} is not an interface name`);
  } else if (detector.kind === 'prefix' && !IFACE.test(detector.prefix)) {
    errors.push(`localDetector.prefix: ${JSON.stringify(detector.prefix)} is not an interface name prefix`);
  }
  if (options.nodePortAddresses.kind === 'cidrs') {
    for (const cidr of options.nodePortAddresses.cidrs) {
      if (!parseCIDR(cidr)) errors.push(`nodePortAddresses.cidrs: ${JSON.stringify(cidr)} is not a CIDR`);
    }
  }
  for (const ip of options.nodeIPsForNodePorts ?? []) {
    if (!parseIP(ip)) errors.push(`nodeIPsForNodePorts: ${JSON.stringify(ip)} is not an IP address`);
  }
  return errors;
}

/** nodePortAddresses reduced to this family (upstream NodePortAddresses). */
export interface FamilyNodePortAddresses {
  readonly matchAll: boolean;
  /** Canonical CIDRs of the family; empty when matchAll. */
  readonly cidrs: readonly string[];
  readonly containsIPv4Loopback: boolean;
}

export function nodePortAddressesFor(
  family: IPFamily,
  addresses: NodePortAddresses,
): FamilyNodePortAddresses {
  const cidrs =
    addresses.kind === 'all'
      ? []
      : addresses.cidrs.flatMap((text) => {
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
  return { matchAll, cidrs: matchAll ? [] : cidrs.map((c) => c.text), containsIPv4Loopback };
}

/** Localhost NodePorts are only ever IPv4, and only when nodePortAddresses covers 127.0.0.1. */
export function effectiveLocalhostNodePorts(options: IptablesOptions): boolean {
  return (
    options.localhostNodePorts &&
    options.family === 'IPv4' &&
    nodePortAddressesFor(options.family, options.nodePortAddresses).containsIPv4Loopback
  );
}
