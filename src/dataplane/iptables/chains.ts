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

// Hashing is the most expensive step per endpoint (about 9 us: 1.8 s for the 200k chain names of
// 10k Services x 10 endpoints), and a full render that cannot reuse its fragments asks for the
// same names again. So the names a full render asks for are kept until the next full render,
// and only those: partial syncs look names up but add none. Before, every name ever asked for
// stayed (up to 500,000 of them): under endpoint churn each new pod added one for good, and the
// hour-long soak in iptables mode grew the heap by 18 MiB (issue 15, goal 7).
// One set of names per IP family (the families render on their own), looked up across both.
const memos = new Map<string, Map<string, string>>();
/** While a full render runs: where its names go, and the previous full render's names. */
let rendering: { readonly memo: Map<string, string>; readonly carried: Map<string, string> } | undefined;

/** Marks a full render of `family`: the names it asks for are the ones kept (see above). */
export function hashesForFullRender<T>(family: string, render: () => T): T {
  const memo = new Map<string, string>();
  rendering = { memo, carried: memos.get(family) ?? new Map<string, string>() };
  memos.set(family, memo);
  try {
    return render();
  } finally {
    rendering = undefined;
  }
}

/** How many chain names are kept (for tests). */
export function keptHashes(): number {
  let n = 0;
  for (const memo of memos.values()) n += memo.size;
  return n;
}

/** First 16 characters of base32(sha256(utf8(text))), spec 3.3. */
export function hash16(text: string): string {
  for (const memo of memos.values()) {
    const cached = memo.get(text);
    if (cached !== undefined) {
      rendering?.memo.set(text, cached);
      return cached;
    }
  }
  const value = rendering?.carried.get(text) ?? hashedName(text, 16);
  rendering?.memo.set(text, value);
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
