// The iptables mode for the explainer: the restore text a full sync writes, traced by tracer.ts.
// The rules are quoted as `iptables-save` lists them (`-A CHAIN …`), from our own render text;
// the kernel's listing of the same rules differs only in spelling (`/32`, match order).
import type { ModeExplainer, ModeRenderInput, RenderedRules } from '../common/explain.ts';
import { localDetectorFor, nodePortCIDRsFor } from '../common/settings.ts';
import { addressesInside, nodePortAddressesFor } from '../../plan/node-ports.ts';
import { renderIptables } from './render.ts';
import { NO_NFACCT, type IptablesOptions } from './options.ts';
import { parseRestore, traceIptables } from './tracer.ts';

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** The restore text a full sync of the input's snapshot writes. */
export function fullRestoreText({
  family,
  snapshot,
  settings,
  node,
  hostAddresses,
}: ModeRenderInput): string {
  const resolved = nodePortAddressesFor(settings.nodePortAddresses, family, node.ips[family]);
  const options: IptablesOptions = {
    family,
    masqueradeBit: settings.masqueradeBit,
    masqueradeAll: settings.masqueradeAll,
    localDetector: localDetectorFor(settings, family, node),
    nodePortAddresses: nodePortCIDRsFor(settings.nodePortAddresses, family, node),
    // What the proxier looks up with `ip -j addr` before it renders.
    nodeIPsForNodePorts: addressesInside(resolved, [...node.ips[family], ...hostAddresses]),
    localhostNodePorts: settings.localhostNodePorts,
    randomFully: true,
    nfacct: NO_NFACCT,
    conntrackInvalidDrop: true,
  };
  return renderIptables({ snapshot, full: true, options }).text;
}

export const iptablesExplainer: ModeExplainer = {
  localhostNodePorts: true,
  rejectsNodeTrafficToRemoteExternalFrontends: false,
  rejectsUnusedClusterIPPorts: false,
  slotProbability: (slot, count) => 1 / (count - slot),
  render(input): RenderedRules {
    const rules = parseRestore(fullRestoreText(input));
    return {
      syntax: 'iptables-save',
      trace: (packet, host) => traceIptables(rules, packet, host),
      hookOf: (_table, chain) => (BUILTIN_CHAINS.has(chain) ? { hook: chain.toLowerCase() } : undefined),
      quote: (_table, chain, rule) => `-A ${chain} ${rule}`,
    };
  },
};
