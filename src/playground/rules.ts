// The kernel's rules in node1 before and after a change, as the learner would list them
// (`iptables-save`, `nft list table`), and the difference: lines removed (-) and added (+), each
// tagged with where it lives (iptables table, nft chain/set/map), since a bare nft element or
// rule line means little on its own. Reading is an effect; the line splitting and diff are pure.
import type { ExecResult } from '../util/exec.ts';

export type RuleSyntax = 'iptables-save' | 'nft list';

export interface RuleListing {
  readonly syntax: RuleSyntax;
  /** The tool output, one text per table or family. */
  readonly texts: readonly string[];
}

/** How to list a mode's rules: nft for nftables, iptables-save (both families) otherwise. */
export function listingCommands(mode: string): {
  syntax: RuleSyntax;
  commands: readonly (readonly string[])[];
} {
  return mode === 'nftables'
    ? {
        syntax: 'nft list',
        commands: [
          ['nft', 'list', 'table', 'ip', 'kube-proxy'],
          ['nft', 'list', 'table', 'ip6', 'kube-proxy'],
        ],
      }
    : { syntax: 'iptables-save', commands: [['iptables-save'], ['ip6tables-save']] };
}

/** Reads the rules with `run` (a tool runner inside node1); a table that does not exist lists as nothing. */
export async function readRules(
  mode: string,
  run: (file: string, args: readonly string[]) => Promise<ExecResult>,
): Promise<RuleListing> {
  const { syntax, commands } = listingCommands(mode);
  const texts = await Promise.all(
    commands.map(async ([file, ...args]) => {
      try {
        return (await run(file ?? '', args)).stdout;
      } catch {
        return '';
      }
    }),
  );
  return { syntax, texts };
}

/** Splits at top-level `, ` (not inside quotes or braces): nft may print several elements on a line. */
function splitElements(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '{') depth++;
    else if (!quoted && ch === '}') depth--;
    if (!quoted && depth === 0 && ch === ',') {
      out.push(current.trim());
      current = '';
      continue;
    }
    current += ch;
  }
  if (current.trim() !== '') out.push(current.trim());
  return out;
}

/** `nft list table` output as `[ip chain X] rule` / `[ip map X] element` lines. */
export function nftLines(text: string): string[] {
  const out: string[] = [];
  let family = '';
  let container = '';
  let inElements = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const table = /^table (\S+) \S+ \{$/.exec(line);
    if (table) {
      family = table[1] ?? '';
      continue;
    }
    const open = /^(chain|set|map|flowtable) (\S+) \{$/.exec(line);
    if (open) {
      container = `${family} ${open[1] ?? ''} ${open[2] ?? ''}`;
      continue;
    }
    if (line === '}') {
      if (inElements) inElements = false;
      else container = '';
      continue;
    }
    let body = line;
    if (body.startsWith('elements = {')) {
      inElements = true;
      body = body.slice('elements = {'.length);
    }
    if (inElements) {
      if (body.endsWith('}')) {
        inElements = false;
        body = body.slice(0, -1);
      }
      // A dynamic element's remaining lifetime changes every millisecond: not a rule change.
      for (const element of splitElements(body))
        out.push(`[${container}] ${element.replace(/ expires \S+/, '')}`);
      continue;
    }
    out.push(`[${container}] ${body}`);
  }
  return out;
}

/** `iptables-save` output as `[table] -A …` / `[table] :CHAIN` lines (no counters, no comments). */
export function iptablesLines(text: string, family: string): string[] {
  const out: string[] = [];
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line === 'COMMIT') continue;
    if (line.startsWith('*')) {
      table = line.slice(1);
      continue;
    }
    const chain = /^:(\S+) /.exec(line);
    out.push(`[${family} ${table}] ${chain ? `:${chain[1] ?? ''}` : line}`);
  }
  return out;
}

export function listingLines(listing: RuleListing): string[] {
  return listing.texts.flatMap((text, i) =>
    listing.syntax === 'nft list' ? nftLines(text) : iptablesLines(text, i === 0 ? 'ip' : 'ip6'),
  );
}

export interface RuleDiff {
  readonly removed: readonly string[];
  readonly added: readonly string[];
}

/** Lines only in `before` (removed) and only in `after` (added), counting repeats. */
export function diffLines(before: readonly string[], after: readonly string[]): RuleDiff {
  const count = new Map<string, number>();
  for (const line of after) count.set(line, (count.get(line) ?? 0) + 1);
  const removed: string[] = [];
  for (const line of before) {
    const left = count.get(line) ?? 0;
    if (left > 0) count.set(line, left - 1);
    else removed.push(line);
  }
  const kept = new Map<string, number>();
  for (const line of before) kept.set(line, (kept.get(line) ?? 0) + 1);
  const added: string[] = [];
  for (const line of after) {
    const left = kept.get(line) ?? 0;
    if (left > 0) kept.set(line, left - 1);
    else added.push(line);
  }
  return { removed, added };
}

/** The diff as the playground prints it, at most `limit` lines. */
export function formatDiff(diff: RuleDiff, syntax: RuleSyntax, limit = 60): string[] {
  const lines = [...diff.removed.map((l) => `- ${l}`), ...diff.added.map((l) => `+ ${l}`)];
  if (lines.length === 0) return [`rules: no change (${syntax})`];
  const head = `rules (${syntax}): ${diff.added.length} added, ${diff.removed.length} removed`;
  const shown = lines.slice(0, limit).map((l) => `  ${l}`);
  if (lines.length > limit) shown.push(`  … ${lines.length - limit} more lines (type rules to see them all)`);
  return [head, ...shown];
}
