// A small model of what `nft -f` does with the transactions our renderer writes: enough to
// check that a sequence of partial transactions leaves the same table as one full transaction,
// and that every transaction would be accepted (no deleting what is missing or still in use,
// no element pointing at a missing chain, no rule using a missing set). It understands only
// the command shapes render.ts emits, and rejects anything else.

export interface FakeTable {
  chains: Map<string, string[]>;
  sets: Map<string, Map<string, string>>;
}

export class FakeNftError extends Error {}

function fail(line: number, text: string, why: string): never {
  throw new FakeNftError(`line ${line}: ${why}: ${text}`);
}

function references(table: FakeTable): { chains: Set<string>; sets: Set<string> } {
  const chains = new Set<string>();
  const sets = new Set<string>();
  for (const rules of table.chains.values()) {
    for (const rule of rules) {
      for (const match of rule.matchAll(/(?:goto|jump) ([A-Za-z0-9_./-]+)/g)) chains.add(match[1] as string);
      for (const match of rule.matchAll(/@([A-Za-z0-9_.-]+)/g)) sets.add(match[1] as string);
    }
  }
  for (const elements of table.sets.values()) {
    for (const value of elements.values()) {
      const match = /^goto (\S+)$/.exec(value);
      if (match) chains.add(match[1] as string);
    }
  }
  return { chains, sets };
}

function parseElement(text: string): { key: string; value: string } {
  const colon = text.lastIndexOf(' : ');
  const head = colon >= 0 ? text.slice(0, colon) : text;
  const value = colon >= 0 ? text.slice(colon + 3) : '';
  const comment = head.indexOf(' comment "');
  return {
    key: comment >= 0 ? head.slice(0, comment) : head,
    value: comment >= 0 ? `${value}  # ${head.slice(comment + 1)}` : value,
  };
}

/** Applies one transaction; throws FakeNftError (and leaves `table` unchanged) on any error. */
export function applyScript(table: FakeTable, script: string, prefix = 'ip kube-proxy'): FakeTable {
  const next: FakeTable = {
    chains: new Map([...table.chains].map(([name, rules]) => [name, [...rules]])),
    sets: new Map([...table.sets].map(([name, elements]) => [name, new Map(elements)])),
  };
  const lines = script.split('\n');
  let exists = table.chains.size > 0 || table.sets.size > 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const n = i + 1;
    if (line === '') continue;
    const words = line.split(' ');
    const [verb, kind] = words;
    const target = `${words[2]} ${words[3]}`;
    if (target !== prefix) fail(n, line, 'wrong table');
    const name = words[4] ?? '';
    if (kind === 'table') {
      if (verb === 'add') exists = true;
      else if (verb === 'delete') {
        if (!exists) fail(n, line, 'no such table');
        next.chains.clear();
        next.sets.clear();
        exists = false;
      } else fail(n, line, 'unknown table command');
      continue;
    }
    if (!exists) fail(n, line, 'no such table');
    if (kind === 'chain') {
      if (verb === 'add') {
        if (!next.chains.has(name)) next.chains.set(name, []);
      } else if (verb === 'flush') {
        if (!next.chains.has(name)) fail(n, line, 'no such chain');
        next.chains.set(name, []);
      } else if (verb === 'delete') {
        if (!next.chains.has(name)) fail(n, line, 'no such chain');
        next.chains.set(name, []);
        if (references(next).chains.has(name)) fail(n, line, 'chain in use');
        next.chains.delete(name);
      } else fail(n, line, 'unknown chain command');
      continue;
    }
    if (kind === 'rule') {
      const rule = words.slice(5).join(' ');
      const rules = next.chains.get(name);
      if (verb !== 'add' || !rules) fail(n, line, 'no such chain');
      for (const match of rule.matchAll(/@([A-Za-z0-9_.-]+)/g)) {
        if (!next.sets.has(match[1] as string)) fail(n, line, `no such set ${match[1]}`);
      }
      for (const match of rule.matchAll(/(?:goto|jump) ([A-Za-z0-9_./-]+)/g)) {
        if (!next.chains.has(match[1] as string)) fail(n, line, `no such chain ${match[1]}`);
      }
      rules.push(rule);
      continue;
    }
    if (kind === 'set' || kind === 'map') {
      if (verb === 'add') {
        if (!next.sets.has(name)) next.sets.set(name, new Map());
      } else if (verb === 'flush') {
        const set = next.sets.get(name);
        if (!set) fail(n, line, 'no such set');
        set.clear();
      } else if (verb === 'delete') {
        if (!next.sets.has(name)) fail(n, line, 'no such set');
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
        const { key, value } = parseElement(item);
        if (verb === 'add') {
          const old = set.get(key);
          if (old !== undefined && old !== value) fail(i + 1, item, 'element exists with another value');
          const target = /^goto (\S+)/.exec(value);
          if (target && !next.chains.has(target[1] as string))
            fail(i + 1, item, `no such chain ${target[1]}`);
          set.set(key, value);
        } else if (verb === 'delete') {
          if (!set.has(key)) fail(i + 1, item, 'no such element');
          set.delete(key);
        } else fail(n, line, 'unknown element command');
      }
      continue;
    }
    fail(n, line, 'unknown command');
  }
  return next;
}

export function emptyTable(): FakeTable {
  return { chains: new Map(), sets: new Map() };
}

/** Sorted plain view, for deepStrictEqual. */
export function dump(table: FakeTable): { chains: Record<string, string[]>; sets: Record<string, string[]> } {
  const chains: Record<string, string[]> = {};
  for (const name of [...table.chains.keys()].sort()) chains[name] = table.chains.get(name) ?? [];
  const sets: Record<string, string[]> = {};
  for (const name of [...table.sets.keys()].sort()) {
    sets[name] = [...(table.sets.get(name) ?? new Map<string, string>())]
      .map(([key, value]) => (value ? `${key} : ${value}` : key))
      .sort();
  }
  return { chains, sets };
}
