// The nftables mode for the explainer: the transaction a full sync writes, applied to the
// in-memory nft (fake.ts) and traced by tracer.ts. Rules are quoted as our renderer writes them;
// `nft list` prints a few constants differently (see docs/nftables-layout.md).
import type { ModeExplainer, ModeRenderInput, RenderedRules } from '../common/explain.ts';
import { localDetectorFor, nftNodePortAddresses } from '../common/settings.ts';
import { applyScript, emptyTable, type FakeTable } from './fake.ts';
import type { NftablesOptions } from './options.ts';
import { render } from './render.ts';
import { traceNftables } from './tracer.ts';

/** The table a full sync of the input's snapshot leaves, in the in-memory nft. */
export function fullTable({ family, snapshot, settings, node, hostAddresses }: ModeRenderInput): FakeTable {
  const options: NftablesOptions = {
    family,
    masqueradeBit: settings.masqueradeBit,
    masqueradeAll: settings.masqueradeAll,
    localDetector: localDetectorFor(settings, family, node),
    nodePortAddresses: nftNodePortAddresses(settings.nodePortAddresses, family, node, hostAddresses),
  };
  const prefix = `${family === 'IPv4' ? 'ip' : 'ip6'} kube-proxy`;
  return applyScript(emptyTable(prefix), render(undefined, snapshot, options, true).script);
}

export const nftablesExplainer: ModeExplainer = {
  localhostNodePorts: false,
  rejectsNodeTrafficToRemoteExternalFrontends: true,
  rejectsUnusedClusterIPPorts: true,
  dropsUnallocatedClusterIPs: true,
  render(input): RenderedRules {
    const table = fullTable(input);
    return {
      syntax: 'nft list',
      trace: (packet, host) => traceNftables(table, packet, host),
      hookOf: (_table, chain) => {
        const base = table.chains.get(chain)?.base;
        return base ? { hook: base.hook, priority: base.priority } : undefined;
      },
      quote: (_table, _chain, rule) => rule,
    };
  },
};
