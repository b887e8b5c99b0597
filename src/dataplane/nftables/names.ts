// Names of everything in our table, and the few helpers that turn values into nft syntax.
// The layout (docs/nftables-layout.md) has a fixed set of chains, sets and maps; only the
// endpoint class chains (one per endpoint count in use) and the ClientIP affinity structures
// have computed names, and those never contain text from Kubernetes objects.
import { hashedName } from '../common/hashed-name.ts';
import type { IPFamily, Protocol } from '../../model/types.ts';

export const TABLE = 'kube-proxy';
export const TABLE_COMMENT = 'rules for kube-proxy';
export const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;
export type Proto = (typeof PROTOCOLS)[number];

export function proto(protocol: Protocol): Proto {
  return protocol === 'TCP' ? 'tcp' : protocol === 'UDP' ? 'udp' : 'sctp';
}

/** `ip` or `ip6`: the table family and the address expression prefix. */
export function nftFamily(family: IPFamily): 'ip' | 'ip6' {
  return family === 'IPv4' ? 'ip' : 'ip6';
}

/**
 * Endpoint selection families. Each has a dispatch verdict map (key -> class chain), one
 * endpoint map per protocol (key . index -> endpoint) and its class chains.
 * - ip: traffic to a cluster IP (internal selection) or an external/LB IP (external selection)
 * - ip-shortcut: pod or node traffic to an external/LB IP of an eTP=Local service (cluster-wide)
 * - nodeport, nodeport-shortcut: the same for node ports, keyed without the destination address
 */
export const SELECTORS = ['ip', 'ip-shortcut', 'nodeport', 'nodeport-shortcut'] as const;
export type Selector = (typeof SELECTORS)[number];

// Names are looked up once per element and kept in records: the same string each time.
const names = new Map<string, string>();
function cachedName(...parts: readonly (string | number)[]): string {
  const text = parts.join('');
  let name = names.get(text);
  if (name === undefined) {
    name = text;
    names.set(name, name);
  }
  return name;
}

export function dispatchMap(selector: Selector): string {
  return cachedName(selector, '-dispatch');
}
export function endpointMap(selector: Selector, p: Proto): string {
  return cachedName(selector, '-endpoints-', p);
}
/** `goto <chain>`, the value of a verdict map element. */
export function gotoChain(chain: string): string {
  return cachedName('goto ', chain);
}
const ENDPOINT_MAP = /^(ip|ip-shortcut|nodeport|nodeport-shortcut)-endpoints-(tcp|udp|sctp)$/;
export function parseEndpointMap(name: string): { selector: Selector; proto: Proto } | undefined {
  const match = ENDPOINT_MAP.exec(name);
  if (!match) return undefined;
  return { selector: match[1] as Selector, proto: match[2] as Proto };
}
export function classChain(selector: Selector, count: number): string {
  return cachedName(selector, '-class-', count);
}
const CLASS_CHAIN = /^(ip|ip-shortcut|nodeport|nodeport-shortcut)-class-([1-9][0-9]*)$/;
export function parseClassChain(name: string): { selector: Selector; count: number } | undefined {
  const match = CLASS_CHAIN.exec(name);
  if (!match) return undefined;
  return { selector: match[1] as Selector, count: Number(match[2]) };
}

/** The family's dynamic set of ClientIP affinity clients for one protocol. */
export function affinitySet(p: Proto): string {
  return `affinity-${p}`;
}

/** Upper-case RFC 4648 base32 of the SHA-256 of `text`, first `length` characters. */
export function hashName(text: string, length = 16): string {
  return hashedName(text, length);
}

/**
 * Element and set comments carry service names for people reading the table. Names are
 * already DNS labels, but the comment is the one place object text reaches nft syntax, so
 * anything outside a conservative alphabet is replaced, and nft's 128-byte limit is kept.
 */
export function escapeComment(text: string): string {
  return text.replace(/[^A-Za-z0-9._:/ >[\]-]/g, '_').slice(0, 120);
}

/** `ip:port` for a dnat statement, IPv6 bracketed. */
export function dnatTarget(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
