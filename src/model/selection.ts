// Endpoint selection for one service port on this node (spec 1.5): which endpoints cluster-wide
// traffic may use, which local-policy traffic may use, and which must exist at all. Pure.
import type { Endpoint, EndpointSelection, ServicePort } from './types.ts';
import { compareEndpoints } from './endpointslice.ts';
import { exactList } from './validate.ts';

export interface NodeTopology {
  readonly name: string;
  /** Label topology.kubernetes.io/zone; '' when the node has none. */
  readonly zone: string;
}

export type TopologyMode = 'None' | 'PreferSameNode' | 'PreferSameZone';

/** nodePort, an LB VIP or an external IP: traffic may arrive from outside the cluster. */
export function externallyAccessible(sp: ServicePort): boolean {
  return sp.nodePort !== 0 || sp.loadBalancerVIPs.length > 0 || sp.externalIPs.length > 0;
}

/** eTP=Local still needs the cluster set: pod traffic to external IPs is short-circuited to it. */
export function usesClusterEndpoints(sp: ServicePort): boolean {
  return !sp.internalPolicyLocal || externallyAccessible(sp);
}

export function usesLocalEndpoints(sp: ServicePort): boolean {
  return sp.internalPolicyLocal || (sp.externalPolicyLocal && externallyAccessible(sp));
}

/**
 * Which hints to honour, decided over ready endpoints only: hints are used only when every ready
 * endpoint carries them (the controller writes all or none) and some point at this node/zone.
 * Node hints take precedence (PreferSameTrafficDistribution, on by default).
 */
export function topologyMode(endpoints: readonly Endpoint[], node: NodeTopology): TopologyMode {
  let allHaveNodeHints = true;
  let someForNode = false;
  let allHaveZoneHints = true;
  let someForZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (ep.zoneHints === undefined || ep.zoneHints.length === 0) allHaveZoneHints = false;
    else if (ep.zoneHints.includes(node.zone)) someForZone = true;
    if (ep.nodeHints === undefined || ep.nodeHints.length === 0) allHaveNodeHints = false;
    else if (ep.nodeHints.includes(node.name)) someForNode = true;
  }
  if (allHaveNodeHints && someForNode) return 'PreferSameNode';
  if (allHaveZoneHints && someForZone) return 'PreferSameZone';
  return 'None';
}

function allowedByTopology(ep: Endpoint, mode: TopologyMode, node: NodeTopology): boolean {
  switch (mode) {
    case 'None':
      return true;
    case 'PreferSameNode':
      return ep.nodeHints?.includes(node.name) ?? false;
    case 'PreferSameZone':
      return ep.zoneHints?.includes(node.zone) ?? false;
  }
}

function servingTerminating(ep: Endpoint): boolean {
  return ep.serving && ep.terminating;
}

const NONE: readonly Endpoint[] = Object.freeze([]);

/**
 * The endpoints that pass, in order; the list itself when all do (the usual case for the cluster
 * set), so a selection holds no copy of its state's endpoint list.
 */
function keep(endpoints: readonly Endpoint[], passes: (ep: Endpoint) => boolean): readonly Endpoint[] {
  const kept = endpoints.filter(passes);
  return kept.length === endpoints.length ? endpoints : exactList(kept);
}

/** `endpoints` must be sorted by endpoint string (as the model keeps them); outputs keep that order. */
export function selectEndpoints(
  sp: ServicePort,
  endpoints: readonly Endpoint[],
  node: NodeTopology,
): EndpointSelection {
  let clusterEndpoints: readonly Endpoint[] = NONE;
  let hasAnyEndpoints = false;
  let mode: TopologyMode = 'None';

  if (usesClusterEndpoints(sp)) {
    mode = topologyMode(endpoints, node);
    clusterEndpoints = keep(endpoints, (ep) => ep.ready && allowedByTopology(ep, mode, node));
    // No ready endpoint usable: fall back to endpoints still serving while terminating, so
    // connections drain gracefully instead of being rejected (topology ignored here).
    if (clusterEndpoints.length === 0) clusterEndpoints = keep(endpoints, servingTerminating);
    hasAnyEndpoints = clusterEndpoints.length > 0;
  }

  if (!usesLocalEndpoints(sp)) {
    return { clusterEndpoints, localEndpoints: NONE, allReachable: clusterEndpoints, hasAnyEndpoints };
  }

  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const ep of endpoints) {
    if (ep.ready) {
      hasAnyEndpoints = true;
      if (ep.isLocal) hasLocalReady = true;
    } else if (servingTerminating(ep)) {
      hasAnyEndpoints = true;
      if (ep.isLocal) hasLocalServingTerminating = true;
    }
  }

  let localEndpoints: readonly Endpoint[] = NONE;
  let localFallback = false;
  if (hasLocalReady) {
    localEndpoints = keep(endpoints, (ep) => ep.isLocal && ep.ready);
  } else if (hasLocalServingTerminating) {
    localFallback = true;
    localEndpoints = keep(endpoints, (ep) => ep.isLocal && servingTerminating(ep));
  }

  if (!usesClusterEndpoints(sp)) {
    return { clusterEndpoints, localEndpoints, allReachable: localEndpoints, hasAnyEndpoints };
  }
  // Without topology the cluster set holds every ready endpoint, and without fallback the local
  // set holds only ready ones: the cluster set already covers it.
  if (mode === 'None' && !localFallback) {
    return { clusterEndpoints, localEndpoints, allReachable: clusterEndpoints, hasAnyEndpoints };
  }
  const union = new Map<string, Endpoint>();
  for (const ep of clusterEndpoints) union.set(ep.endpoint, ep);
  for (const ep of localEndpoints) union.set(ep.endpoint, ep);
  const allReachable = [...union.values()].sort(compareEndpoints);
  return { clusterEndpoints, localEndpoints, allReachable, hasAnyEndpoints };
}
