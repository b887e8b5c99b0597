// The Service, EndpointSlice and ServiceCIDR watches feeding one ProxyModel per IP family. Listing and parsing
// every Service and EndpointSlice is most of a cold start at scale, so the watches start before
// the daemon knows which families its node uses (that needs the Node, then the backends): there
// is a model for each family from the start, and the one the node turns out not to use is
// dropped by useFamilies(). Until then nothing of a family is made visible: its problems are
// held back and its pending-change gauges are counted aside, so a dropped family leaves no log
// line and no metric series behind.
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import type { KubeRequester } from './client.ts';
import type { Reflector } from './reflector.ts';
import {
  SERVICE_CIDRS_NOT_FOUND_RETRY_MS,
  watchEndpointSlices,
  watchServiceCIDRs,
  watchServices,
  type WatchTuning,
} from './watches.ts';
import { log } from '../log/log.ts';
import type { ServiceCIDR } from '../model/service-cidr.ts';
import type { Problem } from '../model/problem.ts';
import { ProxyModel } from '../model/tracker.ts';
import type { IPFamily } from '../model/types.ts';
import type { ProxyMetrics } from '../metrics/proxy.ts';

export interface IntakeOptions {
  readonly client: KubeRequester;
  readonly nodeName: string;
  /** --bind-address: the node's primary IP when it is a specific one (model/node.ts). */
  readonly bindAddress?: string | undefined;
  readonly proxyStartTimeMs: number;
  readonly metrics: Pick<
    ProxyMetrics,
    'serviceChangesTotal' | 'endpointChangesTotal' | 'serviceChangesPending' | 'endpointChangesPending'
  >;
  readonly onProblem: (problem: Problem) => void;
  readonly tuning?: WatchTuning<never>;
  /** How often to ask again for ServiceCIDRs when the API server does not serve them (tests). */
  readonly serviceCIDRNotFoundRetryMs?: number;
}

const ALL_FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];

export class Intake {
  #options: IntakeOptions;
  #models: ProxyModel[];
  /** Families in use; undefined until useFamilies(). */
  #families: readonly IPFamily[] | undefined;
  #heldProblems = new Map<IPFamily, Problem[]>();
  #heldEndpointPending = new Map<IPFamily, number>();
  /** Service events that were pending in exactly these families (joined with ','). */
  #heldServicePending = new Map<string, number>();
  #servicesSynced = false;
  #slicesSynced = false;
  #onChange: () => void = () => undefined;
  #onSynced: (() => void) | undefined;
  #watches: Reflector<Service | EndpointSlice>[] = [];
  #serviceCIDRWatch: Reflector<ServiceCIDR> | undefined;
  /** The API server answered 404 for ServiceCIDRs (logged once until they are served). */
  #serviceCIDRsMissing = false;

  constructor(options: IntakeOptions) {
    this.#options = options;
    this.#models = ALL_FAMILIES.map(
      (family) =>
        new ProxyModel({
          family,
          nodeName: options.nodeName,
          bindAddress: options.bindAddress,
          proxyStartTimeMs: options.proxyStartTimeMs,
          onProblem: (problem) => {
            if (this.#families === undefined) {
              const held = this.#heldProblems.get(family) ?? [];
              held.push(problem);
              this.#heldProblems.set(family, held);
            } else options.onProblem(problem);
          },
        }),
    );
  }

  /** Starts both watches; calling it twice does nothing. */
  start(): void {
    if (this.#watches.length > 0) return;
    const { client, tuning } = this.#options;
    const services = watchServices(
      client,
      {
        onAdd: (svc) => this.#onEvent('service', (model) => model.upsertService(svc)),
        onUpdate: (_old, svc) => this.#onEvent('service', (model) => model.upsertService(svc)),
        onDelete: (svc) => this.#onEvent('service', (model) => model.deleteService(svc)),
        onSynced: () => {
          this.#servicesSynced = true;
          this.#maybeSynced();
        },
      },
      tuning,
    );
    const slices = watchEndpointSlices(
      client,
      {
        onAdd: (slice) => this.#onEvent('endpoint', (model) => model.upsertSlice(slice)),
        onUpdate: (_old, slice) => this.#onEvent('endpoint', (model) => model.upsertSlice(slice)),
        onDelete: (slice) => this.#onEvent('endpoint', (model) => model.deleteSlice(slice)),
        onSynced: () => {
          this.#slicesSynced = true;
          this.#maybeSynced();
        },
      },
      tuning,
    );
    this.#watches = [
      services as Reflector<Service | EndpointSlice>,
      slices as Reflector<Service | EndpointSlice>,
    ];
    for (const watch of this.#watches) watch.start();
    this.#serviceCIDRWatch = this.#watchServiceCIDRs();
    this.#serviceCIDRWatch.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#watches.map((watch) => watch.stop()), this.#serviceCIDRWatch?.stop()]);
  }

  /**
   * ServiceCIDRs do not hold up the start (upstream does not wait for them either): the first
   * sync may come before them, and their arrival asks for another. An API server without the
   * resource leaves the proxy working without the drop rule, with one warning.
   */
  #watchServiceCIDRs(): Reflector<ServiceCIDR> {
    const { client, tuning, serviceCIDRNotFoundRetryMs } = this.#options;
    const onEvent = (apply: (model: ProxyModel) => boolean): void => {
      let changed = false;
      for (const model of this.#models) if (apply(model)) changed = true;
      if (changed) this.#onChange();
    };
    return watchServiceCIDRs(
      client,
      {
        onAdd: (obj) => onEvent((model) => model.upsertServiceCIDR(obj)),
        onUpdate: (_old, obj) => onEvent((model) => model.upsertServiceCIDR(obj)),
        onDelete: (obj) => onEvent((model) => model.deleteServiceCIDR(obj)),
        onSynced: () => {
          if (!this.#serviceCIDRsMissing) return;
          this.#serviceCIDRsMissing = false;
          log.info('The API server serves ServiceCIDRs now; traffic to unallocated cluster IPs is dropped');
        },
      },
      () => {
        if (this.#serviceCIDRsMissing) return;
        this.#serviceCIDRsMissing = true;
        log.warn(
          'The API server does not serve networking.k8s.io/v1 ServiceCIDRs (404); traffic to unallocated ' +
            'cluster IPs is not dropped until it does',
          {
            retryEvery: `${String((serviceCIDRNotFoundRetryMs ?? SERVICE_CIDRS_NOT_FOUND_RETRY_MS) / 1000)}s`,
          },
        );
      },
      {
        ...(tuning ?? {}),
        ...(serviceCIDRNotFoundRetryMs !== undefined ? { notFoundRetryMs: serviceCIDRNotFoundRetryMs } : {}),
      },
    );
  }

  /**
   * Keeps the models of these families, in this order, and returns them; the others are dropped.
   * What the kept families held back (problems, pending counts) is released now.
   */
  useFamilies(families: readonly IPFamily[]): ProxyModel[] {
    if (this.#families !== undefined) throw new Error('intake: useFamilies called twice');
    const models = families.map((family) => {
      const model = this.#models.find((m) => m.family === family);
      if (!model) throw new Error(`intake: no model for ${family}`);
      return model;
    });
    this.#models = models;
    this.#families = families;
    const { metrics, onProblem } = this.#options;
    // One gauge for every family (as upstream's): the held changes of the busiest family.
    let heldEndpoints = 0;
    for (const family of families) {
      for (const problem of this.#heldProblems.get(family) ?? []) onProblem(problem);
      heldEndpoints = Math.max(heldEndpoints, this.#heldEndpointPending.get(family) ?? 0);
    }
    if (heldEndpoints > 0) metrics.endpointChangesPending.inc(heldEndpoints);
    for (const [pendingIn, count] of this.#heldServicePending) {
      if (pendingIn.split(',').some((family) => (families as readonly string[]).includes(family)))
        metrics.serviceChangesPending.inc(count);
    }
    this.#heldProblems.clear();
    this.#heldEndpointPending.clear();
    this.#heldServicePending.clear();
    return models;
  }

  /** Called after every event that reached the models (the daemon asks for syncs from it). */
  onChange(callback: () => void): void {
    this.#onChange = callback;
  }

  /** Calls back once both watches have delivered their first complete list (at once if they have). */
  whenSynced(callback: () => void): void {
    this.#onSynced = callback;
    this.#maybeSynced();
  }

  #maybeSynced(): void {
    if (!this.#servicesSynced || !this.#slicesSynced || !this.#onSynced) return;
    const callback = this.#onSynced;
    this.#onSynced = undefined;
    callback();
  }

  /** Feeds one event to every family's model and keeps upstream's change counters. */
  #onEvent(kind: 'service' | 'endpoint', apply: (model: ProxyModel) => boolean): void {
    const { metrics } = this.#options;
    if (kind === 'service') metrics.serviceChangesTotal.inc();
    else metrics.endpointChangesTotal.inc();
    const pendingIn: IPFamily[] = [];
    for (const model of this.#models) if (apply(model)) pendingIn.push(model.family);
    if (pendingIn.length > 0) {
      if (this.#families === undefined) this.#hold(kind, pendingIn);
      else if (kind === 'service') metrics.serviceChangesPending.inc();
      else metrics.endpointChangesPending.inc();
    }
    this.#onChange();
  }

  #hold(kind: 'service' | 'endpoint', pendingIn: readonly IPFamily[]): void {
    if (kind === 'service') {
      const key = pendingIn.join(',');
      this.#heldServicePending.set(key, (this.#heldServicePending.get(key) ?? 0) + 1);
    } else {
      for (const family of pendingIn)
        this.#heldEndpointPending.set(family, (this.#heldEndpointPending.get(family) ?? 0) + 1);
    }
  }
}
