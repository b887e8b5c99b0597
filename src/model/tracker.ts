// ProxyModel: the per-family change tracker and snapshot builder (spec 1.3, 1.8, 2.2).
//
// Events (Service / EndpointSlice upserts and deletes) are parsed once on arrival and kept as
// *pending* next to the *applied* state of the last snapshot. A pending entry that turns out
// identical to the applied one is dropped, so reverts and no-op resyncs cost nothing.
// snapshot() applies the pending entries, recomputes only the Services they touch (merge +
// selection), reuses every unchanged ServicePortState object, and reports which Services
// changed. A node zone change is the one event that touches everything: it re-runs only the
// selection step, over endpoint lists that are already merged.
//
// Pure in the architecture's sense: no I/O and no clock (the proxy start time is passed in).
import type { Node, Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import type {
  Endpoint,
  EndpointSelection,
  IPFamily,
  NodeContext,
  ProxySnapshot,
  ServiceName,
  ServicePort,
  ServicePortState,
} from './types.ts';
import { describeValue, type Problem, type ProblemKind } from './problem.ts';
import { servicePortsFromService } from './service.ts';
import {
  mergeSliceEndpoints,
  objectKey,
  parseEndpointSlice,
  portMatchKey,
  sliceEndpoints,
  type SliceEndpoints,
} from './endpointslice.ts';
import { selectEndpoints, type NodeTopology } from './selection.ts';
import { sameValue } from './equal.ts';
import { emptyNodeContext, nodeContextOf, parseNode } from './node.ts';
import { parseServiceCIDR } from './service-cidr.ts';
import { compareStrings, exactList, field, stringField } from './validate.ts';

export interface ProxyModelOptions {
  readonly family: IPFamily;
  /** This node's name: decides which endpoints are local. */
  readonly nodeName: string;
  /** Trigger times at or before this instant are not reported (spec 1.3). */
  readonly proxyStartTimeMs: number;
  readonly onProblem?: (problem: Problem) => void;
  /** --bind-address: when a specific IP, the node's primary IP of its family (model/node.ts). */
  readonly bindAddress?: string | undefined;
}

export interface SetNodeResult {
  /** The zone label changed (never on the first setNode): the caller should force a full sync. */
  readonly topologyChanged: boolean;
  /** Anything in the NodeContext changed (never on the first setNode): labels, podCIDRs, IPs. */
  readonly contextChanged: boolean;
}

/** What the last snapshot() had to compute: for logs, benchmarks and tests of incrementality. */
export interface SnapshotWork {
  /** Services whose ports and endpoints were rebuilt (merge + selection). */
  readonly recomputedServices: number;
  /** Service ports of other Services whose selection was re-run after a zone change. */
  readonly reselectedServicePorts: number;
}

interface ServiceRecord {
  readonly ports: readonly ServicePort[];
}

interface SliceRecord {
  readonly slice: SliceEndpoints;
}

const NO_ENDPOINTS: readonly Endpoint[] = Object.freeze([]);

// Change detection compares the parsed values structurally (equal.ts). Neither JSON text nor a
// digest of it is kept: hashing cost most of the model's time at start, and the digests were a
// string per object and three per service port.

/** Same effect on the proxy: both absent, or the same service ports. */
function sameService(a: ServiceRecord | null | undefined, b: ServiceRecord | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return sameValue(a.ports, b.ports);
}

/** Same effect on the proxy; the trigger time is deliberately not part of it. */
function sameSlice(a: SliceRecord | null | undefined, b: SliceRecord | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.slice.service === b.slice.service && sameValue(a.slice.ports, b.slice.ports);
}

function sameEndpointNames(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]?.endpoint !== b[i]?.endpoint) return false;
  return true;
}

/** Selections are compared by endpoint names: which endpoints, not their details (those are in `endpoints`). */
function sameSelection(a: EndpointSelection, b: EndpointSelection): boolean {
  return (
    a.hasAnyEndpoints === b.hasAnyEndpoints &&
    sameEndpointNames(a.clusterEndpoints, b.clusterEndpoints) &&
    sameEndpointNames(a.localEndpoints, b.localEndpoints) &&
    sameEndpointNames(a.allReachable, b.allReachable)
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class ProxyModel {
  readonly family: IPFamily;
  readonly nodeName: string;
  readonly #proxyStartTimeMs: number;
  readonly #onProblem: (problem: Problem) => void;
  readonly #bindAddress: string | undefined;

  // State consumed by the last snapshot.
  readonly #appliedServices = new Map<ServiceName, ServiceRecord>();
  readonly #appliedSlices = new Map<string, SliceRecord>();
  readonly #slicesByService = new Map<ServiceName, Map<string, SliceEndpoints>>();

  // Received since the last snapshot; only entries that differ from the applied state. null
  // stands for "absent" (deleted, or skipped as invalid / not for this family).
  readonly #pendingServices = new Map<ServiceName, ServiceRecord | null>();
  readonly #pendingSlices = new Map<string, SliceRecord | null>();
  readonly #pendingTriggerTimes = new Map<ServiceName, number[]>();
  #serviceChanges = 0;
  #endpointChanges = 0;

  #node: NodeContext;
  #nodeSeen = false;
  /** spec.cidrs of this family per ServiceCIDR object name. */
  readonly #serviceCIDRsByName = new Map<string, readonly string[]>();
  /** Their union as the last snapshot carried it (sorted); a new array only when it changed. */
  #serviceCIDRs: readonly string[] = [];
  #serviceCIDRsPending = false;
  /** The zone the current states were selected with. */
  #selectionZone = '';

  // The last snapshot's states, with what is needed to update them incrementally.
  #states = new Map<string, ServicePortState>();
  /** Number of the last snapshot (ProxySnapshot.generation). */
  #generation = 0;
  readonly #keysByService = new Map<ServiceName, readonly string[]>();
  #lastWork: SnapshotWork = { recomputedServices: 0, reselectedServicePorts: 0 };

  constructor(options: ProxyModelOptions) {
    this.family = options.family;
    this.nodeName = options.nodeName;
    this.#bindAddress = options.bindAddress;
    this.#proxyStartTimeMs = options.proxyStartTimeMs;
    const sink = options.onProblem;
    // A failing problem sink must not turn bad input into an exception in the informer.
    this.#onProblem = (problem: Problem): void => {
      try {
        sink?.(problem);
      } catch {
        // ignored on purpose
      }
    };
    this.#node = emptyNodeContext(options.nodeName);
  }

  /** The node context the next snapshot will carry. */
  get node(): NodeContext {
    return this.#node;
  }

  get lastSnapshotWork(): SnapshotWork {
    return this.#lastWork;
  }

  /** Returns true when the event changed the pending state (a sync is worth requesting). */
  upsertService(svc: Service): boolean {
    const name = this.#keyOf('Service', svc);
    let record: ServiceRecord | null = null;
    try {
      const { ports, problems } = servicePortsFromService(svc, this.family);
      for (const problem of problems) this.#onProblem(problem);
      if (ports.length > 0) record = { ports };
    } catch (error) {
      this.#internalProblem('Service', svc, error);
    }
    // Without a namespace/name string the parser already reported it and produced nothing.
    return name === undefined ? false : this.#recordService(name, record);
  }

  deleteService(svc: Service): boolean {
    const name = this.#keyOf('Service', svc);
    return name === undefined ? false : this.#recordService(name, null);
  }

  upsertSlice(slice: EndpointSlice): boolean {
    const key = this.#keyOf('EndpointSlice', slice);
    let record: SliceRecord | null = null;
    try {
      const parsed = parseEndpointSlice(slice, this.family);
      for (const problem of parsed.problems) this.#onProblem(problem);
      if (parsed.slice) record = { slice: sliceEndpoints(parsed.slice, this.nodeName) };
    } catch (error) {
      this.#internalProblem('EndpointSlice', slice, error);
    }
    if (key === undefined) return false;
    return this.#recordSlice(key, record);
  }

  deleteSlice(slice: EndpointSlice): boolean {
    const key = this.#keyOf('EndpointSlice', slice);
    return key === undefined ? false : this.#recordSlice(key, null);
  }

  /**
   * A ServiceCIDR object (networking.k8s.io/v1) was added or changed. Returns true when the union
   * of this family's service CIDRs changed (a sync is worth requesting).
   */
  upsertServiceCIDR(obj: unknown): boolean {
    let parsed: ReturnType<typeof parseServiceCIDR>;
    try {
      parsed = parseServiceCIDR(obj, this.family);
    } catch (error) {
      this.#internalProblem('ServiceCIDR', obj, error);
      return false;
    }
    for (const problem of parsed.problems) this.#onProblem(problem);
    if (parsed.name === undefined) return false;
    if (parsed.cidrs.length > 0) this.#serviceCIDRsByName.set(parsed.name, parsed.cidrs);
    else this.#serviceCIDRsByName.delete(parsed.name);
    return this.#serviceCIDRsChanged();
  }

  deleteServiceCIDR(obj: unknown): boolean {
    const name = stringField(field(obj, 'metadata'), 'name');
    if (name === undefined || !this.#serviceCIDRsByName.delete(name)) return false;
    return this.#serviceCIDRsChanged();
  }

  /** The union of this family's service CIDRs the next snapshot will carry. */
  get serviceCIDRs(): readonly string[] {
    return this.#unionOfServiceCIDRs();
  }

  #unionOfServiceCIDRs(): string[] {
    const all = new Set<string>();
    for (const cidrs of this.#serviceCIDRsByName.values()) for (const cidr of cidrs) all.add(cidr);
    return [...all].sort(compareStrings);
  }

  #serviceCIDRsChanged(): boolean {
    const union = this.#unionOfServiceCIDRs();
    const changed = union.join(',') !== this.#serviceCIDRs.join(',');
    this.#serviceCIDRsPending = changed;
    return changed;
  }

  /** Updates the node context. Events for another node are reported and ignored. */
  setNode(node: Node): SetNodeResult {
    const unchanged: SetNodeResult = { topologyChanged: false, contextChanged: false };
    try {
      const name = stringField(field(node, 'metadata'), 'name');
      if (name !== this.nodeName) {
        this.#report('Node', node, 'metadata.name', `${describeValue(name)} is not this node, ignored`);
        return unchanged;
      }
      const parsed = parseNode(node, { bindAddress: this.#bindAddress });
      const context = nodeContextOf(parsed, this.family);
      for (const problem of parsed.problems) this.#onProblem(problem);
      const first = !this.#nodeSeen;
      this.#nodeSeen = true;
      const topologyChanged = context.zone !== this.#node.zone;
      const contextChanged = JSON.stringify(context) !== JSON.stringify(this.#node);
      if (contextChanged) this.#node = context;
      // The first Node is what the proxy starts with, not a change of it (selection is still
      // redone at the next snapshot if its zone differs from what was used so far).
      return first ? unchanged : { topologyChanged, contextChanged };
    } catch (error) {
      this.#internalProblem('Node', node, error);
      return unchanged;
    }
  }

  /** True when the next snapshot would differ from the last one in some Service or selection. */
  hasPendingChanges(): boolean {
    return (
      this.#pendingServices.size > 0 ||
      this.#pendingSlices.size > 0 ||
      this.#serviceCIDRsPending ||
      this.#node.zone !== this.#selectionZone
    );
  }

  snapshot(): ProxySnapshot {
    const dirty = this.#applyPending();
    const node = this.#node;
    const topology: NodeTopology = { name: this.nodeName, zone: node.zone };
    const reselect = node.zone !== this.#selectionZone;
    this.#selectionZone = node.zone;

    const changed = new Set<ServiceName>();
    const changedKeys = new Set<string>();
    let udpEndpointsChanged = false;
    let servicePorts = this.#states;
    let reselected = 0;

    if (dirty.size > 0 || reselect) {
      // Changes are made in place: the previous snapshot's map is this one, and nobody reads a
      // snapshot after the next one is taken (ProxySnapshot.servicePorts). Copying 15k entries
      // per snapshot was the largest cost of a one-endpoint change at 10k Services.
      const next = this.#states;
      let keysAdded = false;

      for (const service of dirty) {
        const ports = this.#appliedServices.get(service)?.ports ?? [];
        const slices = this.#slicesByService.get(service);
        const merged = ports.length > 0 && slices ? mergeSliceEndpoints(slices.values()) : undefined;
        const oldKeys = this.#keysByService.get(service) ?? [];
        const newKeys: string[] = [];
        for (const sp of ports) {
          const key = sp.id.key;
          newKeys.push(key);
          const portEndpoints = merged?.get(portMatchKey(sp.id.portName, sp.id.protocol)) ?? NO_ENDPOINTS;
          const previous = this.#states.get(key);
          // Unchanged parts keep their identity, for renderers that cache finer than per state.
          // The selection is computed over the endpoint objects the state will hold, so its
          // lists always refer to members of state.endpoints.
          const servicePort = previous && sameValue(previous.servicePort, sp) ? previous.servicePort : sp;
          const endpoints =
            previous && sameValue(previous.endpoints, portEndpoints) ? previous.endpoints : portEndpoints;
          const selection = selectEndpoints(servicePort, endpoints, topology);
          if (
            previous &&
            servicePort === previous.servicePort &&
            endpoints === previous.endpoints &&
            sameSelection(previous.selection, selection)
          ) {
            continue; // unchanged: `next` already holds the previous object
          }
          if (!previous) keysAdded = true;
          next.set(key, { servicePort, endpoints, selection });
          changedKeys.add(key);
          changed.add(service);
          const endpointsChanged = previous ? endpoints !== previous.endpoints : endpoints.length > 0;
          if (sp.id.protocol === 'UDP' && endpointsChanged) udpEndpointsChanged = true;
        }
        const kept = new Set(newKeys);
        for (const key of oldKeys) {
          if (kept.has(key)) continue;
          const previous = this.#states.get(key);
          next.delete(key);
          changedKeys.add(key);
          changed.add(service);
          if (previous?.servicePort.id.protocol === 'UDP' && previous.endpoints.length > 0) {
            udpEndpointsChanged = true;
          }
        }
        if (newKeys.length > 0) this.#keysByService.set(service, exactList(newKeys));
        else this.#keysByService.delete(service);
      }

      if (reselect) {
        for (const [key, state] of next) {
          if (dirty.has(state.servicePort.id.service)) continue; // selected above with this zone
          reselected++;
          const selection = selectEndpoints(state.servicePort, state.endpoints, topology);
          if (sameSelection(state.selection, selection)) continue;
          next.set(key, { servicePort: state.servicePort, endpoints: state.endpoints, selection });
          changedKeys.add(key);
          changed.add(state.servicePort.id.service);
        }
      }

      // Updates and deletes keep a Map's order; only additions land out of place.
      servicePorts = keysAdded ? new Map([...next].sort(([a], [b]) => compareStrings(a, b))) : next;
      this.#states = servicePorts;
    }

    this.#lastWork = { recomputedServices: dirty.size, reselectedServicePorts: reselected };

    const triggerTimes = new Map<ServiceName, readonly number[]>();
    for (const [service, times] of this.#pendingTriggerTimes) {
      if (changed.has(service)) triggerTimes.set(service, times);
    }
    this.#pendingTriggerTimes.clear();

    if (this.#serviceCIDRsPending) {
      this.#serviceCIDRs = this.#unionOfServiceCIDRs();
      this.#serviceCIDRsPending = false;
    }

    const snapshot: ProxySnapshot = {
      family: this.family,
      node,
      servicePorts,
      serviceCIDRs: this.#serviceCIDRs,
      changedServices: changed,
      udpEndpointsChanged,
      triggerTimes,
      serviceChanges: this.#serviceChanges,
      endpointChanges: this.#endpointChanges,
      generation: ++this.#generation,
      changedServicePorts: changedKeys,
    };
    this.#serviceChanges = 0;
    this.#endpointChanges = 0;
    return snapshot;
  }

  /** Moves pending entries into the applied state; returns the Services they touch. */
  #applyPending(): Set<ServiceName> {
    const dirty = new Set<ServiceName>();
    for (const [name, record] of this.#pendingServices) {
      if (record) this.#appliedServices.set(name, record);
      else this.#appliedServices.delete(name);
      dirty.add(name);
    }
    this.#pendingServices.clear();

    for (const [key, record] of this.#pendingSlices) {
      const old = this.#appliedSlices.get(key);
      if (old) {
        // The slice may have moved to another Service (label change): both are touched.
        const service = old.slice.service;
        dirty.add(service);
        const slices = this.#slicesByService.get(service);
        slices?.delete(key);
        if (slices?.size === 0) this.#slicesByService.delete(service);
      }
      if (record) {
        const service = record.slice.service;
        this.#appliedSlices.set(key, record);
        dirty.add(service);
        let slices = this.#slicesByService.get(service);
        if (!slices) {
          slices = new Map();
          this.#slicesByService.set(service, slices);
        }
        slices.set(key, record.slice);
      } else {
        this.#appliedSlices.delete(key);
      }
    }
    this.#pendingSlices.clear();
    return dirty;
  }

  #recordService(name: ServiceName, record: ServiceRecord | null): boolean {
    const current = this.#pendingServices.has(name)
      ? this.#pendingServices.get(name)
      : this.#appliedServices.get(name);
    if (sameService(current, record)) return false;
    if (sameService(this.#appliedServices.get(name), record)) {
      this.#pendingServices.delete(name); // back to what the last snapshot has: a revert
    } else {
      this.#pendingServices.set(name, record);
    }
    this.#serviceChanges++;
    return true;
  }

  #recordSlice(key: string, record: SliceRecord | null): boolean {
    const current = this.#pendingSlices.has(key)
      ? this.#pendingSlices.get(key)
      : this.#appliedSlices.get(key);
    if (sameSlice(current, record)) return false;
    if (sameSlice(this.#appliedSlices.get(key), record)) {
      this.#pendingSlices.delete(key);
    } else {
      this.#pendingSlices.set(key, record);
    }
    this.#endpointChanges++;
    if (record) {
      const time = record.slice.triggerTimeMs;
      if (time !== undefined && time > this.#proxyStartTimeMs) {
        const times = this.#pendingTriggerTimes.get(record.slice.service) ?? [];
        times.push(time);
        this.#pendingTriggerTimes.set(record.slice.service, times);
      }
    } else if (current) {
      // A deleted slice's annotation is from its last update, not from this change: measuring
      // it would overstate latency, so the Service's pending times are dropped (as upstream).
      this.#pendingTriggerTimes.delete(current.slice.service);
    }
    return true;
  }

  /** `namespace/name`, or undefined when the object has none or cannot even be read. */
  #keyOf(kind: ProblemKind, obj: unknown): string | undefined {
    try {
      return objectKey(obj);
    } catch (error) {
      this.#internalProblem(kind, obj, error);
      return undefined;
    }
  }

  #report(kind: ProblemKind, obj: unknown, fieldPath: string, message: string): void {
    const metadata = field(obj, 'metadata');
    this.#onProblem({
      kind,
      namespace: stringField(metadata, 'namespace') ?? '',
      name: stringField(metadata, 'name') ?? '',
      field: fieldPath,
      message,
    });
  }

  #internalProblem(kind: ProblemKind, obj: unknown, error: unknown): void {
    try {
      this.#report(kind, obj, '(object)', `could not be read, ignored: ${describeValue(errorText(error))}`);
    } catch {
      // Even the object's metadata cannot be read (a throwing getter): nothing left to report.
    }
  }
}
