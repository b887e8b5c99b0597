// The dataplane's settings from the effective configuration, and what every mode derives from them
// per family: the one local-traffic detector and the node-port addresses (both decided in plan/).
import type { IPFamily } from '../../model/types.ts';
import {
  localTrafficDetector,
  type DetectLocalMode,
  type LocalTrafficDetector,
} from '../../plan/local-traffic.ts';
import { addressesInside, nodePortAddressesFor, type NodePortAddressSetting } from '../../plan/node-ports.ts';
import type { NftablesOptions } from '../nftables/options.ts';
import type { IpvsSettings } from '../ipvs/options.ts';

export type { DetectLocalMode, NodePortAddressSetting };

/** What the daemon learned about its node before creating backends (model/node.ts parses it). */
export interface NodeInfo {
  readonly name: string;
  readonly primaryFamily: IPFamily;
  /** Node IPs per family, bindAddress first; empty for a family the node has no IP of. */
  readonly ips: Readonly<Record<IPFamily, readonly string[]>>;
  readonly podCIDRs: readonly string[];
}

/** What only the userspace mode reads (upstream's userspace flags). */
export interface UserspaceSettings {
  /** --bind-address: the address listeners bind to; the unspecified address means every address. */
  readonly bindAddress: string;
  /** --proxy-port-range: ports `base` to `base + size - 1`; undefined lets the kernel choose. */
  readonly portRange: { readonly base: number; readonly size: number } | undefined;
  /** --udp-timeout: a UDP flow idle this long is closed (> 0). */
  readonly udpIdleTimeoutMs: number;
  /** --userspace-drain-timeout; undefined: connections to removed endpoints run until they end. */
  readonly drainMs?: number | undefined;
  /** --userspace-balancer; default round-robin (upstream). */
  readonly balancer?: 'round-robin' | 'least-connections';
  /** --userspace-capture; default nat (upstream). */
  readonly capture?: 'nat' | 'address';
}

/** Upstream's defaults: bind the wildcard address, kernel-chosen ports, 250 ms UDP flows. */
export const DEFAULT_USERSPACE_SETTINGS: UserspaceSettings = {
  bindAddress: '0.0.0.0',
  portRange: undefined,
  udpIdleTimeoutMs: 250,
};

export interface DataplaneSettings {
  readonly masqueradeBit: number;
  readonly masqueradeAll: boolean;
  readonly detectLocalMode: DetectLocalMode;
  /** Canonical clusterCIDR entries (0, 1, or one per family). */
  readonly clusterCIDRs: readonly string[];
  readonly bridgeInterface: string;
  readonly interfaceNamePrefix: string;
  readonly nodePortAddresses: NodePortAddressSetting;
  readonly localhostNodePorts: boolean;
  readonly syncPeriodMs: number;
  /** The userspace mode's own settings; absent: DEFAULT_USERSPACE_SETTINGS. */
  readonly userspace?: UserspaceSettings;
  /** The IPVS mode's own settings (the ipvs config section); absent: DEFAULT_IPVS_SETTINGS. */
  readonly ipvs?: IpvsSettings;
}

/** The one local-traffic detector of a family, for every mode (plan/local-traffic.ts). */
export function localDetectorFor(
  settings: DataplaneSettings,
  family: IPFamily,
  node: Pick<NodeInfo, 'podCIDRs'>,
): LocalTrafficDetector {
  return localTrafficDetector(
    { ...settings, mode: settings.detectLocalMode, podCIDRs: node.podCIDRs },
    family,
  );
}

/** `--nodeport-addresses` of one family for the iptables proxier: `primary` resolved to the node IP. */
export function nodePortCIDRsFor(
  setting: NodePortAddressSetting,
  family: IPFamily,
  node: Pick<NodeInfo, 'ips'>,
): { kind: 'all' } | { kind: 'cidrs'; cidrs: string[] } {
  const resolved = nodePortAddressesFor(setting, family, node.ips[family]);
  return resolved.matchAll ? { kind: 'all' } : { kind: 'cidrs', cidrs: [...resolved.cidrs] };
}

/** nftables takes concrete IPs: the node's and this host's addresses inside the CIDRs. */
export function nftNodePortAddresses(
  setting: NodePortAddressSetting,
  family: IPFamily,
  node: Pick<NodeInfo, 'ips'>,
  hostAddresses: readonly string[],
): NftablesOptions['nodePortAddresses'] {
  const resolved = nodePortAddressesFor(setting, family, node.ips[family]);
  if (resolved.matchAll) return { kind: 'all' };
  return { kind: 'ips', ips: addressesInside(resolved, [...node.ips[family], ...hostAddresses]) };
}
