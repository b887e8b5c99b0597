// The dataplane's settings from the effective configuration, and the per-family local-traffic
// detector and node-port addresses derived from them and from the Node. Moved here unchanged from
// dataplane/factory.ts so that dataplane/ needs nothing from cli/ or daemon/; the one shared
// detector and node-port-address resolver (issue 10, item 1) replaces this file.
import { networkInterfaces } from 'node:os';
import type { IPFamily } from '../../model/types.ts';
import { cidrContains, parseCIDR, parseIP } from '../../util/ip.ts';
import type { LocalDetector } from '../iptables/options.ts';
import type { NftablesOptions } from '../nftables/options.ts';

/** What the daemon learned about its node before creating backends. */
export interface NodeInfo {
  readonly name: string;
  readonly primaryFamily: IPFamily;
  readonly ips: Readonly<Record<IPFamily, readonly string[]>>;
  readonly podCIDRs: readonly string[];
}

export type DetectLocalMode = 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';

export type NodePortAddressSetting =
  | { readonly kind: 'all' }
  | { readonly kind: 'primary' }
  | { readonly kind: 'cidrs'; readonly cidrs: readonly string[] };

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
}

export function localDetectorFor(settings: DataplaneSettings, family: IPFamily): LocalDetector {
  switch (settings.detectLocalMode) {
    case 'ClusterCIDR': {
      const cidrs = settings.clusterCIDRs.filter((cidr) => parseCIDR(cidr)?.family === family);
      return cidrs.length > 0 ? { kind: 'cidr', cidrs } : { kind: 'none' };
    }
    case 'NodeCIDR':
      return { kind: 'node-cidr' };
    case 'BridgeInterface':
      return { kind: 'bridge', iface: settings.bridgeInterface };
    case 'InterfaceNamePrefix':
      return { kind: 'prefix', prefix: settings.interfaceNamePrefix };
  }
}

/** `primary` becomes the node's own IP of the family as a host CIDR (spec 8.1). */
export function nodePortCIDRsFor(
  setting: NodePortAddressSetting,
  family: IPFamily,
  node: NodeInfo,
): { kind: 'all' } | { kind: 'cidrs'; cidrs: string[] } {
  if (setting.kind === 'all') return { kind: 'all' };
  if (setting.kind === 'primary') {
    const cidrs = node.ips[family]
      .map((ip) => parseIP(ip))
      .filter(
        (ip) => ip !== undefined && !(ip.family === 'IPv4' ? ip.text.startsWith('127.') : ip.text === '::1'),
      )
      .slice(0, 1)
      .map((ip) => `${ip?.text ?? ''}/${family === 'IPv4' ? '32' : '128'}`);
    return { kind: 'cidrs', cidrs };
  }
  return { kind: 'cidrs', cidrs: [...setting.cidrs] };
}

/** nftables has no NodeCIDR detector of its own: the node's podCIDR of the family is a CIDR. */
export function nftLocalDetector(
  settings: DataplaneSettings,
  family: IPFamily,
  node: NodeInfo,
): NftablesOptions['localDetector'] {
  const detector = localDetectorFor(settings, family);
  if (detector.kind !== 'node-cidr') return detector;
  const cidrs = node.podCIDRs.filter((cidr) => parseCIDR(cidr)?.family === family);
  return cidrs.length > 0 ? { kind: 'cidr', cidrs } : { kind: 'none' };
}

/** This host's own interface addresses of a family (the process runs in the node's namespace). */
function localAddresses(family: IPFamily): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((address) => address !== undefined && address.family === family && !address.internal)
    .map((address) => parseIP(address?.address ?? '')?.text)
    .filter((ip): ip is string => ip !== undefined);
}

/** nftables takes concrete IPs: `primary` is the node's IP, CIDRs select local addresses. */
export function nftNodePortAddresses(
  setting: NodePortAddressSetting,
  family: IPFamily,
  node: NodeInfo,
): NftablesOptions['nodePortAddresses'] {
  const resolved = nodePortCIDRsFor(setting, family, node);
  if (resolved.kind === 'all') return { kind: 'all' };
  const cidrs = resolved.cidrs.map((text) => parseCIDR(text)).filter((cidr) => cidr?.family === family);
  // No CIDR of this family (e.g. `primary` on a node without an IPv6 address) means every
  // address, as upstream and our iptables mode do; so does a /0.
  if (cidrs.length === 0 || cidrs.some((cidr) => cidr?.prefix === 0)) return { kind: 'all' };
  const candidates = [...new Set([...node.ips[family], ...localAddresses(family)])];
  const ips = candidates.filter((text) => {
    const ip = parseIP(text);
    return ip !== undefined && cidrs.some((cidr) => cidr !== undefined && cidrContains(cidr, ip));
  });
  return { kind: 'ips', ips };
}
