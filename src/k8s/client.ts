// A small Kubernetes REST client on node:http/node:https: JSON requests with an overall deadline,
// and watch streams read line by line with an idle deadline. No client library: see
// dependencies.md section 1 for why (@kubernetes/client-node ignores tokenFile, stops informers
// for good on errors, and reshapes objects).
import http from 'node:http';
import https from 'node:https';
import type { ClientConfig } from './kubeconfig.ts';
import { ownVersion } from '../util/version.ts';

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

/** The request's overall deadline (non-watch) or the watch's idle deadline passed. */
export class KubeTimeoutError extends Error {
  readonly path: string;
  readonly kind: 'deadline' | 'idle';
  constructor(path: string, kind: 'deadline' | 'idle', ms: number) {
    super(
      kind === 'deadline'
        ? `GET ${path}: no complete response within ${ms} ms`
        : `watch ${path}: no data for ${ms} ms`,
    );
    this.name = 'KubeTimeoutError';
    this.path = path;
    this.kind = kind;
  }
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

export interface RequestOptions {
  readonly signal?: AbortSignal;
  /** Overall deadline for the whole request and response body. Default 60 s. */
  readonly timeoutMs?: number;
}

export interface WatchStreamOptions {
  readonly signal?: AbortSignal;
  /** Abort when no byte arrives for this long (also while waiting for the response headers). */
  readonly idleTimeoutMs: number;
  /**
   * Called for each non-empty line of the body. If it throws, the stream is torn down and
   * watchStream rejects with that error.
   */
  readonly onLine: (line: string) => void;
}

/** The slice of KubeClient the reflector and the event recorder need (tests may fake it). */
export interface KubeRequester {
  getJSON(path: string, options?: RequestOptions): Promise<unknown>;
  postJSON(path: string, body: unknown, options?: RequestOptions): Promise<unknown>;
  watchStream(path: string, options: WatchStreamOptions): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_ERROR_BODY = 64 * 1024;

/** Our release (package.json, or the bundler's definition in a single executable). */
export function packageVersion(): string {
  return ownVersion();
}

function statusFromBody(body: string): { reason: string; message: string; causes: string[] } {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null) {
      const status = parsed as { kind?: unknown; reason?: unknown; message?: unknown; details?: unknown };
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
  } catch {
    // not JSON: fall through
  }
  return { reason: '', message: body.trim().slice(0, 200), causes: [] };
}

/** The error of a non-2xx answer: its Status body (bounded) and its Retry-After. */
function apiError(method: string, path: string, res: http.IncomingMessage, body: string): KubeApiError {
  const parsed = statusFromBody(body.slice(0, MAX_ERROR_BODY));
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

export interface KubeClientOptions {
  /** Default `kube-proxy-ts/<package version>`. */
  readonly userAgent?: string;
}

export class KubeClient implements KubeRequester {
  readonly config: ClientConfig;
  readonly userAgent: string;
  #agent: http.Agent;
  #base: URL;
  #request: typeof http.request;

  constructor(config: ClientConfig, options: KubeClientOptions = {}) {
    this.config = config;
    this.userAgent = options.userAgent ?? `kube-proxy-ts/${packageVersion()}`;
    this.#base = new URL(config.server);
    if (this.#base.protocol === 'https:') {
      this.#agent = new https.Agent({
        keepAlive: true,
        ...(config.ca ? { ca: config.ca } : {}),
        ...(config.cert ? { cert: config.cert } : {}),
        ...(config.key ? { key: config.key } : {}),
        rejectUnauthorized: !config.insecureSkipTLSVerify,
        ...(config.tlsServerName !== undefined ? { servername: config.tlsServerName } : {}),
      });
      this.#request = https.request;
    } else {
      this.#agent = new http.Agent({ keepAlive: true });
      this.#request = http.request;
    }
  }

  /** Closes pooled connections (open watches are ended by their own signals). */
  close(): void {
    this.#agent.destroy();
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': this.userAgent,
      ...extra,
    };
    const token = this.config.tokenSource?.token();
    if (token !== undefined && token !== '') headers['Authorization'] = `Bearer ${token}`;
    else if (this.config.basicAuth) {
      const { username, password } = this.config.basicAuth;
      headers['Authorization'] = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
    return headers;
  }

  #start(
    method: string,
    path: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): http.ClientRequest {
    const basePath = this.#base.pathname === '/' ? '' : this.#base.pathname;
    return this.#request({
      protocol: this.#base.protocol,
      hostname: this.#base.hostname.replace(/^\[|\]$/g, ''),
      port: this.#base.port || (this.#base.protocol === 'https:' ? 443 : 80),
      method,
      path: `${basePath}${path}`,
      headers,
      agent: this.#agent,
      ...(signal ? { signal } : {}),
      ...(this.config.tlsServerName !== undefined ? { servername: this.config.tlsServerName } : {}),
    });
  }

  #onUnauthorized(statusCode: number): void {
    // A rotated token file: re-read it on the next request (client-go does the same on 401).
    if (statusCode === 401) this.config.tokenSource?.invalidate();
  }

  getJSON(path: string, options: RequestOptions = {}): Promise<unknown> {
    return this.#json('GET', path, undefined, options);
  }

  postJSON(path: string, body: unknown, options: RequestOptions = {}): Promise<unknown> {
    return this.#json('POST', path, body, options);
  }

  #json(method: string, path: string, body: unknown, options: RequestOptions): Promise<unknown> {
    return new Promise<unknown>((resolvePromise, reject) => {
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers = this.#headers(
        payload === undefined
          ? {}
          : { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)) },
      );
      let settled = false;
      const finish = (error: Error | undefined, value?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolvePromise(value);
      };
      const req = this.#start(method, path, headers, options.signal);
      const timer = setTimeout(() => {
        const error = new KubeTimeoutError(path, 'deadline', timeoutMs);
        finish(error);
        req.destroy(error);
      }, timeoutMs);
      req.on('error', (error) => {
        finish(error);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          chunks.push(chunk);
        });
        res.on('error', (error) => {
          finish(error);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks, size).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            this.#onUnauthorized(status);
            finish(apiError(method, path, res, text));
            return;
          }
          try {
            finish(undefined, text === '' ? undefined : (JSON.parse(text) as unknown));
          } catch (error) {
            finish(
              new Error(
                `${method} ${path}: invalid JSON in response: ${error instanceof Error ? error.message : String(error)}`,
              ),
            );
          }
        });
      });
      req.end(payload);
    });
  }

  watchStream(path: string, options: WatchStreamOptions): Promise<void> {
    return new Promise<void>((resolvePromise, reject) => {
      let settled = false;
      // Read through a function: onLine may stop the watch, which the type checker cannot see.
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
      req = this.#start('GET', path, this.#headers(), options.signal);
      req.on('error', (error) => {
        finish(responded && error.name !== 'AbortError' ? new KubeStreamError(path, error) : error);
      });
      req.on('response', (res) => {
        responded = true;
        idle.refresh();
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error) => {
            finish(error);
          });
          res.on('end', () => {
            this.#onUnauthorized(status);
            finish(apiError('GET', path, res, Buffer.concat(chunks).toString('utf8')));
          });
          return;
        }
        res.setEncoding('utf8');
        let pending = '';
        res.on('data', (chunk: string) => {
          if (settled) return;
          idle.refresh();
          pending += chunk;
          let newline = pending.indexOf('\n');
          while (newline !== -1) {
            const line = pending.slice(0, newline).trim();
            pending = pending.slice(newline + 1);
            if (line !== '') {
              try {
                options.onLine(line);
              } catch (error) {
                finish(error instanceof Error ? error : new Error(String(error)));
                return;
              }
            }
            if (isSettled()) return;
            newline = pending.indexOf('\n');
          }
        });
        res.on('error', (error) => {
          finish(error.name === 'AbortError' ? error : new KubeStreamError(path, error));
        });
        res.on('close', () => {
          // 'end' comes first when the body completed; otherwise the connection died mid-stream.
          if (!res.complete) finish(new KubeStreamError(path, new Error('connection closed mid-stream')));
        });
        res.on('end', () => {
          const rest = pending.trim();
          if (rest !== '' && !settled) {
            try {
              options.onLine(rest);
            } catch (error) {
              finish(error instanceof Error ? error : new Error(String(error)));
              return;
            }
          }
          finish();
        });
      });
      req.end();
    });
  }
}
