// The nftables Proxier: render (pure) then one `nft -f -` transaction per sync. We keep the
// record of what the last successful transaction wrote and diff against it; a failed
// transaction changes nothing in the kernel, so we forget the record and the next sync is full.
import { longToolOptions } from '../common/long-tool.ts';
import { release as osRelease } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { IPFamily } from '../../model/types.ts';
import type { Backend, SyncRequest, SyncResult } from '../../sync/backend.ts';
import { DUMP_RULES_ENV, dumpRules } from '../../util/dump.ts';
import { ExecError, execTool, type ExecOptions, type ExecResult } from '../../util/exec.ts';
import { validateOptions, type NftablesOptions } from './options.ts';
import { render, type NftState } from './render.ts';
import { NftSession, NftSessionError, SESSION_MAX_SCRIPT_BYTES } from './session.ts';
import {
  chainsOfTable,
  cheapIntact,
  cheapListing,
  checkModeScript,
  DeepCheckSchedule,
  deepListing,
  handlesFromEcho,
  isMissing,
  judgeDeepListing,
  sampleElements,
  SAMPLED_ELEMENTS,
  staticRuleCounts,
  type RuleHandle,
} from './integrity.ts';
import { buildSkeleton } from './skeleton.ts';
import { FIRST_SYNC_PIECE, firstSyncPieces } from './pieces.ts';
import type { ProxySnapshot } from '../../model/types.ts';
import { log } from '../../log/log.ts';

export type Runner = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

export interface NftablesProxierDeps {
  /** Runs a system tool; defaults to execTool. Tests run it inside a network namespace. */
  readonly run?: Runner;
  /** Skip the kernel >= 5.13 check (upstream's KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK). */
  readonly skipKernelCheck?: boolean;
  /** Kernel release to check; defaults to os.release(). */
  readonly kernelRelease?: string;
  /**
   * Starts a long-lived `nft -i` for small partial syncs (session.ts); without it every
   * transaction runs a fresh `nft -f`. Only for the real tools: a test's runner cannot host it.
   */
  readonly session?: () => NftSession;
  /**
   * The node port addresses as the host has them now (options.nodePortAddresses `ips` resolved
   * against the current interface addresses), read at every sync: an address added to or
   * removed from the node reaches @nodeport-ips without a restart, as upstream re-reads them
   * each sync. Absent: the addresses in the options, for the proxier's life.
   */
  readonly nodePortIPs?: () => readonly string[];
  /** The integrity check's element sampling (tests fix it); default Math.random. */
  readonly random?: () => number;
  /** The integrity check's clock in ms (tests move it); default performance.now. */
  readonly now?: () => number;
  /**
   * Service ports per transaction of a first sync into a kernel without our table (pieces.ts);
   * default FIRST_SYNC_PIECE, Infinity for one transaction (benchmarks, tests).
   */
  readonly firstSyncPiece?: number;
}

export type NftablesProxier = Backend;

export const MIN_NFT_VERSION = [1, 0, 1] as const;
export const MIN_KERNEL_VERSION = [5, 13] as const;

function atLeast(version: readonly number[], minimum: readonly number[]): boolean {
  for (let i = 0; i < minimum.length; i++) {
    const a = version[i] ?? 0;
    const b = minimum[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** Parses `nftables v1.0.6 (Lester Gooch #5)`; undefined when there is no version in it. */
export function parseNftVersion(output: string): number[] | undefined {
  const match = /v(\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)] : undefined;
}

export function parseKernelRelease(release: string): number[] | undefined {
  const match = /^(\d+)\.(\d+)/.exec(release);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** Throws unless `nft` is at least 1.0.1 (and the kernel at least 5.13, unless skipped). */
export async function checkNftablesSupport(run: Runner, deps: NftablesProxierDeps = {}): Promise<string> {
  let output: string;
  try {
    output = (await run('nft', ['--version'], { timeoutMs: 10_000 })).stdout;
  } catch (error) {
    throw new Error(
      `nftables mode needs the nft tool: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const version = parseNftVersion(output);
  if (!version || !atLeast(version, MIN_NFT_VERSION)) {
    throw new Error(
      `nftables mode needs nft >= ${MIN_NFT_VERSION.join('.')}; nft --version said ${JSON.stringify(output.trim())}`,
    );
  }
  if (!deps.skipKernelCheck) {
    const release = deps.kernelRelease ?? osRelease();
    const kernel = parseKernelRelease(release);
    if (!kernel || !atLeast(kernel, MIN_KERNEL_VERSION)) {
      throw new Error(
        `nftables mode needs kernel >= ${MIN_KERNEL_VERSION.join('.')}, this is ${release} ` +
          '(set KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK to skip the check)',
      );
    }
  }
  return output.trim();
}

/** The script lines an nft error points at (`/dev/stdin:LINE:...`), in order. */
function missingLines(error: unknown): number[] {
  const stderr = error instanceof ExecError ? error.stderr : '';
  return [...stderr.matchAll(/\/dev\/stdin:(\d+):/g)].map((match) => Number(match[1]));
}

/** nft's error text, plus the script line(s) it points at (`/dev/stdin:LINE:...`). */
export function describeNftFailure(error: unknown, script: string): string {
  const stderr = error instanceof ExecError ? error.stderr : '';
  const base = error instanceof Error ? error.message : String(error);
  const lines = script.split('\n');
  const cited = new Set<number>();
  for (const match of stderr.matchAll(/\/dev\/stdin:(\d+):/g)) cited.add(Number(match[1]));
  const shown = [...cited].slice(0, 3).map((n) => `line ${n}: ${lines[n - 1] ?? '?'}`);
  const head = stderr ? stderr.trim().split('\n').slice(0, 12).join('\n') : base;
  return `nft -f - failed: ${head}${shown.length > 0 ? `\n${shown.join('\n')}` : ''}`;
}

/** The pieces, with the time spent producing each one and each piece reported to `seen`. */
function* watchedPieces(
  pieces: Iterable<string>,
  seen: (ms: number, piece: string | undefined) => void,
): Generator<string> {
  const iterator = pieces[Symbol.iterator]();
  for (;;) {
    const start = performance.now();
    const next = iterator.next();
    seen(performance.now() - start, next.done ? undefined : next.value);
    if (next.done) return;
    yield next.value;
  }
}

/**
 * The options with the node port addresses the host has now; the same object while they have
 * not changed (the renderer caches its skeleton per options object).
 */
function withCurrentNodePorts(
  options: NftablesOptions,
  current: (() => readonly string[]) | undefined,
): NftablesOptions {
  if (!current || options.nodePortAddresses.kind !== 'ips') return options;
  let ips: readonly string[];
  try {
    ips = current();
  } catch (error) {
    log.error('Failed to read the node port addresses, keeping the previous ones', error, {
      ipFamily: options.family,
    });
    return options;
  }
  const before = options.nodePortAddresses.ips;
  if (ips.length === before.length && ips.every((ip, i) => ip === before[i])) return options;
  log.info('Node port addresses changed', { ipFamily: options.family, old: before, new: ips });
  const next: NftablesOptions = { ...options, nodePortAddresses: { kind: 'ips', ips: [...ips] } };
  validateOptions(next);
  return next;
}

export async function createNftablesProxier(
  initialOptions: NftablesOptions,
  deps: NftablesProxierDeps = {},
): Promise<NftablesProxier> {
  validateOptions(initialOptions);
  let options = initialOptions;
  const run: Runner = deps.run ?? execTool;
  await checkNftablesSupport(run, deps);
  let previous: NftState | undefined;
  let busy = false;
  const family: IPFamily = options.family;
  let session: NftSession | undefined;
  const deepCheck = new DeepCheckSchedule();
  const pieceSize = deps.firstSyncPiece ?? FIRST_SYNC_PIECE;
  // What the last full sync wrote into the chains partial syncs leave alone, and the handles the
  // deep look found for those rules (undefined until it has looked since that sync).
  let fullSyncs = 0;
  let staticRules: ReadonlyMap<string, number> = new Map();
  let ruleHandles: readonly RuleHandle[] | undefined;

  /** A partial sync through the session; false when the session could not take it. */
  async function viaSession(script: string): Promise<boolean> {
    if (!deps.session || script.length > SESSION_MAX_SCRIPT_BYTES) return false;
    session ??= deps.session();
    try {
      await session.apply(script);
      return true;
    } catch (error) {
      if (!(error instanceof NftSessionError)) throw error;
      log.warn('nft -i session ended, applying with nft -f', { ipFamily: family, reason: error.message });
      session.close();
      session = undefined;
      return false;
    }
  }

  /** Whether the kernel has no table of ours (a first start of the node); false when unsure. */
  async function tableAbsent(): Promise<boolean> {
    try {
      return (
        chainsOfTable((await run('nft', cheapListing(family), { timeoutMs: 10_000 })).stdout, family) ===
        undefined
      );
    } catch {
      return false;
    }
  }

  /**
   * The first sync into a kernel without our table, one transaction per piece (pieces.ts): every
   * Service is all there or not there at every moment, and no `nft` holds the whole cluster.
   */
  async function firstSyncInPieces(
    snapshot: ProxySnapshot,
    dumpDir: string | undefined,
  ): Promise<SyncResult> {
    const pieces = firstSyncPieces(snapshot, pieceSize);
    log.info('First sync into a kernel without our table, in pieces', {
      ipFamily: family,
      servicePorts: snapshot.servicePorts.size,
      transactions: pieces.length,
    });
    let state: NftState | undefined;
    let renderMs = 0;
    let scriptBytes = 0;
    let elementOps = 0;
    let learned: readonly RuleHandle[] | undefined;
    // Dumped, the pieces in order make one script that gives the same table in one transaction.
    const dumped: string[] = [];
    /**
     * One piece's transaction; the first, the fixed part alone, echoes its rules' handles.
     * `taken`: nft has read the whole script (or is done); rendering the next piece from then on
     * leaves nft's own work, most of it after reading, to run beside it on another core. (The
     * pipe is fed by this process's event loop, which a render would otherwise hold up.)
     */
    const apply = (first: boolean, script: string): { done: Promise<void>; taken: Promise<void> } => {
      let markTaken = (): void => undefined;
      const takenEvent = new Promise<void>((resolve) => (markTaken = resolve));
      const args = first ? ['--echo', '--handle', '-f', '-'] : ['-f', '-'];
      const done = (async () => {
        let echo: string;
        try {
          echo = (await run('nft', args, { input: script, onInputTaken: markTaken, ...longToolOptions() }))
            .stdout;
        } catch (error) {
          throw new Error(describeNftFailure(error, script), { cause: error });
        }
        if (first) learned = handlesFromEcho(echo, family, staticRules);
      })();
      const settled = done.then(
        () => undefined,
        () => undefined,
      );
      return { done, taken: Promise.race([takenEvent, settled]) };
    };
    const start = performance.now();
    // The next piece is rendered while nft works on this one; the transactions go in order.
    let applying: Promise<void> = Promise.resolve();
    try {
      for (const [i, piece] of pieces.entries()) {
        const renderStart = performance.now();
        const result = render(state, piece, options, i === 0);
        const script = result.script;
        renderMs += performance.now() - renderStart;
        scriptBytes += script.length;
        elementOps += result.stats.elementOps;
        if (dumpDir !== undefined) dumped.push(script);
        state = result.next;
        await applying;
        if (result.empty) continue;
        const transaction = apply(i === 0, script);
        applying = transaction.done;
        await transaction.taken;
      }
      await applying;
    } catch (error) {
      applying.catch(() => undefined); // a render failed while a transaction ran: its outcome is moot
      throw error;
    }
    const applyMs = performance.now() - start - renderMs;
    if (dumpDir !== undefined) dumpRules(join(dumpDir, `nftables-${family}.rules`), dumped.join(''));
    if (state === undefined) throw new Error('nftables first sync: no pieces');
    // The next partial sync diffs against the whole snapshot, as after a one-transaction sync.
    previous = { ...state, generation: snapshot.generation };
    ruleHandles = learned;
    // Known handles make the deep look due on its schedule only. Listing the table costs about
    // what loading it did, so that stands in for the cost of a deep look not yet run.
    if (learned) {
      const end = (deps.now ?? (() => performance.now()))();
      deepCheck.ran(end - applyMs, end);
    }
    return {
      full: true,
      renderSeconds: renderMs / 1000,
      applySeconds: applyMs / 1000,
      details: {
        servicePorts: snapshot.servicePorts.size,
        changedServicePorts: snapshot.servicePorts.size,
        elementOps,
        scriptBytes,
      },
    };
  }

  return {
    family,
    mode: 'nftables',
    followsHostAddresses: deps.nodePortIPs !== undefined && options.nodePortAddresses.kind === 'ips',
    close: () => {
      session?.close();
      session = undefined;
      return Promise.resolve();
    },
    /**
     * The record of the last transaction is trusted only while the kernel still shows our rules:
     * when the table, a hook chain, a jump or a sampled dispatch element is gone, the record is
     * dropped and the next sync is full. What each check costs, and so how often it looks at
     * rules and elements: integrity.ts.
     */
    async rulesIntact(): Promise<boolean> {
      const record = previous;
      if (record === undefined || busy) return true;
      const generation = fullSyncs;
      // What is wrong with the rules and chains (partial syncs never touch them), and with the
      // sampled elements (a partial sync may remove one meanwhile, legitimately).
      let ruleProblem: string | undefined;
      let elementProblem: string | undefined;
      try {
        const listing = (await run('nft', cheapListing(family), { timeoutMs: 10_000 })).stdout;
        if (!cheapIntact(listing, family)) ruleProblem = 'the table or one of its hook chains is gone';
      } catch (error) {
        // No table of this family at all is an empty listing, not an error: nft itself failed,
        // which says nothing about our rules (the daemon logs it and asks again next time).
        throw new Error(`nft ${cheapListing(family).join(' ')} failed`, { cause: error });
      }
      const samples =
        ruleProblem === undefined
          ? sampleElements(record.ledger, SAMPLED_ELEMENTS, deps.random ?? Math.random)
          : [];
      const handles = ruleProblem === undefined ? (ruleHandles ?? []) : [];
      if (samples.length + handles.length > 0) {
        try {
          // Exits 1 when any sampled element or rule is missing; deletes nothing (check mode).
          await run('nft', ['-c', '-f', '-'], {
            input: checkModeScript(family, samples, handles),
            timeoutMs: 10_000,
          });
        } catch (error) {
          if (!isMissing(error)) throw new Error('nft integrity check failed', { cause: error });
          // nft names the failing lines: the elements come first, then the rules.
          const lines = missingLines(error);
          if (lines.some((line) => line > samples.length))
            ruleProblem = `some of the ${handles.length} rules of the fixed chains are gone`;
          else elementProblem = 'a sampled dispatch element is gone';
        }
      }
      const now = deps.now ?? (() => performance.now());
      const start = now();
      // Right after a full sync the handles are unknown: the deep look learns them at once.
      const healthy = ruleProblem === undefined && elementProblem === undefined;
      if (healthy && (ruleHandles === undefined || deepCheck.due(start))) {
        const expected = staticRules;
        let listing: string | undefined;
        try {
          listing = (await run('nft', deepListing(family), { timeoutMs: 60_000 })).stdout;
        } catch (error) {
          deepCheck.ran(start, now());
          // A missing table is what we look for; any other failure is nft's own.
          if (!isMissing(error)) throw new Error('nft integrity check failed', { cause: error });
          ruleProblem = 'the table is gone';
        }
        if (listing !== undefined) {
          deepCheck.ran(start, now());
          const verdict = judgeDeepListing(listing, expected);
          if (!verdict.intact) ruleProblem = verdict.problem;
          else if (generation === fullSyncs) ruleHandles = verdict.handles;
        }
      }
      // A full sync that started meanwhile rewrote everything: it is the one to judge next time.
      // A partial one wrote a new record, which may lack a sampled element; it leaves rules alone.
      if (generation !== fullSyncs) return true;
      const problem = ruleProblem ?? (previous === record ? elementProblem : undefined);
      if (problem === undefined) return true;
      log.warn('nftables rules changed by someone else', { ipFamily: family, problem });
      previous = undefined;
      deepCheck.reset();
      return false;
    },
    async sync(request: SyncRequest): Promise<SyncResult> {
      if (busy) throw new Error(`nftables ${family} proxier: sync called while a sync is running`);
      busy = true;
      try {
        const full = request.full || previous === undefined;
        options = withCurrentNodePorts(options, deps.nodePortIPs);
        if (full) {
          fullSyncs++;
          ruleHandles = undefined;
          staticRules = staticRuleCounts(buildSkeleton(options));
        }
        const dumpDir = process.env[DUMP_RULES_ENV];
        if (previous === undefined && request.snapshot.servicePorts.size > pieceSize && (await tableAbsent()))
          return await firstSyncInPieces(request.snapshot, dumpDir);
        const renderStart = performance.now();
        const result = render(previous, request.snapshot, options, full);
        // The old record is spent either way; it comes back only as `next` after success.
        previous = undefined;
        const renderOnlyMs = performance.now() - renderStart;
        let renderMs = renderOnlyMs;
        const applyStart = performance.now();
        // The text is generated while nft reads it: that time is rendering, not applying.
        const dumped: string[] | undefined = full && dumpDir ? [] : undefined;
        let scriptBytes = 0;
        const timed = watchedPieces(result.chunks(), (ms, piece) => {
          renderMs += ms;
          if (piece === undefined) return;
          scriptBytes += piece.length;
          dumped?.push(piece);
        });
        if (!result.empty) {
          try {
            if (full || !(await viaSession(result.script)))
              await run('nft', ['-f', '-'], { input: timed, ...longToolOptions() });
          } catch (error) {
            throw new Error(describeNftFailure(error, result.script), { cause: error });
          }
        }
        previous = result.next;
        const renderSeconds = renderMs / 1000;
        const applySeconds = (performance.now() - applyStart - (renderMs - renderOnlyMs)) / 1000;
        if (dumped && dumpDir) dumpRules(join(dumpDir, `nftables-${family}.rules`), dumped.join(''));
        return {
          full,
          renderSeconds,
          applySeconds,
          details: {
            servicePorts: result.stats.servicePorts,
            changedServicePorts: result.stats.changed,
            elementOps: result.stats.elementOps,
            scriptBytes,
          },
        };
      } finally {
        busy = false;
      }
    },
  };
}
