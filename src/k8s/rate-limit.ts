// The client-side rate limit of `clientConnection.qps` / `burst`: a token bucket as client-go's
// (golang.org/x/time/rate behind flowcontrol.NewTokenBucketRateLimiter): it starts full with
// `burst` tokens, refills at `qps` per second, and a request that finds it empty reserves the next
// token and waits for it, so waiting requests go out in order at `qps`. A negative qps turns it
// off, as in client-go.
import { setTimeout as sleep } from 'node:timers/promises';

export interface RateLimiter {
  /** Resolves when the request may go; the time it waited is what the metric records. */
  wait(signal?: AbortSignal): Promise<void>;
}

export const UNLIMITED: RateLimiter = { wait: () => Promise.resolve() };

export interface TokenBucketOptions {
  readonly qps: number;
  readonly burst: number;
  /** Clock in ms (tests). Default performance.now. */
  readonly now?: () => number;
  /** Waits this many ms (tests). Default timers/promises setTimeout. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export class TokenBucket implements RateLimiter {
  readonly qps: number;
  readonly burst: number;
  #tokens: number;
  #at: number;
  #now: () => number;
  #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(options: TokenBucketOptions) {
    if (!(options.qps > 0))
      throw new Error(`clientConnection.qps: ${options.qps} must be greater than 0 for a rate limit`);
    if (!(options.burst >= 1)) {
      throw new Error(
        `clientConnection.burst: ${options.burst} must be at least 1 when qps is greater than 0`,
      );
    }
    this.qps = options.qps;
    this.burst = Math.floor(options.burst);
    this.#now = options.now ?? (() => performance.now());
    this.#sleep = options.sleep ?? ((ms, signal) => sleep(ms, undefined, signal ? { signal } : {}));
    this.#tokens = this.burst;
    this.#at = this.#now();
  }

  /** Tokens available now (negative: that many requests are waiting). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.qps);
    this.#at = now;
  }

  async wait(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.#refill();
    this.#tokens -= 1;
    if (this.#tokens >= 0) return;
    const ms = (-this.#tokens / this.qps) * 1000;
    try {
      await this.#sleep(ms, signal);
    } catch (error) {
      // A cancelled request gives its reservation back, as rate.Reservation.Cancel does.
      this.#refill();
      this.#tokens = Math.min(this.burst, this.#tokens + 1);
      throw error;
    }
  }
}

/**
 * As client-go's rest config: qps < 0 means no limit; 0 means its defaults (5 per second, burst
 * 10); otherwise a token bucket, whose burst must then be at least 1.
 */
export function rateLimiterFor(qps: number, burst: number): RateLimiter {
  if (qps < 0) return UNLIMITED;
  return new TokenBucket({ qps: qps === 0 ? 5 : qps, burst: burst === 0 ? 10 : burst });
}
