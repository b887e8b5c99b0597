// The in-repo Kubernetes API server: a stand-in for kube-apiserver in tests and the demo (no real
// one can be installed on these machines). It speaks the real JSON wire protocol for the few
// resources kube-proxy uses: list with limit/continue, watch events from a resourceVersion with
// history replay, 410 Gone for compacted versions (as HTTP status and as an ERROR event),
// bookmarks, label and field selectors, create/update/delete/get. Like a real one it negotiates
// the encoding by the Accept header: JSON (watch: one event per line) or Kubernetes protobuf
// (watch: length-delimited frames), for kinds that have a protobuf schema (src/k8s/protobuf);
// others (Events) fall back to JSON. Responses of 128 KiB or more are gzipped when the client
// accepts gzip (kube-apiserver's APIResponseCompression); watches never are.
//
// Tests drive it in-process (create/update/delete, faults) or, when the proxy runs inside a
// network namespace that cannot reach this process's loopback, over a unix socket with the same
// API plus /_fake/ admin endpoints (apiserver-client.ts). The proxy never imports this;
// `kube-proxy playground` runs it as its cluster's API server.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.d.ts';
import { canEncode, encodeObject, encodeWatchEvent } from '../k8s/protobuf/codec.ts';
import { MEDIA_JSON, MEDIA_PROTOBUF } from '../k8s/content.ts';

/** Any API object (kubernetes-types objects fit); fields beyond these are kept as they are. */
export interface KubeObj {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface ResourceInfo {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  /** Plural path segment, e.g. `services`. */
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

// The first entry of a kind wins when a caller names only the kind (so `Event` is events.k8s.io).
export const RESOURCES: readonly ResourceInfo[] = [
  { group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true },
  { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false },
  {
    group: 'discovery.k8s.io',
    version: 'v1',
    resource: 'endpointslices',
    kind: 'EndpointSlice',
    namespaced: true,
  },
  { group: 'events.k8s.io', version: 'v1', resource: 'events', kind: 'Event', namespaced: true },
  { group: '', version: 'v1', resource: 'events', kind: 'Event', namespaced: true },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    resource: 'servicecidrs',
    kind: 'ServiceCIDR',
    namespaced: false,
  },
];

export function apiVersionOf(info: ResourceInfo): string {
  return info.group === '' ? info.version : `${info.group}/${info.version}`;
}

/** REST path of a collection or an object: `/api/v1/namespaces/ns/services/name`. */
export function resourcePath(info: ResourceInfo, namespace = '', name = ''): string {
  const base = info.group === '' ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`;
  const ns = info.namespaced && namespace !== '' ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${info.resource}${name !== '' ? `/${encodeURIComponent(name)}` : ''}`;
}

/**
 * Finds the resource for a kind: `Service`, or qualified by apiVersion as `v1/Event` or
 * `events.k8s.io/v1/Event`, or by an object's apiVersion.
 */
export function resourceFor(kind: string, apiVersion?: string): ResourceInfo {
  let wantKind = kind;
  let wantVersion = apiVersion;
  const slash = kind.lastIndexOf('/');
  if (slash !== -1) {
    wantKind = kind.slice(slash + 1);
    wantVersion = kind.slice(0, slash);
  }
  const found = RESOURCES.find(
    (r) =>
      r.kind === wantKind &&
      (wantVersion === undefined || wantVersion === '' || apiVersionOf(r) === wantVersion),
  );
  if (!found) {
    throw new FakeApiError(
      400,
      'BadRequest',
      `the fake API server does not serve kind ${wantVersion ? `${wantVersion}/` : ''}${wantKind}`,
    );
  }
  return found;
}

export class FakeApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly causes: readonly { reason: string; message: string }[];
  constructor(
    code: number,
    reason: string,
    message: string,
    causes: readonly { reason: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'FakeApiError';
    this.code = code;
    this.reason = reason;
    this.causes = causes;
  }

  status(): Record<string, unknown> {
    return statusObject(this.code, this.reason, this.message, this.causes);
  }
}

function statusObject(
  code: number,
  reason: string,
  message: string,
  causes: readonly { reason: string; message: string }[] = [],
): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(causes.length > 0 ? { details: { causes } } : {}),
    code,
  };
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Expired',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

// ---------------------------------------------------------------------------------------------
// Selectors (the subset kube-proxy and its tests use).

type LabelRequirement =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'in' | 'notin'; key: string; values: readonly string[] };

/** Parses `key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (a,b)`, `key notin (a,b)`, comma = AND. */
export function parseLabelSelector(text: string): LabelRequirement[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  const keyRe = '([A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)';
  const valRe = '([-A-Za-z0-9_.]*)';
  const out: LabelRequirement[] = [];
  for (const raw of parts) {
    const part = raw.trim();
    if (part === '') {
      if (text.trim() === '') continue;
      throw new FakeApiError(
        400,
        'BadRequest',
        `unable to parse requirement: empty requirement in "${text}"`,
      );
    }
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^!\\s*${keyRe}$`).exec(part))) out.push({ op: 'notexists', key: m[1] ?? '' });
    else if ((m = new RegExp(`^${keyRe}$`).exec(part))) out.push({ op: 'exists', key: m[1] ?? '' });
    else if ((m = new RegExp(`^${keyRe}\\s*(==|=|!=)\\s*${valRe}$`).exec(part))) {
      out.push({ op: m[3] === '!=' ? 'notin' : 'in', key: m[1] ?? '', values: [m[4] ?? ''] });
    } else if ((m = new RegExp(`^${keyRe}\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(part))) {
      const values = (m[4] ?? '').split(',').map((v) => v.trim());
      out.push({ op: m[3] === 'notin' ? 'notin' : 'in', key: m[1] ?? '', values });
    } else {
      throw new FakeApiError(400, 'BadRequest', `unable to parse requirement: "${part}"`);
    }
  }
  return out;
}

function labelsMatch(reqs: readonly LabelRequirement[], labels: Readonly<Record<string, string>>): boolean {
  return reqs.every((req) => {
    const has = Object.hasOwn(labels, req.key);
    switch (req.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'in':
        return has && req.values.includes(labels[req.key] ?? '');
      case 'notin':
        return !has || !req.values.includes(labels[req.key] ?? '');
    }
  });
}

interface FieldRequirement {
  field: 'metadata.name' | 'metadata.namespace';
  equal: boolean;
  value: string;
}

export function parseFieldSelector(text: string): FieldRequirement[] {
  const out: FieldRequirement[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const m = /^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new FakeApiError(400, 'BadRequest', `invalid field selector: "${part}"`);
    const field = m[1] ?? '';
    if (field !== 'metadata.name' && field !== 'metadata.namespace') {
      throw new FakeApiError(400, 'BadRequest', `field label not supported: ${field}`);
    }
    out.push({ field, equal: m[2] !== '!=', value: m[3] ?? '' });
  }
  return out;
}

function fieldsMatch(reqs: readonly FieldRequirement[], obj: KubeObj): boolean {
  return reqs.every((req) => {
    const actual =
      req.field === 'metadata.name' ? (obj.metadata?.name ?? '') : (obj.metadata?.namespace ?? '');
    return (actual === req.value) === req.equal;
  });
}

interface Filter {
  namespace: string;
  labels: readonly LabelRequirement[];
  fields: readonly FieldRequirement[];
}

function passes(filter: Filter, obj: KubeObj): boolean {
  if (filter.namespace !== '' && obj.metadata?.namespace !== filter.namespace) return false;
  return labelsMatch(filter.labels, obj.metadata?.labels ?? {}) && fieldsMatch(filter.fields, obj);
}

// ---------------------------------------------------------------------------------------------
// Storage with history.

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEntry {
  rv: number;
  info: ResourceInfo;
  type: EventType;
  /** The object after the change (for DELETED: the last state, stamped with the delete's RV). */
  object: KubeObj;
  /** The object before the change (MODIFIED, DELETED). */
  prev?: KubeObj;
}

function keyOf(obj: KubeObj): string {
  const ns = obj.metadata?.namespace ?? '';
  const name = obj.metadata?.name ?? '';
  return ns === '' ? name : `${ns}/${name}`;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function clone<T>(value: T): T {
  return structuredClone(value);
}

// ---------------------------------------------------------------------------------------------
// Faults.

export interface RequestInfo {
  readonly method: string;
  readonly url: string;
}
export type FaultMatch = string | RegExp | ((req: RequestInfo) => boolean);

function faultMatches(match: FaultMatch | undefined, req: RequestInfo): boolean {
  if (match === undefined) return true;
  if (typeof match === 'string') return `${req.method} ${req.url}`.includes(match);
  if (match instanceof RegExp) return match.test(`${req.method} ${req.url}`);
  return match(req);
}

interface FailRule {
  status: number;
  remaining: number;
  match: FaultMatch | undefined;
}
interface HangRule {
  remaining: number;
  match: FaultMatch | undefined;
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The Content-Type it was answered with ('' until answered; admin requests are not recorded). */
  served: string;
  /** The Content-Encoding it was answered with ('' or gzip). */
  encoding: string;
}

export type Encoding = 'json' | 'protobuf';

/**
 * The encoding to answer with, by the Accept header as kube-apiserver negotiates it: the first
 * listed media type it can produce (`*\/*` and `application/*` mean JSON); none listed means
 * JSON; protobuf only for kinds with a schema. undefined: nothing acceptable (406).
 */
export function negotiate(accept: string | undefined, protobufPossible: boolean): Encoding | undefined {
  if (accept === undefined || accept.trim() === '') return 'json';
  for (const entry of accept.split(',')) {
    const media = (entry.split(';')[0] ?? '').trim().toLowerCase();
    if (media === MEDIA_PROTOBUF && protobufPossible) return 'protobuf';
    if (media === MEDIA_JSON || media === '*/*' || media === 'application/*') return 'json';
  }
  return undefined;
}

export interface Faults {
  /** Ends every open watch stream (cleanly, or by destroying the connection when abrupt). */
  closeWatches(options?: { abrupt?: boolean }): number;
  /** The next `count` API requests matching answer with this HTTP status and a Status body. */
  failNext(status: number, count?: number, match?: FaultMatch): void;
  /** The next `count` matching API requests are accepted and never answered. */
  hangNext(count?: number, match?: FaultMatch): void;
  /** A BOOKMARK at the current resourceVersion to every watch that allows bookmarks. */
  sendBookmark(): number;
  /** Writes a raw line (e.g. malformed JSON) to every open watch stream. */
  sendRawLine(line: string): number;
  /** Sends an ERROR event carrying this Status code to every open watch, then ends them. */
  sendErrorEvent(code: number, message?: string): number;
  /**
   * While on, open and new watches get no events (a watcher that fell behind); turning it off
   * delivers what was held. compact() drops held events, as the real server drops a watcher
   * that fell behind the compaction.
   */
  holdWatches(on: boolean): void;
  /** Forgets pending failNext/hangNext rules and releases held watches. */
  clear(): void;
}

export interface FakeApiServerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Also serve on this unix socket (same API plus /_fake/ admin endpoints). */
  socketPath?: string;
  /** Periodic bookmarks to watches that allow them; 0 disables. Default 60 s as kube-apiserver. */
  bookmarkIntervalMs?: number;
  /** First resourceVersion handed out is this plus one. Default 100. */
  initialResourceVersion?: number;
  /** Serve protobuf to clients that ask for it. Default true, as a real API server. */
  protobuf?: boolean;
  /** Gzip responses of at least this many bytes when the client accepts gzip. Default 128 KiB. */
  gzipMinBytes?: number;
  /**
   * Resources (plural, e.g. `servicecidrs`) this server answers 404 for, as an API server of a
   * release without them (ServiceCIDRs before v1.33); create() in the process still stores them.
   */
  unservedResources?: readonly string[];
}

export interface FakeApiServer {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  readonly socketPath: string | undefined;
  create<T extends KubeObj>(obj: T): T;
  update<T extends KubeObj>(obj: T): T;
  /** `kind` as for resourceFor(); namespace '' for cluster-scoped objects. */
  delete(kind: string, namespace: string, name: string): KubeObj;
  get(kind: string, namespace: string, name: string): KubeObj | undefined;
  list(kind: string, namespace?: string): KubeObj[];
  /** Forgets all history: watches or continue tokens from before now get 410, open watches get an ERROR 410. */
  compact(): void;
  /** The current (latest) resourceVersion. */
  resourceVersion(): number;
  /** Number of open watch streams, optionally only for one collection path prefix. */
  openWatches(pathPrefix?: string): number;
  readonly faults: Faults;
  /** Every API request received (admin endpoints excluded), oldest first. */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

interface Watcher {
  info: ResourceInfo;
  filter: Filter;
  bookmarks: boolean;
  res: http.ServerResponse;
  path: string;
  timer: NodeJS.Timeout | undefined;
  encoding: Encoding;
  /** Events held back by faults.holdWatches(true), written when released. */
  held: (string | Uint8Array)[];
}

interface Route {
  info: ResourceInfo;
  namespace: string;
  name: string;
}

/** Parses an API path into resource, namespace and name; undefined when it is not one we serve. */
function parseRoute(pathname: string): Route | undefined {
  const segs = pathname
    .split('/')
    .filter((s) => s !== '')
    .map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) {
    group = '';
    version = segs[1] ?? '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 4) {
    group = segs[1] ?? '';
    version = segs[2] ?? '';
    rest = segs.slice(3);
  } else return undefined;
  let namespace = '';
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1] ?? '';
    rest = rest.slice(2);
  }
  if (rest.length < 1 || rest.length > 2) return undefined;
  const resource = rest[0] ?? '';
  const info = RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
  if (!info) return undefined;
  if (!info.namespaced && namespace !== '') return undefined;
  return { info, namespace, name: rest[1] ?? '' };
}

function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function parseJSONObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new FakeApiError(
      400,
      'BadRequest',
      `invalid JSON body: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FakeApiError(400, 'BadRequest', 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function parseRV(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new FakeApiError(400, 'BadRequest', `invalid ${what} "${text}"`);
  return Number(text);
}

function tooLarge(rv: number, current: number): FakeApiError {
  return new FakeApiError(504, 'Timeout', `Too large resource version: ${rv}, current: ${current}`, [
    { reason: 'ResourceVersionTooLarge', message: 'Too large resource version' },
  ]);
}

/** Listings (sorted pages' sources) kept for continue tokens; see listing(). */
const MAX_LISTINGS = 8;

/** Index of the first entry whose key sorts after `start` ('' = from the beginning). */
function firstAfter(entries: readonly (readonly [string, unknown])[], start: string): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const key = entries[mid]?.[0] ?? '';
    if (key <= start) low = mid + 1;
    else high = mid;
  }
  return low;
}

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ rv, start })).toString('base64url');
}

function decodeContinue(token: string): { rv: number; start: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (
      typeof value === 'object' &&
      value !== null &&
      'rv' in value &&
      'start' in value &&
      typeof value.rv === 'number' &&
      typeof value.start === 'string'
    ) {
      return { rv: value.rv, start: value.start };
    }
  } catch {
    // fall through
  }
  throw new FakeApiError(400, 'BadRequest', `invalid continue token "${token}"`);
}

export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const host = options.host ?? '127.0.0.1';
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 60_000;
  const stores = new Map<ResourceInfo, Map<string, KubeObj>>(RESOURCES.map((r) => [r, new Map()]));
  let rv = options.initialResourceVersion ?? 100;
  /** Watches and continue tokens from before (below) this RV get 410. */
  let compactedRV = rv;
  let history: HistoryEntry[] = [];
  /** Sorted, filtered list results by resource, RV and filter: see listing(). */
  const listings = new Map<string, [string, KubeObj][]>();
  const watchers = new Set<Watcher>();
  const hung = new Set<http.ServerResponse>();
  const failRules: FailRule[] = [];
  const hangRules: HangRule[] = [];
  const requests: RecordedRequest[] = [];
  let holding = false;

  const storeOf = (info: ResourceInfo): Map<string, KubeObj> => {
    const store = stores.get(info);
    if (!store) throw new Error(`no store for ${info.resource}`);
    return store;
  };

  // ---- watch streaming

  const writeEvent = (w: Watcher, type: string, object: object): void => {
    if (w.res.writableEnded || w.res.destroyed) return;
    let data: string | Uint8Array;
    if (w.encoding === 'protobuf') {
      const typed = object as KubeObj;
      const full = {
        ...typed,
        apiVersion: typed.apiVersion ?? apiVersionOf(w.info),
        kind: typed.kind ?? (type === 'ERROR' ? 'Status' : w.info.kind),
      };
      try {
        data = encodeWatchEvent(type, full);
      } catch (error) {
        // A real server never holds an object its schema cannot encode; tests that store one
        // see the watch end with an ERROR naming it.
        const reason = error instanceof Error ? error.message : String(error);
        w.res.write(
          encodeWatchEvent('ERROR', statusObject(500, 'InternalError', `cannot encode: ${reason}`)),
        );
        endWatcher(w);
        return;
      }
    } else data = `${JSON.stringify({ type, object })}\n`;
    if (holding && type !== 'ERROR') w.held.push(data);
    else w.res.write(data);
  };

  const endWatcher = (w: Watcher, abrupt = false): void => {
    watchers.delete(w);
    clearTimeout(w.timer);
    if (abrupt) w.res.socket?.destroy();
    else if (!w.res.writableEnded) w.res.end();
  };

  /** Translates a stored change into what a watcher with this filter sees (apiserver cacher rules). */
  const eventFor = (w: Watcher, entry: HistoryEntry): { type: string; object: KubeObj } | undefined => {
    if (entry.info !== w.info) return undefined;
    const now = entry.type !== 'DELETED' && passes(w.filter, entry.object);
    const before = entry.prev !== undefined && passes(w.filter, entry.prev);
    if (entry.type === 'ADDED') return now ? { type: 'ADDED', object: entry.object } : undefined;
    if (entry.type === 'DELETED') return before ? { type: 'DELETED', object: entry.object } : undefined;
    if (now && before) return { type: 'MODIFIED', object: entry.object };
    if (now) return { type: 'ADDED', object: entry.object };
    if (before && entry.prev) {
      // Left the selector: a DELETED carrying the previous state at the new resourceVersion.
      const gone = clone(entry.prev);
      gone.metadata = { ...gone.metadata, resourceVersion: String(entry.rv) };
      return { type: 'DELETED', object: gone };
    }
    return undefined;
  };

  const record = (entry: HistoryEntry): void => {
    history.push(entry);
    for (const w of watchers) {
      const event = eventFor(w, entry);
      if (event) writeEvent(w, event.type, event.object);
    }
  };

  const bookmark = (w: Watcher): void => {
    writeEvent(w, 'BOOKMARK', {
      kind: w.info.kind,
      apiVersion: apiVersionOf(w.info),
      metadata: { resourceVersion: String(rv) },
    });
  };

  const bookmarkTimer =
    bookmarkIntervalMs > 0
      ? setInterval(() => {
          for (const w of watchers) if (w.bookmarks) bookmark(w);
        }, bookmarkIntervalMs)
      : undefined;
  bookmarkTimer?.unref();

  // ---- state

  /** The objects of one resource as they were at `atRV` (undoing later history). */
  const stateAt = (info: ResourceInfo, atRV: number): Map<string, KubeObj> => {
    const state = new Map(storeOf(info));
    for (let i = history.length - 1; i >= 0; i--) {
      const entry = history[i];
      if (!entry || entry.rv <= atRV) break;
      if (entry.info !== info) continue;
      const key = keyOf(entry.object);
      if (entry.type === 'ADDED') state.delete(key);
      else if (entry.prev) state.set(key, entry.prev);
    }
    return state;
  };

  const create = (info: ResourceInfo, namespace: string, input: KubeObj): KubeObj => {
    const obj = clone(input);
    checkKind(info, obj);
    const meta: Mutable<ObjectMeta> = { ...obj.metadata };
    if (info.namespaced) {
      const ns = namespace !== '' ? namespace : (meta.namespace ?? 'default');
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== ns) {
        throw new FakeApiError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      meta.namespace = ns;
    } else delete meta.namespace;
    if ((meta.name ?? '') === '') {
      if ((meta.generateName ?? '') === '') {
        throw new FakeApiError(
          400,
          'BadRequest',
          `${info.kind}: metadata.name or metadata.generateName is required`,
        );
      }
      meta.name = `${meta.generateName ?? ''}${randomUUID().slice(0, 5)}`;
    }
    const store = storeOf(info);
    obj.metadata = meta;
    const key = keyOf(obj);
    if (store.has(key)) {
      throw new FakeApiError(409, 'AlreadyExists', `${info.resource} "${meta.name ?? ''}" already exists`);
    }
    rv++;
    meta.uid = randomUUID();
    meta.creationTimestamp = nowTimestamp();
    meta.resourceVersion = String(rv);
    obj.apiVersion = apiVersionOf(info);
    obj.kind = info.kind;
    store.set(key, obj);
    record({ rv, info, type: 'ADDED', object: obj });
    return clone(obj);
  };

  const update = (
    info: ResourceInfo,
    namespace: string,
    name: string | undefined,
    input: KubeObj,
  ): KubeObj => {
    const obj = clone(input);
    checkKind(info, obj);
    const meta: Mutable<ObjectMeta> = { ...obj.metadata };
    if (info.namespaced) meta.namespace = namespace !== '' ? namespace : (meta.namespace ?? 'default');
    else delete meta.namespace;
    if (name !== undefined && meta.name !== name) {
      throw new FakeApiError(
        400,
        'BadRequest',
        `the name of the object (${meta.name ?? ''}) does not match the name on the URL (${name})`,
      );
    }
    obj.metadata = meta;
    const store = storeOf(info);
    const key = keyOf(obj);
    const prev = store.get(key);
    if (!prev) throw new FakeApiError(404, 'NotFound', `${info.resource} "${meta.name ?? ''}" not found`);
    if (
      meta.resourceVersion !== undefined &&
      meta.resourceVersion !== '' &&
      meta.resourceVersion !== prev.metadata?.resourceVersion
    ) {
      throw new FakeApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${info.resource} "${meta.name ?? ''}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    rv++;
    if (prev.metadata?.uid !== undefined) meta.uid = prev.metadata.uid;
    if (prev.metadata?.creationTimestamp !== undefined)
      meta.creationTimestamp = prev.metadata.creationTimestamp;
    meta.resourceVersion = String(rv);
    obj.apiVersion = apiVersionOf(info);
    obj.kind = info.kind;
    store.set(key, obj);
    record({ rv, info, type: 'MODIFIED', object: obj, prev });
    return clone(obj);
  };

  const remove = (info: ResourceInfo, namespace: string, name: string): KubeObj => {
    const store = storeOf(info);
    const key = info.namespaced ? `${namespace}/${name}` : name;
    const prev = store.get(key);
    if (!prev) throw new FakeApiError(404, 'NotFound', `${info.resource} "${name}" not found`);
    rv++;
    store.delete(key);
    const gone = clone(prev);
    gone.metadata = { ...gone.metadata, resourceVersion: String(rv) };
    record({ rv, info, type: 'DELETED', object: gone, prev });
    return clone(gone);
  };

  const compact = (): void => {
    compactedRV = rv;
    history = [];
    listings.clear();
    for (const w of [...watchers]) {
      w.held = [];
      writeEvent(w, 'ERROR', statusObject(410, 'Expired', `too old resource version (compacted to ${rv})`));
      endWatcher(w);
    }
  };

  // ---- HTTP

  const sendJSON = (
    res: http.ServerResponse,
    code: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void => {
    const text = JSON.stringify(body);
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };

  const recordOf = new WeakMap<http.IncomingMessage, RecordedRequest>();
  const protobufOn = options.protobuf ?? true;
  const gzipMinBytes = options.gzipMinBytes ?? 128 * 1024;

  /** An API answer in the encoding the request negotiated (object, list or Status). */
  const reply = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    code: number,
    body: Record<string, unknown>,
    typeMeta: { apiVersion: string; kind: string },
    headers: Record<string, string> = {},
  ): void => {
    const full = {
      ...body,
      apiVersion: body['apiVersion'] ?? typeMeta.apiVersion,
      kind: body['kind'] ?? typeMeta.kind,
    };
    const encoding = negotiate(req.headers.accept, protobufOn && canEncode(typeMeta));
    if (encoding === undefined) {
      const status = statusObject(
        406,
        'NotAcceptable',
        `only ${MEDIA_JSON} and ${MEDIA_PROTOBUF} can be served, not "${req.headers.accept ?? ''}"`,
      );
      send(req, res, 406, Buffer.from(JSON.stringify(status)), MEDIA_JSON, {});
      return;
    }
    let data: Uint8Array;
    try {
      data = encoding === 'protobuf' ? encodeObject(full) : Buffer.from(JSON.stringify(body));
    } catch (error) {
      const status = statusObject(
        500,
        'InternalError',
        `cannot encode as protobuf: ${error instanceof Error ? error.message : String(error)}`,
      );
      send(req, res, 500, Buffer.from(JSON.stringify(status)), MEDIA_JSON, {});
      return;
    }
    send(req, res, code, data, encoding === 'protobuf' ? MEDIA_PROTOBUF : MEDIA_JSON, headers);
  };

  const send = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    code: number,
    data: Uint8Array,
    contentType: string,
    headers: Record<string, string>,
  ): void => {
    const gzip = data.length >= gzipMinBytes && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
    const body = gzip ? gzipSync(data) : data;
    const record = recordOf.get(req);
    if (record) {
      record.served = contentType;
      record.encoding = gzip ? 'gzip' : '';
    }
    res.writeHead(code, {
      'Content-Type': contentType,
      'Content-Length': String(body.length),
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
      ...headers,
    });
    res.end(body);
  };

  const STATUS_TYPE = { apiVersion: 'v1', kind: 'Status' };

  const sendError = (req: http.IncomingMessage, res: http.ServerResponse, error: unknown): void => {
    if (error instanceof FakeApiError) {
      reply(
        req,
        res,
        error.code,
        error.status(),
        STATUS_TYPE,
        error.code === 429 ? { 'Retry-After': '1' } : {},
      );
    } else {
      const message = error instanceof Error ? error.message : String(error);
      reply(req, res, 500, statusObject(500, 'InternalError', message), STATUS_TYPE);
    }
  };

  const typeOf = (info: ResourceInfo, list = false): { apiVersion: string; kind: string } => ({
    apiVersion: apiVersionOf(info),
    kind: list ? `${info.kind}List` : info.kind,
  });

  const filterFrom = (route: Route, query: URLSearchParams): Filter => ({
    namespace: route.namespace,
    labels: parseLabelSelector(query.get('labelSelector') ?? ''),
    fields: parseFieldSelector(query.get('fieldSelector') ?? ''),
  });

  /**
   * The sorted, filtered entries of one list at one resourceVersion, computed once per list and
   * shared by its pages: a paginated list of N objects then costs one filter and one sort, not one
   * per page (88k objects in pages of 500 took seconds when every page re-sorted the store).
   * Keyed by the snapshot RV, so later writes never change a listing; a few are kept.
   */
  const listing = (route: Route, query: URLSearchParams, snapshot: number): [string, KubeObj][] => {
    const cacheKey = JSON.stringify([
      apiVersionOf(route.info),
      route.info.resource,
      snapshot,
      route.namespace,
      query.get('labelSelector') ?? '',
      query.get('fieldSelector') ?? '',
    ]);
    const cached = listings.get(cacheKey);
    if (cached) return cached;
    const filter = filterFrom(route, query);
    const state = snapshot === rv ? storeOf(route.info) : stateAt(route.info, snapshot);
    const matching = [...state.entries()]
      .filter(([, obj]) => passes(filter, obj))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    listings.set(cacheKey, matching);
    for (const key of listings.keys()) {
      if (listings.size <= MAX_LISTINGS) break;
      listings.delete(key); // oldest first: Maps iterate in insertion order
    }
    return matching;
  };

  const listResponse = (route: Route, query: URLSearchParams): Record<string, unknown> => {
    const limitText = query.get('limit') ?? '';
    const limit = limitText === '' ? 0 : parseRV(limitText, 'limit');
    const cont = query.get('continue') ?? '';
    let snapshot = rv;
    let start = '';
    if (cont !== '') {
      const token = decodeContinue(cont);
      if (token.rv < compactedRV) {
        throw new FakeApiError(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      }
      snapshot = token.rv;
      start = token.start;
    } else {
      const wanted = query.get('resourceVersion') ?? '';
      if (wanted !== '' && wanted !== '0') {
        const asked = parseRV(wanted, 'resourceVersion');
        if (asked > rv) throw tooLarge(asked, rv);
        if (query.get('resourceVersionMatch') === 'Exact') {
          if (asked < compactedRV)
            throw new FakeApiError(410, 'Expired', `too old resource version: ${asked} (${compactedRV})`);
          snapshot = asked;
        }
      }
    }
    const matching = listing(route, query, snapshot);
    const from = firstAfter(matching, start);
    const page = limit > 0 ? matching.slice(from, from + limit) : matching.slice(from);
    const more = matching.length - from - page.length;
    const last = page.at(-1);
    // Shallow copies are enough: stored objects are replaced on update, never changed in place,
    // and the response is serialised before anything else runs.
    const items = page.map(([, obj]) => {
      const { apiVersion: _a, kind: _k, ...rest } = obj;
      return rest;
    });
    return {
      kind: `${route.info.kind}List`,
      apiVersion: apiVersionOf(route.info),
      metadata: {
        resourceVersion: String(snapshot),
        ...(more > 0 && last
          ? { continue: encodeContinue(snapshot, last[0]), remainingItemCount: more }
          : {}),
      },
      items,
    };
  };

  const startWatch = (
    route: Route,
    query: URLSearchParams,
    url: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void => {
    const filter = filterFrom(route, query);
    const wanted = query.get('resourceVersion') ?? '';
    let from: number | undefined;
    if (wanted !== '' && wanted !== '0') {
      from = parseRV(wanted, 'resourceVersion');
      if (from < compactedRV) {
        throw new FakeApiError(410, 'Expired', `too old resource version: ${from} (${compactedRV})`);
      }
      if (from > rv) throw tooLarge(from, rv);
    }
    const bookmarks = ['true', '1'].includes(query.get('allowWatchBookmarks') ?? '');
    const encoding = negotiate(req.headers.accept, protobufOn && canEncode(typeOf(route.info)));
    if (encoding === undefined) {
      throw new FakeApiError(406, 'NotAcceptable', `cannot serve a watch as "${req.headers.accept ?? ''}"`);
    }
    const w: Watcher = {
      info: route.info,
      filter,
      bookmarks,
      res,
      path: url,
      timer: undefined,
      encoding,
      held: [],
    };
    const contentType = encoding === 'protobuf' ? `${MEDIA_PROTOBUF};stream=watch` : MEDIA_JSON;
    const record = recordOf.get(req);
    if (record) record.served = contentType;
    res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-cache' });
    res.flushHeaders();
    if (from === undefined) {
      // No resourceVersion: the current state as synthetic ADDED events, then live changes.
      const current = [...storeOf(route.info).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (const [, obj] of current) if (passes(filter, obj)) writeEvent(w, 'ADDED', obj);
    } else {
      for (const entry of history) {
        if (entry.rv <= from) continue;
        const event = eventFor(w, entry);
        if (event) writeEvent(w, event.type, event.object);
      }
    }
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');
    if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
      w.timer = setTimeout(() => {
        endWatcher(w);
      }, timeoutSeconds * 1000);
    }
    watchers.add(w);
    res.on('close', () => {
      watchers.delete(w);
      clearTimeout(w.timer);
    });
  };

  const handleApi = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const method = req.method ?? 'GET';
    const info: RequestInfo = { method, url: `${url.pathname}${url.search}` };
    const hangIndex = hangRules.findIndex((r) => r.remaining > 0 && faultMatches(r.match, info));
    const hangRule = hangRules[hangIndex];
    if (hangRule) {
      if (--hangRule.remaining === 0) hangRules.splice(hangIndex, 1);
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return;
    }
    const failIndex = failRules.findIndex((r) => r.remaining > 0 && faultMatches(r.match, info));
    const failRule = failRules[failIndex];
    if (failRule) {
      if (--failRule.remaining === 0) failRules.splice(failIndex, 1);
      const reason = REASONS[failRule.status] ?? 'Unknown';
      throw new FakeApiError(failRule.status, reason, `injected fault: HTTP ${failRule.status}`);
    }
    const parsed = parseRoute(url.pathname);
    const route =
      parsed && !(options.unservedResources ?? []).includes(parsed.info.resource) ? parsed : undefined;
    if (!route)
      throw new FakeApiError(
        404,
        'NotFound',
        `the server could not find the requested resource (${url.pathname})`,
      );
    const query = url.searchParams;
    if (method === 'GET' && route.name === '') {
      if (['true', '1'].includes(query.get('watch') ?? '')) {
        startWatch(route, query, url.pathname, req, res);
        return;
      }
      reply(req, res, 200, listResponse(route, query), typeOf(route.info, true));
      return;
    }
    if (method === 'GET') {
      const key = route.info.namespaced ? `${route.namespace}/${route.name}` : route.name;
      const obj = storeOf(route.info).get(key);
      if (!obj) throw new FakeApiError(404, 'NotFound', `${route.info.resource} "${route.name}" not found`);
      reply(req, res, 200, obj as Record<string, unknown>, typeOf(route.info));
      return;
    }
    if (method === 'POST' && route.name === '') {
      if (route.info.namespaced && route.namespace === '') {
        throw new FakeApiError(405, 'MethodNotAllowed', 'create needs a namespaced path');
      }
      const created = create(route.info, route.namespace, parseJSONObject(await readBody(req)));
      reply(req, res, 201, created as Record<string, unknown>, typeOf(route.info));
      return;
    }
    if (method === 'PUT' && route.name !== '') {
      const updated = update(route.info, route.namespace, route.name, parseJSONObject(await readBody(req)));
      reply(req, res, 200, updated as Record<string, unknown>, typeOf(route.info));
      return;
    }
    if (method === 'DELETE' && route.name !== '') {
      reply(
        req,
        res,
        200,
        remove(route.info, route.namespace, route.name) as Record<string, unknown>,
        typeOf(route.info),
      );
      return;
    }
    throw new FakeApiError(405, 'MethodNotAllowed', `${method} is not supported on ${url.pathname}`);
  };

  const handleAdmin = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): Promise<void> => {
    const body = req.method === 'POST' ? await readBody(req) : '';
    const args = body.trim() === '' ? {} : parseJSONObject(body);
    const num = (key: string, fallback: number): number =>
      typeof args[key] === 'number' ? args[key] : fallback;
    const str = (key: string): string | undefined => (typeof args[key] === 'string' ? args[key] : undefined);
    switch (`${req.method ?? ''} ${url.pathname}`) {
      case 'POST /_fake/fault/close-watches':
        sendJSON(res, 200, { closed: faults.closeWatches({ abrupt: args['abrupt'] === true }) });
        return;
      case 'POST /_fake/fault/fail-next':
        faults.failNext(num('status', 500), num('count', 1), str('match'));
        sendJSON(res, 200, {});
        return;
      case 'POST /_fake/fault/hang-next':
        faults.hangNext(num('count', 1), str('match'));
        sendJSON(res, 200, {});
        return;
      case 'POST /_fake/fault/bookmark':
        sendJSON(res, 200, { sent: faults.sendBookmark() });
        return;
      case 'POST /_fake/fault/raw-line':
        sendJSON(res, 200, { sent: faults.sendRawLine(str('line') ?? '') });
        return;
      case 'POST /_fake/fault/error-event':
        sendJSON(res, 200, { sent: faults.sendErrorEvent(num('code', 410), str('message')) });
        return;
      case 'POST /_fake/fault/hold-watches':
        faults.holdWatches(args['on'] !== false);
        sendJSON(res, 200, {});
        return;
      case 'POST /_fake/fault/clear':
        faults.clear();
        sendJSON(res, 200, {});
        return;
      case 'POST /_fake/compact':
        compact();
        sendJSON(res, 200, { resourceVersion: String(rv) });
        return;
      case 'GET /_fake/requests':
        sendJSON(res, 200, requests);
        return;
      case 'GET /_fake/state':
        sendJSON(res, 200, { resourceVersion: String(rv), openWatches: watchers.size });
        return;
      default:
        throw new FakeApiError(404, 'NotFound', `no admin endpoint ${req.method ?? ''} ${url.pathname}`);
    }
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const admin = url.pathname.startsWith('/_fake/');
    if (!admin) {
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries(req.headers)) {
        if (typeof value === 'string') headers[key] = value;
      }
      const record: RecordedRequest = {
        method: req.method ?? 'GET',
        url: `${url.pathname}${url.search}`,
        headers,
        served: '',
        encoding: '',
      };
      requests.push(record);
      recordOf.set(req, record);
    }
    (admin ? handleAdmin(req, res, url) : handleApi(req, res, url)).catch((error: unknown) => {
      if (admin && !res.headersSent) {
        const status =
          error instanceof FakeApiError ? error : new FakeApiError(500, 'InternalError', String(error));
        sendJSON(res, status.code, status.status());
      } else if (!res.headersSent) sendError(req, res, error);
      else res.destroy();
    });
  };

  const faults: Faults = {
    closeWatches(opts = {}) {
      const all = [...watchers];
      for (const w of all) endWatcher(w, opts.abrupt === true);
      return all.length;
    },
    failNext(status, count = 1, match) {
      failRules.push({ status, remaining: count, match });
    },
    hangNext(count = 1, match) {
      hangRules.push({ remaining: count, match });
    },
    sendBookmark() {
      let n = 0;
      for (const w of watchers) {
        if (!w.bookmarks) continue;
        bookmark(w);
        n++;
      }
      return n;
    },
    sendRawLine(line) {
      // To a protobuf watch this is a corrupt frame, which is what a test of that wants.
      for (const w of watchers) if (!w.res.writableEnded) w.res.write(`${line}\n`);
      return watchers.size;
    },
    holdWatches(on) {
      holding = on;
      if (on) return;
      for (const w of watchers) {
        for (const line of w.held.splice(0)) if (!w.res.writableEnded) w.res.write(line);
      }
    },
    clear() {
      failRules.length = 0;
      hangRules.length = 0;
      faults.holdWatches(false);
    },
    sendErrorEvent(code, message) {
      const all = [...watchers];
      for (const w of all) {
        writeEvent(
          w,
          'ERROR',
          statusObject(code, REASONS[code] ?? 'Unknown', message ?? `injected ERROR event ${code}`),
        );
        endWatcher(w);
      }
      return all.length;
    },
  };

  const tcp = http.createServer(handler);
  tcp.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(options.port ?? 0, host, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const address = tcp.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  let unix: http.Server | undefined;
  if (options.socketPath !== undefined) {
    rmSync(options.socketPath, { force: true });
    const server = http.createServer(handler);
    const path = options.socketPath;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    unix = server;
  }

  const closeServer = (server: http.Server): Promise<void> =>
    new Promise((resolve) => {
      server.close(() => {
        resolve();
      });
      server.closeAllConnections();
    });

  const hostPart = host.includes(':') ? `[${host}]` : host;
  const kindInfo = (obj: KubeObj): ResourceInfo => resourceFor(obj.kind ?? '', obj.apiVersion);

  return {
    url: `http://${hostPart}:${port}`,
    port,
    socketPath: options.socketPath,
    create<T extends KubeObj>(obj: T): T {
      return create(kindInfo(obj), obj.metadata?.namespace ?? '', obj) as T;
    },
    update<T extends KubeObj>(obj: T): T {
      return update(kindInfo(obj), obj.metadata?.namespace ?? '', undefined, obj) as T;
    },
    delete(kind, namespace, name) {
      return remove(resourceFor(kind), namespace, name);
    },
    get(kind, namespace, name) {
      const info = resourceFor(kind);
      const obj = storeOf(info).get(info.namespaced ? `${namespace}/${name}` : name);
      return obj ? clone(obj) : undefined;
    },
    list(kind, namespace = '') {
      return [...storeOf(resourceFor(kind)).values()]
        .filter((o) => namespace === '' || o.metadata?.namespace === namespace)
        .map(clone);
    },
    compact,
    resourceVersion: () => rv,
    openWatches(pathPrefix) {
      let n = 0;
      for (const w of watchers) if (pathPrefix === undefined || w.path.startsWith(pathPrefix)) n++;
      return n;
    },
    faults,
    requests,
    async close() {
      clearInterval(bookmarkTimer);
      for (const w of [...watchers]) endWatcher(w, true);
      for (const res of hung) res.socket?.destroy();
      hung.clear();
      await Promise.all([closeServer(tcp), ...(unix ? [closeServer(unix)] : [])]);
    },
  };
}

function checkKind(info: ResourceInfo, obj: KubeObj): void {
  if (obj.kind !== undefined && obj.kind !== info.kind) {
    throw new FakeApiError(
      400,
      'BadRequest',
      `kind ${obj.kind} does not match the resource ${info.resource}`,
    );
  }
  if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersionOf(info)) {
    throw new FakeApiError(
      400,
      'BadRequest',
      `apiVersion ${obj.apiVersion} does not match ${apiVersionOf(info)}`,
    );
  }
}
