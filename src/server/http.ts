// The proxy's own HTTP endpoints: the healthz server (healthzBindAddress) and the metrics server
// (metricsBindAddress). A listen failure is retried every 5 s as upstream does, unless
// bindAddressHardFail asks for it to be fatal.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { log } from '../log/log.ts';
import type { ProxyMetrics } from '../metrics/proxy.ts';
import type { SliMetrics } from '../metrics/component.ts';
import { healthzBody, livezBody, type ProxyHealth } from './health.ts';
import { profilingRoutes } from './profiling.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface RunningServer {
  /** Resolves with the bound port once listening (useful with port 0 in tests). */
  readonly listening: Promise<number>;
  close(): Promise<void>;
}

export function serveHttp(options: {
  name: string;
  host: string;
  port: number;
  handler: Handler;
  retryMs?: number;
  hardFail?: boolean;
  onFatal?: (error: Error) => void;
}): RunningServer {
  let server: Server | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let resolveListening: (port: number) => void = () => undefined;
  const listening = new Promise<number>((resolve) => (resolveListening = resolve));

  // Go's listener on 0.0.0.0 is a dual-stack wildcard: it accepts IPv6 clients too (an IPv6
  // load balancer's health check, for one). Node's '::' socket is dual-stack as well; where the
  // host has no IPv6, fall back to the IPv4 wildcard.
  let host = options.host === '0.0.0.0' ? '::' : options.host;
  const attempt = (): void => {
    if (closed) return;
    const candidate = createServer((req, res) => {
      Promise.resolve(options.handler(req, res)).catch((error: unknown) => {
        log.error('HTTP handler failed', error, { server: options.name, path: req.url ?? '' });
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    const onListenError = (error: NodeJS.ErrnoException) => {
      if (
        host === '::' &&
        options.host === '0.0.0.0' &&
        ['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes(error.code ?? '')
      ) {
        host = '0.0.0.0';
        attempt();
        return;
      }
      log.error('Failed to start server', error, {
        server: options.name,
        address: `${options.host}:${String(options.port)}`,
      });
      if (options.hardFail) {
        options.onFatal?.(error);
        return;
      }
      retryTimer = setTimeout(attempt, options.retryMs ?? 5000);
    };
    candidate.once('error', onListenError);
    candidate.listen({ port: options.port, host, ipv6Only: false }, () => {
      // Once listening, an error is an accept failure (e.g. EMFILE): log it, keep serving.
      candidate.off('error', onListenError);
      candidate.on('error', (error) => {
        log.error('Server error', error, { server: options.name });
      });
      server = candidate;
      const address = candidate.address();
      const port = typeof address === 'object' && address ? address.port : options.port;
      log.v(1).info('Serving', { server: options.name, address: `${options.host}:${String(port)}` });
      resolveListening(port);
    });
  };
  attempt();

  return {
    listening,
    close: async () => {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      const current = server;
      if (!current) return;
      current.closeAllConnections();
      await new Promise<void>((resolve) =>
        current.close(() => {
          resolve();
        }),
      );
    },
  };
}

/** The healthz server's paths (anything else is 404), as upstream. */
export const HEALTHZ_SERVER_PATHS = ['/healthz', '/livez'] as const;

const JSON_HEADERS = { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' };

/** /healthz and /livez with upstream's bodies, status codes and counters (6.1). */
export function healthzHandler(health: ProxyHealth, metrics?: ProxyMetrics): Handler {
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const status = health.status();
    if (path === '/healthz') {
      const code = status.healthy && status.nodeEligible ? 200 : 503;
      metrics?.proxyHealthzTotal.inc({ code: String(code) });
      res.writeHead(code, JSON_HEADERS);
      res.end(healthzBody(status));
    } else if (path === '/livez') {
      const code = status.healthy ? 200 : 503;
      metrics?.proxyLivezTotal.inc({ code: String(code) });
      res.writeHead(code, JSON_HEADERS);
      res.end(livezBody(status));
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('404 page not found\n');
    }
  };
}

/** What the metrics server serves besides /metrics (upstream-behavior.md 6.3, issue 14 item 5). */
export interface MetricsServerOptions {
  metrics: ProxyMetrics;
  mode: string;
  configz: () => unknown;
  /** /metrics/slis: the health checks of this server's /healthz. */
  slis?: SliMetrics;
  /** /flagz and /statusz. */
  zpages?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** enableProfiling: /debug/pprof/* and /debug/flags/v. */
  profiling?: boolean;
  debug?: () => unknown;
  /** More routes (debug-routes.ts): answers whether it handled the request. */
  routes?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
}

const TEXT_HEADERS = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };

/**
 * The metrics server's /healthz as component-base installs it with no checks of its own: one
 * `ping` check, `/healthz/ping`, `?verbose` listing the checks, and the result recorded for
 * /metrics/slis.
 */
function componentHealthz(
  path: string,
  query: URLSearchParams,
  res: ServerResponse,
  slis?: SliMetrics,
): boolean {
  if (path !== '/healthz' && path !== '/healthz/ping') return false;
  slis?.observe('ping', 'healthz', true);
  res.writeHead(200, TEXT_HEADERS);
  if (path === '/healthz' && query.has('verbose')) res.end('[+]ping ok\nhealthz check passed\n');
  else res.end('ok');
  return true;
}

/**
 * /metrics, /metrics/slis, /healthz, /proxyMode, /configz, /flagz, /statusz, with profiling
 * /debug/pprof/* and /debug/flags/v, plus our own /debug/proxy: a JSON view of what each
 * family's dataplane is doing (iptables backend, last sync). Anything else is Go's 404.
 */
export function metricsHandler(options: MetricsServerOptions): Handler {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (path === '/metrics') {
      const body = await options.metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': options.metrics.registry.contentType });
      res.end(body);
    } else if (path === '/metrics/slis' && options.slis) {
      const body = await options.slis.registry.metrics();
      res.writeHead(200, { 'Content-Type': options.slis.registry.contentType });
      res.end(body);
    } else if (componentHealthz(path, url.searchParams, res, options.slis)) {
      return;
    } else if (path === '/proxyMode') {
      res.writeHead(200, TEXT_HEADERS);
      res.end(options.mode);
    } else if (path === '/configz') {
      res.writeHead(200, JSON_HEADERS);
      res.end(JSON.stringify({ 'kubeproxy.config.k8s.io': options.configz() }));
    } else if (options.zpages?.(req, res)) {
      return;
    } else if (options.profiling === true && (await profilingRoutes(req, res))) {
      return;
    } else if (path === '/debug/proxy' && options.debug) {
      res.writeHead(200, JSON_HEADERS);
      res.end(`${JSON.stringify(options.debug(), null, 2)}\n`);
    } else if (!(await options.routes?.(req, res))) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('404 page not found\n');
    }
  };
}
