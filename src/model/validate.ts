// Readers for untrusted API objects. The declared kubernetes-types shapes are what a well-behaved
// API server sends; at runtime a field may be missing, of the wrong type, or hostile text. These
// helpers read a field only when it has the expected JavaScript type and answer undefined
// otherwise, and check text against the Kubernetes name grammars before it is used anywhere.
import type { IPFamily, Protocol } from './types.ts';
import { isPlainIPv4, parseIP, parseCIDR, type ParsedCIDR } from '../util/ip.ts';

/** An address as the model keeps it: the family and the canonical text. */
export interface ModelIP {
  readonly family: IPFamily;
  readonly text: string;
}

export type UnknownRecord = Readonly<Record<string, unknown>>;

export function isRecord(value: unknown): value is UnknownRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own property only, so `__proto__`/`constructor` text in an object can never reach a prototype. */
export function field(value: unknown, name: string): unknown {
  if (!isRecord(value) || !Object.hasOwn(value, name)) return undefined;
  return value[name];
}

export function stringField(value: unknown, name: string): string | undefined {
  const v = field(value, name);
  return typeof v === 'string' ? v : undefined;
}

export function arrayField(value: unknown, name: string): readonly unknown[] | undefined {
  const v = field(value, name);
  return Array.isArray(v) ? (v as readonly unknown[]) : undefined;
}

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;

/** RFC 1123 label: namespaces, Service names, port names (non-empty case). */
export function isDNSLabel(text: string): boolean {
  return text.length <= 63 && DNS_LABEL.test(text);
}

/** RFC 1123 subdomain: EndpointSlice and Node names. */
export function isDNSSubdomain(text: string): boolean {
  return text.length > 0 && text.length <= 253 && text.split('.').every((l) => DNS_LABEL.test(l));
}

/**
 * Port names in Services and EndpointSlices are DNS labels or empty (the API server validates
 * exactly this). They end up in rule comments and chain-name hashes, so nothing else may pass.
 */
export function isPortName(text: string): boolean {
  return text === '' || isDNSLabel(text);
}

export function isIntInRange(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

const PROTOCOLS: ReadonlySet<string> = new Set(['TCP', 'UDP', 'SCTP']);

export function isProtocol(value: unknown): value is Protocol {
  return typeof value === 'string' && PROTOCOLS.has(value);
}

/**
 * An IP exactly as written: surrounding whitespace is an error (as in upstream's parser), so a
 * value like `10.0.0.1 -j ACCEPT` or `10.0.0.1\n` is rejected rather than trimmed into shape.
 */
export function parseExactIP(value: unknown): ModelIP | undefined {
  if (typeof value !== 'string') return undefined;
  // Fast path for the bulk of the input (every endpoint address): node's IPv4 grammar has no
  // leading zeros, so what it accepts is already the canonical text; no BigInt round trip.
  if (isPlainIPv4(value)) return { family: 'IPv4', text: value };
  if (value !== value.trim()) return undefined;
  const parsed = parseIP(value);
  return parsed && { family: parsed.family, text: parsed.text };
}

/** Source ranges are trimmed first (upstream trims them), then parsed. */
export function parseTrimmedCIDR(value: unknown): ParsedCIDR | undefined {
  if (typeof value !== 'string') return undefined;
  return parseCIDR(value.trim());
}

/** Sorted, without duplicates: for values that are sets in meaning (hints). */
export function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort(compareStrings);
}

/** Plain code-unit order, as Go compares strings (never locale order). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The list at its exact length. V8 gives an array that grows by push (or comes from filter) room
 * for 17 elements; the model keeps such lists for every Service and EndpointSlice, so the slack
 * would be MiBs at 10k Services. Only for lists that are kept.
 */
export function exactList<T>(list: readonly T[]): T[] {
  return list.slice();
}
