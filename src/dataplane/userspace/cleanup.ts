// `--cleanup` for the userspace mode, and what another mode runs at start: remove the five capture
// chains, the jumps into them and the canary, in both families and both backends (the toolkit).
// Listeners are not ours to clean: they die with the process.
import { log } from '../../log/log.ts';
import type { Cleaner } from '../../sync/backend.ts';
import { execTool } from '../../util/exec.ts';
import { cleanupOwner, type Runner, type XtablesCleanupReport, type XtablesOwner } from '../xtables/index.ts';
import { CAPTURE_LINK, deleteCaptureLink } from './address-capture.ts';
import { USERSPACE_OWNER } from './owner.ts';

export async function cleanupUserspace(
  run: Runner = execTool,
  env: Readonly<Record<string, string | undefined>> = process.env,
  keep: readonly XtablesOwner[] = [],
): Promise<XtablesCleanupReport> {
  // The userspace chains are shared with no other mode; `keep` only guards against a future one.
  const chains = await cleanupOwner(run, USERSPACE_OWNER, { keep, env });
  const errors = [...chains.errors];
  try {
    if (await deleteCaptureLink(run))
      log.info('Removed the userspace address-capture link', { link: CAPTURE_LINK });
  } catch (error) {
    errors.push(`ip link del ${CAPTURE_LINK}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const report: XtablesCleanupReport = { ...chains, errors };
  log.info('Cleaned up userspace rules', { removed: report.removed, errors: report.errors.length });
  for (const error of report.errors) log.error('userspace cleanup failed', error);
  return report;
}

/** The Cleaner for `--cleanup` and mode switches; throws when some restore failed. */
export function userspaceCleaner(run: Runner = execTool, keep: readonly XtablesOwner[] = []): Cleaner {
  return {
    mode: 'userspace',
    cleanup: async () => {
      const report = await cleanupUserspace(run, process.env, keep);
      if (report.errors.length > 0) throw new Error(`userspace cleanup: ${report.errors.join('; ')}`);
    },
  };
}
