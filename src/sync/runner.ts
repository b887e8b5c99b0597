// Bounded-frequency runner (upstream-behavior.md 2.1): runs one async function
//  - when asked (`run()`), but never sooner than `minIntervalMs` after the previous run ended,
//    coalescing every request made meanwhile into one run;
//  - again within `retryIntervalMs` after a run that failed (a later success cancels the retry);
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
  readonly onError?: (error: unknown) => void;
  readonly clock?: Clock;
}

export class BoundedFrequencyRunner {
  private readonly options: RunnerOptions;
  private readonly clock: Clock;
  private started = false;
  private stopped = false;
  private running = false;
  private requested = false;
  private lastFailed = false;
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
    const idle = this.lastEnd + (this.lastFailed ? Math.min(retryIntervalMs, maxIntervalMs) : maxIntervalMs);
    return Math.max(idle, earliest);
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
    try {
      await this.options.fn();
      this.lastFailed = false;
    } catch (error) {
      this.lastFailed = true;
      this.options.onError?.(error);
    } finally {
      this.running = false;
      this.lastEnd = this.clock.now();
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      this.schedule();
    }
  }
}
