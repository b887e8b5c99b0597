// Chain names of the iptables mode (spec 3.1, 3.3). Operators grep `iptables-save` for these
// exact names, and the hashed per-service names must equal upstream's so that a node switched
// between upstream kube-proxy and ours keeps (and later cleans up) the same chains.
import { hashedName } from '../common/hashed-name.ts';
import type { Protocol } from '../../model/types.ts';

// Chains kube-proxy owns in the nat table.
export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
// Filter-only chains (KUBE-SERVICES and KUBE-NODEPORTS exist in filter too).
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
/** kubelet's anti-martian chain, which we also write for localhost NodePorts; never deleted. */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';
/** Empty chain in mangle, nat and filter whose disappearance tells us someone flushed the tables. */
export const KUBE_PROXY_CANARY = 'KUBE-PROXY-CANARY';

/** Filter chains declared (and so flushed and rewritten) on every sync, in upstream's order. */
export const FILTER_CHAINS: readonly string[] = [
  KUBE_SERVICES,
  KUBE_EXTERNAL_SERVICES,
  KUBE_FORWARD,
  KUBE_NODEPORTS,
  KUBE_PROXY_FIREWALL,
];
/** Nat chains declared on every sync, in upstream's order. */
export const NAT_CHAINS: readonly string[] = [
  KUBE_SERVICES,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_MARK_MASQ,
];

export const SERVICE_CHAIN_PREFIXES = [
  'KUBE-SVC-',
  'KUBE-SVL-',
  'KUBE-EXT-',
  'KUBE-FW-',
  'KUBE-SEP-',
] as const;

/**
 * "Ours" in the sense of stale-chain deletion: a per-service or per-endpoint chain. Fixed
 * chains are not included, they are declared on every sync.
 */
export function isServiceChainName(chain: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((prefix) => chain.startsWith(prefix));
}

// Hashing is the most expensive step per endpoint, and the same inputs come back on every full
// render; a bounded memo keeps a long-running proxy from growing without limit.
const MEMO_LIMIT = 500_000;
const memo = new Map<string, string>();

/** First 16 characters of base32(sha256(utf8(text))), spec 3.3. */
export function hash16(text: string): string {
  const cached = memo.get(text);
  if (cached !== undefined) return cached;
  const value = hashedName(text, 16);
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(text, value);
  return value;
}

function lower(protocol: Protocol): string {
  return protocol.toLowerCase();
}

export interface ServiceChains {
  /** KUBE-SVC-: Cluster-policy dispatch. */
  readonly cluster: string;
  /** KUBE-SVL-: Local-policy dispatch. */
  readonly local: string;
  /** KUBE-EXT-: entry for NodePort, LoadBalancer and external IP traffic. */
  readonly external: string;
  /** KUBE-FW-: loadBalancerSourceRanges filter. */
  readonly firewall: string;
}

/** The four per-service-port chain names; `printable` is ServicePortName.printable. */
export function serviceChainNames(printable: string, protocol: Protocol): ServiceChains {
  const hash = hash16(printable + lower(protocol));
  return {
    cluster: `KUBE-SVC-${hash}`,
    local: `KUBE-SVL-${hash}`,
    external: `KUBE-EXT-${hash}`,
    firewall: `KUBE-FW-${hash}`,
  };
}

/** KUBE-SEP- chain of one endpoint (`ip:port` text) of one service port. */
export function endpointChainName(printable: string, protocol: Protocol, endpoint: string): string {
  return `KUBE-SEP-${hash16(printable + lower(protocol) + endpoint)}`;
}
