// Graceful termination of real servers (modes-ipvs-userspace.md 1.11): a real server that is no
// longer desired is deleted at once when it is UDP or SCTP (expire_nodest_conn ends its flows on
// their next packet) or a TCP one without connections; otherwise it goes to weight 0 (no new
// connections, established ones continue) and is retried on this manager's own timer until its
// connection counts reach zero. The IPVS table is shared with the sync, so every step runs under
// the proxier's lock.
import { longToolOptions } from '../common/long-tool.ts';
import { log } from '../../log/log.ts';
import type { Runner } from '../xtables/index.ts';
import { ExecError } from '../../util/exec.ts';
import { rsKey, vsKey, type RealServer, type VirtualServer } from './desired.ts';
import { deleteRealServerLine, parseIpvsList, realServerLine, type KernelVirtualServer } from './ipvsadm.ts';

type Target = Pick<VirtualServer, 'ip' | 'port' | 'protocol'>;

export interface Draining {
  readonly vs: Target;
  readonly rs: RealServer;
}

export function drainKey(vs: Target, rs: RealServer): string {
  return `${vsKey(vs)}/${rsKey(rs)}`;
}

export interface GracefulOptions {
  readonly run: Runner;
  /** Runs a step exclusively with the proxier's syncs. */
  readonly lock: <T>(step: () => Promise<T>) => Promise<T>;
  /** Retry period; upstream 1 minute. */
  readonly intervalMs: number;
}

/**
 * Lines of an `ipvsadm -R` batch the kernel refused (an existing or missing server, a protocol the
 * kernel lacks): the tool went through its whole input. Any other failure (killed, hung, unable
 * to start or to reach the kernel, its own parse error, which stops it mid-batch) is the tool's.
 */
export class IpvsadmLineErrors extends Error {
  constructor(stderr: string) {
    super(`ipvsadm -R: ${stderr}`);
    this.name = 'IpvsadmLineErrors';
  }
}

/**
 * ipvsadm's exit status when the batch's last line failed: it carries on after a failing line,
 * prints why, and exits with the last line's result (-1).
 */
const LAST_LINE_FAILED = 255;

/** Runs an `ipvsadm -R` batch; refused lines throw IpvsadmLineErrors, a failed tool its error. */
export async function ipvsadmRestore(run: Runner, text: string): Promise<void> {
  if (text === '') return;
  let stderr: string;
  try {
    stderr = (await run('ipvsadm', ['-R'], { input: text, ...longToolOptions() })).stderr;
  } catch (error) {
    if (!(error instanceof ExecError) || error.code !== LAST_LINE_FAILED) throw error;
    stderr = error.stderr;
  }
  if (stderr.trim() !== '') throw new IpvsadmLineErrors(stderr.trim());
}

export class GracefulTermination {
  readonly #options: GracefulOptions;
  readonly #draining = new Map<string, Draining>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: GracefulOptions) {
    this.#options = options;
  }

  /** Keys (`vs/rs`) of the real servers at weight 0, waiting for their connections to end. */
  keys(): ReadonlySet<string> {
    return new Set(this.#draining.keys());
  }

  /** The draining real servers with their virtual servers. */
  entries(): readonly Draining[] {
    return [...this.#draining.values()];
  }

  has(vs: Target, rs: RealServer): boolean {
    return this.#draining.has(drainKey(vs, rs));
  }

  /** Forgets a real server (re-added as desired, or its virtual server was deleted). */
  forget(key: string): void {
    this.#draining.delete(key);
  }

  forgetService(vs: Target): void {
    const prefix = `${vsKey(vs)}/`;
    for (const key of this.#draining.keys()) if (key.startsWith(prefix)) this.#draining.delete(key);
  }

  /**
   * Removes real servers gracefully; call under the lock. Returns the ones left draining. Needs
   * connection counts only for TCP, read once per batch.
   */
  async remove(items: readonly Draining[], table?: ReadonlyMap<string, KernelVirtualServer>): Promise<void> {
    if (items.length === 0) return;
    const needCounts = items.some((item) => item.vs.protocol === 'TCP');
    const listed = needCounts ? (table ?? (await this.#list())) : new Map<string, KernelVirtualServer>();
    let text = '';
    /** Drains begun by this batch: kept only once their weight 0 is in the kernel. */
    const started: string[] = [];
    for (const item of items) {
      const key = drainKey(item.vs, item.rs);
      if (item.vs.protocol !== 'TCP') {
        text += deleteRealServerLine(item.vs, item.rs);
        this.#draining.delete(key);
        continue;
      }
      const found = listed.get(vsKey(item.vs))?.realServers.find((rs) => rsKey(rs) === rsKey(item.rs));
      if (!found) {
        // Gone already (deleted by someone, or its service was): nothing to drain.
        this.#draining.delete(key);
        continue;
      }
      if ((found.activeConnections ?? 0) + (found.inactiveConnections ?? 0) === 0) {
        text += deleteRealServerLine(item.vs, item.rs);
        this.#draining.delete(key);
        continue;
      }
      if (!this.#draining.has(key)) {
        if (found.weight !== 0) text += realServerLine('-e', item.vs, item.rs, 0);
        this.#draining.set(key, item);
        started.push(key);
        log.v(2).info('Real server draining (weight 0)', {
          virtualServer: vsKey(item.vs),
          realServer: rsKey(item.rs),
          activeConnections: found.activeConnections,
          inactiveConnections: found.inactiveConnections,
        });
      }
    }
    try {
      await ipvsadmRestore(this.#options.run, text);
    } catch (error) {
      // Not draining as far as the kernel knows: the next sync finds them removed again.
      for (const key of started) this.#draining.delete(key);
      throw error;
    }
  }

  async #list(): Promise<Map<string, KernelVirtualServer>> {
    return parseIpvsList((await this.#options.run('ipvsadm', ['-L', '-n'])).stdout);
  }

  /** One retry round over the draining real servers (the timer's job; tests call it directly). */
  async retry(): Promise<void> {
    if (this.#draining.size === 0) return;
    await this.#options.lock(() => this.remove([...this.#draining.values()]));
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.retry().catch((error: unknown) => {
        log.error('Graceful termination of real servers failed', error);
      });
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
