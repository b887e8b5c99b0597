// The proxy ports of `--proxy-port-range` (spec 2.4). Upstream kept a buffer of 16 random free
// ports filled in the background; here a port is picked when a listener opens: a random start in
// the range, then upwards (wrapping) to the first port we do not hold. Whether another process
// holds it shows only when binding, so the caller skips ports that failed to bind. Without a
// range every listener binds port 0 and the kernel picks. Pure (the random source is injected).
import type { PortRange } from '../../config/port-range.ts';

export class PortAllocator {
  readonly #range: PortRange | undefined;
  readonly #random: () => number;
  readonly #taken = new Set<number>();

  constructor(range: PortRange | undefined, random: () => number = Math.random) {
    this.#range = range;
    this.#random = random;
  }

  /** Whether ports come from a range (else the kernel chooses). */
  get ranged(): boolean {
    return this.#range !== undefined;
  }

  /**
   * A port to bind, now ours until released: 0 without a range (the kernel chooses); undefined
   * when every port of the range is taken or in `skip` (upstream: "no remaining ports").
   */
  take(skip: ReadonlySet<number> = new Set()): number | undefined {
    const range = this.#range;
    if (range === undefined) return 0;
    const start = Math.floor(this.#random() * range.size) % range.size;
    for (let i = 0; i < range.size; i++) {
      const port = range.base + ((start + i) % range.size);
      if (!this.#taken.has(port) && !skip.has(port)) {
        this.#taken.add(port);
        return port;
      }
    }
    return undefined;
  }

  /** Gives a port back (a no-op for 0 or a port not taken). */
  release(port: number): void {
    this.#taken.delete(port);
  }

  /** How many ports of the range are ours. */
  get inUse(): number {
    return this.#taken.size;
  }
}
