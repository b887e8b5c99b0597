// List + watch of one resource with client-go Reflector semantics (dependencies.md section 2):
// paginated list from the watch cache (resourceVersion=0, then "" when that is gone), watches with
// bookmarks and a jittered server-side timeout, resume from the last resourceVersion, relist on
// 410 with synthetic deletes for objects that vanished meanwhile, and capped exponential backoff
// with full jitter on every error (the server's Retry-After first). It never gives up: only stop() ends it, and no handler exception or
// malformed event can break the loop.
import { flat } from '../util/flat.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.d.ts';
import { log } from '../log/log.ts';
import {
  KubeApiError,
  KubeDecodeError,
  KubeStreamError,
  KubeTimeoutError,
  type KubeRequester,
} from './client.ts';

/** Anything with object metadata: the reflector only needs namespace, name and resourceVersion. */
export interface KubeObject {
  metadata?: ObjectMeta;
}

export interface ReflectorHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  /** Also called with the last known state for objects found gone by a relist. */
  onDelete?(obj: T): void;
  /** Once, after the first complete list has been delivered. */
  onSynced?(): void;
}

/** Plain counters the CLI can expose as metrics; `lastSyncTime` is ms since the epoch (0 = never). */
export interface ReflectorStats {
  lists: number;
  relists: number;
  watches: number;
  watchEvents: number;
  errors: number;
  lastSyncTime: number;
  lastResourceVersion: string;
}

export interface ReflectorMetrics {
  onList?(info: { readonly durationMs: number; readonly items: number; readonly pages: number }): void;
  onWatchStart?(): void;
  onWatchEvent?(type: string): void;
  onError?(what: string, error: unknown): void;
}

export interface BackoffOptions {
  /** First base delay (client-go: 800 ms). */
  readonly initialMs: number;
  /** Cap of the base delay (client-go: 30 s). */
  readonly maxMs: number;
  readonly factor: number;
  /** With no backoff for this long, the next one starts again at initialMs. client-go: 2 min. */
  readonly resetAfterMs: number;
}

/**
 * Full jitter (each delay uniform in [0, base)) over a base doubling from 500 ms to a cap of
 * 2 s: a proxy is back on its feet within about 2 s of the API server's return (client-go's
 * 800 ms -> 30 s, jittered up to 60 s, kept nodes without changes for up to a minute), while
 * the fleet's retries are spread evenly instead of arriving in waves; an overloaded server paces
 * everyone with Retry-After, which always wins (docs/reliability.md has the numbers at 5,000
 * nodes).
 */
export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 2_000,
  factor: 2,
  resetAfterMs: 120_000,
};

/**
 * A watch that brings no byte for this long is dead. The API server sends every watch that allows
 * bookmarks (ours do) a BOOKMARK roughly every minute, and one 2 s before its timeout, so a
 * healthy stream is never silent much longer than 60 s; 90 s leaves room for a late one. TCP
 * keep-alive catches a vanished peer sooner (client.ts); this catches what keep-alive cannot: a
 * load balancer or HTTP proxy in between that answers the probes while its own path to the API
 * server is dead. An API server that sends no bookmarks (its watch cache off) costs one re-watch
 * from the last resourceVersion per 90 s of silence, no relist.
 */
export const WATCH_IDLE_TIMEOUT_MS = 90_000;

export interface ReflectorOptions<T extends KubeObject> {
  readonly client: KubeRequester;
  /** Collection path, e.g. `/api/v1/services` or `/apis/discovery.k8s.io/v1/endpointslices`. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly handlers: ReflectorHandlers<T>;
  /** For log lines; default the path. */
  readonly name?: string;
  /**
   * The kind the collection holds (e.g. v1 Service). A watch event whose object says it is
   * another kind is logged and skipped, and a list of another kind fails, as client-go's
   * reflector checks its expected type: no wrong object reaches the handlers. An object that
   * names no kind is taken (list items never do). Default: not checked.
   */
  readonly expectedKind?: { readonly apiVersion: string; readonly kind: string };
  /** List page size. Default 500 as client-go's pager. */
  readonly pageSize?: number;
  /** Overall deadline of each list page request. Default 60 s. */
  readonly listTimeoutMs?: number;
  /** Server-side watch timeout; default random in [300, 600) s as client-go. */
  readonly watchTimeoutSeconds?: () => number;
  /** No byte on a watch for this long means the stream is dead. Default WATCH_IDLE_TIMEOUT_MS. */
  readonly idleTimeoutMs?: number;
  /** A watch that ends sooner than this without any event counts as an error. Default 1 s. */
  readonly minWatchDurationMs?: number;
  readonly backoff?: Partial<BackoffOptions>;
  readonly random?: () => number;
  readonly now?: () => number;
  readonly metrics?: ReflectorMetrics;
  /**
   * What the cache keeps of each object (client-go's transform). Handlers always get the object
   * as received, except where they are given a cached one: the `old` of onUpdate and the object
   * of a delete found by a relist. The result must keep metadata (namespace, name,
   * resourceVersion): the relist diff reads it. Default: the whole object.
   */
  readonly cacheTransform?: (obj: T) => T;
  /**
   * For a resource the API server may not serve (ServiceCIDRs before v1.33): a 404 on the list
   * calls `onNotFound` and retries after `retryMs` (no backoff, no warning), so a cluster
   * without the resource costs one request per period and the log stays quiet; the first
   * successful list after that proceeds as usual. Without it a 404 is an error like any other.
   */
  readonly notFound?: { readonly retryMs: number; onNotFound(): void };
}

/** client-go's cache key: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace ?? '';
  const name = obj.metadata?.name ?? '';
  return ns === '' ? name : flat(ns, '/', name);
}

/** Capped exponential backoff with full jitter that resets after a quiet period. */
export class Backoff {
  readonly options: BackoffOptions;
  #random: () => number;
  #now: () => number;
  #next: number;
  #lastAt = -Infinity;

  constructor(options: BackoffOptions, random: () => number = Math.random, now: () => number = Date.now) {
    this.options = options;
    this.#random = random;
    this.#now = now;
    this.#next = options.initialMs;
  }

  /**
   * The next delay in ms: uniform in [0, base) (full jitter). A server's Retry-After is a floor,
   * spread over up to one more second so a fleet told the same value does not come back at once.
   */
  next(retryAfterMs?: number): number {
    const now = this.#now();
    if (now - this.#lastAt > this.options.resetAfterMs) this.#next = this.options.initialMs;
    this.#lastAt = now;
    const base = this.#next;
    this.#next = Math.min(base * this.options.factor, this.options.maxMs);
    const jittered = this.#random() * base;
    // Retry-After: 0 (or a date in the past) must not turn into a hot loop: the back-off still holds.
    if (retryAfterMs !== undefined) {
      return Math.max(retryAfterMs, jittered) + this.#random() * Math.min(retryAfterMs, 1_000);
    }
    return jittered;
  }
}

/** Thrown from the line handler: an ERROR event arrived. */
class WatchErrorEvent extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(`watch ERROR event: ${code} ${reason}: ${message}`);
    this.name = 'WatchErrorEvent';
    this.code = code;
    this.reason = reason;
  }
}

/** Thrown from the event handler: a decoded value that is not a watch event. */
class MalformedWatchLine extends Error {
  constructor(event: unknown, why: string) {
    let text: string;
    try {
      // JSON.stringify(undefined) is undefined at run time, whatever its type says.
      const json: unknown = JSON.stringify(event);
      text = typeof json === 'string' ? json : String(event);
    } catch {
      text = String(event);
    }
    super(`malformed watch event (${why}): ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`);
    this.name = 'MalformedWatchLine';
  }
}

function isExpired(error: unknown): boolean {
  if (error instanceof KubeApiError)
    return error.statusCode === 410 || error.reason === 'Expired' || error.reason === 'Gone';
  if (error instanceof WatchErrorEvent)
    return error.code === 410 || error.reason === 'Expired' || error.reason === 'Gone';
  return false;
}

/** The requested resourceVersion is newer than the server has (e.g. a restarted fake server, or etcd restored). */
function isTooLarge(error: unknown): boolean {
  return (
    error instanceof KubeApiError &&
    (error.causes.includes('ResourceVersionTooLarge') || /too large resource version/i.test(error.message))
  );
}

function isConnectionRefused(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ECONNREFUSED';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface ListPage {
  kind?: string;
  apiVersion?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isListPage(value: unknown): value is ListPage {
  return isRecord(value) && Array.isArray(value['items']);
}

function asListPage(
  value: unknown,
  path: string,
  expected: { readonly apiVersion: string; readonly kind: string } | undefined,
): ListPage {
  if (!isListPage(value)) throw new Error(`list ${path}: response is not a List`);
  if (expected !== undefined) {
    const kind = `${expected.kind}List`;
    const wrongKind = typeof value.kind === 'string' && value.kind !== kind;
    const wrongVersion = typeof value.apiVersion === 'string' && value.apiVersion !== expected.apiVersion;
    if (wrongKind || wrongVersion) {
      throw new Error(
        `list ${path}: response is a ${shown(value.apiVersion)} ${shown(value.kind)}, expected ${expected.apiVersion} ${kind}`,
      );
    }
  }
  return value;
}

/** Why an object is not of the expected kind, or undefined when it is (or names no kind). */
function wrongKind(
  object: Record<string, unknown>,
  expected: { readonly apiVersion: string; readonly kind: string } | undefined,
): string | undefined {
  if (expected === undefined) return undefined;
  const kind = object['kind'];
  const apiVersion = object['apiVersion'];
  if (
    (kind === undefined || kind === expected.kind) &&
    (apiVersion === undefined || apiVersion === expected.apiVersion)
  )
    return undefined;
  return `${shown(apiVersion)} ${shown(kind)}`;
}

/** A decoded value for an error message: strings as they are, anything else as JSON. */
function shown(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '(none)';
  // Decoded JSON or protobuf: never a function or symbol, so always JSON text.
  return JSON.stringify(value).slice(0, 100);
}

function hasName(value: unknown): value is KubeObject {
  return isRecord(value) && isRecord(value['metadata']) && typeof value['metadata']['name'] === 'string';
}

export class Reflector<T extends KubeObject> {
  readonly name: string;
  readonly stats: ReflectorStats = {
    lists: 0,
    relists: 0,
    watches: 0,
    watchEvents: 0,
    errors: 0,
    lastSyncTime: 0,
    lastResourceVersion: '',
  };
  #opts: ReflectorOptions<T>;
  #store = new Map<string, T>();
  #synced = false;
  #lastRV = '';
  /** The last RV could not be served (410 / too large): relist with "" (quorum). */
  #rvUnavailable = false;
  #paginatedResult = false;
  #abort = new AbortController();
  #running: Promise<void> | undefined;
  #backoff: Backoff;
  #now: () => number;
  #random: () => number;

  constructor(options: ReflectorOptions<T>) {
    this.#opts = options;
    this.name = options.name ?? options.path;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff({ ...DEFAULT_BACKOFF, ...options.backoff }, this.#random, this.#now);
  }

  /** Starts the list/watch loop in the background; calling it twice does nothing. */
  start(): void {
    if (this.#running !== undefined || this.#abort.signal.aborted) return;
    this.#running = this.#run();
  }

  /** Aborts the current request and any backoff wait; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  hasSynced(): boolean {
    return this.#synced;
  }

  get lastResourceVersion(): string {
    return this.#lastRV;
  }

  /** The objects as last delivered to the handlers. */
  items(): T[] {
    return [...this.#store.values()];
  }

  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  // A method, not a getter: the flag changes across awaits, which the type checker cannot see.
  #isStopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #run(): Promise<void> {
    let retryAfterMs: number | undefined;
    while (!this.#isStopped()) {
      try {
        await this.#listAndWatch();
      } catch (error) {
        if (this.#isStopped()) break;
        const notFound = this.#opts.notFound;
        if (notFound && error instanceof KubeApiError && error.statusCode === 404) {
          notFound.onNotFound();
          try {
            await sleep(notFound.retryMs, undefined, { signal: this.#abort.signal });
          } catch {
            // aborted by stop()
          }
          continue;
        }
        this.#noteError('list', error);
        log.warn('Failed to list; will retry', { reflector: this.name, reason: describe(error) });
        retryAfterMs = error instanceof KubeApiError ? error.retryAfterMs : undefined;
      }
      if (this.#isStopped()) break;
      await this.#wait(retryAfterMs);
      retryAfterMs = undefined;
    }
  }

  async #wait(retryAfterMs?: number): Promise<void> {
    try {
      await sleep(this.#backoff.next(retryAfterMs), undefined, { signal: this.#abort.signal });
    } catch {
      // aborted by stop()
    }
  }

  #noteError(what: string, error: unknown): void {
    this.stats.errors++;
    this.#opts.metrics?.onError?.(what, error);
  }

  /** "0" first (any cached state), then the last seen RV, or "" after the RV became unavailable. */
  #relistResourceVersion(): string {
    if (this.#rvUnavailable) return '';
    return this.#lastRV === '' ? '0' : this.#lastRV;
  }

  #query(params: Record<string, string | undefined>): string {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value !== undefined) search.set(key, value);
    if (this.#opts.labelSelector) search.set('labelSelector', this.#opts.labelSelector);
    if (this.#opts.fieldSelector) search.set('fieldSelector', this.#opts.fieldSelector);
    const text = search.toString();
    return text === '' ? this.#opts.path : `${this.#opts.path}?${text}`;
  }

  async #listAndWatch(): Promise<void> {
    const rv = this.#relistResourceVersion();
    try {
      await this.#list(rv);
    } catch (error) {
      if (this.#isStopped() || !(isExpired(error) || isTooLarge(error))) throw error;
      // The version we asked for is gone (or from the future): ask for the latest instead, at once.
      log.v(2).info('List at resourceVersion unavailable, listing the latest', {
        reflector: this.name,
        resourceVersion: rv,
      });
      this.#rvUnavailable = true;
      await this.#list('');
    }
    this.#rvUnavailable = false;
    await this.#watchLoop();
  }

  /** A continuation page takes no rate-limit token: see RequestOptions.throttle. */
  #getPage(path: string, continuation: boolean): Promise<ListPage> {
    return this.#opts.client
      .getJSON(path, {
        signal: this.#abort.signal,
        timeoutMs: this.#opts.listTimeoutMs ?? 60_000,
        ...(continuation ? { throttle: false } : {}),
      })
      .then((value) => asListPage(value, this.#opts.path, this.#opts.expectedKind));
  }

  /**
   * Lists everything and makes the store equal to it, telling the handlers what changed (a relist
   * diff). Each page is delivered as it arrives, while the next one is already being fetched: the
   * list is never held whole (at 44k Services that is hundreds of MiB of parsed JSON), and taking
   * in a page overlaps with the server producing the next. Objects gone from the list are deleted
   * once it is complete. A list that fails half-way leaves what it delivered: each of those is a
   * real state of its object, and the next list diffs against it.
   */
  async #list(rv: string): Promise<void> {
    const started = this.#now();
    const pageSize = this.#opts.pageSize ?? 500;
    // As client-go: an exact relist ("not older than" a given RV) is paginated only if the server
    // paginated before; "0" and "" always are.
    let limit: number | undefined = rv === '' || rv === '0' || this.#paginatedResult ? pageSize : undefined;
    const seen = new Set<string>();
    let pages = 0;
    let cont: string | undefined;
    let listRV = '';
    const pathFor = (): string =>
      this.#query({
        limit: limit !== undefined ? String(limit) : undefined,
        ...(cont !== undefined ? { continue: cont } : { resourceVersion: rv === '' ? undefined : rv }),
      });
    let request = this.#getPage(pathFor(), false);
    for (;;) {
      let page: ListPage;
      try {
        page = await request;
      } catch (error) {
        if (cont !== undefined && isExpired(error) && !this.#isStopped()) {
          // The continue token expired mid-list: list everything at once at the requested RV.
          // What was delivered stays; the full list re-delivers it unchanged (same versions).
          log.v(2).info('List continuation expired, listing without pagination', { reflector: this.name });
          cont = undefined;
          limit = undefined;
          request = this.#getPage(pathFor(), false);
          continue;
        }
        throw error;
      }
      pages++;
      listRV = page.metadata?.resourceVersion ?? listRV;
      const next = page.metadata?.continue;
      const more = next !== undefined && next !== '';
      if (more) {
        if (pages === 1) this.#paginatedResult = true;
        cont = next;
        request = this.#getPage(pathFor(), true);
        // Settled below or abandoned when this page throws; never an unhandled rejection.
        request.catch(() => undefined);
      }
      this.#deliverPage(page, seen);
      if (!more) break;
    }
    this.stats.lists++;
    this.#opts.metrics?.onList?.({ durationMs: this.#now() - started, items: seen.size, pages });
    this.#finishList(seen, listRV);
  }

  #deliverPage(page: ListPage, seen: Set<string>): void {
    // The API server leaves kind/apiVersion out of list items but not out of watch events;
    // fill them in so handlers see the same shape either way.
    const itemKind = typeof page.kind === 'string' ? page.kind.replace(/List$/, '') : undefined;
    for (const item of page.items ?? []) {
      if (!hasName(item)) throw new Error(`list ${this.#opts.path}: item without metadata.name`);
      const typed = item as T & { kind?: string; apiVersion?: string };
      if (typed.kind === undefined && itemKind !== undefined) typed.kind = itemKind;
      if (typed.apiVersion === undefined && typeof page.apiVersion === 'string')
        typed.apiVersion = page.apiVersion;
      const key = objectKey(typed);
      seen.add(key);
      const old = this.#store.get(key);
      this.#store.set(key, this.#cached(typed));
      if (old === undefined) this.#call('onAdd', key, () => this.#opts.handlers.onAdd?.(typed));
      else if (old.metadata?.resourceVersion !== typed.metadata?.resourceVersion) {
        this.#call('onUpdate', key, () => this.#opts.handlers.onUpdate?.(old, typed));
      }
    }
  }

  #cached(obj: T): T {
    return this.#opts.cacheTransform ? this.#opts.cacheTransform(obj) : obj;
  }

  /** After a complete list: deletes what it did not contain, then marks the reflector synced. */
  #finishList(seen: ReadonlySet<string>, resourceVersion: string): void {
    const isRelist = this.#synced;
    if (isRelist) this.stats.relists++;
    for (const [key, old] of this.#store) {
      if (!seen.has(key)) {
        this.#store.delete(key);
        this.#call('onDelete', key, () => this.#opts.handlers.onDelete?.(old));
      }
    }
    this.#setRV(resourceVersion);
    this.stats.lastSyncTime = this.#now();
    log.v(4).info('Listed', { reflector: this.name, items: seen.size, resourceVersion });
    if (!this.#synced) {
      this.#synced = true;
      this.#call('onSynced', '', () => this.#opts.handlers.onSynced?.());
    }
  }

  #setRV(rv: string): void {
    if (rv === '') return;
    this.#lastRV = rv;
    this.stats.lastResourceVersion = rv;
  }

  /** Runs a handler; an exception is logged and swallowed so one bad object cannot stop the watch. */
  #call(handler: string, key: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.#noteError('handler', error);
      log.error('Event handler failed', error, { reflector: this.name, handler, object: key });
    }
  }

  /** Watches until the RV expires or a non-retriable error needs a relist; returns to relist. */
  async #watchLoop(): Promise<void> {
    for (;;) {
      if (this.#isStopped()) return;
      const started = this.#now();
      let events = 0;
      const timeoutSeconds = Math.floor(this.#opts.watchTimeoutSeconds?.() ?? 300 + this.#random() * 300);
      const path = this.#query({
        watch: '1',
        allowWatchBookmarks: 'true',
        resourceVersion: this.#lastRV,
        timeoutSeconds: String(timeoutSeconds),
      });
      this.stats.watches++;
      this.#opts.metrics?.onWatchStart?.();
      let failure: unknown;
      try {
        await this.#opts.client.watchStream(path, {
          signal: this.#abort.signal,
          idleTimeoutMs: this.#opts.idleTimeoutMs ?? WATCH_IDLE_TIMEOUT_MS,
          onEvent: (event) => {
            this.#handleEvent(event);
            events++;
          },
        });
      } catch (error) {
        failure = error;
      }
      if (this.#isStopped()) return;

      if (failure instanceof KubeStreamError) {
        // A broken connection is an ordinary end of the watch: resume from the last RV.
        log.v(2).info('Watch connection broke, resuming', { reflector: this.name, reason: failure.message });
        failure = undefined;
      }
      if (failure === undefined) {
        const lasted = this.#now() - started;
        if (events === 0 && lasted < (this.#opts.minWatchDurationMs ?? 1000)) {
          // client-go: a watch that closes at once without an event is an error, not a timeout.
          this.#noteError('watch', new Error('very short watch'));
          log.warn('Very short watch: closed within a second without any event; relisting', {
            reflector: this.name,
            lastedMs: lasted,
          });
          return;
        }
        continue;
      }

      this.#noteError('watch', failure);
      if (isExpired(failure)) {
        log
          .v(2)
          .info('Watch expired (410), relisting', { reflector: this.name, resourceVersion: this.#lastRV });
        return;
      }
      if (failure instanceof KubeApiError && failure.statusCode === 429) {
        log.v(2).info('Watch throttled (429), backing off', {
          reflector: this.name,
          retryAfterMs: failure.retryAfterMs,
        });
        await this.#wait(failure.retryAfterMs);
        continue;
      }
      if (isConnectionRefused(failure)) {
        log.warn('API server refused the connection, backing off', {
          reflector: this.name,
          reason: describe(failure),
        });
        await this.#wait();
        continue;
      }
      if (failure instanceof MalformedWatchLine || failure instanceof KubeDecodeError) {
        log.error('Bad watch event, re-watching from the last resourceVersion', failure, {
          reflector: this.name,
          resourceVersion: this.#lastRV,
        });
        await this.#wait();
        continue;
      }
      if (failure instanceof KubeTimeoutError) {
        // Idle stream, or no connection or response headers in time: a dead path, not a stale
        // resourceVersion; re-watch from where it was after the back-off.
        log.warn('Watch timed out, re-watching', {
          reflector: this.name,
          reason: failure.message,
        });
        await this.#wait();
        continue;
      }
      log.warn('Watch failed; relisting', { reflector: this.name, reason: describe(failure) });
      return;
    }
  }

  /** One decoded watch event (JSON line or protobuf frame; the client decoded it). */
  #handleEvent(parsed: unknown): void {
    const line = parsed;
    if (!isRecord(parsed) || typeof parsed['type'] !== 'string' || !isRecord(parsed['object'])) {
      throw new MalformedWatchLine(line, 'no type or object');
    }
    const type = parsed['type'];
    const object = parsed['object'];
    this.stats.watchEvents++;
    this.#opts.metrics?.onWatchEvent?.(type);
    if (type === 'ERROR') {
      const code = typeof object['code'] === 'number' ? object['code'] : 0;
      const reason = typeof object['reason'] === 'string' ? object['reason'] : '';
      const message = typeof object['message'] === 'string' ? object['message'] : '';
      throw new WatchErrorEvent(code, reason, message);
    }
    const meta = isRecord(object['metadata']) ? object['metadata'] : {};
    const rv = typeof meta['resourceVersion'] === 'string' ? meta['resourceVersion'] : '';
    if (type === 'BOOKMARK') {
      this.#setRV(rv);
      return;
    }
    const wrong = wrongKind(object, this.#opts.expectedKind);
    if (wrong !== undefined) {
      // client-go skips such an event with an error, and so do we: re-watching would be sent it again.
      const expected = this.#opts.expectedKind;
      this.#noteError('watch', new Error(`watch event of kind ${wrong}`));
      log.error(
        'Watch event of the wrong kind, skipped',
        new Error(`expected ${expected?.apiVersion ?? ''} ${expected?.kind ?? ''}, got ${wrong}`),
        {
          reflector: this.name,
          type,
          object: hasName(object) ? objectKey(object) : '(no name)',
        },
      );
      return;
    }
    if (!hasName(object)) throw new MalformedWatchLine(line, 'object without metadata.name');
    const obj = object as T;
    const key = objectKey(obj);
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const old = this.#store.get(key);
        this.#store.set(key, this.#cached(obj));
        if (old === undefined) this.#call('onAdd', key, () => this.#opts.handlers.onAdd?.(obj));
        else this.#call('onUpdate', key, () => this.#opts.handlers.onUpdate?.(old, obj));
        break;
      }
      case 'DELETED':
        this.#store.delete(key);
        this.#call('onDelete', key, () => this.#opts.handlers.onDelete?.(obj));
        break;
      default:
        throw new MalformedWatchLine(line, `unknown event type ${type}`);
    }
    this.#setRV(rv);
  }
}
