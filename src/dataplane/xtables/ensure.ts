// Making sure an owner's base is in place before its rules are written: the canary chains, the
// chains its jump rules target, and the jump rules themselves (upstream: one `-N` per chain and
// one `-C`, then `-I`, per jump, on every full sync). The per-sync chains are not here: the
// mode's restore input declares them.
import { log } from '../../log/log.ts';
import { ensureChain, ensureRule, positionFlag } from './commands.ts';
import { jumpArgs, type JumpSpec, type XtablesOwner } from './owner.ts';
import { restore } from './restore.ts';
import { parseSave, saveAll, type SavedTable, type SavedTables } from './save.ts';
import { TABLES, type IptablesTools, type Runner, type Table } from './tools.ts';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `--option value` pairs of a match list (with a leading `!` when negated), as regular
 * expressions over a saved rule: each must appear, as a whole value or the first of a list.
 */
function optionPatterns(matches: readonly string[]): RegExp[] {
  const patterns: RegExp[] = [];
  matches.forEach((arg, i) => {
    const value = matches[i + 1];
    if (!arg.startsWith('--') || value === undefined || value.startsWith('-')) return;
    const text = `${matches[i - 1] === '!' ? '! ' : ''}${arg} ${value}`;
    // Not preceded by `! ` unless negated itself: `! --dst-type LOCAL` is the opposite match.
    patterns.push(new RegExp(`(?:^|(?<!!) )${escapeRegExp(text)}(?=[ ,]|$)`));
  });
  return patterns;
}

/**
 * Whether a saved rule line is the jump: in its chain, jumping to its target, with its comment
 * and its option values. (iptables-save reorders and re-quotes match arguments, so the line is
 * compared by these parts rather than as a whole.)
 */
export function isJumpRuleLine(line: string, jump: JumpSpec): boolean {
  return (
    line.startsWith(`-A ${jump.chain} `) &&
    (line.endsWith(` -j ${jump.target}`) || line.includes(` -j ${jump.target} `)) &&
    (jump.comment === undefined || line.includes(jump.comment)) &&
    optionPatterns(jump.matches).every((pattern) => pattern.test(line))
  );
}

/** Whether a jump rule is in a dump. */
export function hasJumpRule(saved: SavedTables, jump: JumpSpec): boolean {
  return (saved.get(jump.table)?.rules ?? []).some((line) => isJumpRuleLine(line, jump));
}

/**
 * iptables-restore input (for `--noflush`) that creates the owner's canaries and jump targets
 * missing from `saved` and adds its missing jump rules, in the owner's order; '' when nothing is
 * missing. The same result as upstream's `-N` / `-C` / `-I` calls, in one process instead of
 * dozens, each of which would take the xtables lock and read its whole table. Only missing
 * chains are declared: declaring an existing one would flush it.
 */
export function missingBaseText(owner: XtablesOwner, saved: SavedTables): string {
  const chains = new Map<Table, string[]>(TABLES.map((table) => [table, []]));
  const rules = new Map<Table, string[]>(TABLES.map((table) => [table, []]));
  const declare = (table: Table, chain: string): void => {
    const declared = chains.get(table);
    if (declared && !saved.get(table)?.chains.has(chain) && !declared.includes(chain)) declared.push(chain);
  };
  const canary = owner.canary;
  if (canary) for (const table of canary.tables) declare(table, canary.chain);
  for (const jump of owner.jumps) {
    declare(jump.table, jump.target);
    if (!hasJumpRule(saved, jump)) {
      // Only comments have spaces; no argument has a quote.
      const args = jumpArgs(jump).map((arg) => (arg.includes(' ') ? `"${arg}"` : arg));
      rules.get(jump.table)?.push(`${positionFlag(jump.position)} ${jump.chain} ${args.join(' ')}`);
    }
  }
  let text = '';
  for (const table of TABLES) {
    const declared = chains.get(table) ?? [];
    const added = rules.get(table) ?? [];
    if (declared.length === 0 && added.length === 0) continue;
    text += `*${table}\n${declared.map((chain) => `:${chain} - [0:0]\n`).join('')}`;
    text += `${added.map((rule) => `${rule}\n`).join('')}COMMIT\n`;
  }
  return text;
}

/** Upstream's way, one command per chain and rule: for when the dump could not be read. */
export async function ensureOneByOne(run: Runner, tools: IptablesTools, owner: XtablesOwner): Promise<void> {
  const canary = owner.canary;
  if (canary) for (const table of canary.tables) await ensureChain(run, tools, table, canary.chain);
  for (const jump of owner.jumps) {
    await ensureChain(run, tools, jump.table, jump.target);
    await ensureRule(run, tools, jump.table, jump.chain, jumpArgs(jump), jump.position);
  }
}

/**
 * Ensures the owner's canaries, jump targets and jump rules with one read of every table and at
 * most one small restore. Returns the dump (as it was before anything was added), or undefined
 * if it could not be read; then every piece is checked one by one, as upstream does.
 */
export async function ensureBase(
  run: Runner,
  tools: IptablesTools,
  owner: XtablesOwner,
): Promise<Map<string, SavedTable> | undefined> {
  let saved: Map<string, SavedTable> | undefined;
  try {
    saved = parseSave(await saveAll(run, tools));
  } catch (error) {
    log.error('Failed to execute iptables-save, checking jump rules one by one', error, {
      ipFamily: tools.family,
    });
  }
  if (saved) {
    const missing = missingBaseText(owner, saved);
    if (missing !== '') await restore(run, tools, missing);
    return saved;
  }
  await ensureOneByOne(run, tools, owner);
  return undefined;
}
