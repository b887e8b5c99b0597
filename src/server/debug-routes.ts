// The read-only debug routes on the metrics server (/debug/proxy/explain, /debug/proxy/state,
// /debug/proxy/verify). They reveal every Service, endpoint and rule of the node, while many
// clusters bind the metrics port to 0.0.0.0 for Prometheus: so they answer loopback peers only
// (remote use goes through `kubectl port-forward`, which Kubernetes RBAC guards), only with a
// Host header that is an IP literal or localhost (against DNS rebinding), only to GET, and
// only with a short query.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLoopback, parseIP } from '../util/ip.ts';

export interface DebugResponse {
  readonly status: number;
  /** Sent as JSON; an `{ error }` object for failures. */
  readonly body: unknown;
}

export type DebugRoute = (params: URLSearchParams) => DebugResponse | Promise<DebugResponse>;

const MAX_QUERY_BYTES = 2048;

/** The header every debug route wants (kube-proxy explain and verify send it). */
export const DEBUG_HEADER = 'X-Kube-Proxy-Debug';

const HEADERS = {
  'Content-Type': 'application/json',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
};

function isLoopbackPeer(req: IncomingMessage): boolean {
  const address = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const ip = parseIP(address);
  return ip !== undefined && isLoopback(ip);
}

/** An IP literal (bracketed for IPv6) or localhost, with an optional port. */
export function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return false;
  const match = /^\[([^\]]+)\](?::\d+)?$/.exec(host) ?? /^([^:]+)(?::\d+)?$/.exec(host);
  const name = match?.[1];
  if (name === undefined) return false;
  return name.toLowerCase() === 'localhost' || parseIP(name) !== undefined;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, HEADERS);
  res.end(`${JSON.stringify(body, null, 2)}\n`);
}

/**
 * A handler for the given routes (path → route); answers false, without writing, for any other
 * path so the caller can go on.
 */
export function debugRoutesHandler(
  routes: Readonly<Record<string, DebugRoute>>,
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const raw = req.url ?? '/';
    const url = new URL(raw, 'http://x');
    const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined;
    if (route === undefined) return false;
    if (!isLoopbackPeer(req)) {
      // As if the route did not exist: the debug surface is not for the network.
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('404 page not found\n');
      return true;
    }
    if (!hostAllowed(req.headers.host)) {
      send(res, 421, { error: 'the Host header must be an IP address or localhost' });
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, { error: 'only GET' });
      return true;
    }
    // A cross-site <img> or <form> cannot send a custom header: no request forged by a page the
    // operator visits can make the proxy work (verify reads the kernel).
    if (req.headers[DEBUG_HEADER.toLowerCase()] !== '1') {
      send(res, 403, { error: `send the header ${DEBUG_HEADER}: 1` });
      return true;
    }
    if (Buffer.byteLength(url.search) > MAX_QUERY_BYTES) {
      send(res, 414, { error: `the query is longer than ${MAX_QUERY_BYTES} bytes` });
      return true;
    }
    let response: DebugResponse;
    try {
      response = await route(url.searchParams);
    } catch (error) {
      response = { status: 500, body: { error: (error as Error).message } };
    }
    send(res, response.status, response.body);
    return true;
  };
}
