// An in-memory nftables table that applies the transactions our renderer writes, the way
// knftables ships a Fake beside the real thing. It fails where `nft -f` would: deleting what is
// missing or still referenced, an element pointing at a missing chain, a rule naming a missing set,
// an element that does not fit its set's type, overlapping intervals. A transaction is atomic:
// on error the table is left as it was. It knows only the command shapes render.ts emits and
// rejects anything else. The tracer (tracer.ts) walks the state it holds; `listTable` writes that
// state back as a transaction, which `applyScript` reads back.

export interface BaseChainProps {
  readonly type: string;
  readonly hook: string;
  readonly priority: number;
}

export interface FakeChain {
  readonly base: BaseChainProps | undefined;
  readonly comment: string;
  rules: string[];
}

export interface FakeElement {
  /** `` for a set element; a verdict (`goto x`, `drop`) or data (`10.0.0.1 . 80`) for a map. */
  readonly value: string;
  readonly comment: string;
}

export interface FakeSet {
  readonly isMap: boolean;
  /** The declaration between the braces, as written. */
  readonly body: string;
  /** Number of concatenated parts of a key, and of a map's data. */
  readonly keyParts: number;
  readonly dataParts: number;
  readonly verdictMap: boolean;
  readonly flags: ReadonlySet<string>;
  elements: Map<string, FakeElement>;
}

export interface FakeTable {
  /** `ip kube-proxy` / `ip6 kube-proxy`. */
  readonly prefix: string;
  exists: boolean;
  readonly chains: Map<string, FakeChain>;
  readonly sets: Map<string, FakeSet>;
}

export class FakeNftError extends Error {
  override readonly name = 'FakeNftError';
}

function fail(line: number, text: string, why: string): never {
  throw new FakeNftError(`line ${line}: ${why}: ${text}`);
}

export function emptyTable(prefix = 'ip kube-proxy'): FakeTable {
  return { prefix, exists: false, chains: new Map(), sets: new Map() };
}

function copy(table: FakeTable): FakeTable {
  return {
    prefix: table.prefix,
    exists: table.exists,
    chains: new Map([...table.chains].map(([name, chain]) => [name, { ...chain, rules: [...chain.rules] }])),
    sets: new Map([...table.sets].map(([name, set]) => [name, { ...set, elements: new Map(set.elements) }])),
  };
}

const CHAIN_REF = /(?:goto|jump) ([A-Za-z0-9_./-]+)/g;
const SET_REF = /@([A-Za-z0-9_.-]+)/g;

/** Chains and sets something refers to (rules and verdict elements). */
function references(table: FakeTable): { chains: Set<string>; sets: Set<string> } {
  const chains = new Set<string>();
  const sets = new Set<string>();
  for (const chain of table.chains.values()) {
    for (const rule of chain.rules) {
      for (const match of rule.matchAll(CHAIN_REF)) chains.add(match[1] as string);
      for (const match of rule.matchAll(SET_REF)) sets.add(match[1] as string);
    }
  }
  for (const set of table.sets.values()) {
    for (const element of set.elements.values()) {
      const match = /^(?:goto|jump) (\S+)$/.exec(element.value);
      if (match) chains.add(match[1] as string);
    }
  }
  return { chains, sets };
}

/** Splits `a . b . c` at the concatenation dots (not inside addresses). */
export function splitConcat(text: string): string[] {
  return text.split(' . ').map((part) => part.trim());
}

/** `{ … }` of an `add chain|set|map` command, or '' without one. */
function braces(words: readonly string[], line: number, text: string): string {
  if (words.length === 0) return '';
  if (words[0] !== '{' || words[words.length - 1] !== '}') fail(line, text, 'expected { … }');
  return words.slice(1, -1).join(' ');
}

function parseChainBody(
  body: string,
  line: number,
  text: string,
): { base: BaseChainProps | undefined; comment: string } {
  const comment = /comment "([^"]*)"/.exec(body)?.[1] ?? '';
  const rest = body.replace(/comment "[^"]*"\s*;?/, '').trim();
  if (rest === '') return { base: undefined, comment };
  const match =
    /^type (filter|nat) hook (prerouting|input|forward|output|postrouting) priority (-?\d+) ;$/.exec(rest);
  if (!match) fail(line, text, 'unknown chain declaration');
  return {
    base: { type: match[1] as string, hook: match[2] as string, priority: Number(match[3]) },
    comment,
  };
}

function parseSetBody(isMap: boolean, body: string, line: number, text: string): Omit<FakeSet, 'elements'> {
  const clauses = body
    .replace(/comment "[^"]*"\s*;?/, '')
    .split(';')
    .map((clause) => clause.trim())
    .filter((clause) => clause !== '');
  let keyParts = 0;
  let dataParts = 0;
  let verdictMap = false;
  const flags = new Set<string>();
  for (const clause of clauses) {
    const [word, ...rest] = clause.split(' ');
    const value = rest.join(' ');
    if (word === 'type' || word === 'typeof') {
      const [key = '', data] = value.split(' : ');
      keyParts = splitConcat(key).length;
      if (isMap !== (data !== undefined))
        fail(line, text, isMap ? 'a map needs a data type' : 'a set has no data');
      if (data !== undefined) {
        verdictMap = data === 'verdict';
        dataParts = verdictMap ? 1 : splitConcat(data).length;
      }
    } else if (word === 'flags') {
      for (const flag of value.split(',')) flags.add(flag.trim());
    } else if (word === 'size' || word === 'timeout') {
      continue;
    } else fail(line, text, `unknown set clause ${JSON.stringify(clause)}`);
  }
  if (keyParts === 0) fail(line, text, 'a set needs a type');
  return { isMap, body, keyParts, dataParts, verdictMap, flags };
}

/** `key [comment "x"] [: value]` of one element line. */
function parseElement(text: string): { key: string; element: FakeElement } {
  const colon = text.lastIndexOf(' : ');
  const head = colon >= 0 ? text.slice(0, colon) : text;
  const value = colon >= 0 ? text.slice(colon + 3) : '';
  const match = / comment "([^"]*)"$/.exec(head);
  return {
    key: match ? head.slice(0, match.index) : head,
    element: { value, comment: match?.[1] ?? '' },
  };
}

const VERDICT = /^(?:drop|accept|return|continue|(?:goto|jump) \S+)$/;

/** Whether two interval keys overlap in every part (nft refuses such elements). */
function overlaps(a: readonly string[], b: readonly string[]): boolean {
  return a.every((part, i) => {
    const other = b[i] as string;
    if (!part.includes('/') && !other.includes('/')) return part === other;
    return cidrsOverlap(part, other);
  });
}

function cidrsOverlap(a: string, b: string): boolean {
  const bounds = (text: string): [bigint, bigint, boolean] | undefined => {
    const [ip = '', prefixText] = text.split('/');
    const v6 = ip.includes(':');
    const width = v6 ? 128n : 32n;
    const value = v6 ? ipv6Value(ip) : ipv4Value(ip);
    if (value === undefined) return undefined;
    const prefix = prefixText === undefined ? width : BigInt(prefixText);
    const size = 1n << (width - prefix);
    const start = value & ~(size - 1n);
    return [start, start + size - 1n, v6];
  };
  const x = bounds(a);
  const y = bounds(b);
  if (!x || !y || x[2] !== y[2]) return a === b;
  return x[0] <= y[1] && y[0] <= x[1];
}

function ipv4Value(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  return parts.reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6Value(text: string): bigint | undefined {
  const [left = '', right] = text.split('::');
  const l = left ? left.split(':') : [];
  const r = right ? right.split(':') : [];
  const groups = right === undefined ? l : [...l, ...Array<string>(8 - l.length - r.length).fill('0'), ...r];
  if (groups.length !== 8) return undefined;
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function checkElement(
  set: FakeSet,
  name: string,
  key: string,
  element: FakeElement,
  line: number,
  text: string,
): void {
  const parts = splitConcat(key);
  if (parts.length !== set.keyParts)
    fail(line, text, `key has ${parts.length} parts, set ${name} ${set.keyParts}`);
  if (!set.flags.has('interval') && parts.some((part) => part.includes('/'))) {
    fail(line, text, `range in set ${name}, which has no interval flag`);
  }
  if (!set.isMap) {
    if (element.value !== '') fail(line, text, `set ${name} takes no data`);
    return;
  }
  if (set.verdictMap) {
    if (!VERDICT.test(element.value)) fail(line, text, `not a verdict: ${element.value}`);
  } else if (splitConcat(element.value).length !== set.dataParts) {
    fail(line, text, `data has ${splitConcat(element.value).length} parts, map ${name} ${set.dataParts}`);
  }
}

/** Applies one transaction; throws FakeNftError (and leaves `table` unchanged) on any error. */
export function applyScript(table: FakeTable, script: string, prefix = table.prefix): FakeTable {
  if (prefix !== table.prefix) throw new FakeNftError(`table ${table.prefix} is not ${prefix}`);
  const next = copy(table);
  const lines = script.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const n = i + 1;
    if (line === '') continue;
    const words = line.split(' ');
    const [verb, kind] = words;
    if (`${words[2]} ${words[3]}` !== prefix) fail(n, line, 'wrong table');
    const name = words[4] ?? '';
    if (kind === 'table') {
      if (verb === 'add') next.exists = true;
      else if (verb === 'delete') {
        if (!next.exists) fail(n, line, 'no such table');
        next.chains.clear();
        next.sets.clear();
        next.exists = false;
      } else fail(n, line, 'unknown table command');
      continue;
    }
    if (!next.exists) fail(n, line, 'no such table');
    if (kind === 'chain') {
      const chain = next.chains.get(name);
      if (verb === 'add') {
        const declared = parseChainBody(braces(words.slice(5), n, line), n, line);
        if (chain && JSON.stringify(chain.base) !== JSON.stringify(declared.base)) {
          fail(n, line, 'chain exists with other hook properties');
        }
        if (!chain) next.chains.set(name, { ...declared, rules: [] });
      } else if (verb === 'flush') {
        if (!chain) fail(n, line, 'no such chain');
        chain.rules = [];
      } else if (verb === 'delete') {
        if (!chain) fail(n, line, 'no such chain');
        // The chain's own rules go with it; references from elsewhere keep it alive.
        chain.rules = [];
        if (references(next).chains.has(name)) fail(n, line, 'chain in use');
        next.chains.delete(name);
      } else fail(n, line, 'unknown chain command');
      continue;
    }
    if (kind === 'rule') {
      const rule = words.slice(5).join(' ');
      const chain = next.chains.get(name);
      if (verb !== 'add') fail(n, line, 'unknown rule command');
      if (!chain) fail(n, line, 'no such chain');
      for (const match of rule.matchAll(SET_REF)) {
        if (!next.sets.has(match[1] as string)) fail(n, line, `no such set ${match[1]}`);
      }
      for (const match of rule.matchAll(CHAIN_REF)) {
        if (!next.chains.has(match[1] as string)) fail(n, line, `no such chain ${match[1]}`);
      }
      chain.rules.push(rule);
      continue;
    }
    if (kind === 'set' || kind === 'map') {
      const set = next.sets.get(name);
      if (set && set.isMap !== (kind === 'map')) fail(n, line, `${name} is not a ${kind}`);
      if (verb === 'add') {
        const declared = parseSetBody(kind === 'map', braces(words.slice(5), n, line), n, line);
        if (set && set.body !== declared.body) fail(n, line, 'set exists with another declaration');
        if (!set) next.sets.set(name, { ...declared, elements: new Map() });
      } else if (verb === 'flush') {
        if (!set) fail(n, line, 'no such set');
        set.elements = new Map();
      } else if (verb === 'delete') {
        if (!set) fail(n, line, 'no such set');
        if (references(next).sets.has(name)) fail(n, line, 'set in use');
        next.sets.delete(name);
      } else fail(n, line, 'unknown set command');
      continue;
    }
    if (kind === 'element') {
      const set = next.sets.get(name);
      if (!set) fail(n, line, 'no such set');
      if (words[5] !== '{' || words.length !== 6) fail(n, line, 'expected one element per line');
      for (i++; i < lines.length && lines[i] !== '}'; i++) {
        const item = (lines[i] as string).replace(/^\t/, '').replace(/,$/, '');
        const { key, element } = parseElement(item);
        if (verb === 'add') {
          checkElement(set, name, key, element, i + 1, item);
          const old = set.elements.get(key);
          if (old !== undefined && old.value !== element.value)
            fail(i + 1, item, 'element exists with another value');
          if (set.flags.has('interval') && old === undefined) {
            const parts = splitConcat(key);
            for (const other of set.elements.keys()) {
              if (overlaps(parts, splitConcat(other))) fail(i + 1, item, `interval overlaps ${other}`);
            }
          }
          const target = /^(?:goto|jump) (\S+)/.exec(element.value);
          if (target && !next.chains.has(target[1] as string))
            fail(i + 1, item, `no such chain ${target[1]}`);
          set.elements.set(key, old ?? element);
        } else if (verb === 'delete') {
          if (!set.elements.has(key)) fail(i + 1, item, 'no such element');
          set.elements.delete(key);
        } else fail(n, line, 'unknown element command');
      }
      if (i >= lines.length) fail(n, line, 'element list without its closing brace');
      continue;
    }
    fail(n, line, 'unknown command');
  }
  return next;
}

function elementLine(key: string, element: FakeElement): string {
  return `${key}${element.comment ? ` comment "${element.comment}"` : ''}${element.value ? ` : ${element.value}` : ''}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted plain view, for deepStrictEqual. */
export function dump(table: FakeTable): { chains: Record<string, string[]>; sets: Record<string, string[]> } {
  const chains: Record<string, string[]> = {};
  for (const name of [...table.chains.keys()].sort(compare))
    chains[name] = [...(table.chains.get(name)?.rules ?? [])];
  const sets: Record<string, string[]> = {};
  for (const name of [...table.sets.keys()].sort(compare)) {
    sets[name] = [...(table.sets.get(name)?.elements ?? new Map<string, FakeElement>())]
      .map(([key, element]) => elementLine(key, element))
      .sort(compare);
  }
  return { chains, sets };
}

/**
 * The table as a transaction that recreates it on an empty fake (or in nft): chains, then sets
 * and maps, then rules, then elements, each in name order.
 */
export function listTable(table: FakeTable): string {
  if (!table.exists) return '';
  const p = table.prefix;
  const out = [`add table ${p}`];
  const chainNames = [...table.chains.keys()].sort(compare);
  for (const name of chainNames) {
    const chain = table.chains.get(name) as FakeChain;
    const parts: string[] = [];
    if (chain.base)
      parts.push(`type ${chain.base.type} hook ${chain.base.hook} priority ${chain.base.priority} ;`);
    if (chain.comment) parts.push(`comment "${chain.comment}" ;`);
    out.push(parts.length > 0 ? `add chain ${p} ${name} { ${parts.join(' ')} }` : `add chain ${p} ${name}`);
  }
  const setNames = [...table.sets.keys()].sort(compare);
  for (const name of setNames) {
    const set = table.sets.get(name) as FakeSet;
    out.push(`add ${set.isMap ? 'map' : 'set'} ${p} ${name} { ${set.body} }`);
  }
  for (const name of chainNames)
    for (const rule of table.chains.get(name)?.rules ?? []) out.push(`add rule ${p} ${name} ${rule}`);
  for (const name of setNames) {
    const elements = [...(table.sets.get(name)?.elements ?? [])];
    if (elements.length === 0) continue;
    out.push(`add element ${p} ${name} {`);
    for (const [key, element] of elements.sort((a, b) => compare(a[0], b[0])))
      out.push(`\t${elementLine(key, element)},`);
    out.push('}');
  }
  return `${out.join('\n')}\n`;
}
