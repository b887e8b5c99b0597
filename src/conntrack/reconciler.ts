// Stale UDP conntrack cleanup after a successful sync (upstream-behavior.md 7), with the Debian
// `conntrack` tool: list the family's UDP entries, pick the stale ones (stale.ts), delete them in
// batches through `conntrack -R <file>`, record the duration and the number of deleted entries.
// The batch goes through a file, not stdin: the tool fopen()s /dev/stdin, which fails when
// stdin is the socket Node's child_process gives it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { log } from '../log/log.ts';
import type { IPFamily, ProxySnapshot } from '../model/types.ts';
import type { ProxyMetrics } from '../metrics/proxy.ts';
import { ExecError, execTool, type ExecOptions, type ExecResult } from '../util/exec.ts';
import { parseConntrackList } from './entries.ts';
import { deleteScripts, staleFlowFilters, udpFrontends } from './stale.ts';
import { plansOf } from '../plan/service-port.ts';

export type Runner = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

export interface ConntrackReconcilerOptions {
  /** How `conntrack` is run; tests wrap it in `ip netns exec`. Default execTool. */
  readonly runner?: Runner;
  readonly metrics?: Pick<
    ProxyMetrics,
    'conntrackReconcilerSyncDuration' | 'conntrackReconcilerDeletedEntries'
  >;
  /** Delete commands per `conntrack -R` run. */
  readonly batchSize?: number;
  readonly now?: () => number;
}

export interface ReconcileResult {
  /** Entries found stale (distinct delete filters). */
  readonly filters: number;
  /** Entries the kernel actually removed (the tool prints each one it deleted). */
  readonly deleted: number;
}

const FAMILY_ARG: Record<IPFamily, string> = { IPv4: 'ipv4', IPv6: 'ipv6' };
const TOOL = 'conntrack';
const TIMEOUT_MS = 30_000;

export class ConntrackReconciler {
  private readonly runner: Runner;
  private readonly options: ConntrackReconcilerOptions;
  private readonly now: () => number;

  constructor(options: ConntrackReconcilerOptions = {}) {
    this.options = options;
    this.runner = options.runner ?? execTool;
    this.now = options.now ?? (() => performance.now());
  }

  /** Families whose cleanup is owed: set by a UDP endpoint change, cleared by a clean run. */
  private readonly due = new Set<IPFamily>();

  /**
   * The post-sync step: runs only when some Service with a UDP port changed endpoints (nothing
   * else can make an entry stale). The debt is sticky: a run that fails (conntrack could not
   * list the table) is repeated after the next sync, so a transient error never leaves a UDP
   * client pinned to a dead endpoint. Resolves undefined when it did not run.
   */
  async afterSync(snapshot: ProxySnapshot): Promise<ReconcileResult | undefined> {
    if (snapshot.udpEndpointsChanged) this.due.add(snapshot.family);
    if (!this.due.has(snapshot.family)) return undefined;
    const result = await this.reconcile(snapshot);
    this.due.delete(snapshot.family);
    return result;
  }

  /** Lists, filters and deletes unconditionally. Throws when the tool cannot list the table. */
  async reconcile(snapshot: ProxySnapshot): Promise<ReconcileResult> {
    const family = snapshot.family;
    const started = this.now();
    let deleted = 0;
    try {
      const frontends = udpFrontends(plansOf(snapshot));
      if (frontends.byAddress.size === 0 && frontends.byNodePort.size === 0)
        return { filters: 0, deleted: 0 };
      const listing = await this.runner(TOOL, ['-L', '-f', FAMILY_ARG[family], '-p', 'udp'], {
        timeoutMs: TIMEOUT_MS,
      });
      const entries = parseConntrackList(listing.stdout).filter((entry) => entry.family === family);
      const filters = staleFlowFilters(frontends, entries);
      for (const script of deleteScripts(filters, this.options.batchSize)) {
        deleted += await this.runBatch(script, family);
      }
      if (filters.length > 0) {
        log.v(2).info('Deleted stale conntrack entries', {
          ipFamily: family,
          filters: filters.length,
          deleted,
        });
      }
      return { filters: filters.length, deleted };
    } finally {
      const labels = { ip_family: family };
      this.options.metrics?.conntrackReconcilerSyncDuration.observe(labels, (this.now() - started) / 1000);
      if (deleted > 0) this.options.metrics?.conntrackReconcilerDeletedEntries.inc(labels, deleted);
    }
  }

  /** Runs one batch; a failing batch is logged and the others still run. */
  private async runBatch(script: string, family: IPFamily): Promise<number> {
    let dir: string | undefined;
    try {
      dir = await mkdtemp(join(tmpdir(), 'kube-proxy-conntrack-'));
      const file = join(dir, 'delete');
      await writeFile(file, script, { mode: 0o600 });
      const result = await this.runner(TOOL, ['-R', file], { timeoutMs: TIMEOUT_MS });
      return parseConntrackList(result.stdout).length;
    } catch (error) {
      log.error('Failed to delete stale conntrack entries', error, { ipFamily: family });
      // Commands before the failing one were applied and printed.
      return error instanceof ExecError ? parseConntrackList(error.stdout).length : 0;
    } finally {
      if (dir !== undefined) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
