// Removing one owner's rules and chains, in both families and both backends (a node may have
// run an older kube-proxy on the other backend). Tolerant: a missing table, chain or tool is
// nothing to clean, not an error.
//
// Which chains go is the owner's description, minus whatever the owners in `keep` still use: a
// mode switch removes the old mode's shared chains too (the new mode recreates them on its first
// sync), while removing one owner next to a running one must leave that one intact.
import { chooseIptablesBackend } from './backend.ts';
import { isJumpRuleLine } from './ensure.ts';
import { jumpIsBorrowed, removesChain, sameJump, usesChain, type XtablesOwner } from './owner.ts';
import { restore } from './restore.ts';
import { parseSave, ruleChain, ruleTarget, type SavedTable } from './save.ts';
import { iptablesTools, type IptablesBackend, type IptablesTools, type Runner, type Table } from './tools.ts';

/**
 * The restore input that removes the owner's chains from one table: flush them (chain lines),
 * delete every rule elsewhere that jumps into them (the owner's jumps and anything else, so -X
 * cannot fail on a reference) and the owner's own jumps into chains a kept owner still uses,
 * then delete them. Undefined when nothing of the owner's is there.
 */
export function cleanupTableText(
  owner: XtablesOwner,
  table: Table,
  saved: SavedTable,
  keep: readonly XtablesOwner[],
): string | undefined {
  const remove = [...saved.chains].filter(
    (chain) => removesChain(owner, table, chain) && !keep.some((other) => usesChain(other, table, chain)),
  );
  remove.sort();
  const removed = new Set(remove);
  // The owner's jumps that would outlive it: their target stays because another owner uses it.
  const ownJumps = owner.jumps.filter(
    (jump) =>
      jump.table === table &&
      !jumpIsBorrowed(owner, jump) &&
      !keep.some((other) => other.jumps.some((theirs) => sameJump(jump, theirs))),
  );
  const deletions: string[] = [];
  for (const rule of saved.rules) {
    if (removed.has(ruleChain(rule))) continue; // flushed with its chain
    const target = ruleTarget(rule);
    const intoRemoved = target !== undefined && removed.has(target);
    // A rule that fits our (loose) description but also a kept owner's is theirs as well: it stays.
    const ownJump =
      ownJumps.some((jump) => isJumpRuleLine(rule, jump)) &&
      !keep.some((other) => other.jumps.some((theirs) => isJumpRuleLine(rule, theirs)));
    if (intoRemoved || ownJump) deletions.push(`-D${rule.slice(2)}`);
  }
  if (remove.length === 0 && deletions.length === 0) return undefined;
  const lines = [`*${table}`, ...remove.map((chain) => `:${chain} - [0:0]`), ...deletions];
  for (const chain of remove) lines.push(`-X ${chain}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export interface XtablesCleanupReport {
  /** Chains removed, per `backend/family/table`. */
  readonly removed: Readonly<Record<string, number>>;
  /** Restore failures (anything else missing is not an error). */
  readonly errors: readonly string[];
}

export interface CleanupOptions {
  /**
   * Owners whose chains and jump rules must survive. Empty for `--cleanup` and mode switches,
   * which (as upstream) remove shared chains such as nat KUBE-SERVICES along with the mode.
   */
  readonly keep: readonly XtablesOwner[];
  readonly env?: Readonly<Record<string, string | undefined>>;
}

async function cleanupOne(
  run: Runner,
  tools: IptablesTools,
  owner: XtablesOwner,
  keep: readonly XtablesOwner[],
  removed: Record<string, number>,
  errors: string[],
): Promise<void> {
  let text: string;
  try {
    // Without -t the legacy tool lists only existing tables, so looking creates nothing.
    text = (await run(tools.save, [], { timeoutMs: 60_000 })).stdout;
  } catch {
    return; // the tool or the family is not there: nothing of ours either
  }
  const tables = parseSave(text);
  // Tables are independent (no rule jumps across tables); this order is the report's key order.
  for (const table of ['filter', 'nat', 'mangle'] as const satisfies readonly Table[]) {
    const saved = tables.get(table);
    if (!saved) continue;
    const input = cleanupTableText(owner, table, saved, keep);
    if (input === undefined) continue;
    try {
      await restore(run, tools, input);
      removed[`${tools.backend}/${tools.family}/${table}`] = input
        .split('\n')
        .filter((l) => l.startsWith('-X ')).length;
    } catch (error) {
      errors.push(
        `${tools.backend} ${tools.family} ${table}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}

/** Removes the owner's rules and chains from both families, chosen backend first, then the other. */
export async function cleanupOwner(
  run: Runner,
  owner: XtablesOwner,
  options: CleanupOptions,
): Promise<XtablesCleanupReport> {
  const chosen = (await chooseIptablesBackend(run, options.env)).backend;
  const order: IptablesBackend[] = chosen === 'nft' ? ['nft', 'legacy'] : ['legacy', 'nft'];
  const removed: Record<string, number> = {};
  const errors: string[] = [];
  for (const backend of order) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      await cleanupOne(run, iptablesTools(backend, family), owner, options.keep, removed, errors);
    }
  }
  return { removed, errors };
}
