// Settings of the iptables renderer, and their validation. Everything here ends up in rule
// text, so values that do not come from the validated snapshot (interface names, CIDRs from the
// configuration) are checked before any rule is written.
import type { IPFamily } from '../../model/types.ts';
import { parseCIDR, parseIP } from '../../util/ip.ts';
import { localTrafficDetectorProblems, type LocalTrafficDetector } from '../../plan/local-traffic.ts';
import {
  localhostNodePortsEffective,
  nodePortAddressesFor,
  type NodePortAddressSetting,
} from '../../plan/node-ports.ts';

/**
 * `--nodeport-addresses` as the iptables proxier takes it: `primary` already resolved to the
 * node's IP by whoever creates the proxier (plan/node-ports.ts), since the proxier looks up
 * the local addresses inside the CIDRs itself.
 */
/** The one local-traffic detector (plan/local-traffic.ts). */
export type LocalDetector = LocalTrafficDetector;

export type NodePortAddresses = Exclude<NodePortAddressSetting, { readonly kind: 'primary' }>;

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

/** Problems with options, each naming the field; empty when the options are usable. */
export function validateIptablesOptions(options: IptablesOptions): string[] {
  const errors: string[] = [];
  if (!Number.isInteger(options.masqueradeBit) || options.masqueradeBit < 0 || options.masqueradeBit > 31) {
    errors.push(`masqueradeBit: ${options.masqueradeBit} is not an integer in 0..31`);
  }
  errors.push(...localTrafficDetectorProblems(options.localDetector, options.family));
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

/** Localhost NodePorts are only ever IPv4, and only when nodePortAddresses covers 127.0.0.1. */
export function effectiveLocalhostNodePorts(options: IptablesOptions, nodeIPs: readonly string[]): boolean {
  return localhostNodePortsEffective(
    nodePortAddressesFor(options.nodePortAddresses, options.family, nodeIPs),
    options.localhostNodePorts,
  );
}
