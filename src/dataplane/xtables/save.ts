// Reading the kernel's rules: `iptables-save` and a parse of its text good enough to know which
// chains exist and which rules jump where. (The text is not parsed into matches: iptables-save
// reorders and re-quotes them, so callers compare the parts they care about.)
import type { IptablesTools, Runner, Table } from './tools.ts';

/** One table of an `iptables-save` dump: the chains it declares and its rule lines. */
export interface SavedTable {
  readonly chains: Set<string>;
  readonly rules: string[];
}

/** A parsed dump, by table name (the dump may hold tables no mode writes to, e.g. raw). */
export type SavedTables = ReadonlyMap<string, SavedTable>;

/** Splits a whole `iptables-save` dump (every table) into its tables. */
export function parseSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: new Set(), rules: [] };
      tables.set(line.slice(1).trim(), current);
    } else if (!current) {
      continue;
    } else if (line.startsWith(':')) {
      const end = line.indexOf(' ');
      current.chains.add(end < 0 ? line.slice(1) : line.slice(1, end));
    } else if (line.startsWith('-A ')) {
      current.rules.push(line);
    }
  }
  return tables;
}

/** Chain names declared in `iptables-save` output (`:NAME POLICY [p:b]`). */
export function chainsInSave(text: string): Set<string> {
  const chains = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) {
      const end = line.indexOf(' ');
      chains.add(end < 0 ? line.slice(1) : line.slice(1, end));
    }
  }
  return chains;
}

/** The chain a saved `-A CHAIN …` rule is in. */
export function ruleChain(rule: string): string {
  return rule.split(' ', 2)[1] ?? '';
}

/** The jump or goto target of a saved rule, ignoring text inside quoted comments. */
export function ruleTarget(rule: string): string | undefined {
  const unquoted = rule.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  let target: string | undefined;
  for (const match of unquoted.matchAll(/ -[jg] (\S+)/g)) target = match[1];
  return target;
}

/** Every table at once: one read of the kernel instead of one per check. */
export async function saveAll(run: Runner, tools: IptablesTools): Promise<string> {
  return (await run(tools.save, [], { timeoutMs: 60_000 })).stdout;
}

export async function saveTable(run: Runner, tools: IptablesTools, table: Table): Promise<string> {
  return (await run(tools.save, ['-t', table], { timeoutMs: 60_000 })).stdout;
}
