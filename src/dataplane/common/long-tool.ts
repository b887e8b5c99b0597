// How every mode runs a tool whose work grows with the cluster (iptables-restore, nft -f,
// ipset restore, ipvsadm -R): no fixed deadline, which would kill a legitimate 10k-Service
// restore and retry it forever, but a stall limit (no CPU time, input taken or output for
// STALL_TIMEOUT_MS), and a log line every 30 s saying what the tool is doing.
import { log } from '../../log/log.ts';
import type { ExecOptions, ToolProgress } from '../../util/exec.ts';

/** A tool that shows no progress for this long is hung: killed, and the sync retried. */
export const STALL_TIMEOUT_MS = 20_000;

export function longToolOptions(): Pick<ExecOptions, 'stallTimeoutMs' | 'onProgress'> {
  return {
    stallTimeoutMs: STALL_TIMEOUT_MS,
    onProgress: (progress: ToolProgress) => {
      log.info('Still applying rules', {
        command: progress.command.split(' ')[0] ?? progress.command,
        elapsed: `${String(Math.round(progress.elapsedMs / 1000))}s`,
        ...(progress.cpuMs === undefined ? {} : { cpu: `${String(Math.round(progress.cpuMs / 1000))}s` }),
        inputPendingBytes: progress.inputPendingBytes,
      });
    },
  };
}
