// Tool faults on demand (issue 15): wrappers for the tools kube-proxy runs, put first in its PATH.
// Each wrapper reads one control file: `fail` (exit 1 with "injected failure"), `hang-once` (the
// next run blocks forever without using CPU, later ones pass), or nothing (run the real tool);
// `fail:ipset` and `hang-once:ipset` concern that tool alone.
// Used by test/e2e/faults-tools.test.ts and the VM lane's IPVS faults.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type ToolFault = '' | 'fail' | 'hang-once';

/** A wrapper script for `real` that obeys the control file when `onlyWhen` holds, else runs it. */
function wrapper(tool: string, real: string, control: string, onlyWhen: string): string {
  return [
    '#!/bin/bash',
    `if ${onlyWhen}; then`,
    `  case "$(cat ${control} 2>/dev/null)" in`,
    `    fail|fail:${tool}) cat >/dev/null; echo "injected failure" >&2; exit 1 ;;`,
    // Blocked without using CPU, like a tool stuck in the kernel or on a lock.
    `    hang-once|hang-once:${tool}) : > ${control}; exec sleep 3600 ;;`,
    '  esac',
    'fi',
    `exec ${real} "$@"`,
    '',
  ].join('\n');
}

export interface FaultTools {
  /** The directory to put first in PATH. */
  readonly dir: string;
  /** The fault for every wrapped tool, or for `tool` alone. */
  set(fault: ToolFault, tool?: string): void;
  remove(): void;
}

/**
 * A directory of wrappers for `tools`; `onlyWhen` gives a tool a bash condition on its arguments
 * (`[ "$1" = -R ]`) outside which it always runs the real tool.
 */
export function faultTools(
  tools: readonly string[],
  onlyWhen: Readonly<Record<string, string>> = {},
): FaultTools {
  const dir = mkdtempSync(join(tmpdir(), 'kpft-'));
  const control = join(dir, 'fault');
  writeFileSync(control, '');
  for (const tool of tools) {
    const real = execFileSync('bash', ['-c', `command -v ${tool}`], {
      env: { PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` },
    })
      .toString()
      .trim();
    const path = join(dir, tool);
    writeFileSync(path, wrapper(tool, real, control, onlyWhen[tool] ?? 'true'));
    chmodSync(path, 0o755);
  }
  return {
    dir,
    set: (fault, tool) =>
      writeFileSync(control, fault !== '' && tool !== undefined ? `${fault}:${tool}` : fault),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
