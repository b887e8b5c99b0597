// The one way this program runs a system tool: with a deadline, optional stdin, and stderr kept
// so a failure can say what the tool said. Every effect on the kernel goes through here.
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';

export interface ExecOptions {
  /**
   * Text written to the tool's stdin (e.g. an iptables-restore or nft -f - script), whole or
   * in pieces that are produced only as the pipe takes them (a large script never has to exist
   * as one string).
   */
  readonly input?: string | Iterable<string>;
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

/**
 * A long text as consecutive slices (V8 slices share the text's memory), so a pipe write
 * converts a quarter megabyte at a time to bytes instead of one Buffer the size of the text.
 */
export function* inSlices(text: string, size = 256 * 1024): Generator<string> {
  for (let start = 0; start < text.length; start += size) yield text.slice(start, start + size);
}

/** The whole text of an `input` option (for tests and tools that need it as one string). */
export function inputText(input: ExecOptions['input']): string {
  return input === undefined ? '' : typeof input === 'string' ? input : [...input].join('');
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
    let inputFailure: Error | undefined;
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
      if (inputFailure) {
        reject(new ExecError(command, code, stdout, stderr, `input failed: ${inputFailure.message}`));
      } else if (timedOut) {
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
    const input = options.input ?? '';
    if (typeof input === 'string') child.stdin.end(input);
    else
      writePieces(child.stdin, input[Symbol.iterator](), (error) => {
        // Killed before its stdin closes, so the tool never sees an end of input and never
        // acts on a truncated script (nft would commit whatever complete commands it read).
        inputFailure = error;
        child.kill('SIGKILL');
      });
  });
}

/**
 * Writes the pieces one after the other, waiting for the pipe to drain; then ends it. A piece
 * that cannot be produced calls `fail` first, then breaks the pipe.
 */
function writePieces(stdin: Writable, pieces: Iterator<string>, fail: (error: Error) => void): void {
  for (;;) {
    let next: IteratorResult<string>;
    try {
      next = pieces.next();
    } catch (error) {
      fail(error instanceof Error ? error : new Error(String(error)));
      stdin.destroy();
      return;
    }
    if (next.done) {
      stdin.end();
      return;
    }
    if (!stdin.write(next.value)) {
      if (stdin.destroyed) return;
      stdin.once('drain', () => writePieces(stdin, pieces, fail));
      return;
    }
  }
}
