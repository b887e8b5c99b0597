// `--cleanup` for the iptables mode (spec 3.11): remove every rule and chain we create, in both
// families and both backends (a node may have run an older kube-proxy on the other one).
// Tolerant: a missing table, chain or tool is nothing to clean, not an error.
import { log } from '../../log/log.ts';
import type { Cleaner } from '../../sync/backend.ts';
import { execTool } from '../../util/exec.ts';
import { cleanupOwner, type Runner, type XtablesCleanupReport, type XtablesOwner } from '../xtables/index.ts';
import { IPTABLES_OWNER } from './owner.ts';

export type IptablesCleanupReport = XtablesCleanupReport;

/**
 * Removes our iptables rules and chains from both families, chosen backend first, then the
 * other. `--cleanup` keeps nothing; when another mode starts, `keep` is that mode's owners, so
 * the chains the IPVS mode shares with us (nat KUBE-SERVICES, KUBE-POSTROUTING, ...) stay.
 */
export async function cleanupIptables(
  run: Runner = execTool,
  env: Readonly<Record<string, string | undefined>> = process.env,
  keep: readonly XtablesOwner[] = [],
): Promise<IptablesCleanupReport> {
  const { removed, errors } = await cleanupOwner(run, IPTABLES_OWNER, { keep, env });
  log.info('Cleaned up iptables rules', { removed, errors: errors.length });
  for (const error of errors) log.error('iptables cleanup failed', error);
  return { removed, errors };
}

/** The Cleaner for `--cleanup` and mode switches; throws when some restore failed. */
export function iptablesCleaner(run: Runner = execTool, keep: readonly XtablesOwner[] = []): Cleaner {
  return {
    mode: 'iptables',
    cleanup: async () => {
      const report = await cleanupIptables(run, process.env, keep);
      if (report.errors.length > 0) throw new Error(`iptables cleanup: ${report.errors.join('; ')}`);
    },
  };
}
