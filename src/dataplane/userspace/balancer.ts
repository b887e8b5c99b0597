// The userspace mode's endpoint choice for one listener: round robin (upstream) or least
// connections, ClientIP affinity with a sliding window (upstream), and passive health (ours): an
// endpoint whose connect fails is skipped for a back-off period that doubles up to a cap, then
// tried again; a success forgets its failures. Which endpoints a client may use at all is not
// decided here: the router (routes.ts, from the plan) hands the candidates in.
//
// Pure apart from the clock and the random source, which are injected.
import type { Endpoint } from '../../model/types.ts';
import type { BalancerSettings } from './route.ts';

/** First back-off of an endpoint whose connect failed; doubles per failure in a row. */
export const EJECT_BASE_MS = 1_000;
/** The back-off never grows beyond this. */
export const EJECT_MAX_MS = 30_000;

interface Affinity {
  endpoint: string;
  lastUsed: number;
}

interface Health {
  /** Connect failures in a row. */
  failures: number;
  /** Skipped until this time (ms). */
  until: number;
}

export interface Ejection {
  readonly endpoint: string;
  readonly failures: number;
  readonly forMs: number;
}

export class Balancer {
  private settings: BalancerSettings;
  /** Round-robin position per candidate list (a router hands out the same array per client class). */
  private readonly position = new WeakMap<readonly Endpoint[], number>();
  private readonly affinity = new Map<string, Affinity>();
  private lastPurge = -Infinity;
  private readonly health = new Map<string, Health>();
  /** Open connections or flows per endpoint, for least-connections and metrics. */
  private readonly active = new Map<string, number>();
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(settings: BalancerSettings, now: () => number = Date.now, random: () => number = Math.random) {
    this.settings = settings;
    this.now = now;
    this.random = random;
  }

  /**
   * New settings and the endpoints still reachable: affinity records and health of the others are
   * forgotten at once (upstream drops affinity to removed endpoints), stale affinity is purged.
   */
  update(settings: BalancerSettings, reachable: ReadonlySet<string>): void {
    this.settings = settings;
    const now = this.now();
    for (const [client, record] of this.affinity) {
      if (!reachable.has(record.endpoint) || !this.affinityValid(record, now)) this.affinity.delete(client);
    }
    for (const endpoint of this.health.keys()) if (!reachable.has(endpoint)) this.health.delete(endpoint);
  }

  private affinityValid(record: Affinity, now: number): boolean {
    return this.settings.affinitySeconds > 0 && now - record.lastUsed < this.settings.affinitySeconds * 1000;
  }

  /**
   * Forgets expired affinity records, at most once per timeout: without it, a Service that does
   * not change would keep a record for every client address it ever saw.
   */
  private purgeExpired(now: number): void {
    if (now - this.lastPurge < this.settings.affinitySeconds * 1000) return;
    this.lastPurge = now;
    for (const [client, record] of this.affinity) {
      if (!this.affinityValid(record, now)) this.affinity.delete(client);
    }
  }

  /** Affinity records held (tests, debug). */
  affinityRecords(): number {
    return this.affinity.size;
  }

  /** Whether an endpoint is in its back-off period. */
  ejected(endpoint: string, now: number = this.now()): boolean {
    const h = this.health.get(endpoint);
    return h !== undefined && h.until > now;
  }

  /**
   * The endpoint for a new connection's next attempt. `tried` holds the endpoints this connection
   * already failed on in this round: they are not chosen again. After a failure (`retry`) the
   * client's affinity is bypassed and overwritten (upstream). Ejected endpoints are skipped unless
   * every candidate is ejected: then all are tried rather than failing closed.
   */
  pick(
    client: string,
    candidates: readonly Endpoint[],
    tried: ReadonlySet<string> = new Set(),
    retry = tried.size > 0,
  ): Endpoint | undefined {
    const now = this.now();
    const untried = candidates.filter((e) => !tried.has(e.endpoint));
    if (untried.length === 0) return undefined;
    const healthy = untried.filter((e) => !this.ejected(e.endpoint, now));
    const usable = healthy.length > 0 ? healthy : untried;

    if (this.settings.affinitySeconds > 0 && !retry) {
      const record = this.affinity.get(client);
      if (record !== undefined && this.affinityValid(record, now)) {
        const pinned = usable.find((e) => e.endpoint === record.endpoint);
        if (pinned !== undefined) {
          record.lastUsed = now; // sliding window
          return pinned;
        }
      }
    }

    const chosen =
      this.settings.policy === 'least-connections'
        ? this.leastConnections(candidates, usable)
        : this.roundRobin(candidates, usable);
    if (this.settings.affinitySeconds > 0) {
      this.affinity.set(client, { endpoint: chosen.endpoint, lastUsed: now });
      this.purgeExpired(now);
    }
    return chosen;
  }

  /** The next usable endpoint in the candidates' rotation; the first position is random (upstream shuffled). */
  private roundRobin(candidates: readonly Endpoint[], usable: readonly Endpoint[]): Endpoint {
    const allowed = new Set(usable.map((e) => e.endpoint));
    const start = this.position.get(candidates) ?? Math.floor(this.random() * candidates.length);
    for (let i = 0; i < candidates.length; i++) {
      const index = (start + i) % candidates.length;
      const endpoint = candidates[index];
      if (endpoint !== undefined && allowed.has(endpoint.endpoint)) {
        this.position.set(candidates, (index + 1) % candidates.length);
        return endpoint;
      }
    }
    // Unreachable: usable is a non-empty subset of candidates.
    const first = usable[0];
    if (first === undefined) throw new Error('balancer: no usable endpoint');
    return first;
  }

  /** Fewest open connections; ties go round robin so equal endpoints share the load. */
  private leastConnections(candidates: readonly Endpoint[], usable: readonly Endpoint[]): Endpoint {
    let fewest = Infinity;
    for (const e of usable) fewest = Math.min(fewest, this.active.get(e.endpoint) ?? 0);
    const least = usable.filter((e) => (this.active.get(e.endpoint) ?? 0) === fewest);
    return this.roundRobin(candidates, least);
  }

  /** A connection or flow to `endpoint` opened. */
  opened(endpoint: string): void {
    this.active.set(endpoint, (this.active.get(endpoint) ?? 0) + 1);
  }

  /** A connection or flow to `endpoint` ended. */
  closed(endpoint: string): void {
    const n = (this.active.get(endpoint) ?? 0) - 1;
    if (n > 0) this.active.set(endpoint, n);
    else this.active.delete(endpoint);
  }

  /** A connect succeeded: the endpoint's failures are forgotten. Returns whether it was ejected. */
  succeeded(endpoint: string): boolean {
    const was = this.health.get(endpoint);
    this.health.delete(endpoint);
    return was !== undefined;
  }

  /** A connect failed: the endpoint is skipped for a back-off, and nobody stays pinned to it. */
  failed(endpoint: string): Ejection {
    const failures = (this.health.get(endpoint)?.failures ?? 0) + 1;
    const forMs = Math.min(EJECT_MAX_MS, EJECT_BASE_MS * 2 ** Math.min(failures - 1, 16));
    this.health.set(endpoint, { failures, until: this.now() + forMs });
    for (const [client, record] of this.affinity)
      if (record.endpoint === endpoint) this.affinity.delete(client);
    return { endpoint, failures, forMs };
  }

  /** Open connections per endpoint (tests, debug). */
  activeConnections(endpoint: string): number {
    return this.active.get(endpoint) ?? 0;
  }
}
