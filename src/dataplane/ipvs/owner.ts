// The IPVS mode as an xtables owner (modes-ipvs-userspace.md 1.10.1, 1.10.2): its jump rules in
// upstream's order (each missing one inserted first, so later ones end up above earlier ones; no
// conntrack NEW match, unlike the iptables mode), and the chains every sync declares. It shares
// nat KUBE-SERVICES, KUBE-POSTROUTING and KUBE-MARK-MASQ with the iptables mode (a switch between
// the two removes the old mode's, the new one recreates them). No canary: upstream's IPVS mode
// has none and rewrites its small rule set on every full sync.
import type { JumpSpec, Table, XtablesOwner } from '../xtables/index.ts';
import {
  FILTER_CHAINS,
  KUBE_FORWARD,
  KUBE_IPVS_FILTER,
  KUBE_IPVS_OUT_FILTER,
  KUBE_MARK_MASQ,
  KUBE_NODE_PORT,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
  NAT_CHAINS,
} from './names.ts';

const jump = (table: Table, chain: string, target: string, comment: string): JumpSpec => ({
  table,
  chain,
  target,
  comment,
  matches: [],
  position: 'prepend',
});

export const IPVS_JUMPS: readonly JumpSpec[] = [
  jump('nat', 'OUTPUT', KUBE_SERVICES, 'kubernetes service portals'),
  jump('nat', 'PREROUTING', KUBE_SERVICES, 'kubernetes service portals'),
  jump('nat', 'POSTROUTING', KUBE_POSTROUTING, 'kubernetes postrouting rules'),
  jump('filter', 'FORWARD', KUBE_FORWARD, 'kubernetes forwarding rules'),
  jump('filter', 'INPUT', KUBE_NODE_PORT, 'kubernetes health check rules'),
  jump('filter', 'INPUT', KUBE_PROXY_FIREWALL, 'kube-proxy firewall rules'),
  jump('filter', 'FORWARD', KUBE_PROXY_FIREWALL, 'kube-proxy firewall rules'),
  jump('filter', 'INPUT', KUBE_IPVS_FILTER, 'kubernetes ipvs access filter'),
  jump('filter', 'OUTPUT', KUBE_IPVS_OUT_FILTER, 'kubernetes ipvs access filter'),
];

export const IPVS_OWNER: XtablesOwner = {
  name: 'ipvs',
  jumps: IPVS_JUMPS,
  canary: undefined,
  fixedChains: { nat: NAT_CHAINS, filter: FILTER_CHAINS },
  // As in the iptables mode: kubelet may own KUBE-MARK-MASQ too; cleanup leaves it.
  borrowedChains: { nat: [KUBE_MARK_MASQ] },
  ownsChain: () => false,
};
