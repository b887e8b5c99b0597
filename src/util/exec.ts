// The one way this program runs a system tool: with a deadline, optional stdin, and stderr kept
// so a failure can say what the tool said. Every effect on the kernel goes through here.
import { spawn } from 'node:child_process';

export interface ExecOptions {
  /** Text written to the tool's stdin (e.g. an iptables-restore or nft -f - script). */
  readonly input?: string;
  /** Kill the tool after this many milliseconds. Default 60 s. */
  readonly timeoutMs?: number;
  /** Extra environment entries. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export class ExecError extends Error {
  readonly command: string;
  readonly code: number | null;
  readonly stderr: string;
  readonly stdout: string;
  constructor(command: string, code: number | null, stdout: string, stderr: string, reason: string) {
    super(`${command}: ${reason}${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
    this.name = 'ExecError';
    this.command = command;
    this.code = code;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}

/** Runs `file args…`; resolves on exit status 0, rejects with ExecError otherwise. */
export function execTool(
  file: string,
  args: readonly string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const command = [file, ...args].join(' ');
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 60_000);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new ExecError(command, null, '', '', error.message));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(
          new ExecError(command, code, stdout, stderr, `timed out after ${options.timeoutMs ?? 60_000} ms`),
        );
      } else if (code === 0) {
        resolve({ stdout, stderr, code });
      } else {
        const reason = signal ? `killed by ${signal}` : `exit status ${code ?? -1}`;
        reject(new ExecError(command, code, stdout, stderr, reason));
      }
    });
    // A tool that exits before reading all of stdin gives EPIPE; its exit status tells the story.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}
