// One IP family's sync loop (upstream-behavior.md 2): a bounded-frequency runner around
// "take a snapshot, decide full or partial, let the backend render and apply", plus what happens
// after a successful sync (health stamps, metrics, the record of what was applied, and the
// daemon's post-sync hooks for conntrack and service health checks).
import { log } from '../log/log.ts';
import type { IPFamily, ProxySnapshot } from '../model/types.ts';
import type { ProxyMetrics } from '../metrics/proxy.ts';
import { AppliedRecord, type AppliedState } from './applied.ts';
import { dropsForNoLocalEndpoints, plansOf } from '../plan/service-port.ts';
import type { Backend, SyncResult } from './backend.ts';
import { BoundedFrequencyRunner, realClock, type Clock } from './runner.ts';

export interface SnapshotSource {
  snapshot(): ProxySnapshot;
}

/** Where the loop stamps its progress for /healthz (server/health.ts ProxyHealth). */
export interface SyncHealth {
  /** A sync was requested: healthz fails if it is not done within the allowed time. */
  queued(family: IPFamily): void;
  /** A sync completed (or the loop started). */
  updated(family: IPFamily): void;
}

export interface FamilySyncOptions {
  readonly backend: Backend;
  readonly source: SnapshotSource;
  readonly health: SyncHealth;
  readonly metrics?: ProxyMetrics;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  /** Forced full sync period; upstream uses one hour for iptables and nftables. */
  readonly fullSyncPeriodMs?: number;
  /** Epoch ms the proxy started: trigger times before it are not observed (no bogus samples). */
  readonly startTimeMs?: number;
  /** Runs after each successful sync (conntrack cleanup, service health checks). Errors logged. */
  readonly afterSync?: (snapshot: ProxySnapshot, result: SyncResult) => Promise<void> | void;
  readonly clock?: Clock;
}

const HOUR_MS = 3_600_000;
/** How many syncs the history keeps (the web page's timeline). */
export const SYNC_HISTORY_SIZE = 64;
/** How many changed Services one history record names. */
const CHANGED_SERVICES_SHOWN = 20;

/** One sync as the history keeps it: when, full or partial, how long, what changed, or why it failed. */
export interface SyncRecord {
  /** 1, 2, …: the loop's sync attempts, failed ones included. */
  readonly seq: number;
  readonly family: IPFamily;
  /** Epoch ms the sync ended. */
  readonly at: number;
  readonly ok: boolean;
  readonly full: boolean;
  readonly durationSeconds: number;
  readonly renderSeconds?: number;
  readonly applySeconds?: number;
  readonly servicePorts: number;
  /** The Services the sync was for (a full sync rewrites all, these are the ones that changed). */
  readonly changedServices: readonly string[];
  readonly changedServicesTotal: number;
  readonly serviceChanges: number;
  readonly endpointChanges: number;
  readonly details?: Readonly<Record<string, number | string>>;
  readonly error?: string;
}
/** Retries of a failed sync: 100 ms, doubling to 1 s (never sooner than the failed sync took). */
export const RETRY_INITIAL_MS = 100;
export const RETRY_CAP_MS = 1_000;
/**
 * How often the backend's rule-integrity check runs (at most; syncPeriod when shorter). Upstream
 * probes its canary every syncPeriod (30 s): a flushed table then breaks Services for up to 30 s.
 * A check is one small listing (one process), so every 4 s costs little and bounds the outage:
 * the goal is a repair within 5 s of the damage (issue 15), and the repair after a check that
 * found it (wait for the flush to end, full sync) takes up to about a second.
 */
export const INTEGRITY_CHECK_PERIOD_MS = 4_000;

export class FamilySync {
  readonly family: IPFamily;
  private readonly options: FamilySyncOptions;
  private readonly clock: Clock;
  private readonly runner: BoundedFrequencyRunner;
  private needFullSync = true;
  /** Counts requestFullSync calls, so one made while a sync runs is not cleared by its end. */
  private fullSyncRequests = 0;
  private lastFullSync = Number.NEGATIVE_INFINITY;
  private canaryTimer: unknown;
  private started = false;
  private syncCount = 0;
  private readonly applied = new AppliedRecord();
  private lastResult: (SyncResult & { readonly at: number }) | undefined;
  /** The snapshot of a failed sync, whose change set is folded into the next one. */
  private carried: ProxySnapshot | undefined;
  private attempts = 0;
  private readonly history: SyncRecord[] = [];
  private readonly listeners = new Set<(record: SyncRecord) => void>();

  constructor(options: FamilySyncOptions) {
    this.options = options;
    this.family = options.backend.family;
    this.clock = options.clock ?? realClock;
    this.runner = new BoundedFrequencyRunner({
      name: `${options.backend.mode}-${this.family}`,
      minIntervalMs: options.minSyncPeriodMs,
      retryIntervalMs: options.syncPeriodMs,
      maxIntervalMs: options.fullSyncPeriodMs ?? HOUR_MS,
      clock: this.clock,
      fn: () => this.syncOnce(),
      // A failing tool (a held lock, a crash, a flaky kernel) is retried soon, so rules follow
      // within about a second of the fault clearing; upstream waits a whole syncPeriod.
      retryBackoff: { initialMs: RETRY_INITIAL_MS, capMs: RETRY_CAP_MS },
      onError: (error, retryInMs) => {
        log.error('Failed to sync proxy rules, will retry', error, {
          ipFamily: this.family,
          mode: options.backend.mode,
          retryIn: `${String(retryInMs)}ms`,
        });
      },
    });
  }

  /** Something changed: sync as soon as allowed. Marks the update as queued for healthz. */
  requestSync(): void {
    this.options.health.queued(this.family);
    this.options.metrics?.syncProxyRulesLastQueuedTimestamp.set(
      { ip_family: this.family },
      this.clock.now() / 1000,
    );
    this.runner.run();
  }

  /** Node topology changed or the node went away: the next sync rewrites everything. */
  requestFullSync(): void {
    this.needFullSync = true;
    this.fullSyncRequests++;
    this.requestSync();
  }

  /** Starts the loop (upstream SyncLoop): stamps health, syncs at once, polls the canary. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.options.health.updated(this.family);
    this.options.metrics?.syncProxyRulesLastQueuedTimestamp.set(
      { ip_family: this.family },
      this.clock.now() / 1000,
    );
    this.runner.start();
    this.scheduleCanaryCheck();
  }

  stop(): void {
    this.runner.stop();
    if (this.canaryTimer !== undefined) this.clock.clearTimeout(this.canaryTimer);
    this.canaryTimer = undefined;
  }

  whenIdle(): Promise<void> {
    return this.runner.whenIdle();
  }

  /** Number of successful syncs so far (for tests and the demo). */
  get successfulSyncs(): number {
    return this.syncCount;
  }

  /**
   * The service port states the last successful sync applied (a live, read-only view: it changes
   * with the next successful sync). Empty before the first one.
   */
  get lastApplied(): AppliedState {
    return this.applied;
  }

  /** What the last successful sync did (backend, counts, timings), for /debug/proxy. */
  get latestResult(): (SyncResult & { readonly at: number }) | undefined {
    return this.lastResult;
  }

  /** The last syncs (at most SYNC_HISTORY_SIZE), oldest first, failed ones included. */
  get recentSyncs(): readonly SyncRecord[] {
    return this.history;
  }

  /** Calls `listener` after every sync attempt; returns the unsubscribe function. */
  onSync(listener: (record: SyncRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(record: SyncRecord): void {
    this.history.push(record);
    if (this.history.length > SYNC_HISTORY_SIZE)
      this.history.splice(0, this.history.length - SYNC_HISTORY_SIZE);
    for (const listener of this.listeners) {
      // A listener (an SSE client) must never break the sync loop.
      try {
        listener(record);
      } catch (error) {
        log.error('Sync listener failed', error, { ipFamily: this.family });
      }
    }
  }

  private changeSummary(
    snapshot: ProxySnapshot | undefined,
  ): Pick<
    SyncRecord,
    'servicePorts' | 'changedServices' | 'changedServicesTotal' | 'serviceChanges' | 'endpointChanges'
  > {
    const changed = snapshot ? [...snapshot.changedServices].sort() : [];
    return {
      servicePorts: snapshot?.servicePorts.size ?? 0,
      changedServices: changed.slice(0, CHANGED_SERVICES_SHOWN),
      changedServicesTotal: changed.length,
      serviceChanges: snapshot?.serviceChanges ?? 0,
      endpointChanges: snapshot?.endpointChanges ?? 0,
    };
  }

  private scheduleCanaryCheck(): void {
    const check = this.options.backend.rulesIntact?.bind(this.options.backend);
    if (!check) return;
    this.canaryTimer = this.clock.setTimeout(
      () => {
        // A sync in progress may have removed the canary itself; check again next period.
        if (this.runner.isRunning) {
          this.scheduleCanaryCheck();
          return;
        }
        void check()
          .then((intact) => {
            if (!intact) {
              log.info('Proxy rules were flushed by someone else, forcing a full resync', {
                ipFamily: this.family,
              });
              this.requestFullSync();
            }
          })
          .catch((error: unknown) => {
            log.error('Canary check failed', error, { ipFamily: this.family });
          })
          .finally(() => {
            if (this.started && this.canaryTimer !== undefined) this.scheduleCanaryCheck();
          });
      },
      Math.min(this.options.syncPeriodMs, INTEGRITY_CHECK_PERIOD_MS),
    );
  }

  private async syncOnce(): Promise<void> {
    const { backend, metrics } = this.options;
    const start = this.clock.now();
    const periodic = start - this.lastFullSync >= (this.options.fullSyncPeriodMs ?? HOUR_MS);
    const full = this.needFullSync || periodic;
    const requestsAtStart = this.fullSyncRequests;
    const labels = { ip_family: this.family };
    metrics?.serviceChangesPending.set(0);
    metrics?.endpointChangesPending.set(0);
    let result: SyncResult;
    let snapshot: ProxySnapshot | undefined;
    try {
      // Whatever happens next, the changes are drained from the model: a failure must be
      // followed by a full sync so nothing is lost.
      this.needFullSync = true;
      snapshot = withCarried(this.options.source.snapshot(), this.carried);
      result = await backend.sync({ snapshot, full, periodic });
      this.carried = undefined;
    } catch (error) {
      this.record({
        seq: ++this.attempts,
        family: this.family,
        at: this.clock.now(),
        ok: false,
        full,
        durationSeconds: (this.clock.now() - start) / 1000,
        ...this.changeSummary(snapshot),
        error: (error instanceof Error ? error.message : String(error)).slice(0, 500),
      });
      // What only a snapshot's change set knows (UDP endpoint changes for conntrack cleanup,
      // trigger times, which Services changed) must survive to the retry.
      if (snapshot) this.carried = snapshot;
      this.applied.skipped();
      throw error;
    } finally {
      const seconds = (this.clock.now() - start) / 1000;
      metrics?.syncProxyRulesDuration.observe(labels, seconds);
      if (full) metrics?.syncFullProxyRulesDuration?.observe(labels, seconds);
      else metrics?.syncPartialProxyRulesDuration?.observe(labels, seconds);
    }
    // A full sync asked for while this one ran (drift found, rules flushed) is still owed.
    // (requestFullSync also asked the runner for another run.)
    this.needFullSync = this.fullSyncRequests !== requestsAtStart;
    const end = this.clock.now();
    if (result.full) this.lastFullSync = start;
    this.syncCount++;
    this.applied.applied(snapshot);
    this.lastResult = { ...result, at: end };
    this.record({
      seq: ++this.attempts,
      family: this.family,
      at: end,
      ok: true,
      full: result.full,
      durationSeconds: (end - start) / 1000,
      renderSeconds: result.renderSeconds,
      applySeconds: result.applySeconds,
      ...this.changeSummary(snapshot),
      ...(result.details ? { details: result.details } : {}),
    });
    this.options.health.updated(this.family);
    metrics?.syncProxyRulesLastTimestamp.set(labels, end / 1000);
    this.observeAfterSync(snapshot, end);
    log.v(2).info('Synced proxy rules', {
      ipFamily: this.family,
      mode: backend.mode,
      full: result.full,
      servicePorts: snapshot.servicePorts.size,
      changedServices: snapshot.changedServices.size,
      elapsed: `${String(end - start)}ms`,
      render: `${(result.renderSeconds * 1000).toFixed(1)}ms`,
      apply: `${(result.applySeconds * 1000).toFixed(1)}ms`,
      ...result.details,
    });
    if (this.options.afterSync) {
      try {
        await this.options.afterSync(snapshot, result);
      } catch (error) {
        log.error('Post-sync step failed', error, { ipFamily: this.family });
      }
    }
  }

  private observeAfterSync(snapshot: ProxySnapshot, now: number): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    const labels = { ip_family: this.family };
    const startTime = this.options.startTimeMs ?? Number.NEGATIVE_INFINITY;
    for (const times of snapshot.triggerTimes.values()) {
      for (const time of times) {
        if (time >= startTime && time <= now)
          metrics.networkProgrammingDuration.observe(labels, (now - time) / 1000);
      }
    }
    let internal = 0;
    let external = 0;
    // The plan's verdicts: a traffic kind dropped for lack of local endpoints.
    for (const plan of plansOf(snapshot)) {
      const drops = dropsForNoLocalEndpoints(plan);
      if (drops.internal) internal++;
      if (drops.external) external++;
    }
    metrics.noLocalEndpointsTotal.set({ traffic_policy: 'internal', ip_family: this.family }, internal);
    metrics.noLocalEndpointsTotal.set({ traffic_policy: 'external', ip_family: this.family }, external);
  }
}

/** Folds a failed sync's change set into the next snapshot (the dataplane state is complete anyway). */
function withCarried(snapshot: ProxySnapshot, carried: ProxySnapshot | undefined): ProxySnapshot {
  if (!carried) return snapshot;
  const triggerTimes = new Map(carried.triggerTimes);
  for (const [service, times] of snapshot.triggerTimes) {
    triggerTimes.set(service, [...(triggerTimes.get(service) ?? []), ...times]);
  }
  return {
    ...snapshot,
    changedServices: new Set([...carried.changedServices, ...snapshot.changedServices]),
    udpEndpointsChanged: carried.udpEndpointsChanged || snapshot.udpEndpointsChanged,
    triggerTimes,
    serviceChanges: carried.serviceChanges + snapshot.serviceChanges,
    endpointChanges: carried.endpointChanges + snapshot.endpointChanges,
    // The failed sync's renderer state is gone; changes since the snapshot before it are unknown.
    generation: undefined,
    changedServicePorts: undefined,
  };
}
