// IP and CIDR parsing into canonical text. Anything from the API that ends up in a rule passes
// through here first: a value that does not parse is rejected, so it can never carry rule syntax.
import { isIPv4, isIPv6 } from 'node:net';

export type IPFamily = 'IPv4' | 'IPv6';

export interface ParsedIP {
  readonly family: IPFamily;
  /** Canonical text: dotted quad, or RFC 5952 compressed lower-case IPv6. */
  readonly text: string;
  readonly value: bigint;
}

export interface ParsedCIDR {
  readonly family: IPFamily;
  /** Canonical `network/prefix` with host bits cleared. */
  readonly text: string;
  readonly network: bigint;
  readonly prefix: number;
}

function ipv4ToBigInt(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function bigIntToIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
}

function ipv6ToBigInt(text: string): bigint {
  let head = text;
  let v4Tail: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    v4Tail = ipv4ToBigInt(tail);
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left = '', right] = head.split('::');
  const leftGroups = left ? left.split(':') : [];
  const rightGroups = right !== undefined && right !== '' ? right.split(':') : [];
  const missing = 8 - leftGroups.length - rightGroups.length;
  const groups = [
    ...leftGroups,
    ...Array<string>(right !== undefined ? missing : 0).fill('0'),
    ...rightGroups,
  ];
  let value = groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
  if (v4Tail !== undefined) value = (value & ~0xffffffffn) | v4Tail;
  return value;
}

function bigIntToIPv6(value: bigint): string {
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on ties.
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLength).join(':');
  return `${left}::${right}`;
}

/**
 * Dotted-quad IPv4 text as node's parser accepts it: no leading zeros, so it is already the
 * canonical text (a fast path for the model's bulk of endpoint addresses).
 */
export function isPlainIPv4(text: string): boolean {
  return isIPv4(text);
}

/** Parses an IPv4 or IPv6 address (no zone, no brackets); undefined if it is not one. */
export function parseIP(input: string): ParsedIP | undefined {
  const text = input.trim();
  if (isIPv4(text)) {
    const value = ipv4ToBigInt(text);
    return { family: 'IPv4', text: bigIntToIPv4(value), value };
  }
  if (isIPv6(text) && !text.includes('%')) {
    const value = ipv6ToBigInt(text);
    // IPv4-mapped IPv6 (::ffff:a.b.c.d) is treated as IPv4, as Go's net.ParseIP does.
    if (value >> 32n === 0xffffn) {
      const v4 = value & 0xffffffffn;
      return { family: 'IPv4', text: bigIntToIPv4(v4), value: v4 };
    }
    return { family: 'IPv6', text: bigIntToIPv6(value), value };
  }
  return undefined;
}

function bits(family: IPFamily): number {
  return family === 'IPv4' ? 32 : 128;
}

function mask(family: IPFamily, prefix: number): bigint {
  const width = BigInt(bits(family));
  return ((1n << width) - 1n) ^ ((1n << (width - BigInt(prefix))) - 1n);
}

/** Parses `ip/prefix`; host bits are cleared in the canonical text. Undefined if invalid. */
export function parseCIDR(input: string): ParsedCIDR | undefined {
  const text = input.trim();
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return undefined;
  // An IPv4-mapped address with a v6 prefix is not a CIDR we accept.
  if (ip.family === 'IPv4' && text.slice(0, slash).includes(':')) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bits(ip.family)) return undefined;
  const network = ip.value & mask(ip.family, prefix);
  const networkText = ip.family === 'IPv4' ? bigIntToIPv4(network) : bigIntToIPv6(network);
  return { family: ip.family, text: `${networkText}/${prefix}`, network, prefix };
}

export function cidrContains(cidr: ParsedCIDR, ip: ParsedIP): boolean {
  return cidr.family === ip.family && (ip.value & mask(cidr.family, cidr.prefix)) === cidr.network;
}

/** `ip:port` with IPv6 bracketed, as upstream writes endpoint strings. */
export function joinHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function isLoopback(ip: ParsedIP): boolean {
  return ip.family === 'IPv4' ? ip.value >> 24n === 127n : ip.value === 1n;
}
