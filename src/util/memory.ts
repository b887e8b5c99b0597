// Giving memory back after a large sync. A full sync at 10k Services allocates hundreds of MB of
// short-lived text and bookkeeping; V8 keeps the heap it grew for them for a long time (its own
// memory reducer waits for the process to look idle), so a per-node agent that should sit at a
// small, steady footprint asks for one memory-reducing collection after such a sync instead.
// Measured on the 10k bench state (bench/README.md): RSS 262 -> 187 MiB for a 50-100 ms pause,
// taken after the rules are in the kernel, never on the way to them.
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
  /** Asks for a collection soon (on a later turn of the event loop); repeated asks coalesce. */
  request(): void;
  /** Collections run so far (for tests and /debug). */
  readonly runs: number;
}

/**
 * Coalesces requests: at most one collection per `minIntervalMs`, run from a timer so the
 * caller (the end of a sync) is never slowed by it.
 */
export function memoryRelease(options: { minIntervalMs?: number; now?: () => number } = {}): MemoryRelease {
  const minIntervalMs = options.minIntervalMs ?? 10_000;
  const now = options.now ?? Date.now;
  let last = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let runs = 0;
  const run = (): void => {
    timer = undefined;
    last = now();
    runs++;
    collector()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  };
  return {
    request(): void {
      if (timer) return;
      const wait = Math.max(0, last + minIntervalMs - now());
      timer = setTimeout(run, wait);
      timer.unref();
    },
    get runs(): number {
      return runs;
    },
  };
}
