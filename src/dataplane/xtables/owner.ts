// What one mode puts into x_tables, as plain data: the toolkit (ensure, canary, cleanup) acts on
// an owner description and knows no mode's chain names. Two owners may share chains (the
// iptables and IPVS modes both hook nat KUBE-SERVICES and KUBE-POSTROUTING); the description is
// what lets one owner's cleanup leave alone what another one still uses.
import type { RulePosition } from './commands.ts';
import type { Table } from './tools.ts';

/** A rule in a built-in chain that sends packets into one of the owner's chains. */
export interface JumpSpec {
  readonly table: Table;
  /** The hooked chain, e.g. PREROUTING. */
  readonly chain: string;
  /** The chain jumped to. */
  readonly target: string;
  /** `-m comment` text, which is also how the rule is recognised in a dump; undefined for none. */
  readonly comment: string | undefined;
  /** Matches placed before the comment, as argv (e.g. `-m conntrack --ctstate NEW`). */
  readonly matches: readonly string[];
  /** A missing rule is added first in its chain (upstream's usual) or last. */
  readonly position: RulePosition;
}

/**
 * An empty chain whose disappearance says someone flushed the tables. The first table is the one
 * probed; after it vanished, the others are watched until they vanished too (the flush is over).
 */
export interface CanarySpec {
  readonly chain: string;
  readonly tables: readonly Table[];
}

type ChainsByTable = Readonly<Partial<Record<Table, readonly string[]>>>;

export interface XtablesOwner {
  /** For logs and error messages, e.g. the mode's name. */
  readonly name: string;
  /** In the order they are ensured; prepended rules end up in the reverse order. */
  readonly jumps: readonly JumpSpec[];
  readonly canary: CanarySpec | undefined;
  /** The chains the owner declares (and so flushes and rewrites) on every full sync. */
  readonly fixedChains: ChainsByTable;
  /**
   * Chains the owner writes to or jumps into but which belong to another component (kubelet's
   * KUBE-MARK-MASQ and KUBE-FIREWALL): cleanup never deletes them, nor the owner's jumps into them.
   */
  readonly borrowedChains: ChainsByTable;
  /** The owner's dynamic chains (per service, per endpoint): true for a name it created. */
  readonly ownsChain: (table: Table, chain: string) => boolean;
}

/** The rule's argv after `-t TABLE -I|-A|-C|-D CHAIN`. */
export function jumpArgs(jump: JumpSpec): readonly string[] {
  const comment = jump.comment === undefined ? [] : ['-m', 'comment', '--comment', jump.comment];
  return [...jump.matches, ...comment, '-j', jump.target];
}

function inTable(chains: ChainsByTable, table: Table): readonly string[] {
  return chains[table] ?? [];
}

/**
 * The fixed chains cleanup removes from a table: declared, jumped to, or the canary, unless
 * borrowed. (Dynamic chains are recognised by `ownsChain`.)
 */
export function removableChains(owner: XtablesOwner, table: Table): Set<string> {
  const chains = new Set(inTable(owner.fixedChains, table));
  for (const jump of owner.jumps) if (jump.table === table) chains.add(jump.target);
  if (owner.canary?.tables.includes(table)) chains.add(owner.canary.chain);
  for (const chain of inTable(owner.borrowedChains, table)) chains.delete(chain);
  return chains;
}

/** Whether the owner's cleanup deletes this chain (when no other owner keeps it). */
export function removesChain(owner: XtablesOwner, table: Table, chain: string): boolean {
  return removableChains(owner, table).has(chain) || owner.ownsChain(table, chain);
}

/** Whether the owner has any use for the chain: its own, borrowed, jumped to or canary. */
export function usesChain(owner: XtablesOwner, table: Table, chain: string): boolean {
  return removesChain(owner, table, chain) || inTable(owner.borrowedChains, table).includes(chain);
}

/** Whether the owner's cleanup leaves this jump alone because its target is borrowed. */
export function jumpIsBorrowed(owner: XtablesOwner, jump: JumpSpec): boolean {
  return inTable(owner.borrowedChains, jump.table).includes(jump.target);
}

/** The same rule in the same place (so one owner's copy is the other's). */
export function sameJump(a: JumpSpec, b: JumpSpec): boolean {
  if (a.table !== b.table || a.chain !== b.chain) return false;
  const [x, y] = [jumpArgs(a), jumpArgs(b)];
  return x.length === y.length && x.every((arg, i) => arg === y[i]);
}
