// A packet tracer over iptables-restore text (what render.ts writes): which rules one new
// connection's first packet meets on its way through the node, and what becomes of it. Pure:
// no kernel, no root. It reads only the rule language our renderer speaks, and throws naming
// any match, option or target it does not know, so that a rule it cannot judge never passes
// silently.
//
// The jumps from the built-in chains into ours are not in the restore text (the proxier ensures
// them one by one): they are taken from the mode's owner description (IPTABLES_JUMPS by default;
// the userspace mode passes its own), in the order the proxier leaves them.
//
// REDIRECT (the userspace mode's capture) is a DNAT to a local address: the primary address of
// the incoming interface for arriving packets (here: the host's first address of the family, the
// tracer knowing no interfaces' addresses), the loopback address for the node's own packets. The
// path then ends at `address:port` like a DNAT, and the port names the listener.
import {
  combinePaths,
  explorePaths,
  inCIDR,
  isLocalAddress,
  requireIP,
  splitHostPort,
  TraceError,
  type Choose,
  type HostFacts,
  type Packet,
  type PathEnd,
  type TracedPath,
  type TracedRule,
  type TraceResult,
} from '../common/trace.ts';
import { joinHostPort, parseIP, type ParsedIP } from '../../util/ip.ts';
import { jumpArgs, type JumpSpec } from '../xtables/owner.ts';
import { IPTABLES_JUMPS } from './owner.ts';

/** One predicate of a rule; `negate` is a `!` in front of it. */
type Match =
  | { readonly kind: 'source' | 'destination'; readonly cidr: string; readonly negate: boolean }
  | { readonly kind: 'protocol'; readonly protocol: string; readonly negate: boolean }
  | { readonly kind: 'dport'; readonly port: number; readonly negate: boolean }
  | { readonly kind: 'in-interface'; readonly name: string; readonly negate: boolean }
  | { readonly kind: 'addrtype'; readonly which: 'src' | 'dst'; readonly negate: boolean }
  | { readonly kind: 'mark'; readonly value: number; readonly mask: number; readonly negate: boolean }
  | { readonly kind: 'statistic'; readonly probability: number; readonly negate: boolean }
  | { readonly kind: 'recent'; readonly mode: 'rcheck' | 'set'; readonly negate: boolean }
  | { readonly kind: 'ctstate'; readonly states: readonly string[]; readonly negate: boolean }
  /** `-m physdev --physdev-is-in`: the packet came in through a bridge port. */
  | { readonly kind: 'physdev-in'; readonly negate: boolean };

type Target =
  | { readonly kind: 'none' }
  | { readonly kind: 'jump'; readonly chain: string }
  | { readonly kind: 'RETURN' | 'ACCEPT' | 'DROP' | 'REJECT' | 'MASQUERADE' }
  | { readonly kind: 'DNAT'; readonly to: string }
  | { readonly kind: 'REDIRECT'; readonly port: number }
  | {
      readonly kind: 'MARK';
      readonly op: 'or' | 'xor' | 'and' | 'set';
      readonly value: number;
      readonly mask: number;
    };

export interface ParsedRule {
  /** The rule as written, without `-A CHAIN`. */
  readonly text: string;
  readonly matches: readonly Match[];
  readonly target: Target;
}

/** Tables by name, chains by name, rules in order. */
export type Ruleset = ReadonlyMap<string, ReadonlyMap<string, readonly ParsedRule[]>>;

/** Splits a rule line into arguments as a shell would (double quotes only, as we write). */
export function splitArgs(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let quoted = false;
  let inWord = false;
  for (const char of line) {
    if (char === '"') {
      quoted = !quoted;
      inWord = true;
    } else if (char === ' ' && !quoted) {
      if (inWord) args.push(current);
      current = '';
      inWord = false;
    } else {
      current += char;
      inWord = true;
    }
  }
  if (quoted) throw new TraceError(`unbalanced quote in ${JSON.stringify(line)}`);
  if (inWord) args.push(current);
  return args;
}

const BUILTIN_TARGETS = new Set([
  'RETURN',
  'ACCEPT',
  'DROP',
  'REJECT',
  'MASQUERADE',
  'DNAT',
  'MARK',
  'REDIRECT',
]);
const L4_MODULES = new Set(['tcp', 'udp', 'sctp']);
const KNOWN_MODULES = new Set([
  ...L4_MODULES,
  'comment',
  'addrtype',
  'mark',
  'statistic',
  'recent',
  'conntrack',
  'state',
  'physdev',
  'nfacct',
]);

function parseNumber(text: string | undefined, what: string): number {
  const value = Number(text);
  if (text === undefined || text === '' || !Number.isFinite(value)) {
    throw new TraceError(`${what}: expected a number, got ${JSON.stringify(text)}`);
  }
  return value;
}

function parseMark(text: string | undefined, what: string): { value: number; mask: number } {
  const [value, mask] = (text ?? '').split('/');
  return {
    value: parseNumber(value, what) >>> 0,
    mask: mask === undefined ? 0xffffffff : parseNumber(mask, what) >>> 0,
  };
}

/** Parses the arguments of one rule (after `-A CHAIN`, or a jump rule's argv). */
export function parseRule(args: readonly string[]): ParsedRule {
  const matches: Match[] = [];
  const modules = new Set<string>();
  let target: Target = { kind: 'none' };
  let targetName: string | undefined;
  let negate = false;
  const need = (module: string, option: string): void => {
    if (!modules.has(module)) throw new TraceError(`option ${option} without -m ${module}`);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const value = (): string => {
      const next = args[++i];
      if (next === undefined) throw new TraceError(`option ${arg} without a value`);
      return next;
    };
    if (arg === '!') {
      negate = true;
      continue;
    }
    const not = negate;
    negate = false;
    if (targetName !== undefined) {
      // Target options.
      if (targetName === 'DNAT' && arg === '--to-destination') target = { kind: 'DNAT', to: value() };
      else if (targetName === 'REDIRECT' && arg === '--to-ports') {
        target = { kind: 'REDIRECT', port: parseNumber(value(), arg) };
      } else if (
        targetName === 'MARK' &&
        (arg === '--or-mark' || arg === '--xor-mark' || arg === '--and-mark')
      ) {
        const op = arg === '--or-mark' ? 'or' : arg === '--xor-mark' ? 'xor' : 'and';
        target = { kind: 'MARK', op, value: parseNumber(value(), arg) >>> 0, mask: 0xffffffff };
      } else if (targetName === 'MARK' && arg === '--set-mark') {
        target = { kind: 'MARK', op: 'set', ...parseMark(value(), arg) };
      } else if (targetName === 'MASQUERADE' && (arg === '--random-fully' || arg === '--random')) continue;
      else if (targetName === 'REJECT' && arg === '--reject-with') value();
      else throw new TraceError(`unknown option ${arg} of target ${targetName}`);
      continue;
    }
    switch (arg) {
      case '-s':
      case '--source':
        matches.push({ kind: 'source', cidr: value(), negate: not });
        break;
      case '-d':
      case '--destination':
        matches.push({ kind: 'destination', cidr: value(), negate: not });
        break;
      case '-p':
      case '--protocol': {
        const protocol = value().toLowerCase();
        if (!L4_MODULES.has(protocol)) throw new TraceError(`unknown protocol ${protocol}`);
        modules.add(protocol);
        matches.push({ kind: 'protocol', protocol, negate: not });
        break;
      }
      case '-i':
      case '--in-interface':
        matches.push({ kind: 'in-interface', name: value(), negate: not });
        break;
      case '-m':
      case '--match': {
        const module = value();
        if (!KNOWN_MODULES.has(module)) throw new TraceError(`unknown match -m ${module}`);
        modules.add(module);
        break;
      }
      case '--dport':
      case '--destination-port': {
        if (![...L4_MODULES].some((m) => modules.has(m)))
          throw new TraceError(`${arg} without -p tcp|udp|sctp`);
        matches.push({ kind: 'dport', port: parseNumber(value(), arg), negate: not });
        break;
      }
      case '--comment':
        need('comment', arg);
        value();
        break;
      case '--nfacct-name':
        need('nfacct', arg);
        value();
        break;
      case '--dst-type':
      case '--src-type': {
        need('addrtype', arg);
        const type = value();
        if (type !== 'LOCAL') throw new TraceError(`addrtype ${arg} ${type} is not supported`);
        matches.push({ kind: 'addrtype', which: arg === '--dst-type' ? 'dst' : 'src', negate: not });
        break;
      }
      case '--mark':
        need('mark', arg);
        matches.push({ kind: 'mark', ...parseMark(value(), arg), negate: not });
        break;
      case '--mode': {
        need('statistic', arg);
        const mode = value();
        if (mode !== 'random') throw new TraceError(`statistic --mode ${mode} is not supported`);
        break;
      }
      case '--probability':
        need('statistic', arg);
        matches.push({ kind: 'statistic', probability: parseNumber(value(), arg), negate: not });
        break;
      case '--name':
        need('recent', arg);
        value();
        break;
      case '--rcheck':
      case '--set':
        need('recent', arg);
        matches.push({ kind: 'recent', mode: arg === '--rcheck' ? 'rcheck' : 'set', negate: not });
        break;
      case '--seconds':
        need('recent', arg);
        value();
        break;
      case '--reap':
        need('recent', arg);
        break;
      case '--ctstate':
        need('conntrack', arg);
        matches.push({ kind: 'ctstate', states: value().split(','), negate: not });
        break;
      case '--state':
        // The old state match: the same states as conntrack's --ctstate.
        need('state', arg);
        matches.push({ kind: 'ctstate', states: value().split(','), negate: not });
        break;
      case '--physdev-is-in':
        need('physdev', arg);
        matches.push({ kind: 'physdev-in', negate: not });
        break;
      case '-j':
      case '--jump': {
        const name = value();
        targetName = name;
        if (!BUILTIN_TARGETS.has(name)) target = { kind: 'jump', chain: name };
        else if (name === 'DNAT' || name === 'MARK' || name === 'REDIRECT') target = { kind: 'none' };
        else target = { kind: name as 'RETURN' | 'ACCEPT' | 'DROP' | 'REJECT' | 'MASQUERADE' };
        break;
      }
      default:
        throw new TraceError(`unknown option ${arg}`);
    }
  }
  if (
    (targetName === 'DNAT' || targetName === 'MARK' || targetName === 'REDIRECT') &&
    target.kind === 'none'
  ) {
    throw new TraceError(`target ${targetName} without its value`);
  }
  return {
    text: args.map((arg) => (arg.includes(' ') || arg === '' ? `"${arg}"` : arg)).join(' '),
    matches,
    target,
  };
}

type MutableRuleset = Map<string, Map<string, ParsedRule[]>>;

/**
 * Applies restore input (`--noflush`: a declared chain is created or flushed, `-A` appends, `-X`
 * deletes) to a rule set; returns a new one. Chains and tables not in the text are kept.
 */
export function applyRestore(previous: Ruleset, text: string): Ruleset {
  const tables: MutableRuleset = new Map(
    [...previous].map(([name, chains]) => [
      name,
      new Map([...chains].map(([chain, rules]) => [chain, [...rules]])),
    ]),
  );
  let table: Map<string, ParsedRule[]> | undefined;
  let tableName = '';
  text.split('\n').forEach((line, index) => {
    const where = (): string => `line ${index + 1} (${tableName || 'no table'}): ${line}`;
    try {
      if (line === '' || line.startsWith('#')) return;
      if (line.startsWith('*')) {
        tableName = line.slice(1).trim();
        table = tables.get(tableName) ?? new Map<string, ParsedRule[]>();
        tables.set(tableName, table);
        return;
      }
      if (!table) throw new TraceError('outside a table');
      if (line === 'COMMIT') {
        table = undefined;
        return;
      }
      if (line.startsWith(':')) {
        const name = line.slice(1).split(' ')[0] ?? '';
        table.set(name, []);
        return;
      }
      const args = splitArgs(line);
      const [command, chain] = args;
      if (command === '-X' && chain !== undefined) {
        if (!table.delete(chain)) throw new TraceError(`-X of missing chain ${chain}`);
        return;
      }
      if (command === '-A' && chain !== undefined) {
        const rules = table.get(chain);
        if (!rules) throw new TraceError(`-A to undeclared chain ${chain}`);
        rules.push(parseRule(args.slice(2)));
        return;
      }
      throw new TraceError(`unknown command ${command ?? ''}`);
    } catch (error) {
      if (error instanceof TraceError) throw new TraceError(`${where()}: ${error.message}`);
      throw error;
    }
  });
  return tables;
}

/** Parses one whole restore text. */
export function parseRestore(text: string): Ruleset {
  return applyRestore(new Map(), text);
}

/** The built-in chains' rules that jump into ours, as the proxier leaves them. */
function builtinJumps(jumps: readonly JumpSpec[]): ReadonlyMap<string, readonly ParsedRule[]> {
  const chains = new Map<string, ParsedRule[]>();
  for (const jump of jumps) {
    const key = `${jump.table}/${jump.chain}`;
    const rule = parseRule(jumpArgs(jump));
    // Prepended jumps end up in reverse order; appended ones in order.
    const existing = chains.get(key) ?? [];
    chains.set(key, jump.position === 'prepend' ? [rule, ...existing] : [...existing, rule]);
  }
  return chains;
}

/** The packet as it travels: its destination changes with DNAT, its mark with MARK. */
interface Flight {
  readonly packet: Packet;
  readonly source: ParsedIP;
  destination: ParsedIP;
  port: number;
  mark: number;
  dnat: string | undefined;
  masquerade: boolean;
  readonly rules: TracedRule[];
}

type ChainVerdict = 'continue' | 'ACCEPT' | 'DROP' | 'REJECT' | 'NAT';

const MAX_DEPTH = 64;

class Walker {
  readonly ruleset: Ruleset;
  readonly host: HostFacts;
  readonly choose: Choose;
  readonly jumps: ReadonlyMap<string, readonly ParsedRule[]>;

  constructor(
    ruleset: Ruleset,
    host: HostFacts,
    choose: Choose,
    jumps: ReadonlyMap<string, readonly ParsedRule[]>,
  ) {
    this.ruleset = ruleset;
    this.host = host;
    this.choose = choose;
    this.jumps = jumps;
  }

  matches(match: Match, flight: Flight): boolean {
    const result = ((): boolean => {
      switch (match.kind) {
        case 'source':
          return inCIDR(flight.source, match.cidr);
        case 'destination':
          return inCIDR(flight.destination, match.cidr);
        case 'protocol':
          return flight.packet.protocol.toLowerCase() === match.protocol;
        case 'dport':
          return flight.port === match.port;
        case 'in-interface': {
          // A packet the node sends has no input interface: `-i x` fails, `! -i x` holds.
          if (flight.packet.origin.kind !== 'arriving') return false;
          const iif = flight.packet.origin.iif;
          return match.name.endsWith('+') ? iif.startsWith(match.name.slice(0, -1)) : iif === match.name;
        }
        case 'addrtype':
          return isLocalAddress(this.host, match.which === 'dst' ? flight.destination : flight.source);
        case 'mark':
          return (flight.mark & match.mask) >>> 0 === match.value;
        case 'statistic': {
          const taken = this.choose(
            2,
            (i) => `statistic ${match.probability}: ${i === 0 ? 'taken' : 'not taken'}`,
          );
          return taken === 0;
        }
        case 'recent':
          // No client is remembered yet: a check finds nothing, recording always succeeds.
          return match.mode === 'set';
        case 'physdev-in':
          // No packet in a trace comes through a bridge port (HostFacts names no bridges).
          return false;
        case 'ctstate': {
          // The first packet of a connection: NEW, plus DNAT once a DNAT rule has rewritten it.
          const states = new Set(['NEW', ...(flight.dnat !== undefined ? ['DNAT'] : [])]);
          return match.states.some((state) => states.has(state));
        }
        default: {
          const unknown: never = match;
          throw new TraceError(`unknown match ${JSON.stringify(unknown)}`);
        }
      }
    })();
    return result !== match.negate;
  }

  /** Runs one chain; `continue` when it falls off its end or returns. */
  run(
    table: string,
    chain: string,
    rules: readonly ParsedRule[],
    flight: Flight,
    depth: number,
  ): ChainVerdict {
    if (depth > MAX_DEPTH) throw new TraceError(`jumps nested deeper than ${MAX_DEPTH} at ${table}/${chain}`);
    for (const rule of rules) {
      if (!rule.matches.every((match) => this.matches(match, flight))) continue;
      flight.rules.push({ table, chain, rule: rule.text });
      const target = rule.target;
      switch (target.kind) {
        case 'none':
          continue;
        case 'jump': {
          const next = this.ruleset.get(table)?.get(target.chain);
          if (next === undefined)
            throw new TraceError(`${table}/${chain}: jump to unknown chain or target ${target.chain}`);
          const verdict = this.run(table, target.chain, next, flight, depth + 1);
          if (verdict !== 'continue') return verdict;
          continue;
        }
        case 'RETURN':
          return 'continue';
        case 'ACCEPT':
        case 'DROP':
        case 'REJECT':
          return target.kind;
        case 'MASQUERADE':
          if (table !== 'nat') throw new TraceError(`MASQUERADE in table ${table}`);
          flight.masquerade = true;
          return 'NAT';
        case 'DNAT': {
          if (table !== 'nat') throw new TraceError(`DNAT in table ${table}`);
          const { ip, port } = splitHostPort(target.to);
          flight.destination = ip;
          flight.port = port;
          flight.dnat = joinHostPort(ip.text, port);
          return 'NAT';
        }
        case 'REDIRECT': {
          if (table !== 'nat') throw new TraceError(`REDIRECT in table ${table}`);
          const ip = redirectAddress(this.host, flight.packet);
          flight.destination = ip;
          flight.port = target.port;
          flight.dnat = joinHostPort(ip.text, target.port);
          return 'NAT';
        }
        case 'MARK':
          flight.mark = markOp(flight.mark, target.op, target.value, target.mask);
          continue;
        default: {
          const unknown: never = target;
          throw new TraceError(`unknown target ${JSON.stringify(unknown)}`);
        }
      }
    }
    return 'continue';
  }

  /** One built-in chain: the proxier's jumps into ours. Policy ACCEPT. */
  hook(table: string, chain: string, flight: Flight): 'DROP' | 'REJECT' | undefined {
    // Jump targets the text does not declare exist empty (the proxier creates them).
    const rules = (this.jumps.get(`${table}/${chain}`) ?? []).filter(
      (rule) => rule.target.kind !== 'jump' || this.ruleset.get(table)?.has(rule.target.chain) === true,
    );
    const verdict = this.run(table, chain, rules, flight, 0);
    return verdict === 'DROP' || verdict === 'REJECT' ? verdict : undefined;
  }
}

/**
 * Where REDIRECT sends a packet: the loopback address for the node's own packets, else (the
 * incoming interface's primary address, unknown here) the host's first address of the family.
 */
function redirectAddress(host: HostFacts, packet: Packet): ParsedIP {
  const loopback = requireIP(packet.family === 'IPv4' ? '127.0.0.1' : '::1', 'loopback');
  if (packet.origin.kind === 'local') return loopback;
  for (const text of host.localAddresses) {
    const ip = parseIP(text);
    if (ip?.family === packet.family) return ip;
  }
  return loopback;
}

function markOp(mark: number, op: 'or' | 'xor' | 'and' | 'set', value: number, mask: number): number {
  switch (op) {
    case 'or':
      return (mark | value) >>> 0;
    case 'xor':
      return (mark ^ value) >>> 0;
    case 'and':
      return (mark & value) >>> 0;
    case 'set':
      return ((mark & ~mask) | value) >>> 0;
    default: {
      const unknown: never = op;
      throw new TraceError(`unknown MARK operation ${String(unknown)}`);
    }
  }
}

/**
 * Traces one packet through the rule set as the kernel would walk it (nat runs before filter at
 * each hook, as their priorities say):
 * - arriving: nat PREROUTING, then filter INPUT when the (DNATed) destination is this host's,
 *   else filter FORWARD and nat POSTROUTING;
 * - sent by the node: nat OUTPUT, filter OUTPUT, nat POSTROUTING, and filter INPUT when the
 *   destination is this host's.
 */
export function traceIptables(
  ruleset: Ruleset,
  packet: Packet,
  host: HostFacts,
  ownerJumps: readonly JumpSpec[] = IPTABLES_JUMPS,
): TraceResult {
  const jumps = builtinJumps(ownerJumps);
  const source = requireIP(packet.sourceIP, 'source');
  const destination = requireIP(packet.destIP, 'destination');
  for (const ip of [source, destination]) {
    if (ip.family !== packet.family) throw new TraceError(`${ip.text} is not an ${packet.family} address`);
  }
  const paths = explorePaths((choose, choices): TracedPath => {
    const walker = new Walker(ruleset, host, choose, jumps);
    const flight: Flight = {
      packet,
      source,
      destination,
      port: packet.destPort,
      mark: 0,
      dnat: undefined,
      masquerade: false,
      rules: [],
    };
    const hooks: [string, string][] =
      packet.origin.kind === 'arriving'
        ? [['nat', 'PREROUTING']]
        : [
            ['nat', 'OUTPUT'],
            ['filter', 'OUTPUT'],
          ];
    // Routing happens after the DNAT, and decides which hooks come next.
    const route = (): [string, string][] => {
      const local = isLocalAddress(host, flight.destination);
      if (packet.origin.kind === 'arriving') {
        return local
          ? [['filter', 'INPUT']]
          : [
              ['filter', 'FORWARD'],
              ['nat', 'POSTROUTING'],
            ];
      }
      return local
        ? [
            ['nat', 'POSTROUTING'],
            ['filter', 'INPUT'],
          ]
        : [['nat', 'POSTROUTING']];
    };
    let refused: 'DROP' | 'REJECT' | undefined;
    let routed = false;
    for (let i = 0; i < hooks.length && refused === undefined; i++) {
      const [table, chain] = hooks[i] as [string, string];
      refused = walker.hook(table, chain, flight);
      if (i === hooks.length - 1 && !routed) {
        routed = true;
        hooks.push(...route());
      }
    }
    const end: PathEnd =
      refused === 'DROP'
        ? { kind: 'drop' }
        : refused === 'REJECT'
          ? { kind: 'reject' }
          : flight.dnat !== undefined
            ? { kind: 'dnat', endpoint: flight.dnat }
            : { kind: 'pass' };
    return {
      end,
      masquerade: refused ? false : flight.masquerade,
      choices: [...choices],
      rules: flight.rules,
    };
  });
  return combinePaths(paths);
}
