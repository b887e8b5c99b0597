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
import { planNodeOf, planOf } from '../../../src/plan/service-port.ts';
import { USERSPACE_JUMPS } from '../../../src/dataplane/userspace/owner.ts';
import { frontendsOf, renderCapture, type CaptureListener } from '../../../src/dataplane/userspace/render.ts';
import { routerFor } from '../../../src/dataplane/userspace/routes.ts';
import type { Router } from '../../../src/dataplane/userspace/route.ts';
import { splitHostPort } from '../../../src/dataplane/common/trace.ts';
import { isLoopback, parseIP } from '../../../src/util/ip.ts';
import { desiredState } from '../../../src/dataplane/ipvs/desired.ts';
import { setName, SET_KEYS } from '../../../src/dataplane/ipvs/names.ts';
import type { IpvsOptions } from '../../../src/dataplane/ipvs/options.ts';
import { renderIpvsRules } from '../../../src/dataplane/ipvs/rules.ts';
import { traceIpvs, type IpvsTraceState } from '../../../src/dataplane/ipvs/tracer.ts';

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

/** The daemon's defaults for the IPVS mode: rr, node ports on every local address. */
export function ipvsOptions(cluster: FlowCluster): IpvsOptions {
  return {
    family: cluster.family,
    scheduler: 'rr',
    masqueradeBit: 14,
    masqueradeAll: false,
    localDetector: clusterDetector(cluster),
    randomFully: true,
  };
}

/** What the IPVS proxier would leave in the kernel for the cluster: rules, sets, virtual servers. */
const ipvsState = perCluster((cluster): IpvsTraceState => {
  const options = ipvsOptions(cluster);
  const desired = desiredState(cluster.snapshot, options, {
    nodePortIPs: cluster.localAddresses,
    otherInterfaceAddresses: cluster.localAddresses,
  });
  return {
    family: cluster.family,
    rules: renderIpvsRules({ options, desired }),
    sets: new Map(SET_KEYS.map((key) => [setName(key, cluster.family), desired.sets[key]])),
    virtualServers: desired.virtualServers,
    bound: [...desired.bind],
  };
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

/** The userspace mode as the daemon sets it up: listeners on the wildcard address, proxy ports from 41000. */
interface UserspaceSetup {
  readonly rules: Ruleset;
  readonly routers: ReadonlyMap<number, Router>;
}

const userspaceSetup = perCluster((cluster): UserspaceSetup => {
  const planNode = planNodeOf(cluster.snapshot);
  const ctx = {
    localDetector: clusterDetector(cluster),
    isNodeAddress: (text: string) => {
      const ip = parseIP(text);
      return ip !== undefined && (isLoopback(ip) || cluster.localAddresses.includes(ip.text));
    },
  };
  const listeners: CaptureListener[] = [];
  const routers = new Map<number, Router>();
  let proxyPort = 41000;
  for (const state of cluster.snapshot.servicePorts.values()) {
    // SCTP is not proxied: Node.js has no SCTP sockets.
    if (state.servicePort.id.protocol === 'SCTP') continue;
    for (const frontend of frontendsOf(state.servicePort)) {
      listeners.push({ servicePort: state.servicePort, frontend, proxyPort });
      routers.set(proxyPort++, routerFor(planOf(state, planNode), frontend, ctx));
    }
  }
  const text = renderCapture(listeners, {
    family: cluster.family,
    listenIP: cluster.family === 'IPv4' ? '0.0.0.0' : '::',
    hostIP: planNode.nodeIP,
  }).text;
  return { rules: parseRestore(text), routers };
});

/**
 * The userspace mode: the capture rules traced (REDIRECT or DNAT to a local proxy port, which
 * names the listener), then that listener's router asked about the client. Every connection the
 * proxy makes to an endpoint leaves from the node's own address, so masquerade is always true;
 * the table's masq column is normalised for this runner in one place (NORMALISE_EXPECTATION).
 */
function userspaceOutcome(cluster: FlowCluster, packet: Packet): FlowOutcome {
  const setup = userspaceSetup(cluster);
  const traced = traceIptables(setup.rules, packet, host(cluster), USERSPACE_JUMPS).outcome;
  if (traced.kind !== 'endpoints') return traced;
  const ports = new Set(traced.endpoints.map((text) => splitHostPort(text).port));
  const [port] = ports;
  const router = port === undefined ? undefined : setup.routers.get(port);
  if (ports.size !== 1 || router === undefined) {
    throw new Error(`captured to ${traced.endpoints.join(', ')}: not exactly one listener`);
  }
  const route = router({ ip: packet.sourceIP, port: 40000 });
  switch (route.kind) {
    case 'endpoints':
      return {
        kind: 'endpoints',
        endpoints: route.endpoints.map((ep) => ep.endpoint).sort(),
        masquerade: true,
      };
    case 'reject':
    case 'drop':
      return { kind: route.kind };
  }
}

/**
 * How a runner's notion of masquerade differs from the table's, for every row at once. The
 * userspace proxy connects to endpoints itself: backends always see the node's address, whatever
 * the table says about masquerade, so every row that reaches endpoints is masqueraded there.
 */
/** A row's expectation (table.ts Expectation, restated: table.ts imports this module). */
interface Expected {
  readonly output: string;
  readonly masq: boolean;
}

export const NORMALISE_EXPECTATION: Partial<Record<RunnerName, (expected: Expected) => Expected>> = {
  userspace: (expected) =>
    expected.output === '' || expected.output === 'REJECT' || expected.output === 'DROP'
      ? expected
      : { output: expected.output, masq: true },
};

export const FLOW_RUNNERS = {
  plan: planOutcome,
  iptables: (cluster, packet) => traceIptables(iptablesRules(cluster), packet, host(cluster)).outcome,
  nftables: (cluster, packet) => traceNftables(nftablesTable(cluster), packet, host(cluster)).outcome,
  userspace: userspaceOutcome,
  ipvs: (cluster, packet) => traceIpvs(ipvsState(cluster), packet, host(cluster)),
} satisfies Record<string, FlowRunner>;

export type RunnerName = keyof typeof FLOW_RUNNERS;
