// The vocabulary shared by every mode's packet tracer (and by the traffic plan's flow runner in
// the tests): one packet in, what the kernel would do with it out. A tracer walks the rules a
// renderer wrote; random choices (iptables' statistic match, nft's numgen) are not drawn but
// explored, every branch, so the outcome lists every endpoint a new connection can reach, as
// upstream's proxier tests do.
import type { IPFamily, Protocol } from '../../model/types.ts';
import { cidrContains, isLoopback, parseCIDR, parseIP, type ParsedIP } from '../../util/ip.ts';

/**
 * Where a packet enters the node's netfilter hooks: arriving on an interface (from a pod's veth
 * or bridge, or from outside: PREROUTING), or sent by the node itself (OUTPUT).
 */
export type PacketOrigin = { readonly kind: 'arriving'; readonly iif: string } | { readonly kind: 'local' };

/** The first packet of a new connection. */
export interface Packet {
  readonly family: IPFamily;
  readonly protocol: Protocol;
  readonly sourceIP: string;
  readonly destIP: string;
  readonly destPort: number;
  readonly origin: PacketOrigin;
}

/** What the rules cannot know but the kernel does. */
export interface HostFacts {
  /**
   * Addresses assigned to the node's interfaces (`fib ... type local`, `-m addrtype LOCAL`).
   * Loopback addresses are always local: the kernel's local routing table holds 127.0.0.0/8
   * and ::1 whatever the interfaces say.
   */
  readonly localAddresses: readonly string[];
}

/**
 * What happens to the packet, over every explored path:
 * - endpoints: DNATed; every endpoint (`ip:port`, IPv6 bracketed) some path reaches, sorted
 * - reject / drop: refused (an ICMP or TCP reset) / silently dropped
 * - pass: no service rule changed it (not a service address, or a rule let it through as is)
 * `masquerade` is true when some path masquerades (upstream's tracer reports the same).
 */
export type FlowOutcome =
  | { readonly kind: 'endpoints'; readonly endpoints: readonly string[]; readonly masquerade: boolean }
  | { readonly kind: 'reject' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'pass'; readonly masquerade: boolean };

/** One rule a packet was matched against and that matched (or a jump from a built-in hook). */
export interface TracedRule {
  /** `filter`/`nat` for iptables, the table's family and name for nftables. */
  readonly table: string;
  readonly chain: string;
  readonly rule: string;
  /**
   * The set or map element a lookup rule matched, as `nft list` prints an element
   * (`key : value`); nftables only, absent for rules without a lookup.
   */
  readonly element?: { readonly set: string; readonly text: string } | undefined;
}

/** How one explored path ended. */
export type PathEnd =
  | { readonly kind: 'dnat'; readonly endpoint: string }
  | { readonly kind: 'reject' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'pass' };

export interface TracedPath {
  readonly end: PathEnd;
  readonly masquerade: boolean;
  /** The random choices that lead here, e.g. `statistic 0.5: matched`. */
  readonly choices: readonly string[];
  /** The rules that matched, in order. */
  readonly rules: readonly TracedRule[];
}

export interface TraceResult {
  readonly outcome: FlowOutcome;
  readonly paths: readonly TracedPath[];
  /** Every matching rule of every path, in order of first appearance. */
  readonly rules: readonly TracedRule[];
}

export class TraceError extends Error {
  override readonly name = 'TraceError';
}

/** Upstream's notation: `10.180.0.1:80, 10.180.0.2:80`, `REJECT`, `DROP` or `` (plus ` masq`). */
export function formatOutcome(outcome: FlowOutcome): string {
  switch (outcome.kind) {
    case 'endpoints':
      return `${outcome.endpoints.join(', ')}${outcome.masquerade ? ' masq' : ''}`;
    case 'reject':
      return 'REJECT';
    case 'drop':
      return 'DROP';
    case 'pass':
      return outcome.masquerade ? 'masq' : '';
    default: {
      const unknown: never = outcome;
      throw new TraceError(`unknown outcome ${JSON.stringify(unknown)}`);
    }
  }
}

function endText(end: PathEnd): string {
  return end.kind === 'dnat' ? end.endpoint : end.kind;
}

/**
 * Combines the paths. Paths that end differently (some DNAT, some dropped) mean a rule set that
 * loses connections at random: a tracer reports that as an error rather than pick one.
 */
export function combinePaths(paths: readonly TracedPath[]): TraceResult {
  const first = paths[0];
  if (first === undefined) throw new TraceError('no path was traced');
  const kinds = new Set(paths.map((path) => path.end.kind));
  if (kinds.size > 1) {
    const ends = paths.map((path) => `[${path.choices.join(', ')}] -> ${endText(path.end)}`);
    throw new TraceError(`paths end differently:\n  ${ends.join('\n  ')}`);
  }
  const masquerade = paths.some((path) => path.masquerade);
  let outcome: FlowOutcome;
  switch (first.end.kind) {
    case 'dnat': {
      const endpoints = new Set(paths.map((path) => endText(path.end)));
      outcome = { kind: 'endpoints', endpoints: [...endpoints].sort(compareEndpoints), masquerade };
      break;
    }
    case 'reject':
      outcome = { kind: 'reject' };
      break;
    case 'drop':
      outcome = { kind: 'drop' };
      break;
    case 'pass':
      outcome = { kind: 'pass', masquerade };
      break;
    default: {
      const unknown: never = first.end;
      throw new TraceError(`unknown path end ${JSON.stringify(unknown)}`);
    }
  }
  const seen = new Set<string>();
  const rules: TracedRule[] = [];
  for (const path of paths) {
    for (const rule of path.rules) {
      const key = `${rule.table}\u0000${rule.chain}\u0000${rule.rule}\u0000${rule.element?.text ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      rules.push(rule);
    }
  }
  return { outcome, paths, rules };
}

function compareEndpoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Picks one of `count` alternatives at a random choice point; `what` names it for the path. */
export type Choose = (count: number, what: (index: number) => string) => number;

/** More paths than any sane rule set produces for one packet: a loop in the rules, most likely. */
const MAX_PATHS = 10_000;

/**
 * Runs `trace` once per combination of random choices, depth first: each run replays the choices
 * of the previous one up to its last choice point that has an alternative left, takes that
 * alternative, and takes the first alternative at every new choice point after it.
 */
export function explorePaths<T>(trace: (choose: Choose, choices: string[]) => T): T[] {
  const results: T[] = [];
  let prefix: number[] = [];
  for (;;) {
    const taken: number[] = [];
    const counts: number[] = [];
    const choices: string[] = [];
    const choose: Choose = (count, what) => {
      if (count < 1) throw new TraceError('a random choice without alternatives');
      const index = taken.length < prefix.length ? (prefix[taken.length] ?? 0) : 0;
      taken.push(index);
      counts.push(count);
      choices.push(what(index));
      return index;
    };
    results.push(trace(choose, choices));
    if (results.length > MAX_PATHS) throw new TraceError(`more than ${MAX_PATHS} paths`);
    let next = taken.length - 1;
    while (next >= 0 && (taken[next] ?? 0) + 1 >= (counts[next] ?? 0)) next--;
    if (next < 0) return results;
    prefix = [...taken.slice(0, next), (taken[next] ?? 0) + 1];
  }
}

/** Whether `ip` is one of this host's addresses (loopback addresses always are). */
export function isLocalAddress(host: HostFacts, ip: ParsedIP): boolean {
  if (isLoopback(ip)) return true;
  return host.localAddresses.some((text) => {
    const local = parseIP(text);
    return local?.family === ip.family && local.value === ip.value;
  });
}

/** Whether `ip` is inside `cidrText` (an address alone is a /32 or /128). */
export function inCIDR(ip: ParsedIP, cidrText: string): boolean {
  const cidr = parseCIDR(
    cidrText.includes('/') ? cidrText : `${cidrText}/${ip.family === 'IPv4' ? 32 : 128}`,
  );
  if (!cidr) throw new TraceError(`${JSON.stringify(cidrText)} is not an address or CIDR`);
  return cidrContains(cidr, ip);
}

/** Parses an address the caller handed in, naming it when it is not one. */
export function requireIP(text: string, what: string): ParsedIP {
  const ip = parseIP(text);
  if (!ip) throw new TraceError(`${what} ${JSON.stringify(text)} is not an IP address`);
  return ip;
}

/** Splits `ip:port` / `[ip6]:port` (a DNAT destination). */
export function splitHostPort(text: string): { ip: ParsedIP; port: number } {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const ip = match ? parseIP(match[1] ?? '') : undefined;
  if (!match || !ip) throw new TraceError(`cannot read DNAT destination ${JSON.stringify(text)}`);
  return { ip, port: Number(match[2]) };
}
