// What a mode offers the explainer (src/explain/): the rules it would write for a snapshot, and a
// tracer over exactly those rules. The explainer takes its decisions from the traffic plan and
// its rule path from here, so the path it quotes is the text the mode's renderer writes, walked
// by the same tracer the packet-flow tables check. Pure: nothing here touches the kernel.
import type { IPFamily, ProxySnapshot } from '../../model/types.ts';
import type { DataplaneSettings, NodeInfo } from './settings.ts';
import type { HostFacts, Packet, TraceResult } from './trace.ts';

/** Where a base chain sits in the kernel: its netfilter hook and priority. */
export interface HookPlace {
  readonly hook: string;
  readonly priority?: number | undefined;
}

/** One family's rules as the mode would write them, with a tracer over them. */
export interface RenderedRules {
  /** How the quoted rules are spelled: `iptables-save` lines or `nft list` rules. */
  readonly syntax: 'iptables-save' | 'nft list';
  trace(packet: Packet, host: HostFacts): TraceResult;
  /** The hook of a built-in or base chain; undefined for a regular chain. */
  hookOf(table: string, chain: string): HookPlace | undefined;
  /** A traced rule as the kernel's listing prints it (`-A CHAIN …` for iptables). */
  quote(table: string, chain: string, rule: string): string;
}

/** What a full render of one family needs. */
export interface ModeRenderInput {
  readonly family: IPFamily;
  readonly snapshot: ProxySnapshot;
  readonly settings: DataplaneSettings;
  readonly node: NodeInfo;
  /** This host's addresses of the family (node ports on `primary`/CIDRs resolve against them). */
  readonly hostAddresses: readonly string[];
}

/** The mode's behaviour the plan does not decide, and its rules. */
export interface ModeExplainer {
  /** Localhost node ports exist in this mode at all (iptables: IPv4 only, when configured). */
  readonly localhostNodePorts: boolean;
  /**
   * A packet to a cluster IP on a port it does not serve is rejected (nftables'
   * cluster-ips-check) instead of left alone (iptables).
   */
  readonly rejectsUnusedClusterIPPorts: boolean;
  /**
   * A packet to an address inside the service CIDRs (ServiceCIDR objects) that no Service holds
   * is dropped (nftables' cluster-ips-check) instead of left alone. Absent: false.
   */
  readonly dropsUnallocatedClusterIPs?: boolean;
  /**
   * A packet the node itself sends to an external IP or load balancer IP (not one of its own
   * addresses) of a port without endpoints is rejected (nftables: service-endpoints-check hangs
   * off the output hook) rather than sent on untouched (iptables: KUBE-EXTERNAL-SERVICES, which
   * holds that REJECT, hangs off INPUT and FORWARD only, as upstream's does).
   */
  readonly rejectsNodeTrafficToRemoteExternalFrontends: boolean;
  /**
   * The mode departs from the traffic plan on purpose in some cases (IPVS: upstream's IPVS
   * behaviour, test/unit/flows/table.ts): where its rules and the plan disagree, the verdict is
   * what its rules do, and the explanation says so. Otherwise a disagreement is a bug.
   */
  readonly verdictFromRules?: string;
  /**
   * The probability written on the rule of the endpoint in `slot` of `count` (iptables' statistic
   * match: 1/(count - slot), the last rule unconditional); absent when the mode picks at once.
   */
  slotProbability?(slot: number, count: number): number;
  /** Renders one family's full rule set as a full sync would write it. */
  render(input: ModeRenderInput): RenderedRules;
}
