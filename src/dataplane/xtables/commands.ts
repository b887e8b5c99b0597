// Single `iptables` commands, for when one restore cannot be used (the save it is built from
// failed) and for the canary probe. Each takes the xtables lock and, with the legacy backend,
// reads its whole table: use them for a handful of checks, not per service.
import { ExecError } from '../../util/exec.ts';
import { WAIT_ARGS, type IptablesTools, type Runner, type Table } from './tools.ts';

/** Where a rule goes when it is added: upstream's EnsureRule(Prepend | Append). */
export type RulePosition = 'prepend' | 'append';

/** The iptables command (and restore line prefix) adding a rule at that position. */
export function positionFlag(position: RulePosition): '-I' | '-A' {
  switch (position) {
    case 'prepend':
      return '-I';
    case 'append':
      return '-A';
    default: {
      const unknown: never = position;
      throw new Error(`unknown rule position ${String(unknown)}`);
    }
  }
}

function isExitCode(error: unknown, code: number): boolean {
  return error instanceof ExecError && error.code === code;
}

/** Creates a chain unless it exists (`-N` exits 1 for an existing chain). */
export async function ensureChain(
  run: Runner,
  tools: IptablesTools,
  table: Table,
  chain: string,
): Promise<void> {
  try {
    await run(tools.iptables, [...WAIT_ARGS, '-t', table, '-N', chain]);
  } catch (error) {
    if (!isExitCode(error, 1)) throw error;
  }
}

/** Adds a rule unless an identical one exists (`-C` exits 1 when it does not). */
export async function ensureRule(
  run: Runner,
  tools: IptablesTools,
  table: Table,
  chain: string,
  args: readonly string[],
  position: RulePosition = 'prepend',
): Promise<void> {
  try {
    await run(tools.iptables, [...WAIT_ARGS, '-t', table, '-C', chain, ...args]);
    return;
  } catch (error) {
    if (!isExitCode(error, 1)) throw error;
  }
  await run(tools.iptables, [...WAIT_ARGS, '-t', table, positionFlag(position), chain, ...args]);
}

/** Whether a chain exists; any failure counts as "no" (the caller then resyncs in full). */
export async function chainExists(
  run: Runner,
  tools: IptablesTools,
  table: Table,
  chain: string,
): Promise<boolean> {
  try {
    await run(tools.iptables, [...WAIT_ARGS, '-t', table, '-S', chain]);
    return true;
  } catch {
    return false;
  }
}
