// The iptables mode as an xtables owner (spec 3.1, 3.2, 3.11): its jump rules from the built-in
// chains, its canary, the chains every full sync declares, the kubelet chains it only borrows,
// and its per-service chains. The xtables toolkit ensures, checks and cleans up from this alone.
import type { CanarySpec, JumpSpec, Table, XtablesOwner } from '../xtables/index.ts';
import {
  FILTER_CHAINS,
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_CANARY,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
  NAT_CHAINS,
  isServiceChainName,
} from './chains.ts';

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];

/** One jump per hooked chain, each prepended (upstream's EnsureRule(Prepend)). */
function jumps(
  table: Table,
  chains: readonly string[],
  target: string,
  comment: string | undefined,
  matches: readonly string[] = [],
): JumpSpec[] {
  return chains.map((chain) => ({ table, chain, target, comment, matches, position: 'prepend' }));
}

/**
 * In the order upstream ensures them; each missing one is prepended, so the final order in a
 * built-in chain is the reverse of this list.
 */
export const IPTABLES_JUMPS: readonly JumpSpec[] = [
  ...jumps(
    'filter',
    ['INPUT', 'FORWARD'],
    KUBE_EXTERNAL_SERVICES,
    'kubernetes externally-visible service portals',
    NEW,
  ),
  ...jumps('filter', ['INPUT'], KUBE_NODEPORTS, 'kubernetes health check service ports'),
  ...jumps('filter', ['FORWARD', 'OUTPUT'], KUBE_SERVICES, 'kubernetes service portals', NEW),
  ...jumps('filter', ['FORWARD'], KUBE_FORWARD, 'kubernetes forwarding rules'),
  ...jumps(
    'filter',
    ['INPUT', 'OUTPUT', 'FORWARD'],
    KUBE_PROXY_FIREWALL,
    'kubernetes load balancer firewall',
    NEW,
  ),
  ...jumps('nat', ['OUTPUT', 'PREROUTING'], KUBE_SERVICES, 'kubernetes service portals'),
  ...jumps('nat', ['POSTROUTING'], KUBE_POSTROUTING, 'kubernetes postrouting rules'),
  // kubelet's chain: jumps are shared with kubelet and stay on cleanup.
  ...jumps('filter', ['INPUT', 'OUTPUT'], KUBE_FIREWALL, undefined),
];

/** mangle is polled: it holds nothing else of ours and is small, so the probe is cheap. */
export const IPTABLES_CANARY: CanarySpec = { chain: KUBE_PROXY_CANARY, tables: ['mangle', 'nat', 'filter'] };

export const IPTABLES_OWNER: XtablesOwner = {
  name: 'iptables',
  jumps: IPTABLES_JUMPS,
  canary: IPTABLES_CANARY,
  fixedChains: { nat: NAT_CHAINS, filter: FILTER_CHAINS },
  // kubelet and other components use these too: cleanup leaves them (and jumps into them).
  // Cleanup does remove KUBE-PROXY-FIREWALL and the canaries, which upstream leaves behind as
  // empty chains (deliberate deviation).
  borrowedChains: { nat: [KUBE_MARK_MASQ], filter: [KUBE_FIREWALL] },
  ownsChain: (table, chain) => table === 'nat' && isServiceChainName(chain),
};
