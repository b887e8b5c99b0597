// The canary check (upstream's "iptables canary"): an empty chain an owner creates in a few
// tables. Nothing else touches it, so if it is gone, someone flushed the tables, our rules with
// them, and the owner must resync in full.
import { chainExists } from './commands.ts';
import type { CanarySpec } from './owner.ts';
import type { IptablesTools, Runner } from './tools.ts';

/** Whether the canary is still in its first table. */
export function canaryPresent(run: Runner, tools: IptablesTools, canary: CanarySpec): Promise<boolean> {
  const [probed] = canary.tables;
  return probed === undefined ? Promise.resolve(true) : chainExists(run, tools, probed, canary.chain);
}

export interface FlushWait {
  /** Milliseconds clock. */
  readonly now: () => number;
  /** Give up waiting after this long. Default 5 s. */
  readonly timeoutMs?: number;
  /** Default 100 ms. */
  readonly pollMs?: number;
}

/**
 * After the canary vanished from its first table: waits (briefly) until it is gone from the
 * others too, so that the full resync that follows is not flushed right after it is written.
 * Returns whether the flush completed before the deadline.
 */
export async function awaitCanaryFlush(
  run: Runner,
  tools: IptablesTools,
  canary: CanarySpec,
  wait: FlushWait,
): Promise<boolean> {
  const deadline = wait.now() + (wait.timeoutMs ?? 5000);
  const others = canary.tables.slice(1);
  for (;;) {
    const present = await Promise.all(others.map((table) => chainExists(run, tools, table, canary.chain)));
    if (!present.includes(true)) return true;
    if (wait.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, wait.pollMs ?? 100));
  }
}
