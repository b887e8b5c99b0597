// Writing rules: `iptables-restore --noflush`, with an error that points at the input line the
// tool rejected (at 10k Services the input is tens of MB; "line 81234 failed" alone is useless).
import { ExecError, inSlices } from '../../util/exec.ts';
import { RESTORE_ARGS, type IptablesTools, type Runner } from './tools.ts';
import { longToolOptions } from '../common/long-tool.ts';

/** The input lines around `line` (1-based), numbered, for an error message. */
export function linesAround(text: string, line: number, radius = 1): string {
  const lines = text.split('\n');
  const from = Math.max(1, line - radius);
  const to = Math.min(lines.length, line + radius);
  const out: string[] = [];
  for (let n = from; n <= to; n++)
    out.push(`${n === line ? '>' : ' '}${String(n).padStart(6)}: ${lines[n - 1] ?? ''}`);
  return out.join('\n');
}

export class RestoreError extends Error {
  readonly tool: string;
  readonly stderr: string;
  /** 1-based line of the input the tool complained about, when it said. */
  readonly line: number | undefined;
  constructor(tool: string, stderr: string, line: number | undefined, context: string, reason: string) {
    super(
      `${tool} failed: ${stderr.trim() || reason}${line !== undefined ? `\ninput around line ${line}:\n${context}` : ''}`,
    );
    this.name = 'RestoreError';
    this.tool = tool;
    this.stderr = stderr;
    this.line = line;
  }
}

/**
 * Pipes the text to `<backend>-restore --noflush`. Each table is committed atomically, so on
 * failure the previous rules of that table are still in place.
 */
export async function restore(run: Runner, tools: IptablesTools, text: string): Promise<void> {
  try {
    // In slices: at 10k Services the text is tens of MB, and one Buffer of it doubles the peak.
    await run(tools.restore, RESTORE_ARGS, { input: inSlices(text), ...longToolOptions() });
  } catch (error) {
    const stderr = error instanceof ExecError ? error.stderr : '';
    const reason = error instanceof Error ? error.message : String(error);
    const match = /line:?\s+(\d+)/i.exec(stderr);
    const line = match ? Number(match[1]) : undefined;
    throw new RestoreError(
      tools.restore,
      stderr,
      line,
      line === undefined ? '' : linesAround(text, line),
      reason,
    );
  }
}
