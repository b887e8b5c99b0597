// Explain states for the tests: the packet-flow clusters (test/unit/flows/clusters.ts) with the
// settings each mode's flow runner renders with (test/unit/flows/runners.ts).
import type { DataplaneSettings, NodePortAddressSetting } from '../../../src/dataplane/common/settings.ts';
import type { ExplainState } from '../../../src/explain/state.ts';
import type { FlowCluster } from '../flows/clusters.ts';

export function settingsFor(
  clusterCIDRs: readonly string[],
  nodePortAddresses: NodePortAddressSetting,
): DataplaneSettings {
  return {
    masqueradeBit: 14,
    masqueradeAll: false,
    detectLocalMode: 'ClusterCIDR',
    clusterCIDRs,
    bridgeInterface: '',
    interfaceNamePrefix: '',
    nodePortAddresses,
    localhostNodePorts: true,
    syncPeriodMs: 30_000,
  };
}

/** The modes with a rule tracer for explain. */
export type TracedMode = 'iptables' | 'nftables' | 'ipvs' | 'userspace';

/** The runners' node-port settings: iptables and ipvs on every address, nftables on the primary IP. */
export const NODE_PORTS: Readonly<Record<TracedMode, NodePortAddressSetting>> = {
  iptables: { kind: 'all' },
  nftables: { kind: 'primary' },
  ipvs: { kind: 'all' },
  userspace: { kind: 'all' },
};

export function stateOfCluster(cluster: FlowCluster, mode: TracedMode): ExplainState {
  const snapshot = cluster.snapshot;
  return {
    source: { kind: 'manifests' },
    node: snapshot.node.name,
    mode,
    settings: settingsFor(cluster.clusterCIDRs, NODE_PORTS[mode]),
    families: [
      {
        family: cluster.family,
        node: snapshot.node,
        servicePorts: snapshot.servicePorts,
        hostAddresses: cluster.localAddresses,
        serviceCIDRs: snapshot.serviceCIDRs,
        skipped: [],
      },
    ],
  };
}
