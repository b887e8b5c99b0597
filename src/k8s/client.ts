// A small Kubernetes REST client on node:http/node:https, doing what client-go's rest client does
// for kube-proxy: content negotiation (protobuf preferred, JSON accepted, content.ts), gzip,
// the client-side token-bucket rate limit (rate-limit.ts), bearer tokens, client certificates and
// exec credential plugins, HTTP proxies (proxy.ts), upstream's user agent and its rest_client_*
// metrics. Requests have an overall deadline; watch streams an idle deadline. No client library:
// see dependencies.md section 1 for why (@kubernetes/client-node ignores tokenFile, stops
// informers for good on errors, and reshapes objects).
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { existsSync, readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { pipeline } from 'node:stream';
import { createGunzip, gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { ClientConfig } from './kubeconfig.ts';
import { buildInfo, ownVersion } from '../util/version.ts';
import {
  KubeDecodeError,
  MEDIA_JSON,
  MEDIA_PROTOBUF,
  acceptHeader,
  decodeBody,
  watchDecoder,
} from './content.ts';
import { ExecCredentialSource, type Credential, type RunPlugin } from './exec-credential.ts';
import { UNLIMITED, type RateLimiter } from './rate-limit.ts';
import { proxyFor, type ProxyEnv } from './proxy.ts';
import type { RestClientMetrics } from '../metrics/rest-client.ts';

export { KubeDecodeError } from './content.ts';

const gunzipAsync = promisify(gunzip);

/** An HTTP error from the API server, with what its Status body said. */
export class KubeApiError extends Error {
  readonly statusCode: number;
  /** Status.reason, e.g. `Expired`, `NotFound`, `TooManyRequests`; '' when the body was not a Status. */
  readonly reason: string;
  /** Status.details.causes[].reason values (e.g. `ResourceVersionTooLarge`). */
  readonly causes: readonly string[];
  readonly method: string;
  readonly path: string;
  /** The server's Retry-After (429, 503), in ms; undefined when it sent none. */
  readonly retryAfterMs: number | undefined;
  constructor(
    method: string,
    path: string,
    statusCode: number,
    reason: string,
    message: string,
    causes: readonly string[],
    retryAfterMs?: number,
  ) {
    super(
      `${method} ${path}: HTTP ${statusCode}${reason ? ` ${reason}` : ''}${message ? `: ${message}` : ''}`,
    );
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = reason;
    this.causes = causes;
    this.method = method;
    this.path = path;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A server's Retry-After may not hold a client back longer than this (a bad value is not a ban). */
export const MAX_RETRY_AFTER_MS = 300_000;

/**
 * Retry-After as sent by the API server (delay-seconds) or a proxy (HTTP-date), in ms, capped;
 * undefined when absent or unreadable.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/**
 * Which deadline passed: the request's overall one (non-watch), the watch's idle one, the
 * connection's (TCP connect and TLS handshake) or the wait for the response headers.
 */
export type KubeTimeoutKind = 'deadline' | 'idle' | 'connect' | 'headers';

/** A request or watch gave up waiting (see KubeTimeoutKind). */
export class KubeTimeoutError extends Error {
  readonly path: string;
  readonly kind: KubeTimeoutKind;
  constructor(path: string, kind: KubeTimeoutKind, ms: number, method = 'GET') {
    super(timeoutMessage(path, kind, ms, method));
    this.name = 'KubeTimeoutError';
    this.path = path;
    this.kind = kind;
  }
}

function timeoutMessage(path: string, kind: KubeTimeoutKind, ms: number, method: string): string {
  switch (kind) {
    case 'deadline':
      return `${method} ${path}: no complete response within ${ms} ms`;
    case 'idle':
      return `watch ${path}: no data for ${ms} ms`;
    case 'connect':
      return `${method} ${path}: no connection to the API server within ${ms} ms`;
    case 'headers':
      return `${method} ${path}: no response headers within ${ms} ms`;
  }
}

/**
 * How long the client waits on a connection that may be dead: nothing tells a client that its
 * packets are being dropped (a firewall, a failed route, a load balancer gone), and TCP alone
 * waits for minutes (docs/reliability.md, "A silent black hole", has the numbers).
 */
export interface ConnectionDeadlines {
  /**
   * A new connection must be connected, and for https past its TLS handshake, within this long.
   * Linux resends a lost SYN after 1, 3, 7, 15, 31 and 63 s and gives up after 127 s; a fresh
   * attempt every 10 s keeps the gap between SYNs at most a few seconds, so a path that returns
   * is used at once. client-go dials with 30 s and allows 10 s for the TLS handshake.
   */
  readonly connectTimeoutMs: number;
  /**
   * The response headers of any request (a watch's included: the API server sends them as soon
   * as the watch is set up) must arrive within this long of the request being sent. It catches a
   * request written to a pooled connection that died meanwhile: its unacknowledged bytes keep
   * TCP keep-alive from probing, and TCP resends them at an interval growing to 2 minutes, for
   * about 15 minutes. API Priority and Fairness queues a request for at most 15 s before it
   * answers 429, so 30 s never cuts off a server that is merely busy.
   */
  readonly headersTimeoutMs: number;
  /**
   * TCP keep-alive on every connection: the first probe after this long without traffic, then
   * (libuv's fixed settings) one a second, ten in all, so a connection whose peer vanished is
   * closed 10 s later. This catches a watch stream that went silent (its side has nothing
   * unacknowledged). Every healthy but silent connection costs one probe per period: 15 s, as
   * Go's default dialer, keeps a 5,000-node fleet's four watches each to ~1,300 probes a second.
   */
  readonly keepAliveMs: number;
}

export const DEFAULT_DEADLINES: ConnectionDeadlines = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  keepAliveMs: 15_000,
};

/** Connected, and for TLS past the handshake (a pooled socket, or one through a proxy tunnel). */
function isReady(socket: Socket): boolean {
  if (!(socket instanceof TLSSocket)) return !socket.connecting;
  // The client's Finished message is sent at the end of its handshake (getProtocol() reports the
  // version before any handshake, so it cannot tell).
  return socket.getFinished() !== undefined;
}

/** The watch's response had started and then the connection failed. */
export class KubeStreamError extends Error {
  readonly path: string;
  constructor(path: string, cause: unknown) {
    super(`watch ${path}: stream broken: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'KubeStreamError';
    this.path = path;
  }
}

let cachedCommit: string | undefined;
/**
 * The git commit this build came from, for the user agent: KUBE_PROXY_TS_GIT_COMMIT, else
 * build-info.json's (`make build`), else the checkout's .git, else `unknown` (as client-go says
 * when a binary carries none).
 */
export function buildCommit(): string {
  if (cachedCommit !== undefined) return cachedCommit;
  let commit = process.env['KUBE_PROXY_TS_GIT_COMMIT'] ?? buildInfo().gitCommit;
  if (commit === '') {
    try {
      const git = new URL('../../.git/', import.meta.url);
      const head = readFileSync(new URL('HEAD', git), 'utf8').trim();
      const ref = /^ref: (.+)$/.exec(head)?.[1];
      if (ref === undefined) commit = head;
      else if (existsSync(new URL(ref, git))) commit = readFileSync(new URL(ref, git), 'utf8').trim();
    } catch {
      // not a checkout (an image): unknown
    }
  }
  cachedCommit = /^[0-9a-f]{7,}$/.test(commit) ? commit.slice(0, 7) : 'unknown';
  return cachedCommit;
}

/**
 * client-go's default user agent, `<command>/<version> (<os>/<arch>) kubernetes/<commit>`, e.g.
 * `kube-proxy/v0.1.0 (linux/amd64) kubernetes/6f18b41`: API server audit logs, priority-and-fairness
 * rules and dashboards that match `kube-proxy/` see this proxy as kube-proxy. Pure.
 */
export function defaultUserAgent(parts: {
  readonly command?: string;
  readonly version: string;
  readonly os?: string;
  readonly arch?: string;
  readonly commit: string;
}): string {
  const goArch: Readonly<Record<string, string>> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64' };
  const cpu = parts.arch ?? arch();
  const version = parts.version.startsWith('v') ? parts.version : `v${parts.version}`;
  return `${parts.command ?? 'kube-proxy'}/${version.split('-')[0] ?? version} (${parts.os ?? platform()}/${goArch[cpu] ?? cpu}) kubernetes/${parts.commit}`;
}

export interface RequestOptions {
  readonly signal?: AbortSignal;
  /** Overall deadline for the whole request and response body. Default 60 s. */
  readonly timeoutMs?: number;
  /**
   * false: the request does not take a rate-limit token. The reflector's continuation pages of
   * one list: upstream lists from the watch cache in one response, which we take in pages of
   * 500 so a 44k-object list is never held whole; charging each page would make the same list
   * 88 requests' worth of rate limit instead of one.
   */
  readonly throttle?: boolean;
}

export interface WatchStreamOptions {
  readonly signal?: AbortSignal;
  /** Abort when no byte arrives for this long (also while waiting for the response headers). */
  readonly idleTimeoutMs: number;
  /**
   * Called with each decoded watch event (`{type, object}` from a JSON line or a protobuf frame).
   * If it throws, the stream is torn down and watchStream rejects with that error. A frame that
   * cannot be decoded rejects it with a KubeDecodeError.
   */
  readonly onEvent: (event: unknown) => void;
}

/** The slice of KubeClient the reflector and the event recorder need (tests may fake it). */
export interface KubeRequester {
  /** GETs an object or list, decoded from whichever encoding the server chose. */
  getJSON(path: string, options?: RequestOptions): Promise<unknown>;
  /** POSTs a JSON body; the answer is decoded as getJSON's. */
  postJSON(path: string, body: unknown, options?: RequestOptions): Promise<unknown>;
  watchStream(path: string, options: WatchStreamOptions): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_ERROR_BODY = 64 * 1024;

/** Our release (package.json, or the bundler's definition in a single executable). */
export function packageVersion(): string {
  return ownVersion();
}

/** Reason, message and causes of an error body: a Status (from JSON or protobuf), or its text. */
function statusFromBody(
  parsed: unknown,
  text: string,
): { reason: string; message: string; causes: string[] } {
  if (typeof parsed === 'object' && parsed !== null) {
    const status = parsed as { reason?: unknown; message?: unknown; details?: unknown };
    const causes: string[] = [];
    const details = status.details;
    if (
      typeof details === 'object' &&
      details !== null &&
      'causes' in details &&
      Array.isArray(details.causes)
    ) {
      for (const cause of details.causes as unknown[]) {
        if (
          typeof cause === 'object' &&
          cause !== null &&
          'reason' in cause &&
          typeof cause.reason === 'string'
        ) {
          causes.push(cause.reason);
        }
      }
    }
    return {
      reason: typeof status.reason === 'string' ? status.reason : '',
      message: typeof status.message === 'string' ? status.message : '',
      causes,
    };
  }
  return { reason: '', message: text.trim().slice(0, 200), causes: [] };
}

function mediaIsText(res: http.IncomingMessage): boolean {
  return !(res.headers['content-type'] ?? '').toLowerCase().startsWith(MEDIA_PROTOBUF);
}

/** The error of a non-2xx answer: its Status body (bounded, either encoding) and its Retry-After. */
function apiError(method: string, path: string, res: http.IncomingMessage, body: Buffer): KubeApiError {
  const bounded = body.subarray(0, MAX_ERROR_BODY);
  let decoded: unknown;
  try {
    decoded = decodeBody(res.headers['content-type'], bounded, `${method} ${path}`);
  } catch {
    decoded = undefined;
  }
  const parsed = statusFromBody(decoded, mediaIsText(res) ? bounded.toString('utf8') : '');
  return new KubeApiError(
    method,
    path,
    res.statusCode ?? 0,
    parsed.reason,
    parsed.message,
    parsed.causes,
    parseRetryAfter(res.headers['retry-after']),
  );
}

/** The body of a response, un-gzipped when the server compressed it. */
async function readBody(res: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  if ((res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') return gunzipAsync(raw);
  return raw;
}

export interface KubeClientOptions {
  /** Default defaultUserAgent() with the package version and build commit. */
  readonly userAgent?: string;
  /** clientConnection.contentType. Default `application/vnd.kubernetes.protobuf`. */
  readonly contentType?: string;
  /** clientConnection.acceptContentTypes. Default '' (contentType, then JSON). */
  readonly acceptContentTypes?: string;
  /** clientConnection.qps/burst (rateLimiterFor). Default no limit (tests, tools). */
  readonly rateLimiter?: RateLimiter;
  readonly metrics?: RestClientMetrics;
  /** Environment for HTTPS_PROXY/HTTP_PROXY/NO_PROXY. Default process.env. */
  readonly env?: ProxyEnv;
  /** How exec credential plugins run (tests). Default execTool. */
  readonly runPlugin?: RunPlugin;
  /** Clock in ms for exec credential expiry (tests). */
  readonly now?: () => number;
  /** Connection deadlines (tests shrink them). Default DEFAULT_DEADLINES. */
  readonly deadlines?: Partial<ConnectionDeadlines>;
}

/** What a request authenticates with; `credential` is what a 401 invalidates. */
interface Auth {
  readonly header: string | undefined;
  readonly credential: Credential | undefined;
}

export class KubeClient implements KubeRequester {
  readonly config: ClientConfig;
  readonly userAgent: string;
  readonly accept: string;
  /** The proxy requests go through (undefined: direct), for logs. */
  readonly proxy: string | undefined;
  #agent: http.Agent;
  #agentCert: Buffer | undefined;
  #base: URL;
  #host: string;
  #request: typeof http.request;
  #limiter: RateLimiter;
  #metrics: RestClientMetrics | undefined;
  #exec: ExecCredentialSource | undefined;
  #deadlines: ConnectionDeadlines;

  constructor(config: ClientConfig, options: KubeClientOptions = {}) {
    this.config = config;
    this.userAgent =
      options.userAgent ??
      defaultUserAgent({
        version: packageVersion(),
        commit: buildCommit(),
      });
    this.accept = acceptHeader(options.contentType ?? MEDIA_PROTOBUF, options.acceptContentTypes ?? '');
    this.#base = new URL(config.server);
    this.#host = this.#base.host;
    this.#limiter = options.rateLimiter ?? UNLIMITED;
    this.#metrics = options.metrics;
    this.#deadlines = { ...DEFAULT_DEADLINES, ...options.deadlines };
    this.proxy = proxyFor(this.#base, config.proxyURL, options.env ?? process.env);
    if (config.exec !== undefined) {
      const metrics = options.metrics;
      this.#exec = new ExecCredentialSource(config.exec, {
        cluster: {
          server: config.server,
          ...(config.tlsServerName !== undefined ? { tlsServerName: config.tlsServerName } : {}),
          insecureSkipTLSVerify: config.insecureSkipTLSVerify,
          ...(config.ca ? { certificateAuthorityData: config.ca } : {}),
          ...(config.proxyURL !== undefined ? { proxyURL: config.proxyURL } : {}),
          ...(config.execClusterConfig !== undefined ? { config: config.execClusterConfig } : {}),
        },
        ...(options.runPlugin ? { run: options.runPlugin } : {}),
        ...(options.now ? { now: options.now } : {}),
        ...(metrics
          ? {
              onCall: (code: number, status: Parameters<RestClientMetrics['execPluginCall']>[1]) =>
                metrics.execPluginCall(code, status),
            }
          : {}),
      });
    }
    this.#request = this.#base.protocol === 'https:' ? https.request : http.request;
    this.#agent = this.#makeAgent(config.cert, config.key);
    this.#agentCert = config.cert;
  }

  #makeAgent(cert: Buffer | undefined, key: Buffer | undefined): http.Agent {
    const proxyEnv =
      this.proxy === undefined
        ? undefined
        : this.#base.protocol === 'https:'
          ? { HTTPS_PROXY: this.proxy }
          : { HTTP_PROXY: this.proxy };
    const common = {
      keepAlive: true,
      keepAliveMsecs: this.#deadlines.keepAliveMs,
      ...(proxyEnv ? { proxyEnv } : {}),
    };
    if (this.#base.protocol !== 'https:') return new http.Agent(common);
    const config = this.config;
    return new https.Agent({
      ...common,
      ...(config.ca ? { ca: config.ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      rejectUnauthorized: !config.insecureSkipTLSVerify,
      ...(config.tlsServerName !== undefined ? { servername: config.tlsServerName } : {}),
    });
  }

  /** Closes pooled connections (open watches are ended by their own signals). */
  close(): void {
    this.#agent.destroy();
  }

  /** The Authorization header: a static or file token, else basic auth, else the exec plugin's. */
  async #auth(): Promise<Auth> {
    const token = this.config.tokenSource?.token();
    if (token !== undefined && token !== '') return { header: `Bearer ${token}`, credential: undefined };
    if (this.config.basicAuth) {
      const { username, password } = this.config.basicAuth;
      return {
        header: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
        credential: undefined,
      };
    }
    if (this.#exec === undefined) return { header: undefined, credential: undefined };
    const credential = await this.#exec.credential();
    if (
      credential.cert !== undefined &&
      credential.key !== undefined &&
      !credential.cert.equals(this.#agentCert ?? Buffer.alloc(0))
    ) {
      // A new client certificate: new connections use it; open ones (watches) finish on the old.
      this.#agent = this.#makeAgent(credential.cert, credential.key);
      this.#agentCert = credential.cert;
      this.#metrics?.execPluginCertExpiry(credential.expiry);
    }
    return { header: credential.token !== undefined ? `Bearer ${credential.token}` : undefined, credential };
  }

  #headers(auth: Auth, extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = {
      Accept: this.accept,
      'Accept-Encoding': 'gzip',
      'User-Agent': this.userAgent,
      ...extra,
    };
    if (auth.header !== undefined) headers['Authorization'] = auth.header;
    return headers;
  }

  #start(
    method: string,
    path: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): http.ClientRequest {
    const basePath = this.#base.pathname === '/' ? '' : this.#base.pathname;
    const tunnelled = this.proxy !== undefined && this.#base.protocol === 'https:';
    const req = this.#request({
      protocol: this.#base.protocol,
      hostname: this.#base.hostname.replace(/^\[|\]$/g, ''),
      port: this.#base.port || (this.#base.protocol === 'https:' ? 443 : 80),
      method,
      path: `${basePath}${path}`,
      headers,
      agent: this.#agent,
      ...(signal ? { signal } : {}),
      ...(this.config.tlsServerName !== undefined ? { servername: this.config.tlsServerName } : {}),
      // The agent's own deadline for the proxy's CONNECT tunnel: see #guard.
      ...(tunnelled ? { timeout: this.#deadlines.connectTimeoutMs } : {}),
    });
    this.#guard(req, method, path, tunnelled);
    return req;
  }

  /**
   * Arms the connection deadlines of one request: connect (until its socket is connected and past
   * any TLS handshake), response headers, and keep-alive on its socket. Either deadline destroys
   * the request with a KubeTimeoutError, which its 'error' handler reports; the socket goes with
   * it, so no dead connection returns to the pool. https through a proxy (`tunnelled`) is
   * different: the agent builds the CONNECT tunnel and the TLS session before it hands over the
   * socket, and a request destroyed meanwhile hears nothing until the tunnel settles (Node 24);
   * there the agent's tunnel timeout (the request's `timeout` option, no traffic for
   * connectTimeoutMs) bounds that stage and fails the request with ERR_PROXY_TUNNEL, and the
   * keep-alive set here reaches only the TLS layer, not the proxy's TCP connection (the watch
   * idle limit covers that path).
   */
  #guard(req: http.ClientRequest, method: string, path: string, tunnelled: boolean): void {
    const { connectTimeoutMs, headersTimeoutMs, keepAliveMs } = this.#deadlines;
    const connecting = tunnelled
      ? undefined
      : setTimeout(() => {
          req.destroy(new KubeTimeoutError(path, 'connect', connectTimeoutMs, method));
        }, connectTimeoutMs);
    const waiting = setTimeout(() => {
      req.destroy(new KubeTimeoutError(path, 'headers', headersTimeoutMs, method));
    }, headersTimeoutMs);
    const disarm = (): void => {
      clearTimeout(waiting);
      clearTimeout(connecting);
    };
    req.once('response', disarm);
    req.once('close', disarm);
    req.once('socket', (socket: Socket) => {
      // The tunnel's `timeout` would otherwise stay on as an idle timeout of the request.
      if (tunnelled) socket.setTimeout(0);
      // Pooled sockets get the agent's keep-alive only when freed; a new one would get none.
      socket.setKeepAlive(true, keepAliveMs);
      if (isReady(socket)) {
        clearTimeout(connecting);
        return;
      }
      socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => {
        clearTimeout(connecting);
      });
    });
  }

  #onUnauthorized(statusCode: number, auth: Auth): void {
    if (statusCode !== 401) return;
    // A rotated token file: re-read it on the next request (client-go does the same on 401);
    // an exec credential the server rejects: run the plugin again.
    this.config.tokenSource?.invalidate();
    this.#exec?.invalidate(auth.credential);
  }

  /** Waits for a rate-limit token, recording how long (rest_client_rate_limiter_duration_seconds). */
  async #throttle(method: string, options: { signal?: AbortSignal; throttle?: boolean }): Promise<void> {
    if (options.throttle === false) return;
    const started = performance.now();
    await this.#limiter.wait(options.signal);
    this.#metrics?.rateLimiterLatency(method, this.#host, (performance.now() - started) / 1000);
  }

  getJSON(path: string, options: RequestOptions = {}): Promise<unknown> {
    return this.#call('GET', path, undefined, options);
  }

  postJSON(path: string, body: unknown, options: RequestOptions = {}): Promise<unknown> {
    return this.#call('POST', path, body, options);
  }

  async #call(method: string, path: string, body: unknown, options: RequestOptions): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
    const started = performance.now();
    try {
      await this.#throttle(method, {
        signal,
        ...(options.throttle !== undefined ? { throttle: options.throttle } : {}),
      });
      const auth = await this.#auth();
      return await this.#exchange(method, path, body, auth, signal);
    } catch (error) {
      if (deadline.aborted && !(options.signal?.aborted ?? false))
        throw new KubeTimeoutError(path, 'deadline', timeoutMs, method);
      throw error;
    } finally {
      this.#metrics?.requestLatency(method, this.#host, (performance.now() - started) / 1000);
    }
  }

  #exchange(method: string, path: string, body: unknown, auth: Auth, signal: AbortSignal): Promise<unknown> {
    return new Promise<unknown>((resolvePromise, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers = this.#headers(
        auth,
        payload === undefined ? {} : { 'Content-Type': MEDIA_JSON, 'Content-Length': String(payload.length) },
      );
      this.#metrics?.requestSize(method, this.#host, payload?.length ?? 0);
      const req = this.#start(method, path, headers, signal);
      req.on('error', (error) => {
        this.#metrics?.requestResult('<error>', method, this.#host);
        reject(error);
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        this.#metrics?.requestResult(String(status), method, this.#host);
        readBody(res).then(
          (bytes) => {
            this.#metrics?.responseSize(method, this.#host, bytes.length);
            if (status < 200 || status >= 300) {
              this.#onUnauthorized(status, auth);
              reject(apiError(method, path, res, bytes));
              return;
            }
            try {
              resolvePromise(decodeBody(res.headers['content-type'], bytes, `${method} ${path}`));
            } catch (error) {
              reject(error instanceof Error ? error : new Error(String(error)));
            }
          },
          (error: unknown) => {
            const failure = error instanceof Error ? error : new Error(String(error));
            const gzipped = (res.headers['content-encoding'] ?? '') === 'gzip';
            reject(
              gzipped && failure.name !== 'AbortError'
                ? new KubeDecodeError(`${method} ${path}: invalid gzip body`, failure)
                : failure,
            );
          },
        );
      });
      req.end(payload);
    });
  }

  watchStream(path: string, options: WatchStreamOptions): Promise<void> {
    return this.#throttle('GET', options.signal ? { signal: options.signal } : {})
      .then(() => this.#auth())
      .then((auth) => this.#watch(path, options, auth));
  }

  #watch(path: string, options: WatchStreamOptions, auth: Auth): Promise<void> {
    return new Promise<void>((resolvePromise, reject) => {
      let settled = false;
      // Read through a function: onEvent may stop the watch, which the type checker cannot see.
      const isSettled = (): boolean => settled;
      let responded = false;
      let req: http.ClientRequest | undefined = undefined;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(idle);
        if (error) {
          reject(error);
          req?.destroy();
        } else resolvePromise();
      };
      const idle = setTimeout(() => {
        finish(new KubeTimeoutError(path, 'idle', options.idleTimeoutMs));
      }, options.idleTimeoutMs);
      req = this.#start('GET', path, this.#headers(auth), options.signal);
      req.on('error', (error) => {
        if (!responded) this.#metrics?.requestResult('<error>', 'GET', this.#host);
        finish(responded && error.name !== 'AbortError' ? new KubeStreamError(path, error) : error);
      });
      req.on('response', (res) => {
        responded = true;
        idle.refresh();
        const status = res.statusCode ?? 0;
        this.#metrics?.requestResult(String(status), 'GET', this.#host);
        if (status < 200 || status >= 300) {
          readBody(res).then(
            (bytes) => {
              this.#onUnauthorized(status, auth);
              finish(apiError('GET', path, res, bytes));
            },
            (error: unknown) => {
              finish(error instanceof Error ? error : new Error(String(error)));
            },
          );
          return;
        }
        let decoder: ReturnType<typeof watchDecoder>;
        try {
          decoder = watchDecoder(res.headers['content-type'], `watch ${path}`);
        } catch (error) {
          finish(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        // False once onEvent has ended the watch (it threw, or stopped it): decode no further.
        const deliver = (event: unknown): boolean => {
          options.onEvent(event);
          return !isSettled();
        };
        // The API server does not compress watches, but a proxy in between might.
        const gzipped = (res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip';
        const body = gzipped ? pipeline(res, createGunzip(), () => undefined) : res;
        res.on('data', () => {
          idle.refresh();
        });
        body.on('data', (chunk: Buffer) => {
          if (settled) return;
          try {
            decoder.push(chunk, deliver);
          } catch (error) {
            finish(error instanceof Error ? error : new Error(String(error)));
          }
        });
        body.on('error', (error) => {
          if (gzipped && error.name !== 'AbortError' && res.complete) {
            finish(new KubeDecodeError(`watch ${path}: invalid gzip stream`, error));
            return;
          }
          finish(error.name === 'AbortError' ? error : new KubeStreamError(path, error));
        });
        res.on('close', () => {
          // 'end' comes first when the body completed; otherwise the connection died mid-stream.
          if (!res.complete) finish(new KubeStreamError(path, new Error('connection closed mid-stream')));
        });
        body.on('end', () => {
          if (settled) return;
          try {
            decoder.end(deliver);
          } catch (error) {
            finish(error instanceof Error ? error : new Error(String(error)));
            return;
          }
          finish();
        });
      });
      req.end();
    });
  }
}
