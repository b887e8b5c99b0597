// Giving memory back after syncs. A full sync at 10k Services allocates hundreds of MB of
// short-lived text and bookkeeping, a burst of partial syncs tens; V8 keeps the heap it grew for
// them for a long time (its own memory reducer waits for signs of idleness), so a per-node agent
// that should sit at a small, steady footprint asks for one memory-reducing collection once the
// sync loop has gone quiet. Measured at 10k Services (bench/README.md point 2): RSS 226 -> 150
// MiB for a 110-145 ms pause, taken when no sync has run for a second, never on the way to the
// kernel.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let collect: Collect | undefined;

/** V8's gc() without requiring --expose-gc on the command line (the flag applies to new contexts). */
function collector(): Collect {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Collect;
  }
  return collect;
}

export interface MemoryRelease {
  /**
   * A sync ran. Once none has run for `idleMs`, one collection runs if a full sync happened
   * since the last one or the resident set grew by more than `growthBytes` (a burst of partial
   * syncs: V8 keeps the pages it grew for their garbage, which is what we give back).
   */
  synced(full: boolean): void;
  /** Collections run so far (for tests and /debug). */
  readonly runs: number;
}

export interface MemoryReleaseOptions {
  readonly idleMs?: number;
  readonly growthBytes?: number;
  /** At most one collection per this interval. */
  readonly minIntervalMs?: number;
  readonly now?: () => number;
  readonly resident?: () => number;
  /** The collection itself (tests count calls instead of collecting). */
  readonly collect?: () => void;
}

export function memoryRelease(options: MemoryReleaseOptions = {}): MemoryRelease {
  const idleMs = options.idleMs ?? 1000;
  const growthBytes = options.growthBytes ?? 16 * 2 ** 20;
  const minIntervalMs = options.minIntervalMs ?? 10_000;
  const now = options.now ?? Date.now;
  const resident = options.resident ?? ((): number => process.memoryUsage.rss());
  const run =
    options.collect ?? ((): void => collector()({ type: 'major', execution: 'sync', flavor: 'last-resort' }));
  let last = Number.NEGATIVE_INFINITY;
  let residentAfterLast = resident();
  let fullSinceLast = false;
  let timer: NodeJS.Timeout | undefined;
  let runs = 0;
  const arm = (delayMs: number): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!fullSinceLast && resident() - residentAfterLast <= growthBytes) return;
      const wait = last + minIntervalMs - now();
      if (wait > 0) {
        arm(wait);
        return;
      }
      last = now();
      runs++;
      run();
      fullSinceLast = false;
      residentAfterLast = resident();
    }, delayMs);
    timer.unref();
  };
  return {
    synced(full: boolean): void {
      if (full) fullSinceLast = true;
      arm(idleMs);
    },
    get runs(): number {
      return runs;
    },
  };
}
