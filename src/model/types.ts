// The one snapshot type every dataplane consumes (architecture.md, rule 2).
//
// Everything here is already validated: IPs are canonical text of the proxier's family, CIDRs
// are canonical network/prefix text, ports are integers in range, protocols are one of three
// literals. Renderers may put these values into rule text without further escaping, except
// for names, which only ever appear inside quoted comments or hashed chain names and must go
// through the renderer's own comment escaping.

import type { IPFamily } from '../util/ip.ts';

// IP families are owned by util/ip.ts (which parses addresses); re-exported for the model's users.
export type { IPFamily };
export type Protocol = 'TCP' | 'UDP' | 'SCTP';

/** Namespaced name of a Service: `namespace/name`. */
export type ServiceName = string;

/**
 * Identity of one entry of a Service's spec.ports (upstream ServicePortName).
 * `key` is `namespace/name:portName/PROTOCOL` (unique, used for maps and sorting).
 * `printable` is `namespace/name:portName`, or `namespace/name` when portName is empty: the
 * text upstream uses in comments and chain-name hashes (protocol is not part of it).
 */
export interface ServicePortName {
  readonly namespace: string;
  readonly name: string;
  readonly portName: string;
  readonly protocol: Protocol;
  readonly key: string;
  readonly printable: string;
  readonly service: ServiceName;
}

export type SessionAffinity =
  { readonly type: 'None' } | { readonly type: 'ClientIP'; readonly timeoutSeconds: number };

/** One service port of one IP family, with everything a renderer needs (spec 1.2). */
export interface ServicePort {
  readonly id: ServicePortName;
  readonly family: IPFamily;
  readonly clusterIP: string;
  readonly port: number;
  /** 0 when the port has no node port. */
  readonly nodePort: number;
  readonly externalIPs: readonly string[];
  /** status.loadBalancer.ingress IPs of this family whose ipMode is unset or VIP. */
  readonly loadBalancerVIPs: readonly string[];
  /** Canonical CIDRs of this family; unparseable entries were dropped with a log line. */
  readonly loadBalancerSourceRanges: readonly string[];
  /** 0 unless type LoadBalancer with externalTrafficPolicy Local. */
  readonly healthCheckNodePort: number;
  readonly sessionAffinity: SessionAffinity;
  /** type NodePort/LoadBalancer with externalTrafficPolicy Local. */
  readonly externalPolicyLocal: boolean;
  /** internalTrafficPolicy Local. */
  readonly internalPolicyLocal: boolean;
}

/** One backend of one service port, merged across EndpointSlices (spec 1.3, 1.4). */
export interface Endpoint {
  readonly ip: string;
  readonly port: number;
  /** `ip:port`, IPv6 bracketed: `[fd00::1]:80`. Sorting and hashing use this text. */
  readonly endpoint: string;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** Empty when the slice did not say. */
  readonly nodeName: string;
  /** nodeName equals this node's name. */
  readonly isLocal: boolean;
  /** hints.forZones names; undefined when the endpoint carries no zone hints. */
  readonly zoneHints: readonly string[] | undefined;
  /** hints.forNodes names; undefined when the endpoint carries no node hints. */
  readonly nodeHints: readonly string[] | undefined;
}

/** Result of endpoint selection for one service port (spec 1.5). All lists sorted by `endpoint`. */
export interface EndpointSelection {
  readonly clusterEndpoints: readonly Endpoint[];
  readonly localEndpoints: readonly Endpoint[];
  /** Every endpoint some traffic may reach: the endpoint chains that must exist. */
  readonly allReachable: readonly Endpoint[];
  /** Some usable endpoint exists anywhere in the cluster. */
  readonly hasAnyEndpoints: boolean;
}

/** A service port together with its endpoints and the selection computed for this node. */
export interface ServicePortState {
  readonly servicePort: ServicePort;
  /** All endpoints of this port (any condition), sorted by `endpoint`. */
  readonly endpoints: readonly Endpoint[];
  readonly selection: EndpointSelection;
}

/** What the proxier knows about the node it runs on. */
export interface NodeContext {
  readonly name: string;
  /** Label topology.kubernetes.io/zone, '' when absent. */
  readonly zone: string;
  readonly labels: Readonly<Record<string, string>>;
  /** spec.podCIDRs of this family (canonical). */
  readonly podCIDRs: readonly string[];
  /** Node addresses of this family from status.addresses (InternalIP first, canonical). */
  readonly nodeIPs: readonly string[];
}

/**
 * The state handed to a backend at each sync, for one IP family. Not immutable: the state
 * objects in it never change, but the `servicePorts` map is the model's own and is updated in
 * place by the model's next snapshot() (see below). Keep state objects, never the map.
 *
 * `servicePorts` is keyed by ServicePortName.key and iterates in sorted key order, so renderers
 * that walk it emit deterministic output. Unchanged entries are the same objects as in the
 * previous snapshot (structural sharing), so a renderer may cache per-entry output by identity.
 */
export interface ProxySnapshot {
  readonly family: IPFamily;
  readonly node: NodeContext;
  /**
   * Every service port by key, sorted by key. Valid until the model's next snapshot(): the
   * model updates this map in place then (a copy per snapshot was the largest cost of a small
   * change at 10k Services). The sync loop is done with a snapshot before it takes the next one;
   * anything that must keep states longer keeps the state objects, which never change.
   */
  readonly servicePorts: ReadonlyMap<string, ServicePortState>;
  /**
   * The family's ranges cluster IPs are allocated from (spec.cidrs of every ServiceCIDR object),
   * canonical and sorted; empty when none are known (no ServiceCIDR objects, or an API server
   * without the resource). The same array object as the previous snapshot's while unchanged.
   */
  readonly serviceCIDRs: readonly string[];
  /**
   * Services (namespace/name) whose ports or endpoints differ from the previous snapshot,
   * including Services that were deleted. A partial sync rewrites only what belongs to these.
   */
  readonly changedServices: ReadonlySet<ServiceName>;
  /** Some Service with a UDP port changed endpoints since the previous snapshot (spec 7). */
  readonly udpEndpointsChanged: boolean;
  /**
   * EndpointSlice last-change-trigger-time values (epoch ms) per changed Service, only times
   * after the proxy started (spec 1.3); used for the network programming latency metric.
   */
  readonly triggerTimes: ReadonlyMap<ServiceName, readonly number[]>;
  /** Counts of Service / EndpointSlice events folded into this snapshot (for metrics). */
  readonly serviceChanges: number;
  readonly endpointChanges: number;
  /**
   * A hint for renderers that keep state between syncs: this snapshot's number in its model's
   * sequence, and the service port keys whose state object was added, replaced or removed since
   * the snapshot numbered `generation - 1`. A renderer whose last snapshot was exactly that one
   * may look at these keys only instead of comparing every service port; absent when unknown.
   */
  readonly generation?: number | undefined;
  readonly changedServicePorts?: ReadonlySet<string> | undefined;
}
