// What the web page (/ui) shows, as JSON the page renders: the Services → service ports →
// endpoints graph with each endpoint's eligibility, the sync timeline and the problems list. Pure:
// built from the same live state explain reads (the last applied state) and the plan, so the page
// never decides anything the renderers do not.
import { primaryNodeIP } from '../model/node.ts';
import type { Endpoint, ServicePortState } from '../model/types.ts';
import { planOf, type Verdict } from '../plan/service-port.ts';
import type { ExplainFamily, ExplainState } from '../explain/state.ts';
import type { SyncRecord } from '../sync/family-sync.ts';

/** What traffic to one kind of frontend gets on this node, in a word and a reason. */
export interface TrafficView {
  readonly action: 'DNAT' | 'DROP' | 'REJECT';
  readonly because: string;
  /** Endpoints new connections go to (`ip:port`). */
  readonly to: readonly string[];
}

export interface EndpointView {
  readonly endpoint: string;
  readonly node: string;
  readonly local: boolean;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** Some traffic on this node may reach it. */
  readonly eligible: boolean;
  /** Why it is (not) used. */
  readonly why: string;
}

export interface ServicePortView {
  /** `namespace/name:port`. */
  readonly servicePort: string;
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly portName: string;
  readonly family: string;
  readonly protocol: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly nodePort: number;
  readonly externalIPs: readonly string[];
  readonly loadBalancerIPs: readonly string[];
  readonly sourceRanges: readonly string[];
  readonly internalPolicy: 'Cluster' | 'Local';
  readonly externalPolicy: 'Cluster' | 'Local';
  readonly affinitySeconds: number;
  readonly internal: TrafficView;
  /** Absent when the port has no node port, external or load balancer IP. */
  readonly external?: TrafficView;
  /** `ok`, `no-endpoints` (REJECT) or `no-local-endpoints` (DROP for some traffic). */
  readonly status: 'ok' | 'no-endpoints' | 'no-local-endpoints';
  readonly endpoints: readonly EndpointView[];
}

export interface ServicesView {
  readonly node: string;
  readonly mode: string;
  readonly total: number;
  readonly offset: number;
  readonly servicePorts: readonly ServicePortView[];
}

function trafficView(verdict: Verdict): TrafficView {
  switch (verdict.kind) {
    case 'dnat':
      return {
        action: 'DNAT',
        because: `traffic policy ${verdict.policy}: ${verdict.endpoints.length} endpoint${verdict.endpoints.length === 1 ? '' : 's'}`,
        to: verdict.endpoints.map((ep) => ep.endpoint),
      };
    case 'drop':
      return { action: 'DROP', because: 'traffic policy Local and no endpoint on this node', to: [] };
    case 'reject':
      return { action: 'REJECT', because: 'no usable endpoint anywhere', to: [] };
  }
}

function endpointWhy(ep: Endpoint, used: boolean, policyLocal: boolean): string {
  if (used) return ep.ready ? 'ready' : 'serving while terminating (fallback: no endpoint is ready)';
  if (!ep.ready && !(ep.serving && ep.terminating))
    return ep.terminating ? 'terminating, no longer serving' : 'not ready';
  if (!ep.ready) return 'terminating: used only when no endpoint is ready';
  if (policyLocal && !ep.isLocal) return 'on another node and the traffic policy is Local';
  return 'left out by topology hints';
}

/** One service port as the page shows it. */
export function servicePortView(state: ServicePortState, family: ExplainFamily): ServicePortView {
  const sp = state.servicePort;
  const plan = planOf(state, { family: family.family, nodeIP: primaryNodeIP(family.node, family.family) });
  const reachable = new Set(plan.reachable.map((ep) => ep.endpoint));
  const internal = trafficView(plan.internal);
  const external = plan.externallyAccessible ? trafficView(plan.external) : undefined;
  const status =
    internal.action === 'REJECT'
      ? 'no-endpoints'
      : internal.action === 'DROP' || external?.action === 'DROP'
        ? 'no-local-endpoints'
        : 'ok';
  const someLocal = sp.internalPolicyLocal || sp.externalPolicyLocal;
  return {
    servicePort: sp.id.printable,
    key: sp.id.key,
    namespace: sp.id.namespace,
    name: sp.id.name,
    portName: sp.id.portName,
    family: family.family,
    protocol: sp.id.protocol,
    clusterIP: sp.clusterIP,
    port: sp.port,
    nodePort: sp.nodePort,
    externalIPs: sp.externalIPs,
    loadBalancerIPs: sp.loadBalancerVIPs,
    sourceRanges: sp.loadBalancerSourceRanges,
    internalPolicy: sp.internalPolicyLocal ? 'Local' : 'Cluster',
    externalPolicy: sp.externalPolicyLocal ? 'Local' : 'Cluster',
    affinitySeconds: plan.affinitySeconds,
    internal,
    ...(external ? { external } : {}),
    status,
    endpoints: state.endpoints.map((ep) => {
      const used = reachable.has(ep.endpoint);
      return {
        endpoint: ep.endpoint,
        node: ep.nodeName,
        local: ep.isLocal,
        ready: ep.ready,
        serving: ep.serving,
        terminating: ep.terminating,
        eligible: used,
        why: endpointWhy(ep, used, someLocal),
      };
    }),
  };
}

export interface ServicesQuery {
  /** Substring of `namespace/name:port`, cluster IP or an endpoint; '' for all. */
  readonly q: string;
  readonly offset: number;
  readonly limit: number;
}

/** The service ports of every family, sorted, filtered and paged (10k rows are never sent at once). */
export function servicesView(state: ExplainState, query: ServicesQuery): ServicesView {
  const all: ServicePortView[] = [];
  const needle = query.q.toLowerCase();
  for (const family of state.families) {
    for (const sp of family.servicePorts.values()) {
      const id = sp.servicePort;
      if (
        needle !== '' &&
        !id.id.printable.toLowerCase().includes(needle) &&
        !id.clusterIP.includes(needle) &&
        !sp.endpoints.some((ep) => ep.endpoint.includes(needle))
      ) {
        continue;
      }
      all.push(servicePortView(sp, family));
    }
  }
  all.sort((a, b) =>
    a.servicePort === b.servicePort
      ? a.family.localeCompare(b.family)
      : a.servicePort < b.servicePort
        ? -1
        : 1,
  );
  return {
    node: state.node,
    mode: state.mode,
    total: all.length,
    offset: query.offset,
    servicePorts: all.slice(query.offset, query.offset + query.limit),
  };
}

/** A sync record as JSON (ISO time). */
export function syncView(record: SyncRecord): Record<string, unknown> {
  return { ...record, at: new Date(record.at).toISOString() };
}
