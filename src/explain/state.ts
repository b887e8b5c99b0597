// What the explainer reads: one node's view, from wherever it comes (the live proxy's last
// applied state, a state dump, or manifests run through the model). Pure data.
import type { DataplaneSettings } from '../dataplane/common/settings.ts';
import type { IPFamily, NodeContext, ProxySnapshot, ServicePortState } from '../model/types.ts';

/** A Service the model holds no service port for in this family, and why (the "why not" answer). */
export interface SkippedService {
  /** `namespace/name`. */
  readonly service: string;
  readonly reason: string;
  /** Addresses it would have had (cluster IPs, external IPs), to match a packet's destination. */
  readonly addresses: readonly string[];
}

/** An EndpointSlice as far as the near-miss hints need it. */
export interface SliceSummary {
  /** `namespace/name` of the slice. */
  readonly slice: string;
  /** `namespace/<kubernetes.io/service-name>`; '' when the label is missing. */
  readonly service: string;
  readonly addressType: string;
  readonly ports: readonly { readonly name: string; readonly protocol: string; readonly port: number }[];
  readonly endpoints: number;
}

export interface ExplainFamily {
  readonly family: IPFamily;
  readonly node: NodeContext;
  /** Service port states by ServicePortName.key (any order). */
  readonly servicePorts: ReadonlyMap<string, ServicePortState>;
  /** This host's own addresses of the family besides the node IPs (live: interface addresses). */
  readonly hostAddresses: readonly string[];
  /** The family's service CIDRs (ServiceCIDR objects); absent or empty when none are known. */
  readonly serviceCIDRs?: readonly string[] | undefined;
  readonly skipped: readonly SkippedService[];
  /** Model generation of the states (live). */
  readonly generation?: number | undefined;
}

export interface ExplainState {
  readonly source: { readonly kind: 'live' | 'dump' | 'manifests'; readonly from?: string };
  readonly node: string;
  /** The proxy mode whose rules the path quotes. */
  readonly mode: string;
  readonly settings: DataplaneSettings;
  readonly families: readonly ExplainFamily[];
  /** Raw EndpointSlices, when the source has them (manifests, dumps with objects). */
  readonly slices?: readonly SliceSummary[] | undefined;
}

/** The node's addresses of one family, node IPs first, unique. */
export function localAddressesOf(family: ExplainFamily): string[] {
  return [...new Set([...family.node.nodeIPs, ...family.hostAddresses])];
}

/** A full-sync snapshot of one family's states, sorted by key as renderers expect. */
export function snapshotOf(family: ExplainFamily): ProxySnapshot {
  const keys = [...family.servicePorts.keys()].sort();
  const servicePorts = new Map<string, ServicePortState>();
  for (const key of keys) {
    const state = family.servicePorts.get(key);
    if (state) servicePorts.set(key, state);
  }
  return {
    family: family.family,
    node: family.node,
    servicePorts,
    serviceCIDRs: family.serviceCIDRs ?? [],
    changedServices: new Set(),
    udpEndpointsChanged: false,
    triggerTimes: new Map(),
    serviceChanges: 0,
    endpointChanges: 0,
  };
}
