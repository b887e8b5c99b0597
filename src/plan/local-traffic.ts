// Which packets come from a pod on this node (upstream's LocalTrafficDetector, spec 3.7).
//
// Decided once per family from detectLocalMode and its inputs; every mode renders the same
// detector into its own match (`-s 10.0.0.0/8`, `iifname "cni0"`, ...) and the traffic plan uses
// it to decide masquerade and the eTP=Local shortcut. Pure.
import type { IPFamily } from '../model/types.ts';
import { cidrContains, parseCIDR, parseIP } from '../util/ip.ts';

export type DetectLocalMode = 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';

export type LocalTrafficDetector =
  /** Detection is off for this family: the rules that need it are not generated. */
  | { readonly kind: 'none' }
  /** Sources inside this canonical CIDR of the family are local pods. */
  | { readonly kind: 'cidr'; readonly cidr: string }
  /** Packets arriving on this interface. */
  | { readonly kind: 'bridge'; readonly iface: string }
  /** Packets arriving on an interface whose name starts with this. */
  | { readonly kind: 'prefix'; readonly prefix: string };

export interface LocalTrafficInputs {
  readonly mode: DetectLocalMode;
  /** clusterCIDR entries (any family; ClusterCIDR mode). */
  readonly clusterCIDRs: readonly string[];
  /** The node's spec.podCIDRs (any family; NodeCIDR mode). */
  readonly podCIDRs: readonly string[];
  readonly bridgeInterface: string;
  readonly interfaceNamePrefix: string;
}

/** The detector of one family: like upstream, the first CIDR of the family, none without one. */
export function localTrafficDetector(inputs: LocalTrafficInputs, family: IPFamily): LocalTrafficDetector {
  const firstOfFamily = (texts: readonly string[]): LocalTrafficDetector => {
    for (const text of texts) {
      const cidr = parseCIDR(text);
      if (cidr && cidr.family === family) return { kind: 'cidr', cidr: cidr.text };
    }
    return { kind: 'none' };
  };
  switch (inputs.mode) {
    case 'ClusterCIDR':
      return firstOfFamily(inputs.clusterCIDRs);
    case 'NodeCIDR':
      return firstOfFamily(inputs.podCIDRs);
    case 'BridgeInterface':
      return { kind: 'bridge', iface: inputs.bridgeInterface };
    case 'InterfaceNamePrefix':
      return { kind: 'prefix', prefix: inputs.interfaceNamePrefix };
  }
}

// Linux interface names: at most 15 bytes, no slash, no whitespace. A conservative subset, so an
// interface name can never carry rule syntax into any mode's rules.
const IFACE = /^[A-Za-z0-9_.@:-]{1,15}$/;

/** Problems with a detector, each naming the field; empty when every mode can render it. */
export function localTrafficDetectorProblems(detector: LocalTrafficDetector, family: IPFamily): string[] {
  switch (detector.kind) {
    case 'none':
      return [];
    case 'cidr': {
      const cidr = parseCIDR(detector.cidr);
      return cidr && cidr.family === family && cidr.text === detector.cidr
        ? []
        : [`localDetector.cidr: ${JSON.stringify(detector.cidr)} is not a canonical ${family} CIDR`];
    }
    case 'bridge':
      return IFACE.test(detector.iface)
        ? []
        : [`localDetector.iface: ${JSON.stringify(detector.iface)} is not an interface name`];
    case 'prefix':
      return IFACE.test(detector.prefix)
        ? []
        : [`localDetector.prefix: ${JSON.stringify(detector.prefix)} is not an interface name prefix`];
  }
}

/** Where a packet was seen: its source, and the interface it arrived on (none for the node's own). */
export interface PacketSource {
  readonly ip: string;
  /** Undefined for packets the node itself sends (they have no input interface). */
  readonly inInterface?: string | undefined;
}

/** Whether the detector calls this packet traffic from a local pod; false when detection is off. */
export function isFromLocalPod(detector: LocalTrafficDetector, source: PacketSource): boolean {
  switch (detector.kind) {
    case 'none':
      return false;
    case 'cidr': {
      const cidr = parseCIDR(detector.cidr);
      const ip = parseIP(source.ip);
      return cidr !== undefined && ip !== undefined && cidrContains(cidr, ip);
    }
    case 'bridge':
      return source.inInterface === detector.iface;
    case 'prefix':
      return source.inInterface?.startsWith(detector.prefix) ?? false;
  }
}
