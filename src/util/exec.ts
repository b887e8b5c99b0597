// The one way this program runs a system tool: with a deadline, optional stdin, and stderr kept
// so a failure can say what the tool said. Every effect on the kernel goes through here.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';

export interface ExecOptions {
  /**
   * Text written to the tool's stdin (e.g. an iptables-restore or nft -f - script), whole or
   * in pieces that are produced only as the pipe takes them (a large script never has to exist
   * as one string).
   */
  readonly input?: string | Iterable<string>;
  /**
   * Called once the pipe has taken the whole of a string `input` (the tool may still be working
   * on it): a caller can then use the CPU without starving the pipe.
   */
  readonly onInputTaken?: () => void;
  /** Kill the tool after this many milliseconds. Default 60 s; ignored with `stallTimeoutMs`. */
  readonly timeoutMs?: number;
  /**
   * For work whose length grows with the cluster (a restore of 10k Services can take many
   * minutes): no deadline, but the tool is killed once it has made no progress for this long.
   * Progress is CPU time spent by the tool, input taken from its pipe, or output written; a tool
   * blocked on a lock or on the kernel shows none of it.
   */
  readonly stallTimeoutMs?: number;
  /** With `stallTimeoutMs`: called every `progressEveryMs` (30 s) while the tool runs. */
  readonly onProgress?: (progress: ToolProgress) => void;
  readonly progressEveryMs?: number;
  /** Extra environment entries. */
  readonly env?: Readonly<Record<string, string>>;
}

/** What a long-running tool has done so far. */
export interface ToolProgress {
  readonly command: string;
  readonly elapsedMs: number;
  /** CPU time the tool used (user + system), when /proc says. */
  readonly cpuMs: number | undefined;
  /** Input bytes not yet taken by the tool (queued in this process). */
  readonly inputPendingBytes: number;
  readonly outputBytes: number;
}

/** CPU time (user + system) of a process in ms, from /proc/<pid>/stat; undefined when unreadable. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // Fields after the command (which may contain spaces), from field 3 on.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10 : undefined; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
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
    let timedOut: string | undefined;
    let inputFailure: Error | undefined;
    let outputBytes = 0;
    const stop = options.stallTimeoutMs
      ? watchProgress(options.stallTimeoutMs, options.progressEveryMs ?? 30_000, {
          command,
          pid: child.pid,
          inputPending: () => child.stdin.writableLength,
          outputBytes: () => outputBytes,
          onProgress: options.onProgress,
          onStall: (reason) => {
            timedOut = reason;
            child.kill('SIGKILL');
          },
        })
      : deadline(options.timeoutMs ?? 60_000, () => {
          timedOut = `timed out after ${String(options.timeoutMs ?? 60_000)} ms`;
          child.kill('SIGKILL');
        });
    child.stdout.on('data', (chunk: Buffer) => {
      outputBytes += chunk.length;
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      outputBytes += chunk.length;
      err.push(chunk);
    });
    child.on('error', (error) => {
      stop();
      reject(new ExecError(command, null, '', '', error.message));
    });
    child.on('close', (code, signal) => {
      stop();
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (inputFailure) {
        reject(new ExecError(command, code, stdout, stderr, `input failed: ${inputFailure.message}`));
      } else if (timedOut !== undefined) {
        reject(new ExecError(command, code, stdout, stderr, timedOut));
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
    if (typeof input === 'string') child.stdin.end(input, () => options.onInputTaken?.());
    else
      writePieces(child.stdin, input[Symbol.iterator](), (error) => {
        // Killed before its stdin closes, so the tool never sees an end of input and never
        // acts on a truncated script (nft would commit whatever complete commands it read).
        inputFailure = error;
        child.kill('SIGKILL');
      });
  });
}

function deadline(ms: number, expire: () => void): () => void {
  const timer = setTimeout(expire, ms);
  return () => clearTimeout(timer);
}

interface ProgressSources {
  readonly command: string;
  readonly pid: number | undefined;
  readonly inputPending: () => number;
  readonly outputBytes: () => number;
  readonly onProgress: ((progress: ToolProgress) => void) | undefined;
  readonly onStall: (reason: string) => void;
}

/**
 * Samples the tool's CPU time, pending input and output; calls onStall when none of them moved
 * for `stallMs`, and onProgress every `everyMs`. Returns the function that stops the sampling.
 */
function watchProgress(stallMs: number, everyMs: number, sources: ProgressSources): () => void {
  const started = Date.now();
  const sample = () => ({
    cpuMs: sources.pid === undefined ? undefined : processCpuMs(sources.pid),
    inputPendingBytes: sources.inputPending(),
    outputBytes: sources.outputBytes(),
  });
  let last = sample();
  let lastMove = started;
  let lastReport = started;
  const timer = setInterval(
    () => {
      const now = Date.now();
      const current = sample();
      const moved =
        current.cpuMs !== last.cpuMs ||
        current.inputPendingBytes !== last.inputPendingBytes ||
        current.outputBytes !== last.outputBytes;
      last = current;
      if (moved) lastMove = now;
      else if (now - lastMove >= stallMs) {
        clearInterval(timer);
        sources.onStall(
          `made no progress for ${String(Math.round((now - lastMove) / 1000))} s (no CPU time, input taken or output; ` +
            `${String(Math.round((now - started) / 1000))} s in all), killed`,
        );
        return;
      }
      if (sources.onProgress && now - lastReport >= everyMs) {
        lastReport = now;
        sources.onProgress({ command: sources.command, elapsedMs: now - started, ...current });
      }
    },
    Math.max(10, Math.min(1000, stallMs / 4)),
  );
  timer.unref();
  return () => clearInterval(timer);
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
