// `explain --conntrack` (live): the flows the kernel already tracks for the packet's tuple, and
// which of them are stale: DNATed to an endpoint the service port no longer has. Such a flow keeps
// its old endpoint until it ends or its conntrack entry expires (upstream issues #19029, #48370),
// whatever the rules say now. A scoped read: `conntrack -L` filtered to the protocol, the source,
// the destination and the port, in the live proxy's own network namespace.
import { parseConntrackLine } from '../conntrack/entries.ts';
import { describeValue } from '../model/problem.ts';
import { joinHostPort } from '../util/ip.ts';
import type { ExecOptions, ExecResult } from '../util/exec.ts';
import type { ConntrackFlow, ConntrackSection, Explanation } from './types.ts';

export type ConntrackTool = (
  file: string,
  args: readonly string[],
  options?: ExecOptions,
) => Promise<ExecResult>;

const STATE = /\s(SYN_SENT|SYN_RECV|ESTABLISHED|FIN_WAIT|CLOSE_WAIT|LAST_ACK|TIME_WAIT|CLOSE|LISTEN|NONE)\s/;
const MAX_FLOWS = 200;

/** The `conntrack -L` arguments for the explanation's tuple. */
export function conntrackArgs(e: Explanation): string[] {
  return [
    '-L',
    '-f',
    e.source.family === 'IPv6' ? 'ipv6' : 'ipv4',
    '-p',
    e.packet.protocol.toLowerCase(),
    '--orig-src',
    e.packet.src,
    '--orig-dst',
    e.packet.dst,
    '--dport',
    String(e.packet.dport),
  ];
}

/** The flows of a `conntrack -L` listing, each marked stale or not against the explanation. Pure. */
export function conntrackFlows(e: Explanation, listing: string): ConntrackFlow[] {
  const known = new Set(e.endpoints.map((ep) => ep.endpoint));
  const flows: ConntrackFlow[] = [];
  for (const line of listing.split('\n')) {
    const entry = parseConntrackLine(line);
    if (!entry || entry.original.dst !== e.packet.dst || entry.original.dport !== e.packet.dport) continue;
    const { original, reply } = entry;
    const dnat = reply.src !== original.dst || reply.sport !== original.dport;
    const endpoint = dnat ? joinHostPort(reply.src, reply.sport) : undefined;
    const state = STATE.exec(` ${line} `)?.[1];
    flows.push({
      orig: `${joinHostPort(original.src, original.sport)} -> ${joinHostPort(original.dst, original.dport)}`,
      reply: `${joinHostPort(reply.src, reply.sport)} -> ${joinHostPort(reply.dst, reply.dport)}`,
      ...(state ? { state } : {}),
      ...(endpoint ? { endpoint } : {}),
      // Only a matched service port says which endpoints exist.
      stale: endpoint !== undefined && e.match.servicePort !== undefined && !known.has(endpoint),
    });
    if (flows.length >= MAX_FLOWS) break;
  }
  return flows;
}

/** The explanation with its conntrack section (and a hint when some flows are stale). */
export async function withConntrack(e: Explanation, run: ConntrackTool): Promise<Explanation> {
  const args = conntrackArgs(e);
  const read = `conntrack ${args.join(' ')}`;
  let section: ConntrackSection;
  try {
    const result = await run('conntrack', args, { timeoutMs: 10_000 });
    // conntrack prints its summary ("N flow entries have been shown.") on stderr.
    section = { read, flows: conntrackFlows(e, result.stdout) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // No matching flow is not an error for us: conntrack exits 0 with none, but older versions
    // exit 1 with "0 flow entries".
    section = /\b0 flow entries\b/.test(message)
      ? { read, flows: [] }
      : { read, flows: [], error: message.slice(0, 300) };
  }
  const stale = section.flows.filter((flow) => flow.stale);
  const hints =
    stale.length > 0
      ? [
          ...e.hints,
          `${stale.length} existing flow${stale.length === 1 ? ' goes' : 's go'} to ${describeValue([...new Set(stale.map((f) => f.endpoint))].join(', '))}, which ${e.match.servicePort ?? 'the service port'} no longer has: they keep it until they end or expire (delete them with conntrack -D -p ${e.packet.protocol.toLowerCase()} --orig-dst ${e.packet.dst} --dport ${e.packet.dport})`,
        ]
      : e.hints;
  return { ...e, conntrack: section, hints };
}
