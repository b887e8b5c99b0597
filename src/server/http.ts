// The proxy's own HTTP endpoints: the healthz server (healthzBindAddress) and the metrics server
// (metricsBindAddress). A listen failure is retried every 5 s as upstream does, unless
// bindAddressHardFail asks for it to be fatal.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { log } from '../log/log.ts';
import type { ProxyMetrics } from '../metrics/proxy.ts';
import { healthzBody, livezBody, type ProxyHealth } from './health.ts';

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

  const attempt = (): void => {
    if (closed) return;
    const candidate = createServer((req, res) => {
      Promise.resolve(options.handler(req, res)).catch((error: unknown) => {
        log.error('HTTP handler failed', error, { server: options.name, path: req.url ?? '' });
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    const onListenError = (error: Error) => {
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
    candidate.listen(options.port, options.host, () => {
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

/**
 * /metrics, /healthz ("ok"), /proxyMode and /configz (6.3), plus /debug/proxy: our own JSON view
 * of what each family's dataplane is doing (iptables backend, last sync), so an operator can see
 * which iptables backend is in use without reading logs.
 */
export function metricsHandler(options: {
  metrics: ProxyMetrics;
  mode: string;
  configz: () => unknown;
  debug?: () => unknown;
  /** More routes (debug-routes.ts): answers whether it handled the request. */
  routes?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
}): Handler {
  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/metrics') {
      const body = await options.metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': options.metrics.registry.contentType });
      res.end(body);
    } else if (path === '/healthz') {
      res.writeHead(200, {
        'Content-Type': 'text/plain; charset=utf-8',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end('ok');
    } else if (path === '/proxyMode') {
      res.writeHead(200, {
        'Content-Type': 'text/plain; charset=utf-8',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end(options.mode);
    } else if (path === '/configz') {
      res.writeHead(200, JSON_HEADERS);
      res.end(JSON.stringify({ 'kubeproxy.config.k8s.io': options.configz() }));
    } else if (path === '/debug/proxy' && options.debug) {
      res.writeHead(200, JSON_HEADERS);
      res.end(`${JSON.stringify(options.debug(), null, 2)}\n`);
    } else if (!(await options.routes?.(req, res))) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('404 page not found\n');
    }
  };
}
