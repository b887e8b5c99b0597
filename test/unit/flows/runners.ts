// One runner per mode: given a cluster state and a packet, what happens to the packet. Every
// runner runs every row of the flow table (flows.test.ts), like a compliance suite: a new mode (or
// the traffic plan) joins by adding one line to FLOW_RUNNERS.
import type { FlowOutcome, HostFacts, Packet } from '../../../src/dataplane/common/trace.ts';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import type { IptablesOptions } from '../../../src/dataplane/iptables/options.ts';
import { parseRestore, traceIptables, type Ruleset } from '../../../src/dataplane/iptables/tracer.ts';
import { applyScript, emptyTable, type FakeTable } from '../../../src/dataplane/nftables/fake.ts';
import type { NftablesOptions } from '../../../src/dataplane/nftables/options.ts';
import { render } from '../../../src/dataplane/nftables/render.ts';
import { traceNftables } from '../../../src/dataplane/nftables/tracer.ts';
import type { FlowCluster } from './clusters.ts';
import { localTrafficDetector, type LocalTrafficDetector } from '../../../src/plan/local-traffic.ts';
import { localhostNodePortsEffective, nodePortAddressesFor } from '../../../src/plan/node-ports.ts';
import { tracePacketThroughPlan, type TrafficContext } from '../../../src/plan/packet.ts';
import { planNodeOf } from '../../../src/plan/service-port.ts';

export type FlowRunner = (cluster: FlowCluster, packet: Packet) => FlowOutcome;

/** Renders once per cluster (the rows of a cluster share its rules). */
function perCluster<T>(make: (cluster: FlowCluster) => T): (cluster: FlowCluster) => T {
  const cache = new WeakMap<FlowCluster, T>();
  return (cluster) => {
    let value = cache.get(cluster);
    if (value === undefined) {
      value = make(cluster);
      cache.set(cluster, value);
    }
    return value;
  };
}

function host(cluster: FlowCluster): HostFacts {
  return { localAddresses: cluster.localAddresses };
}

/** ClusterCIDR local-traffic detection, as the e2e clusters configure it. */
function clusterDetector(cluster: FlowCluster): LocalTrafficDetector {
  return localTrafficDetector(
    {
      mode: 'ClusterCIDR',
      clusterCIDRs: cluster.clusterCIDRs,
      podCIDRs: [],
      bridgeInterface: '',
      interfaceNamePrefix: '',
    },
    cluster.family,
  );
}

/** The daemon's defaults for the iptables mode, with ClusterCIDR local-traffic detection. */
export function iptablesOptions(cluster: FlowCluster): IptablesOptions {
  return {
    family: cluster.family,
    masqueradeBit: 14,
    masqueradeAll: false,
    localDetector: clusterDetector(cluster),
    nodePortAddresses: { kind: 'all' },
    localhostNodePorts: true,
    randomFully: true,
    nfacct: { ctStateInvalidDropped: false, localhostNodePortsAccepted: false },
    conntrackInvalidDrop: true,
  };
}

/** The daemon's defaults for the nftables mode: node ports on the node's primary IP. */
export function nftablesOptions(cluster: FlowCluster): NftablesOptions {
  return {
    family: cluster.family,
    masqueradeBit: 14,
    masqueradeAll: false,
    localDetector: clusterDetector(cluster),
    nodePortAddresses: { kind: 'ips', ips: cluster.snapshot.node.nodeIPs.slice(0, 1) },
  };
}

const iptablesRules = perCluster((cluster): Ruleset =>
  parseRestore(
    renderIptables({ snapshot: cluster.snapshot, full: true, options: iptablesOptions(cluster) }).text,
  ),
);

const nftablesTable = perCluster((cluster): FakeTable => {
  const prefix = `${cluster.family === 'IPv4' ? 'ip' : 'ip6'} kube-proxy`;
  const script = render(undefined, cluster.snapshot, nftablesOptions(cluster), true).script;
  return applyScript(emptyTable(prefix), script);
});

/** The traffic plan with the iptables mode's defaults: upstream's behaviour, decided once. */
function planContext(cluster: FlowCluster): TrafficContext {
  const nodePortAddresses = nodePortAddressesFor(
    { kind: 'all' },
    cluster.family,
    cluster.snapshot.node.nodeIPs,
  );
  return {
    family: cluster.family,
    node: planNodeOf(cluster.snapshot),
    localAddresses: cluster.localAddresses,
    localDetector: clusterDetector(cluster),
    masqueradeAll: false,
    nodePortAddresses,
    nodePortIPs: [],
    localhostNodePorts: localhostNodePortsEffective(nodePortAddresses, true),
  };
}

/** What the plan decides for one packet, in the tracers' vocabulary. */
function planOutcome(cluster: FlowCluster, packet: Packet): FlowOutcome {
  const outcome = tracePacketThroughPlan(cluster.snapshot.servicePorts.values(), planContext(cluster), {
    source: packet.sourceIP,
    destination: packet.destIP,
    port: packet.destPort,
    protocol: packet.protocol,
    fromNode: packet.origin.kind === 'local',
    inInterface: packet.origin.kind === 'arriving' ? packet.origin.iif : undefined,
  });
  switch (outcome.kind) {
    case 'not a service':
      return { kind: 'pass', masquerade: false };
    case 'dnat':
      return {
        kind: 'endpoints',
        endpoints: [...new Set(outcome.destinations.map((d) => d.endpoint))].sort(),
        masquerade: outcome.destinations.some((d) => d.masquerade),
      };
    case 'drop':
    case 'reject':
      return { kind: outcome.kind };
  }
}

export const FLOW_RUNNERS = {
  plan: planOutcome,
  iptables: (cluster, packet) => traceIptables(iptablesRules(cluster), packet, host(cluster)).outcome,
  nftables: (cluster, packet) => traceNftables(nftablesTable(cluster), packet, host(cluster)).outcome,
} satisfies Record<string, FlowRunner>;

export type RunnerName = keyof typeof FLOW_RUNNERS;
