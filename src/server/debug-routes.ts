// The read-only debug routes on the metrics server (/debug/proxy/explain, /debug/proxy/state,
// /debug/proxy/verify, the web page under /ui). They reveal every Service, endpoint and rule of
// the node, while many clusters bind the metrics port to 0.0.0.0 for Prometheus: so they answer
// loopback peers only (remote use goes through `kubectl port-forward`, which Kubernetes RBAC
// guards; --debug-handlers-allowed-cidrs adds more peers), only with a Host header that is an IP
// literal or localhost (against DNS rebinding), only to GET, and only with a short query.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cidrContains, isLoopback, parseCIDR, parseIP, type ParsedCIDR } from '../util/ip.ts';

export interface DebugResponse {
  readonly status: number;
  /** Sent as JSON; an `{ error }` object for failures. */
  readonly body: unknown;
}

export type DebugRoute = (params: URLSearchParams) => DebugResponse | Promise<DebugResponse>;

/**
 * A route that writes its own response (the web page's files, the event stream). It gets the
 * same peer, Host, method and query guards but not the debug header, which a browser's page load
 * or EventSource cannot send; such a route must be cheap and change nothing.
 */
export type PageRoute = (req: IncomingMessage, res: ServerResponse, params: URLSearchParams) => void;

export interface DebugAccess {
  /** Peers allowed besides loopback (--debug-handlers-allowed-cidrs), as CIDR texts. */
  readonly allowedCIDRs?: readonly string[];
}

const MAX_QUERY_BYTES = 2048;

/** The header every debug route wants (kube-proxy explain and verify send it). */
export const DEBUG_HEADER = 'X-Kube-Proxy-Debug';

const HEADERS = {
  'Content-Type': 'application/json',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
};

function peerAllowed(req: IncomingMessage, allowed: readonly ParsedCIDR[]): boolean {
  const address = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const ip = parseIP(address);
  if (ip === undefined) return false;
  return isLoopback(ip) || allowed.some((cidr) => cidr.family === ip.family && cidrContains(cidr, ip));
}

/** Parses --debug-handlers-allowed-cidrs; throws naming the first entry that is not a CIDR. */
export function parseAllowedCIDRs(texts: readonly string[]): ParsedCIDR[] {
  return texts.map((text) => {
    const cidr = parseCIDR(text.trim());
    if (!cidr) throw new Error(`${JSON.stringify(text)} is not a CIDR (e.g. 10.0.0.0/8)`);
    return cidr;
  });
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
  pages: Readonly<Record<string, PageRoute>> = {},
  access: DebugAccess = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const allowed = parseAllowedCIDRs(access.allowedCIDRs ?? []);
  return async (req, res) => {
    const raw = req.url ?? '/';
    const url = new URL(raw, 'http://x');
    const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined;
    const page = Object.hasOwn(pages, url.pathname) ? pages[url.pathname] : undefined;
    if (route === undefined && page === undefined) return false;
    if (!peerAllowed(req, allowed)) {
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
    if (Buffer.byteLength(url.search) > MAX_QUERY_BYTES) {
      send(res, 414, { error: `the query is longer than ${MAX_QUERY_BYTES} bytes` });
      return true;
    }
    if (page !== undefined) {
      page(req, res, url.searchParams);
      return true;
    }
    if (route === undefined) return false;
    // A cross-site <img> or <form> cannot send a custom header: no request forged by a page the
    // operator visits can make the proxy work (verify reads the kernel).
    if (req.headers[DEBUG_HEADER.toLowerCase()] !== '1') {
      send(res, 403, { error: `send the header ${DEBUG_HEADER}: 1` });
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
