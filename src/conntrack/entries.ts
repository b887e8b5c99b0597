// Conntrack flow entries as the Debian `conntrack` tool lists them (`conntrack -L`, with or
// without `-o extended`), parsed into typed tuples. Pure: the reconciler runs the tool and hands
// its stdout here.
//
// A line looks like
//   [ipv4     2 ]udp      17 29 src=10.244.1.13 dst=10.96.0.53 sport=45000 dport=53 [UNREPLIED]
//     src=10.244.1.11 dst=10.244.1.13 sport=5353 dport=45000 [ASSURED] mark=0 use=1
// The first src/dst/sport/dport group is the original direction, the second the reply direction.
import type { IPFamily } from '../model/types.ts';
import { parseIP } from '../util/ip.ts';

export type ConntrackProtocol = 'udp' | 'tcp' | 'sctp';

export interface FlowTuple {
  /** Canonical IP text (util/ip.ts), so it compares equal to snapshot addresses. */
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

export interface ConntrackEntry {
  readonly family: IPFamily;
  readonly protocol: ConntrackProtocol;
  readonly original: FlowTuple;
  readonly reply: FlowTuple;
}

const PROTOCOLS: readonly string[] = ['udp', 'tcp', 'sctp'] satisfies ConntrackProtocol[];

function isProtocol(text: string | undefined): text is ConntrackProtocol {
  return text !== undefined && PROTOCOLS.includes(text);
}
const TUPLE_KEYS = ['src', 'dst', 'sport', 'dport'] as const;
type TupleKey = (typeof TUPLE_KEYS)[number];

function isTupleKey(key: string): key is TupleKey {
  return (TUPLE_KEYS as readonly string[]).includes(key);
}

function port(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const value = Number(text);
  return value <= 65535 ? value : undefined;
}

function tuple(fields: Partial<Record<TupleKey, string>>): FlowTuple | undefined {
  const src = parseIP(fields.src ?? '');
  const dst = parseIP(fields.dst ?? '');
  const sport = port(fields.sport);
  const dport = port(fields.dport);
  if (!src || !dst || sport === undefined || dport === undefined || src.family !== dst.family)
    return undefined;
  return { src: src.text, dst: dst.text, sport, dport };
}

/** One line of `conntrack -L` output; undefined for anything that is not a port-based flow. */
export function parseConntrackLine(line: string): ConntrackEntry | undefined {
  const tokens = line.trim().split(/\s+/);
  // Skip the optional `ipv4 2` / `ipv6 10` prefix of the extended format.
  let index = tokens[0] === 'ipv4' || tokens[0] === 'ipv6' ? 2 : 0;
  const protocol = tokens[index];
  if (!isProtocol(protocol)) return undefined;
  index++;
  const groups: Partial<Record<TupleKey, string>>[] = [{}];
  for (; index < tokens.length; index++) {
    const token = tokens[index] ?? '';
    const eq = token.indexOf('=');
    if (eq <= 0) continue; // protocol number, timeout, state, [FLAGS]
    const key = token.slice(0, eq);
    if (!isTupleKey(key)) continue;
    let group = groups[groups.length - 1] ?? {};
    // A key seen twice starts the reply direction.
    if (group[key] !== undefined) {
      if (groups.length === 2) break;
      group = {};
      groups.push(group);
    }
    group[key] = token.slice(eq + 1);
  }
  if (groups.length !== 2) return undefined;
  const original = tuple(groups[0] ?? {});
  const reply = tuple(groups[1] ?? {});
  if (!original || !reply) return undefined;
  const family = parseIP(original.src)?.family;
  if (!family || parseIP(reply.src)?.family !== family) return undefined;
  return { family, protocol, original, reply };
}

/** Every flow entry in a `conntrack -L` listing; summary and unparseable lines are skipped. */
export function parseConntrackList(text: string): ConntrackEntry[] {
  const entries: ConntrackEntry[] = [];
  for (const line of text.split('\n')) {
    const entry = parseConntrackLine(line);
    if (entry) entries.push(entry);
  }
  return entries;
}
