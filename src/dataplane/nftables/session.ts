// A long-lived `nft -i` process for small transactions (issue 16: one endpoint change). A fresh
// `nft -f` per change pays a process start and a fetch of the table's cache every time; the
// session pays them once. `nft -i` reads a line at a time and commits each line as one netlink
// batch (all of it or nothing), so a transaction is written as one line (`oneLine`), followed by
// a marker command that fails in a known way: the marker's error says where the transaction's
// own error output ends, and that the transaction is done. Any trouble (the process died, no
// answer within the deadline, a line too long) ends the session; the caller then applies with a
// fresh `nft -f`, and a new session starts on the next small change.
import { spawn, type ChildProcess } from 'node:child_process';

/** Transactions longer than this go through `nft -f` (a line editor is not made for megabytes). */
export const SESSION_MAX_SCRIPT_BYTES = 256 * 1024;
const DEADLINE_MS = 10_000;

/**
 * A multi-line nft script as one line with the same meaning: statements separated by `;`, the
 * lines inside a `{ … }` block joined by spaces. The renderer writes no comments (`#`), which a
 * joined line would extend to its end.
 */
export function oneLine(script: string): string {
  let depth = 0;
  let out = '';
  for (const raw of script.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (out !== '') out += depth > 0 ? ' ' : '; ';
    out += line;
    for (const ch of line) {
      if (ch === '{') depth++;
      else if (ch === '}') depth--;
    }
  }
  return out;
}

/** The error output of one transaction, cut at its marker; undefined while the marker is missing. */
export function splitAtMarker(
  stderr: string,
  marker: string,
): { readonly errors: string; readonly rest: string } | undefined {
  const pattern = new RegExp(`Error: [^\\n]*\\nlist table ip ${marker}\\n[^\\n]*\\n`);
  const match = pattern.exec(stderr);
  if (!match) return undefined;
  return { errors: stderr.slice(0, match.index), rest: stderr.slice(match.index + match[0].length) };
}

export class NftSessionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NftSessionError';
  }
}

/** One `nft -i` child; transactions run one at a time. */
export class NftSession {
  readonly #child: ChildProcess;
  #stderr = '';
  #dead: string | undefined;
  #count = 0;
  #waiter: (() => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    spawnNft: () => ChildProcess = () => spawn('nft', ['-i'], { stdio: ['pipe', 'ignore', 'pipe'] }),
  ) {
    this.#child = spawnNft();
    this.#child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
      this.#waiter?.();
    });
    this.#child.stdin?.on('error', () => undefined);
    const end = (why: string) => {
      this.#dead ??= why;
      this.#waiter?.();
    };
    this.#child.on('error', (error) => end(`nft -i could not run: ${error.message}`));
    this.#child.on('exit', (code, signal) => end(`nft -i exited (${signal ?? `status ${String(code)}`})`));
  }

  get alive(): boolean {
    return this.#dead === undefined;
  }

  /** Commits the script as one transaction; rejects with nft's error text, or NftSessionError. */
  apply(script: string): Promise<void> {
    const next = this.#queue.then(() => this.#apply(script));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.#dead ??= 'closed';
    this.#child.stdin?.end();
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }

  #apply(script: string): Promise<void> {
    if (this.#dead !== undefined) return Promise.reject(new NftSessionError(this.#dead));
    const line = oneLine(script);
    if (line.length > SESSION_MAX_SCRIPT_BYTES || line.includes('#'))
      return Promise.reject(new NftSessionError('transaction too large for the session'));
    const marker = `kpts-done-${String(++this.#count)}`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        this.close();
        reject(new NftSessionError(`nft -i gave no answer within ${String(DEADLINE_MS)} ms`));
      }, DEADLINE_MS);
      this.#waiter = () => {
        const split = splitAtMarker(this.#stderr, marker);
        if (!split && this.#dead === undefined) return;
        clearTimeout(timer);
        this.#waiter = undefined;
        if (!split) {
          reject(new NftSessionError(this.#dead ?? 'nft -i ended'));
          return;
        }
        this.#stderr = split.rest;
        if (split.errors.trim() === '') resolve();
        else reject(new Error(`nft: ${split.errors.trim().split('\n').slice(0, 12).join('\n')}`));
      };
      this.#child.stdin?.write(`${line}\nlist table ip ${marker}\n`);
      this.#waiter();
    });
  }
}
