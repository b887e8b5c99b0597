// Which HTTP proxy the API client goes through, as client-go decides it: the kubeconfig
// cluster's `proxy-url` when set, else the environment (HTTPS_PROXY for an https server,
// HTTP_PROXY for http, upper or lower case, with NO_PROXY exempting hosts) following Go's
// net/http ProxyFromEnvironment, which never proxies localhost or a loopback address. Pure.
import { isIP } from 'node:net';

export interface ProxyEnv {
  readonly [name: string]: string | undefined;
}

function envValue(env: ProxyEnv, name: string): string {
  return env[name] ?? env[name.toLowerCase()] ?? '';
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function expandV6(ip: string): bigint {
  const [head = '', tail] = ip.split('::');
  const parse = (s: string): string[] => (s === '' ? [] : s.split(':'));
  let groups = parse(head);
  const rest = tail === undefined ? [] : parse(tail);
  // A trailing dotted IPv4 part counts as two groups.
  const last = (tail === undefined ? groups : rest).at(-1);
  const v4 = last !== undefined && last.includes('.') ? last : undefined;
  if (v4 !== undefined) {
    const n = ipv4ToInt(v4);
    const replaced = [(n >>> 16).toString(16), (n & 0xffff).toString(16)];
    if (tail === undefined) groups = [...groups.slice(0, -1), ...replaced];
    else rest.splice(rest.length - 1, 1, ...replaced);
  }
  const fill = tail === undefined ? [] : new Array<string>(8 - groups.length - rest.length).fill('0');
  return [...groups, ...fill, ...rest].reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

function inCIDR(ip: string, cidr: string): boolean {
  const [base = '', bitsText = ''] = cidr.split('/');
  const family = isIP(base);
  if (family === 0 || family !== isIP(ip) || !/^\d+$/.test(bitsText)) return false;
  const bits = Number(bitsText);
  if (family === 4) {
    if (bits > 32) return false;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return (ipv4ToInt(ip) & mask) >>> 0 === (ipv4ToInt(base) & mask) >>> 0;
  }
  if (bits > 128) return false;
  const shift = BigInt(128 - bits);
  return expandV6(ip) >> shift === expandV6(base) >> shift;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return expandV6(host) === 1n;
  return false;
}

/** Whether NO_PROXY exempts host (name or IP, no brackets) on port. Go's rules. */
export function noProxyMatches(noProxy: string, host: string, port: string): boolean {
  const name = host.toLowerCase();
  for (const raw of noProxy.split(',')) {
    let entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      if (isIP(name) !== 0 && inCIDR(name, entry)) return true;
      continue;
    }
    // An entry may name a port: `host:port`, `[v6]:port`.
    let entryPort = '';
    const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracket) {
      entry = bracket[1] ?? '';
      entryPort = bracket[2] ?? '';
    } else if (isIP(entry) === 0) {
      const colon = entry.lastIndexOf(':');
      if (colon !== -1) {
        entryPort = entry.slice(colon + 1);
        entry = entry.slice(0, colon);
      }
    }
    if (entryPort !== '' && entryPort !== port) continue;
    if (isIP(entry) !== 0) {
      if (isIP(name) !== 0 && expandOrSame(entry) === expandOrSame(name)) return true;
      continue;
    }
    // `example.com` matches it and its subdomains; `.example.com` only subdomains; `*.x` as `.x`.
    if (entry.startsWith('*.')) entry = entry.slice(1);
    if (entry.startsWith('.')) {
      if (name.endsWith(entry)) return true;
    } else if (name === entry || name.endsWith(`.${entry}`)) return true;
  }
  return false;
}

function expandOrSame(ip: string): string {
  return isIP(ip) === 6 ? expandV6(ip).toString(16) : ip;
}

/**
 * The proxy URL for requests to `server`, or undefined for a direct connection. `proxyURL` is the
 * kubeconfig's proxy-url (it wins, for every host, as http.ProxyURL does).
 */
export function proxyFor(server: URL, proxyURL: string | undefined, env: ProxyEnv): string | undefined {
  if (proxyURL !== undefined && proxyURL !== '') return proxyURL;
  const host = server.hostname.replace(/^\[|\]$/g, '');
  if (isLoopback(host)) return undefined;
  const https = server.protocol === 'https:';
  const port = server.port || (https ? '443' : '80');
  const proxy = https ? envValue(env, 'HTTPS_PROXY') : envValue(env, 'HTTP_PROXY');
  if (proxy === '') return undefined;
  if (noProxyMatches(envValue(env, 'NO_PROXY'), host, port)) return undefined;
  // Go accepts a bare host:port and assumes http://.
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`;
}
