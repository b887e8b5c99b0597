// The IPVS mode for the explainer: what a full sync leaves in the kernel (the iptables rules of
// rules.ts, the ipset members, the virtual and real servers, the addresses on kube-ipvs0), traced
// by tracer.ts. Rules are quoted as `iptables-save` lists them, set lookups with the member found
// (as `ipset list` prints it) and the IPVS table as `ipvsadm -Ln` lists it.
import type { ModeExplainer, ModeRenderInput, RenderedRules } from '../common/explain.ts';
import { localDetectorFor } from '../common/settings.ts';
import { nodePortAddressesFor } from '../../plan/node-ports.ts';
import { desiredState } from './desired.ts';
import { nodePortIPsOf } from './host.ts';
import { setName, SET_KEYS } from './names.ts';
import { DEFAULT_IPVS_SETTINGS, parseScheduler, type IpvsOptions } from './options.ts';
import { renderIpvsRules } from './rules.ts';
import { traceIpvsPaths, type IpvsTraceState } from './tracer.ts';

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** What a full sync of the input's snapshot leaves in the kernel. */
export function fullIpvsState({
  family,
  snapshot,
  settings,
  node,
  hostAddresses,
}: ModeRenderInput): IpvsTraceState {
  const parsed = parseScheduler((settings.ipvs ?? DEFAULT_IPVS_SETTINGS).scheduler);
  const scheduler = 'scheduler' in parsed ? parsed.scheduler : 'rr';
  const options: IpvsOptions = {
    family,
    scheduler,
    masqueradeBit: settings.masqueradeBit,
    masqueradeAll: settings.masqueradeAll,
    localDetector: localDetectorFor(settings, family, node),
    randomFully: true,
  };
  const others = [...new Set([...node.ips[family], ...hostAddresses])];
  const resolved = nodePortAddressesFor(settings.nodePortAddresses, family, node.ips[family]);
  const desired = desiredState(
    snapshot,
    { family, scheduler },
    { nodePortIPs: nodePortIPsOf({ bound: [], others }, resolved), otherInterfaceAddresses: others },
  );
  return {
    family,
    rules: renderIpvsRules({ options, desired }),
    sets: new Map(SET_KEYS.map((key) => [setName(key, family), desired.sets[key]])),
    virtualServers: desired.virtualServers,
    bound: [...desired.bind],
  };
}

export const ipvsExplainer: ModeExplainer = {
  localhostNodePorts: false,
  // External IPs and load balancer IPs are bound to kube-ipvs0: the node's own packet to one
  // without real servers meets its virtual server, which answers port unreachable.
  rejectsNodeTrafficToRemoteExternalFrontends: true,
  // KUBE-IPVS-FILTER rejects a service address on a port no virtual server has.
  rejectsUnusedClusterIPPorts: true,
  verdictFromRules:
    "upstream's IPVS mode: no eTP=Local shortcut for pods and the node, every endpoint when eTP=Local has " +
    'none on this node, no localhost node ports, KUBE-IPVS-OUT-FILTER for source ranges',
  render(input): RenderedRules {
    const state = fullIpvsState(input);
    return {
      syntax: 'iptables-save',
      trace: (packet, host) => traceIpvsPaths(state, packet, host),
      hookOf: (table, chain) =>
        table === 'ipvs'
          ? { hook: 'ipvs' }
          : BUILTIN_CHAINS.has(chain)
            ? { hook: chain.toLowerCase() }
            : undefined,
      quote: (table, chain, rule) => (table === 'ipvs' ? rule : `-A ${chain} ${rule}`),
    };
  },
};
