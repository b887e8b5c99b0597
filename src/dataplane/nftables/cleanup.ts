// Removes everything nftables mode created: the `kube-proxy` table of each family. Nothing
// outside those tables is ever ours (spec 4.1), so nothing else is touched.
import type { Cleaner } from '../../sync/backend.ts';
import { ExecError, execTool } from '../../util/exec.ts';
import { TABLE } from './names.ts';
import type { Runner } from './proxier.ts';

function notFound(error: unknown): boolean {
  return error instanceof ExecError && /No such file or directory|does not exist/i.test(error.stderr);
}

/** Deletes table kube-proxy in ip and ip6; a missing table is not an error. */
export async function cleanupNftables(run: Runner = execTool): Promise<void> {
  const failures: string[] = [];
  for (const family of ['ip', 'ip6'] as const) {
    try {
      await run('nft', ['delete', 'table', family, TABLE], { timeoutMs: 30_000 });
    } catch (error) {
      if (!notFound(error))
        failures.push(`${family}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (failures.length > 0) throw new Error(`nftables cleanup failed: ${failures.join('; ')}`);
}

export function nftablesCleaner(run: Runner = execTool): Cleaner {
  return { mode: 'nftables', cleanup: () => cleanupNftables(run) };
}
