// Debug aid for benchmarks (env KUBE_PROXY_DEBUG_DUMP_RULES, bench/README.md): the proxiers write
// the exact input of each full sync so the benchmark can apply it with the bare tool. Written
// after the sync's timing (setImmediate) and atomically (rename), never on the hot path otherwise.
import { renameSync, writeFileSync } from 'node:fs';

/** A directory: each full sync's input goes to `<dir>/<mode>[-<backend>]-<family>.rules`. */
export const DUMP_RULES_ENV = 'KUBE_PROXY_DEBUG_DUMP_RULES';

export function dumpRules(path: string, text: string): void {
  setImmediate(() => {
    try {
      writeFileSync(`${path}.tmp`, text);
      renameSync(`${path}.tmp`, path);
    } catch {
      // A debug aid must never break a sync.
    }
  });
}
