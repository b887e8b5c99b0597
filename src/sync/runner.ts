// Bounded-frequency runner (upstream-behavior.md 2.1): runs one async function
//  - when asked (`run()`), but never sooner than `minIntervalMs` after the previous run ended,
//    coalescing every request made meanwhile into one run;
//  - again within `retryIntervalMs` after a run that failed (a later success cancels the retry),
//    or, with `retryBackoff`, sooner: after `initialMs`, doubling with each failure in a row up
//    to `capMs`, but never sooner than the CPU time the failed run cost this process (so a
//    failing sync of a large cluster keeps the process at most half busy, while a run that only
//    waited — for a lock, for a hung tool — is retried at once);
//  - at least every `maxIntervalMs` even when nobody asks.
// Requests made before `start()` are dropped, as upstream does: the first run comes from start.
// A throw from the function is a failed run, never an unhandled rejection.

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Timers of the event loop. A run due now goes on setImmediate: it still comes after every event
 * read in the same turn (so a burst of watch events is one sync), without the millisecond a
 * zero timeout costs on the way from an API change to the kernel.
 */
type RealTimer = { readonly immediate: NodeJS.Immediate } | { readonly timeout: NodeJS.Timeout };

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms): RealTimer =>
    ms <= 0 ? { immediate: setImmediate(callback) } : { timeout: setTimeout(callback, ms) },
  clearTimeout: (handle) => {
    const timer = handle as RealTimer;
    if ('immediate' in timer) clearImmediate(timer.immediate);
    else clearTimeout(timer.timeout);
  },
};

export interface RunnerOptions {
  readonly name: string;
  readonly minIntervalMs: number;
  readonly retryIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly fn: () => Promise<void>;
  readonly onError?: (error: unknown, retryInMs: number) => void;
  readonly clock?: Clock;
  /** Retry failed runs sooner than retryIntervalMs, with exponential back-off. */
  readonly retryBackoff?: { readonly initialMs: number; readonly capMs: number };
  /** This process's CPU time so far in ms (default process.cpuUsage); tests pass a fake. */
  readonly cpuTimeMs?: () => number;
}

function processCpuTimeMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

export class BoundedFrequencyRunner {
  private readonly options: RunnerOptions;
  private readonly clock: Clock;
  private started = false;
  private stopped = false;
  private running = false;
  private requested = false;
  private lastFailed = false;
  /** Failed runs in a row. */
  private failures = 0;
  /** CPU time the last run cost. */
  private lastCpuMs = 0;
  private lastEnd = Number.NEGATIVE_INFINITY;
  private timer: { handle: unknown; at: number } | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(options: RunnerOptions) {
    this.options = options;
    this.clock = options.clock ?? realClock;
  }

  /** Begins the loop with an immediate run. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.requested = true;
    this.schedule();
  }

  /** Asks for a run as soon as the minimum interval allows. Coalesces with other requests. */
  run(): void {
    if (!this.started || this.stopped) return;
    this.requested = true;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer();
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Resolves when no run is in progress or pending soon (for tests and shutdown). */
  whenIdle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private cancelTimer(): void {
    if (this.timer) this.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
  }

  private nextRunAt(): number {
    const { minIntervalMs, retryIntervalMs, maxIntervalMs } = this.options;
    const earliest = this.lastEnd + minIntervalMs;
    if (this.requested) return Math.max(this.clock.now(), earliest);
    const idle = this.lastEnd + (this.lastFailed ? this.retryDelayMs() : maxIntervalMs);
    return Math.max(idle, earliest);
  }

  /** How long after a failed run the retry comes. */
  private retryDelayMs(): number {
    const { retryIntervalMs, maxIntervalMs, retryBackoff } = this.options;
    const fallback = Math.min(retryIntervalMs, maxIntervalMs);
    if (!retryBackoff) return fallback;
    const backoff = Math.min(
      retryBackoff.capMs,
      retryBackoff.initialMs * 2 ** Math.min(30, Math.max(0, this.failures - 1)),
    );
    return Math.min(fallback, Math.max(backoff, Math.round(this.lastCpuMs)));
  }

  private schedule(): void {
    if (this.stopped || this.running) return; // a finishing run reschedules
    const at = this.nextRunAt();
    if (this.timer && this.timer.at <= at) return;
    this.cancelTimer();
    const delay = Math.max(0, at - this.clock.now());
    const handle = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.execute();
    }, delay);
    this.timer = { handle, at };
  }

  private async execute(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    this.requested = false;
    const cpuTime = this.options.cpuTimeMs ?? processCpuTimeMs;
    const cpuStart = cpuTime();
    let failure: { error: unknown } | undefined;
    try {
      await this.options.fn();
      this.lastFailed = false;
      this.failures = 0;
    } catch (error) {
      this.lastFailed = true;
      this.failures++;
      failure = { error };
    } finally {
      this.running = false;
      this.lastEnd = this.clock.now();
      this.lastCpuMs = cpuTime() - cpuStart;
      if (failure) this.options.onError?.(failure.error, this.retryDelayMs());
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      this.schedule();
    }
  }
}
