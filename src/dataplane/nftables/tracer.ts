// A packet tracer over the nftables fake (fake.ts): which rules one new connection's first packet
// meets on its way through the node, and what becomes of it. Pure: no kernel, no root. It
// interprets the rule syntax our renderer writes (skeleton.ts, service.ts): payload and meta
// matches, set and verdict-map lookups with concatenated keys (interval parts match by prefix),
// `fib ... type local`, conntrack state, marks, jump/goto/return, and the NAT statements; a random
// index (`numgen random mod N`) is not drawn but explored, every value. Anything else throws,
// naming it: a rule the tracer cannot judge must never pass silently.
import {
  combinePaths,
  explorePaths,
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
import { cidrContains, joinHostPort, parseCIDR, parseIP, type ParsedIP } from '../../util/ip.ts';
import { splitConcat, type FakeChain, type FakeTable } from './fake.ts';

/** A value the rules compute from the packet: an address, a number, or a word. */
type Value =
  | { readonly type: 'addr'; readonly ip: ParsedIP }
  | { readonly type: 'int'; readonly value: bigint }
  | { readonly type: 'str'; readonly value: string }
  /** `ct state`, `ct status`: a set of flags; a literal matches when it is among them. */
  | { readonly type: 'flags'; readonly values: readonly string[] };

type Operator = '&' | '|' | '^';

/** A packet field (or constant) and the bitwise operations applied to it. */
interface Primary {
  readonly field: string;
  readonly ops: readonly (readonly [Operator, string])[];
}

type Expr = readonly Primary[];

type Statement =
  | {
      readonly kind: 'compare';
      readonly expr: Expr;
      readonly negate: boolean;
      readonly right: readonly string[];
    }
  | { readonly kind: 'lookup'; readonly expr: Expr; readonly negate: boolean; readonly set: string }
  | { readonly kind: 'vmap'; readonly expr: Expr; readonly map: string }
  | { readonly kind: 'verdict'; readonly verdict: 'accept' | 'drop' | 'reject' | 'return' }
  | { readonly kind: 'jump' | 'goto'; readonly chain: string }
  | { readonly kind: 'mark-set'; readonly expr: Expr }
  | { readonly kind: 'update'; readonly set: string; readonly expr: Expr }
  | { readonly kind: 'dnat-map'; readonly expr: Expr; readonly map: string }
  | { readonly kind: 'dnat'; readonly to: string }
  | { readonly kind: 'masquerade' };

/** Splits a rule into words; a quoted string is one word (quotes kept), `{`, `}` and `,` stand alone. */
export function tokenize(rule: string): string[] {
  const tokens: string[] = [];
  const re = /"[^"]*"|[{},]|[^\s{},]+/g;
  for (const match of rule.matchAll(re)) tokens.push(match[0]);
  return tokens;
}

/** Fields an expression can start with, and how many words each takes. */
const FIELDS: Readonly<Record<string, readonly string[][]>> = {
  ip: [['saddr'], ['daddr']],
  ip6: [['saddr'], ['daddr']],
  meta: [['l4proto'], ['mark']],
  th: [['dport']],
  tcp: [['dport']],
  udp: [['dport']],
  sctp: [['dport']],
  ct: [['state'], ['status']],
  fib: [
    ['daddr', 'type'],
    ['saddr', 'type'],
  ],
};

class Parser {
  private readonly tokens: readonly string[];
  private position = 0;
  constructor(tokens: readonly string[]) {
    this.tokens = tokens;
  }
  peek(offset = 0): string | undefined {
    return this.tokens[this.position + offset];
  }
  next(what: string): string {
    const token = this.tokens[this.position++];
    if (token === undefined) throw new TraceError(`expected ${what} at the end of the rule`);
    return token;
  }
  expect(token: string): void {
    const got = this.next(token);
    if (got !== token) throw new TraceError(`expected ${token}, got ${got}`);
  }
  done(): boolean {
    return this.position >= this.tokens.length;
  }

  /** `ip daddr`, `numgen random mod 3`, `mark`, a constant; then `& x`, `| y`, `and`, `or`, `xor`. */
  primary(): Primary {
    const word = this.next('an expression');
    let field: string;
    if (word === 'numgen') {
      this.expect('random');
      this.expect('mod');
      field = `numgen ${this.next('a modulus')}`;
    } else if (word === 'mark' || word === 'iifname') {
      field = word === 'mark' ? 'meta mark' : word;
    } else if (FIELDS[word]) {
      const options = FIELDS[word];
      const option = options.find((words) => words.every((w, i) => this.peek(i) === w));
      if (!option) throw new TraceError(`unknown expression ${word} ${this.peek() ?? ''}`);
      this.position += option.length;
      field = `${word} ${option.join(' ')}`;
    } else if (/^[0-9a-fA-F:.]+$/.test(word) && word !== '.') {
      field = `const ${word}`;
    } else {
      throw new TraceError(`unknown expression ${word}`);
    }
    const ops: [Operator, string][] = [];
    for (;;) {
      const op = this.peek();
      const operator: Operator | undefined =
        op === '&' || op === 'and'
          ? '&'
          : op === '|' || op === 'or'
            ? '|'
            : op === '^' || op === 'xor'
              ? '^'
              : undefined;
      if (operator === undefined) break;
      this.position++;
      ops.push([operator, this.next('an operand')]);
    }
    return { field, ops };
  }

  expr(): Expr {
    const parts = [this.primary()];
    while (this.peek() === '.') {
      this.position++;
      parts.push(this.primary());
    }
    return parts;
  }

  /** A right-hand side: one literal, or an anonymous set `{ a, b }`. */
  right(): string[] {
    if (this.peek() !== '{') return [this.next('a value')];
    this.position++;
    const values: string[] = [];
    for (;;) {
      const token = this.next('}');
      if (token === '}') return values;
      if (token !== ',') values.push(token);
    }
  }

  setName(): string {
    const token = this.next('@set');
    if (!token.startsWith('@')) throw new TraceError(`expected @set, got ${token}`);
    return token.slice(1);
  }

  statement(): Statement | undefined {
    const word = this.peek() as string;
    switch (word) {
      case 'comment':
        this.position++;
        this.next('a comment');
        return undefined;
      case 'counter':
        this.position++;
        return undefined;
      case 'accept':
      case 'drop':
      case 'return':
        this.position++;
        return { kind: 'verdict', verdict: word };
      case 'reject':
        this.position++;
        if (this.peek() === 'with') throw new TraceError('reject with … is not supported');
        return { kind: 'verdict', verdict: 'reject' };
      case 'jump':
      case 'goto':
        this.position++;
        return { kind: word, chain: this.next('a chain') };
      case 'masquerade':
        this.position++;
        while (this.peek() === 'fully-random' || this.peek() === 'random' || this.peek() === 'persistent')
          this.position++;
        return { kind: 'masquerade' };
      case 'update': {
        this.position++;
        const set = this.setName();
        this.expect('{');
        const expr = this.expr();
        if (this.peek() === 'timeout') {
          this.position++;
          this.next('a timeout');
        }
        this.expect('}');
        return { kind: 'update', set, expr };
      }
      case 'dnat': {
        this.position++;
        this.expect('to');
        const target = this.peek() ?? '';
        if (/^\[.*\]:\d+$/.test(target) || /^[\d.]+:\d+$/.test(target)) {
          this.position++;
          return { kind: 'dnat', to: target };
        }
        const expr = this.expr();
        this.expect('map');
        return { kind: 'dnat-map', expr, map: this.setName() };
      }
      default:
        break;
    }
    if ((word === 'mark' || word === 'meta') && this.peek(word === 'mark' ? 1 : 2) === 'set') {
      this.position += word === 'mark' ? 2 : 3;
      return { kind: 'mark-set', expr: this.expr() };
    }
    const expr = this.expr();
    const after = this.peek();
    if (after === 'vmap') {
      this.position++;
      return { kind: 'vmap', expr, map: this.setName() };
    }
    let negate = false;
    if (after === '!=' || after === '==') {
      this.position++;
      negate = after === '!=';
    }
    if (this.peek()?.startsWith('@')) return { kind: 'lookup', expr, negate, set: this.setName() };
    return { kind: 'compare', expr, negate, right: this.right() };
  }
}

export interface ParsedNftRule {
  readonly text: string;
  readonly statements: readonly Statement[];
}

export function parseNftRule(text: string): ParsedNftRule {
  const parser = new Parser(tokenize(text));
  const statements: Statement[] = [];
  try {
    while (!parser.done()) {
      const statement = parser.statement();
      if (statement) statements.push(statement);
    }
  } catch (error) {
    if (error instanceof TraceError) throw new TraceError(`rule ${JSON.stringify(text)}: ${error.message}`);
    throw error;
  }
  return { text, statements };
}

/** The packet as it travels: its destination changes with DNAT, its mark with `mark set`. */
interface Flight {
  readonly packet: Packet;
  readonly source: ParsedIP;
  destination: ParsedIP;
  port: number;
  mark: bigint;
  dnat: string | undefined;
  masquerade: boolean;
  readonly rules: TracedRule[];
}

type ChainVerdict = 'continue' | 'accept' | 'drop' | 'reject';

const MAX_DEPTH = 64;
const FAMILY: Readonly<Record<string, 'IPv4' | 'IPv6'>> = { ip: 'IPv4', ip6: 'IPv6' };

function literal(type: Value['type'], text: string, family: 'IPv4' | 'IPv6'): Value {
  switch (type) {
    case 'addr': {
      const ip = parseIP(text);
      if (!ip || ip.family !== family) throw new TraceError(`${text} is not an ${family} address`);
      return { type, ip };
    }
    case 'int':
      if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(text)) throw new TraceError(`${text} is not a number`);
      return { type, value: BigInt(text) };
    case 'str':
    case 'flags':
      return { type: 'str', value: text.replace(/^"|"$/g, '') };
    default: {
      const unknown: never = type;
      throw new TraceError(`unknown value type ${String(unknown)}`);
    }
  }
}

/** Whether `value` matches a literal of a rule or a set element (a CIDR matches by prefix). */
function matchesLiteral(value: Value, text: string, family: 'IPv4' | 'IPv6', interval: boolean): boolean {
  if (value.type === 'addr' && text.includes('/')) {
    if (!interval) throw new TraceError(`range ${text} outside an interval set`);
    const cidr = parseCIDR(text);
    if (!cidr) throw new TraceError(`${text} is not a CIDR`);
    return cidrContains(cidr, value.ip);
  }
  if (value.type === 'flags') return value.values.includes(text);
  if (value.type === 'str' && text.startsWith('"') && text.endsWith('*"')) {
    return value.value.startsWith(text.slice(1, -2));
  }
  const other = literal(value.type, text, family);
  switch (value.type) {
    case 'addr':
      return other.type === 'addr' && other.ip.value === value.ip.value;
    case 'int':
      return other.type === 'int' && other.value === value.value;
    case 'str':
      return other.type === 'str' && other.value === value.value;
    default: {
      const unknown: never = value;
      throw new TraceError(`unknown value ${JSON.stringify(unknown)}`);
    }
  }
}

class Walker {
  readonly table: FakeTable;
  readonly host: HostFacts;
  readonly choose: Choose;
  readonly family: 'IPv4' | 'IPv6';
  readonly parsed = new Map<string, ParsedNftRule>();

  constructor(table: FakeTable, host: HostFacts, choose: Choose, family: 'IPv4' | 'IPv6') {
    this.table = table;
    this.host = host;
    this.choose = choose;
    this.family = family;
  }

  /** The value of one primary, or undefined when the packet has no such field (`tcp dport` of UDP). */
  field(primary: Primary, flight: Flight): Value | undefined {
    const packet = flight.packet;
    const proto = packet.protocol.toLowerCase();
    let value: Value | undefined;
    const [head = '', name = ''] = primary.field.split(' ');
    switch (head) {
      case 'ip':
      case 'ip6':
        if (FAMILY[head] !== this.family) return undefined;
        value = { type: 'addr', ip: name === 'saddr' ? flight.source : flight.destination };
        break;
      case 'meta':
        value = name === 'l4proto' ? { type: 'str', value: proto } : { type: 'int', value: flight.mark };
        break;
      case 'th':
      case 'tcp':
      case 'udp':
      case 'sctp':
        if (head !== 'th' && head !== proto) return undefined;
        value = { type: 'int', value: BigInt(flight.port) };
        break;
      case 'iifname':
        // A packet the node sends has no input interface.
        value = { type: 'str', value: packet.origin.kind === 'arriving' ? packet.origin.iif : '' };
        break;
      case 'ct':
        value =
          name === 'state'
            ? { type: 'flags', values: ['new'] }
            : { type: 'flags', values: flight.dnat !== undefined ? ['dnat'] : [] };
        break;
      case 'fib': {
        const ip = name === 'saddr' ? flight.source : flight.destination;
        value = { type: 'str', value: isLocalAddress(this.host, ip) ? 'local' : 'unicast' };
        break;
      }
      case 'numgen': {
        const modulus = Number(name);
        if (!Number.isInteger(modulus) || modulus < 1) throw new TraceError(`numgen modulus ${name}`);
        value = {
          type: 'int',
          value: BigInt(this.choose(modulus, (i) => `numgen random mod ${modulus} = ${i}`)),
        };
        break;
      }
      case 'const': {
        const ip = parseIP(name);
        value = ip ? { type: 'addr', ip } : literal('int', name, this.family);
        break;
      }
      default:
        throw new TraceError(`unknown expression ${primary.field}`);
    }
    for (const [op, operand] of primary.ops) value = this.bitwise(value, op, operand);
    return value;
  }

  bitwise(value: Value, op: Operator, operand: string): Value {
    const apply = (a: bigint, b: bigint): bigint => (op === '&' ? a & b : op === '|' ? a | b : a ^ b);
    if (value.type === 'addr') {
      const other = literal('addr', operand, value.ip.family);
      if (other.type !== 'addr') throw new TraceError(`bad operand ${operand}`);
      const result = apply(value.ip.value, other.ip.value);
      const ip = parseIP(addressText(result, value.ip.family));
      if (!ip) throw new TraceError(`bad address after ${op} ${operand}`);
      return { type: 'addr', ip };
    }
    if (value.type === 'int') {
      const other = literal('int', operand, this.family);
      if (other.type !== 'int') throw new TraceError(`bad operand ${operand}`);
      return { type: 'int', value: apply(value.value, other.value) };
    }
    throw new TraceError(`${op} ${operand} on a ${value.type} value`);
  }

  evaluate(expr: Expr, flight: Flight): Value[] | undefined {
    const values: Value[] = [];
    for (const primary of expr) {
      const value = this.field(primary, flight);
      if (value === undefined) return undefined;
      values.push(value);
    }
    return values;
  }

  /** The element of `setName` whose key matches `key`, if any. */
  lookup(
    setName: string,
    key: readonly Value[],
  ): { key: string; value: string; comment: string } | undefined {
    const set = this.table.sets.get(setName);
    if (!set) throw new TraceError(`no set @${setName}`);
    if (set.keyParts !== key.length)
      throw new TraceError(`@${setName} has ${set.keyParts}-part keys, lookup ${key.length}`);
    const interval = set.flags.has('interval');
    for (const [text, element] of set.elements) {
      const parts = splitConcat(text);
      if (parts.every((part, i) => matchesLiteral(key[i] as Value, part, this.family, interval))) {
        return { key: text, value: element.value, comment: element.comment };
      }
    }
    return undefined;
  }

  chain(name: string): FakeChain {
    const chain = this.table.chains.get(name);
    if (!chain) throw new TraceError(`no chain ${name}`);
    return chain;
  }

  rule(text: string): ParsedNftRule {
    let rule = this.parsed.get(text);
    if (!rule) {
      rule = parseNftRule(text);
      this.parsed.set(text, rule);
    }
    return rule;
  }

  /** Runs a chain: `continue` when it falls off its end or returns. */
  run(name: string, flight: Flight, depth: number): ChainVerdict {
    if (depth > MAX_DEPTH) throw new TraceError(`jumps nested deeper than ${MAX_DEPTH} at ${name}`);
    const chain = this.chain(name);
    const nat = chain.base?.type;
    for (const text of chain.rules) {
      const verdict = this.runRule(name, this.rule(text), flight);
      if (verdict === 'next') continue;
      if (verdict.kind === 'goto') {
        return this.run(verdict.chain, flight, depth + 1);
      }
      if (verdict.kind === 'jump') {
        const result = this.run(verdict.chain, flight, depth + 1);
        if (result !== 'continue') return result;
        continue;
      }
      if (verdict.kind === 'nat' && nat !== undefined && nat !== 'nat') {
        throw new TraceError(`NAT statement in ${nat} chain ${name}`);
      }
      return verdict.kind === 'nat' ? 'accept' : verdict.kind === 'return' ? 'continue' : verdict.kind;
    }
    return 'continue';
  }

  /** One rule: `next` when it does not match (or matches without a verdict). */
  runRule(
    chain: string,
    rule: ParsedNftRule,
    flight: Flight,
  ):
    | 'next'
    | { kind: 'goto' | 'jump'; chain: string }
    | { kind: 'accept' | 'drop' | 'reject' | 'return' | 'nat' } {
    // A map lookup is quoted with the element it found, as `nft list` prints one.
    const record = (element?: { set: string; key: string; value: string; comment: string }): void => {
      const comment = element?.comment ? ` comment ${JSON.stringify(element.comment)}` : '';
      flight.rules.push({
        table: this.table.prefix,
        chain,
        rule: rule.text,
        ...(element
          ? { element: { set: element.set, text: `${element.key}${comment} : ${element.value}` } }
          : {}),
      });
    };
    for (const statement of rule.statements) {
      switch (statement.kind) {
        case 'compare': {
          const values = this.evaluate(statement.expr, flight);
          if (values?.length !== 1) {
            if (values === undefined) return 'next';
            throw new TraceError(`comparison of a concatenation in ${rule.text}`);
          }
          const value = values[0] as Value;
          const hit = statement.right.some((text) => matchesLiteral(value, text, this.family, true));
          if (hit === statement.negate) return 'next';
          break;
        }
        case 'lookup': {
          const key = this.evaluate(statement.expr, flight);
          if (key === undefined) return 'next';
          const found = this.lookup(statement.set, key) !== undefined;
          if (found === statement.negate) return 'next';
          break;
        }
        case 'vmap': {
          const key = this.evaluate(statement.expr, flight);
          if (key === undefined) return 'next';
          const element = this.lookup(statement.map, key);
          if (!element) return 'next';
          record({ set: statement.map, ...element });
          const [verb = '', target] = element.value.split(' ');
          if ((verb === 'goto' || verb === 'jump') && target !== undefined)
            return { kind: verb, chain: target };
          if (verb === 'accept' || verb === 'drop' || verb === 'return') return { kind: verb };
          throw new TraceError(`unknown verdict ${element.value} in @${statement.map}`);
        }
        case 'verdict':
          record();
          return { kind: statement.verdict };
        case 'jump':
        case 'goto':
          record();
          return { kind: statement.kind, chain: statement.chain };
        case 'mark-set': {
          const values = this.evaluate(statement.expr, flight);
          const value = values?.[0];
          if (values?.length !== 1 || value?.type !== 'int')
            throw new TraceError(`mark set to a non-number in ${rule.text}`);
          flight.mark = value.value & 0xffffffffn;
          break;
        }
        case 'update': {
          // Remembering the client does not change this packet's fate: a no-op here.
          if (!this.table.sets.has(statement.set)) throw new TraceError(`no set @${statement.set}`);
          if (this.evaluate(statement.expr, flight) === undefined) return 'next';
          break;
        }
        case 'dnat-map': {
          const key = this.evaluate(statement.expr, flight);
          if (key === undefined) return 'next';
          const element = this.lookup(statement.map, key);
          if (!element) return 'next';
          record({ set: statement.map, ...element });
          const [ip = '', port = ''] = splitConcat(element.value);
          this.dnat(flight, joinHostPort(ip, Number(port)));
          return { kind: 'nat' };
        }
        case 'dnat':
          record();
          this.dnat(flight, statement.to);
          return { kind: 'nat' };
        case 'masquerade':
          record();
          flight.masquerade = true;
          return { kind: 'nat' };
        default: {
          const unknown: never = statement;
          throw new TraceError(`unknown statement ${JSON.stringify(unknown)}`);
        }
      }
    }
    record();
    return 'next';
  }

  dnat(flight: Flight, to: string): void {
    const { ip, port } = splitHostPort(to);
    if (ip.family !== this.family) throw new TraceError(`DNAT to ${to} in an ${this.family} table`);
    flight.destination = ip;
    flight.port = port;
    flight.dnat = joinHostPort(ip.text, port);
  }

  /** Every base chain of a hook, in priority order; undefined unless one drops or rejects. */
  hook(hook: string, flight: Flight): 'drop' | 'reject' | undefined {
    const chains = [...this.table.chains]
      .filter(([, chain]) => chain.base?.hook === hook)
      .sort((a, b) => (a[1].base?.priority ?? 0) - (b[1].base?.priority ?? 0));
    for (const [name] of chains) {
      const verdict = this.run(name, flight, 0);
      if (verdict === 'drop' || verdict === 'reject') return verdict;
    }
    return undefined;
  }
}

function addressText(value: bigint, family: 'IPv4' | 'IPv6'): string {
  if (family === 'IPv4') return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  return groups.join(':');
}

/**
 * Traces one packet through the fake's table as the kernel would walk it: the base chains of each
 * hook in priority order (filter before DNAT at -110, nat at -100, filter at 0);
 * - arriving: prerouting, then input when the (DNATed) destination is this host's, else forward
 *   and postrouting;
 * - sent by the node: output, postrouting, and input when the destination is this host's.
 */
export function traceNftables(table: FakeTable, packet: Packet, host: HostFacts): TraceResult {
  const family = FAMILY[table.prefix.split(' ')[0] ?? ''];
  if (family === undefined) throw new TraceError(`cannot trace table ${table.prefix}`);
  if (family !== packet.family) throw new TraceError(`an ${packet.family} packet in table ${table.prefix}`);
  const source = requireIP(packet.sourceIP, 'source');
  const destination = requireIP(packet.destIP, 'destination');
  for (const ip of [source, destination]) {
    if (ip.family !== packet.family) throw new TraceError(`${ip.text} is not an ${packet.family} address`);
  }
  const paths = explorePaths((choose, choices): TracedPath => {
    const walker = new Walker(table, host, choose, family);
    const flight: Flight = {
      packet,
      source,
      destination,
      port: packet.destPort,
      mark: 0n,
      dnat: undefined,
      masquerade: false,
      rules: [],
    };
    const hooks: string[] = [packet.origin.kind === 'arriving' ? 'prerouting' : 'output'];
    let refused: 'drop' | 'reject' | undefined;
    let routed = false;
    for (let i = 0; i < hooks.length && refused === undefined; i++) {
      refused = walker.hook(hooks[i] as string, flight);
      if (!routed) {
        // Routing happens after the DNAT, and decides which hooks come next.
        routed = true;
        const local = isLocalAddress(host, flight.destination);
        if (packet.origin.kind === 'arriving')
          hooks.push(...(local ? ['input'] : ['forward', 'postrouting']));
        else hooks.push(...(local ? ['postrouting', 'input'] : ['postrouting']));
      }
    }
    const end: PathEnd =
      refused !== undefined
        ? { kind: refused }
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
