// When a check whose cost grows with the node (the nftables deep look, the IPVS looks) runs: at
// every call while it is cheap, otherwise once its own last duration times `factor` has passed
// since it ended, so it never takes more than 1/factor of a core (2 % by default), whatever the
// number of Services or the speed of the machine (an emulated one runs every tool slowly).
export const CHECK_COST_FACTOR = 50;

/**
 * The factor in force: KUBE_PROXY_CHECK_COST_FACTOR overrides it (a larger share of a core for
 * faster detection; the VM lane uses it, where every tool runs tens of times slower).
 */
export function checkCostFactor(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const value = Number(env['KUBE_PROXY_CHECK_COST_FACTOR']);
  return Number.isFinite(value) && value >= 0 ? value : CHECK_COST_FACTOR;
}

export class CheckSchedule {
  #lastEnd = Number.NEGATIVE_INFINITY;
  #lastMs = 0;
  #turn = 0;
  readonly #factor: number;

  constructor(factor = checkCostFactor()) {
    this.#factor = factor;
  }

  /** Whether the check is due at `now` (ms). */
  due(now: number): boolean {
    return now - this.#lastEnd >= this.#factor * this.#lastMs;
  }

  /** How many checks ran (a check that looks at one of several things in turn). */
  get turn(): number {
    return this.#turn;
  }

  /** Records a check that ran from `start` to `end` (ms). */
  ran(start: number, end: number): void {
    this.#lastEnd = end;
    this.#lastMs = Math.max(0, end - start);
    this.#turn++;
  }

  /** After a repair (a full sync rewrote everything) the next call checks again at once. */
  reset(): void {
    this.#lastEnd = Number.NEGATIVE_INFINITY;
  }

  /** The earliest time the next check may run (for logs and tests). */
  get nextDueAt(): number {
    return this.#lastEnd + this.#factor * this.#lastMs;
  }
}
