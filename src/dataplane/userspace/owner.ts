// The userspace mode as an xtables owner (spec 2.3.1): upstream's five capture chains and the
// jumps into them, plus a canary (upstream had none, see USERSPACE_CANARY). The xtables toolkit
// ensures, checks and cleans up from this alone.
import type { CanarySpec, JumpSpec, XtablesOwner } from '../xtables/index.ts';

/** nat, from PREROUTING: service addresses, for traffic from pods and other hosts (REDIRECT). */
export const KUBE_PORTALS_CONTAINER = 'KUBE-PORTALS-CONTAINER';
/** nat, from OUTPUT: service addresses, for the node's own traffic (DNAT to the host IP). */
export const KUBE_PORTALS_HOST = 'KUBE-PORTALS-HOST';
/** nat, from PREROUTING, last: node ports on local addresses. */
export const KUBE_NODEPORT_CONTAINER = 'KUBE-NODEPORT-CONTAINER';
/** nat, from OUTPUT, last: node ports the node opens itself. */
export const KUBE_NODEPORT_HOST = 'KUBE-NODEPORT-HOST';
/** filter, from INPUT: lets redirected node port traffic through default-deny INPUT policies. */
export const KUBE_NODEPORT_NON_LOCAL = 'KUBE-NODEPORT-NON-LOCAL';

export const USERSPACE_NAT_CHAINS: readonly string[] = [
  KUBE_PORTALS_CONTAINER,
  KUBE_PORTALS_HOST,
  KUBE_NODEPORT_CONTAINER,
  KUBE_NODEPORT_HOST,
];
export const USERSPACE_FILTER_CHAINS: readonly string[] = [KUBE_NODEPORT_NON_LOCAL];

const PORTALS_COMMENT = 'handle ClusterIPs; NOTE: this must be before the NodePort rules';
const NODEPORTS_COMMENT = 'handle service NodePorts; NOTE: this must be the last rule in the chain';
const LOCAL_DESTINATION = ['-m', 'addrtype', '--dst-type', 'LOCAL'];

/**
 * Upstream's jumps, in the order it ensured them. The portal chains are inserted first and the
 * node port chains appended: `--dst-type LOCAL` also matches load balancer IPs that clouds
 * install as local routes, and those must reach the portal rules first.
 */
export const USERSPACE_JUMPS: readonly JumpSpec[] = [
  {
    table: 'nat',
    chain: 'PREROUTING',
    target: KUBE_PORTALS_CONTAINER,
    comment: PORTALS_COMMENT,
    matches: [],
    position: 'prepend',
  },
  {
    table: 'nat',
    chain: 'OUTPUT',
    target: KUBE_PORTALS_HOST,
    comment: PORTALS_COMMENT,
    matches: [],
    position: 'prepend',
  },
  {
    table: 'nat',
    chain: 'PREROUTING',
    target: KUBE_NODEPORT_CONTAINER,
    comment: NODEPORTS_COMMENT,
    matches: LOCAL_DESTINATION,
    position: 'append',
  },
  {
    table: 'nat',
    chain: 'OUTPUT',
    target: KUBE_NODEPORT_HOST,
    comment: NODEPORTS_COMMENT,
    matches: LOCAL_DESTINATION,
    position: 'append',
  },
  {
    table: 'filter',
    chain: 'INPUT',
    target: KUBE_NODEPORT_NON_LOCAL,
    comment: 'Ensure that non-local NodePort traffic can flow',
    matches: [],
    position: 'prepend',
  },
];

/**
 * Not upstream's: its userspace proxier re-checked every jump with `iptables -C` on each sync.
 * We ensure jumps only on full syncs (one iptables-save instead of dozens of commands), so a
 * flush of nat by someone else (a firewall reload) would leave the capture broken until the
 * hourly full sync; an empty canary chain, probed every 5 s (or syncPeriod when shorter) as in the iptables mode,
 * notices it within one. Its own name: the iptables mode's KUBE-PROXY-CANARY belongs to that
 * mode's owner, whose cleanup (at our start) removes it.
 */
export const USERSPACE_CANARY: CanarySpec = {
  chain: 'KUBE-PROXY-USERSPACE-CANARY',
  tables: ['nat', 'filter'],
};

export const USERSPACE_OWNER: XtablesOwner = {
  name: 'userspace',
  jumps: USERSPACE_JUMPS,
  canary: USERSPACE_CANARY,
  fixedChains: { nat: USERSPACE_NAT_CHAINS, filter: USERSPACE_FILTER_CHAINS },
  borrowedChains: {},
  // Every rule lives in the five fixed chains: nothing per service.
  ownsChain: () => false,
};
