// Settings of one nftables proxier (one IP family): the CLI resolves flags and configuration
// (detect-local mode, node port addresses) into these plain values. All are fixed for the
// proxier's life except the node port addresses, which follow the host's addresses (the proxier
// re-resolves them and a partial sync updates @nodeport-ips); the service CIDRs come with each
// snapshot.
import type { IPFamily } from '../../model/types.ts';
import { isLoopback, parseIP } from '../../util/ip.ts';
import { localTrafficDetectorProblems, type LocalTrafficDetector } from '../../plan/local-traffic.ts';

/** The one local-traffic detector (plan/local-traffic.ts). */
export type LocalDetector = LocalTrafficDetector;

/**
 * Where NodePorts are accepted. `all`: every local address but loopback (upstream's match-all).
 * `ips`: exactly these addresses; the CLI resolves `primary` (the default) and CIDRs to the
 * node's IPs of this family. Loopback addresses are ignored, as upstream's nftables mode does.
 */
export type NodePortAddresses =
  { readonly kind: 'all' } | { readonly kind: 'ips'; readonly ips: readonly string[] };

export interface NftablesOptions {
  readonly family: IPFamily;
  /** Bit of the packet mark that asks for masquerade (default 14, i.e. 0x00004000). */
  readonly masqueradeBit: number;
  /** Masquerade every packet sent to a cluster IP. */
  readonly masqueradeAll: boolean;
  readonly localDetector: LocalDetector;
  readonly nodePortAddresses: NodePortAddresses;
}

/** Throws, naming the field, when an option could not be rendered safely. */
export function validateOptions(options: NftablesOptions): void {
  const fam = options.family;
  if (!Number.isInteger(options.masqueradeBit) || options.masqueradeBit < 0 || options.masqueradeBit > 31) {
    throw new Error(`nftables options: masqueradeBit ${options.masqueradeBit} is not an integer in [0, 31]`);
  }
  const detectorProblems = localTrafficDetectorProblems(options.localDetector, fam);
  if (detectorProblems.length > 0) throw new Error(`nftables options: ${detectorProblems.join('; ')}`);
  if (options.nodePortAddresses.kind === 'ips') {
    for (const text of options.nodePortAddresses.ips) {
      const ip = parseIP(text);
      if (!ip || ip.family !== fam || ip.text !== text) {
        throw new Error(
          `nftables options: nodePortAddresses entry ${JSON.stringify(text)} is not a canonical ${fam} address`,
        );
      }
    }
  }
}

/** Node port addresses that end up in @nodeport-ips: this family, no loopback, sorted, unique. */
export function nodePortIPs(options: NftablesOptions): string[] {
  if (options.nodePortAddresses.kind !== 'ips') return [];
  const out = new Set<string>();
  for (const text of options.nodePortAddresses.ips) {
    const ip = parseIP(text);
    if (ip && ip.family === options.family && !isLoopback(ip)) out.add(ip.text);
  }
  return [...out].sort();
}

/**
 * Text that changes whenever the rendered skeleton's chains, sets or rules would change, so the
 * table must be rebuilt. The node port addresses themselves are not in it: they follow the host's
 * addresses at run time, and a partial render updates @nodeport-ips in place.
 */
export function optionsFingerprint(options: NftablesOptions): string {
  return JSON.stringify([
    options.family,
    options.masqueradeBit,
    options.masqueradeAll,
    options.localDetector,
    options.nodePortAddresses.kind,
  ]);
}
