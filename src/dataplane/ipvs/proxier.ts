// The IPVS Proxier (modes-ipvs-userspace.md 1.4-1.11): start-up checks and sysctls, then syncs
// that apply only what changed. It keeps a record of what its last sync left in the kernel (the
// virtual server table, the set members, the rules text) and diffs the next desired state
// against it; the kernel itself is read again on full syncs, after any failure, and at least
// once per syncPeriod (upstream reads it every sync), which is what repairs changes made behind
// our back. The order of a sync is upstream's: sets (abort on error), addresses, virtual and real
// servers, one iptables-restore (abort on error), then unbinding and the stale-server sweep.
import { longToolOptions } from '../common/long-tool.ts';
import { findTampering } from './integrity.ts';
import { CheckSchedule } from '../common/check-schedule.ts';
import { release } from 'node:os';
import { performance } from 'node:perf_hooks';
import { log } from '../../log/log.ts';
import type { IPFamily } from '../../model/types.ts';
import type { NodePortAddresses } from '../../plan/node-ports.ts';
import type { Backend, SyncRequest, SyncResult } from '../../sync/backend.ts';
import { join } from 'node:path';
import { DUMP_RULES_ENV, dumpRules } from '../../util/dump.ts';
import { execTool } from '../../util/exec.ts';
import { cidrContains, parseCIDR, parseIP } from '../../util/ip.ts';
import { procSysctl, type Sysctl } from '../../util/sysctl.ts';
import {
  detectIptablesBackend,
  ensureBase,
  iptablesTools,
  restore,
  supportsRandomFully,
  type IptablesBackend,
  type IptablesTools,
  type Runner,
} from '../xtables/index.ts';
import { DesiredCache, desiredState, vsKey, type IpvsDesired } from './desired.ts';
import { GracefulTermination, IpvsadmLineErrors, drainKey, ipvsadmRestore } from './graceful.ts';
import {
  applyIpvsSysctls,
  ensureInterface,
  changeAddresses,
  nodePortIPsOf,
  readAddresses,
  wantedIpvsSysctls,
} from './host.ts';
import { parseIpsetSave, renderIpsetRestore } from './ipset.ts';
import { deleteServiceLine, diffIpvs, parseIpvsSave, type KernelVirtualServer } from './ipvsadm.ts';
import { SET_KEYS, setName, type SetKey } from './names.ts';
import { IPVS_OWNER } from './owner.ts';
import {
  DEFAULT_IPVS_SETTINGS,
  validateIpvsOptions,
  type IpvsOptions,
  type IpvsSettings,
} from './options.ts';
import { renderIpvsRules } from './rules.ts';

export interface IpvsProxierOptions extends Omit<IpvsOptions, 'randomFully'> {
  readonly settings?: IpvsSettings;
  /** --nodeport-addresses for the family, resolved (plan/node-ports.ts). */
  readonly nodePortAddresses: NodePortAddresses;
  /** Default: detected from `iptables --version`. */
  readonly randomFully?: boolean;
  readonly backend?: IptablesBackend;
  /** Longest time the proxier trusts its record before reading the kernel again. Default 30 s. */
  readonly syncPeriodMs?: number;
  /** Graceful termination retry period. Default 1 minute (upstream). */
  readonly gracefulIntervalMs?: number;
}

export interface IpvsProxierDeps {
  readonly run?: Runner;
  /**
   * The scheduler check, shared by the families of one mode (the IPVS table is host-wide, so
   * two families probing at once would trip over each other's probe). Default: probeScheduler.
   */
  readonly probeScheduler?: (scheduler: string) => Promise<void>;
  readonly sysctl?: Sysctl;
  /** Kernel release (uname -r); decides conn_reuse_mode. Default os.release(). */
  readonly kernelRelease?: string;
  readonly now?: () => number;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The integrity check's sampling (tests fix it); default Math.random. */
  readonly random?: () => number;
}

export interface IpvsSyncResult extends SyncResult {
  readonly restoreFailed?: boolean;
}

export interface IpvsProxier extends Backend {
  /** Start-up checks, sysctls, timeouts (fatal on error, as upstream). sync() calls it when needed. */
  init(): Promise<void>;
  sync(request: SyncRequest): Promise<IpvsSyncResult>;
  /** Graceful termination, exposed for tests. */
  readonly graceful: GracefulTermination;
  /** Whether the kernel still shows what the last sync left (integrity.ts); false drops the record. */
  rulesIntact(): Promise<boolean>;
}

/** The kernel view of the family from `ipvsadm -S -n`. */
function ofFamily(
  table: Map<string, KernelVirtualServer>,
  family: IPFamily,
): Map<string, KernelVirtualServer> {
  return new Map([...table].filter(([, vs]) => vs.family === family));
}

function explainMissingIpvs(error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  const hint = /ENOENT|not found/i.test(message)
    ? 'the ipvsadm tool is not installed (Debian package ipvsadm)'
    : 'the ip_vs kernel modules are missing or cannot be loaded (modprobe ip_vs)';
  return new Error(`can't use the IPVS proxier: ${hint}: ${message}`, { cause: error });
}

/** The first retry of a sync that logged errors and carried on (then doubling, see below). */
const INCOMPLETE_RETRY_MS = 5_000;

const PROBE = { ip: '198.51.100.0', port: 20000, protocol: 'TCP' as const };

/**
 * Start-up check 3 (1.4): a scheduler is usable when some virtual server already uses it, or when
 * a probe virtual server created with it really appears (the kernel loads ip_vs_<name> then).
 */
export async function probeScheduler(
  run: Runner,
  scheduler: string,
  table?: ReadonlyMap<string, KernelVirtualServer>,
): Promise<void> {
  const current = table ?? parseIpvsSave((await run('ipvsadm', ['-S', '-n'])).stdout);
  if ([...current.values()].some((vs) => vs.scheduler === scheduler)) return;
  try {
    await ipvsadmRestore(run, `-A -t 198.51.100.0:20000 -s ${scheduler}\n`);
    const listed = parseIpvsSave((await run('ipvsadm', ['-S', '-n'])).stdout);
    if (listed.get(vsKey(PROBE))?.scheduler !== scheduler)
      throw new Error('the probe service did not appear');
  } catch (error) {
    throw new Error(
      `can't use the IPVS proxier: scheduler ${scheduler} is not usable (kernel module ip_vs_${scheduler}): ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    await ipvsadmRestore(run, deleteServiceLine(PROBE)).catch(() => undefined);
  }
}

export function createIpvsProxier(
  proxierOptions: IpvsProxierOptions,
  deps: IpvsProxierDeps = {},
): IpvsProxier {
  const run: Runner = deps.run ?? execTool;
  const sysctl = deps.sysctl ?? procSysctl();
  const now = deps.now ?? Date.now;
  const family = proxierOptions.family;
  const settings = proxierOptions.settings ?? DEFAULT_IPVS_SETTINGS;
  const syncPeriodMs = proxierOptions.syncPeriodMs ?? 30_000;
  const problems = validateIpvsOptions({ ...proxierOptions, randomFully: false }, settings);
  if (problems.length > 0) throw new Error(`ipvs proxier (${family}): ${problems.join('; ')}`);
  const excluded = settings.excludeCIDRs.flatMap((text) => {
    const cidr = parseCIDR(text);
    return cidr && cidr.family === family ? [cidr] : [];
  });

  // One sync or graceful-termination step at a time: both edit the IPVS table.
  let queue: Promise<unknown> = Promise.resolve();
  const lock = <T>(step: () => Promise<T>): Promise<T> => {
    const next = queue.then(step, step);
    queue = next.catch(() => undefined);
    return next;
  };
  const graceful = new GracefulTermination({
    run,
    lock,
    intervalMs: proxierOptions.gracefulIntervalMs ?? 60_000,
  });

  let options: IpvsOptions | undefined;
  let tools: IptablesTools | undefined;
  let needFull = true;
  let firstSync = true;
  let resetWeightsNext = false;
  let lastKernelRead = -Infinity;
  const cache = new DesiredCache();
  /** What the last successful sync left, undefined when unknown. */
  let recordedServers: Map<string, KernelVirtualServer> | undefined;
  let recordedSets: Map<string, Set<string>> | undefined;
  let recordedBound: string[] | undefined;
  let recordedRules: string | undefined;
  /**
   * The last sync logged errors and carried on (as upstream does): nothing else would bring its
   * next sync before the sync period, so the integrity check does, after 5 s, then backing off
   * (doubling up to the sync period) while the errors stay: an address the kernel refuses for
   * good must not make a large node rewrite everything every few seconds.
   */
  let lastSyncIncomplete = false;
  let incompleteInRow = 0;
  let incompleteRetryAt = 0;

  async function init(): Promise<void> {
    if (options) return;
    const backend = proxierOptions.backend ?? (await detectIptablesBackend(run, deps.env));
    const t = iptablesTools(backend, family);
    // The handle check: loads ip_vs on demand (as the moby/ipvs library's modprobe does).
    await run('modprobe', ['-va', 'ip_vs']).catch(() => undefined);
    let table: Map<string, KernelVirtualServer>;
    try {
      table = parseIpvsSave((await run('ipvsadm', ['-S', '-n'])).stdout);
    } catch (error) {
      throw explainMissingIpvs(error);
    }
    const scheduler = proxierOptions.scheduler;
    const ipsetVersion = await run('ipset', ['--version']).catch((error: unknown) => {
      throw new Error(`can't use the IPVS proxier: ipset is not usable: ${(error as Error).message}`, {
        cause: error,
      });
    });
    const version = /v(\d+)\.(\d+)/.exec(ipsetVersion.stdout);
    if (!version || Number(version[1]) < 6)
      throw new Error(`can't use the IPVS proxier: ipset ${ipsetVersion.stdout.trim()} is older than 6.0`);
    await (deps.probeScheduler ?? ((name: string) => probeScheduler(run, name, table)))(
      proxierOptions.scheduler,
    );
    await applyIpvsSysctls(sysctl, wantedIpvsSysctls(deps.kernelRelease ?? release(), settings.strictARP));
    if (
      settings.tcpTimeoutSeconds > 0 ||
      settings.tcpFinTimeoutSeconds > 0 ||
      settings.udpTimeoutSeconds > 0
    ) {
      const args = [
        settings.tcpTimeoutSeconds,
        settings.tcpFinTimeoutSeconds,
        settings.udpTimeoutSeconds,
      ].map(String);
      await run('ipvsadm', ['--set', ...args]).catch((error: unknown) => {
        log.error('Failed to set IPVS timeouts', error, { tcp: args[0], tcpFin: args[1], udp: args[2] });
      });
    }
    const randomFully =
      proxierOptions.randomFully ?? supportsRandomFully((await run(t.iptables, ['--version'])).stdout);
    tools = t;
    options = { ...proxierOptions, randomFully };
    log.info('Using IPVS Proxier', { ipFamily: family, scheduler, backend, randomFully });
  }

  function isExcluded(ip: string): boolean {
    const parsed = parseIP(ip);
    return parsed !== undefined && excluded.some((cidr) => cidrContains(cidr, parsed));
  }

  async function readKernel(): Promise<{
    servers: Map<string, KernelVirtualServer>;
    sets: Map<string, Set<string>>;
  }> {
    const servers = ofFamily(parseIpvsSave((await run('ipvsadm', ['-S', '-n'])).stdout), family);
    const ours = new Set(SET_KEYS.map((key) => setName(key, family)));
    const sets = new Map(
      [...parseIpsetSave((await run('ipset', ['save'])).stdout)].filter(([name]) => ours.has(name)),
    );
    lastKernelRead = now();
    return { servers, sets };
  }

  /** The record after a sync: the desired table plus real servers still draining at weight 0. */
  function recordOf(desired: IpvsDesired): Map<string, KernelVirtualServer> {
    const record = new Map<string, KernelVirtualServer>();
    for (const [key, vs] of desired.virtualServers) {
      const realServers = vs.realServers.map((rs) => ({ ...rs, weight: 1 }));
      for (const { vs: drained, rs } of graceful.entries())
        if (vsKey(drained) === key) realServers.push({ ...rs, weight: 0 });
      record.set(key, {
        family,
        ip: vs.ip,
        port: vs.port,
        protocol: vs.protocol,
        scheduler: vs.scheduler,
        persistentSeconds: vs.persistentSeconds,
        flags: vs.scheduler === 'mh' ? ['mh-port'] : [],
        realServers,
      });
    }
    return record;
  }

  async function syncLocked(request: SyncRequest): Promise<IpvsSyncResult> {
    const started = performance.now();
    await init();
    const t = tools;
    const opts = options;
    if (!t || !opts) throw new Error('ipvs proxier: init did not complete');
    const { snapshot } = request;
    if (snapshot.family !== family)
      throw new Error(`ipvs proxier (${family}): got a ${snapshot.family} snapshot`);
    const full = request.full || needFull || now() - lastKernelRead >= syncPeriodMs;
    needFull = true;
    const servers0 = recordedServers;
    const sets0 = recordedSets;
    recordedServers = undefined;
    recordedSets = undefined;
    recordedBound = undefined;
    lastSyncIncomplete = false; // a sync that throws is retried by the runner, not by the check

    if (full) {
      await ensureBase(run, t, IPVS_OWNER);
      await ensureInterface(run);
    }
    const kernel = full || !servers0 || !sets0 ? await readKernel() : { servers: servers0, sets: sets0 };
    const addresses = await readAddresses(run, family);
    const renderStart = performance.now();
    const desired = desiredState(
      snapshot,
      { family, scheduler: opts.scheduler },
      {
        nodePortIPs: nodePortIPsOf(addresses, proxierOptions.nodePortAddresses),
        otherInterfaceAddresses: addresses.others,
      },
      cache,
    );
    const rules = renderIpvsRules({ options: opts, desired });
    const ipsets = renderIpsetRestore(family, desired.sets, kernel.sets, full);
    const diff = diffIpvs(kernel.servers, desired.virtualServers, {
      resetWeights: firstSync || resetWeightsNext,
      draining: graceful.keys(),
    });
    const renderSeconds = (performance.now() - renderStart) / 1000;

    // 1. Sets (abort on error: the rules would match stale sets).
    if (ipsets.text !== '')
      await run('ipset', ['restore', '-exist'], { input: ipsets.text, ...longToolOptions() });

    // 2. Addresses the virtual servers need.
    const bound = new Set(addresses.bound);
    let bindErrors = 0;
    const toBind = [...desired.bind].filter((ip) => !bound.has(ip));
    try {
      for (const failure of await changeAddresses(run, 'add', toBind)) {
        bindErrors++;
        log.error('Failed to bind address to kube-ipvs0', new Error(failure.error), {
          address: failure.address,
        });
      }
    } catch (error) {
      bindErrors++;
      log.error('Failed to bind addresses to kube-ipvs0', error, { ipFamily: family });
    }

    // 3. Virtual and real servers. ipvsadm carries on after a line the kernel refuses, and so
    // does the sync (the rules and the sweep below still apply). Refused lines are logged and
    // the sync counts as incomplete: the integrity check brings a full sync after 5 s, backing
    // off while they stay (upstream logs them and waits for its next sync; a line refused for
    // good, say an SCTP Service on a kernel without IPVS SCTP, must not mark the node unhealthy).
    // A failed tool (killed, hung, unable to run) fails the sync once the rest is applied: it
    // is retried with back-off like a failing iptables-restore, and /healthz turns 503 if it
    // keeps failing.
    const ipvsOutcome: { lineErrors: number; toolError?: unknown } = { lineErrors: 0 };
    const ipvsFailure = (what: string, error: unknown): void => {
      log.error(what, error, { ipFamily: family });
      if (error instanceof IpvsadmLineErrors) ipvsOutcome.lineErrors++;
      else ipvsOutcome.toolError ??= error;
    };
    // Desired again while draining: the diff deleted and re-added them fresh.
    if (graceful.keys().size > 0)
      for (const vs of desired.virtualServers.values())
        for (const rs of vs.realServers) graceful.forget(drainKey(vs, rs));
    try {
      await ipvsadmRestore(run, diff.text);
      await graceful.remove(diff.removedRealServers.filter(({ vs, rs }) => !graceful.has(vs, rs)));
    } catch (error) {
      ipvsFailure('Failed to apply IPVS virtual servers', error);
    }

    // 4. Rules, when they changed or a full sync rewrites them.
    const rulesChanged = full || rules !== recordedRules;
    if (rulesChanged) {
      recordedRules = undefined;
      try {
        await restore(run, t, rules);
      } catch (error) {
        log.error('Failed to execute iptables-restore', error, { ipFamily: family });
        throw error;
      }
      recordedRules = rules;
    }

    // 5. Unbind what no service needs, sweep stale virtual servers (outside excludeCIDRs).
    try {
      const unbind = addresses.bound.filter((ip) => !desired.bind.has(ip));
      for (const failure of await changeAddresses(run, 'del', unbind))
        log.error('Failed to unbind address from kube-ipvs0', new Error(failure.error), {
          address: failure.address,
        });
    } catch (error) {
      log.error('Failed to unbind addresses from kube-ipvs0', error, { ipFamily: family });
    }
    const stale = diff.staleServices.filter((vs) => !isExcluded(vs.ip));
    if (stale.length > 0) {
      try {
        await ipvsadmRestore(run, stale.map(deleteServiceLine).join(''));
      } catch (error) {
        ipvsFailure('Failed to delete stale IPVS virtual servers', error);
      }
      for (const vs of stale) graceful.forgetService(vs);
    }

    // What failed left some real servers at a weight of ours (a drain's 0, forgotten above as
    // desired again): the next sync sets every desired one to 1, as the first sync does.
    const { lineErrors, toolError } = ipvsOutcome;
    resetWeightsNext = toolError !== undefined || lineErrors > 0;
    if (toolError !== undefined) {
      const message = toolError instanceof Error ? toolError.message : JSON.stringify(toolError);
      throw new Error(`ipvsadm failed, the virtual servers are not all applied: ${message}`, {
        cause: toolError,
      });
    }
    firstSync = false;
    lastSyncIncomplete = bindErrors > 0 || lineErrors > 0;
    incompleteInRow = lastSyncIncomplete ? incompleteInRow + 1 : 0;
    if (lastSyncIncomplete)
      incompleteRetryAt = now() + Math.min(INCOMPLETE_RETRY_MS * 2 ** (incompleteInRow - 1), syncPeriodMs);
    if (!lastSyncIncomplete) {
      needFull = false;
      recordedBound = [...desired.bind];
      recordedServers = recordOf(desired);
      recordedSets = new Map(
        SET_KEYS.map((key: SetKey) => [setName(key, family), new Set(desired.sets[key])]),
      );
    }
    const total = (performance.now() - started) / 1000;
    const dumpDir = (deps.env ?? process.env)[DUMP_RULES_ENV];
    if (full && dumpDir)
      dumpRules(
        join(dumpDir, `ipvs-${family}.rules`),
        ipvsDumpBundle({ addresses: toBind, ipset: ipsets.text, ipvsadm: diff.text, iptables: rules }),
      );
    return {
      full,
      renderSeconds,
      applySeconds: total - renderSeconds,
      details: {
        virtualServers: desired.virtualServers.size,
        servicesAdded: diff.counts.servicesAdded,
        servicesUpdated: diff.counts.servicesUpdated,
        servicesDeleted: stale.length,
        realServersAdded: diff.counts.realServersAdded,
        realServersRemoved: diff.counts.realServersRemoved,
        realServersDraining: graceful.keys().size,
        setMembersAdded: ipsets.counts.added,
        setMembersDeleted: ipsets.counts.deleted,
        rulesWritten: rulesChanged ? 'yes' : 'no',
        ipvsadmBytes: diff.text.length,
      },
    };
  }

  /** Its looks cost a few tool runs: at most 2 % of a core, however slow the machine runs them. */
  const checkSchedule = new CheckSchedule();

  /** Someone else's change found by the cheap looks of integrity.ts: the next sync is full. */
  async function rulesIntact(): Promise<boolean> {
    return lock(async () => {
      const t = tools;
      const servers = recordedServers;
      const sets = recordedSets;
      const bound = recordedBound;
      const start = now();
      if (!checkSchedule.due(start)) return true;
      if (lastSyncIncomplete) {
        if (start < incompleteRetryAt) return true;
        log.info('The last IPVS sync left errors, syncing everything again', { ipFamily: family });
        return false;
      }
      if (!t || !servers || !sets || !bound) return true; // no record: the next sync reads the kernel anyway
      const problem = await findTampering(run, t, family, { servers, sets, bound }, deps.random);
      checkSchedule.ran(start, now());
      if (problem === undefined) return true;
      log.info('IPVS state changed by someone else', { ipFamily: family, what: problem });
      checkSchedule.reset();
      needFull = true;
      recordedServers = undefined;
      recordedSets = undefined;
      recordedBound = undefined;
      return false;
    });
  }

  return {
    family,
    mode: 'ipvs',
    postSyncHooks: { conntrackCleanup: true },
    graceful,
    init,
    rulesIntact,
    sync: (request) => lock(() => syncLocked(request)),
    start: () => {
      graceful.start();
      return Promise.resolve();
    },
    close: () => {
      graceful.stop();
      return Promise.resolve();
    },
  };
}

/** The inputs of one IPVS sync, for the benchmark's bare-tool floor (bench/kernel.ts splits it). */
export interface IpvsDumpParts {
  readonly addresses: readonly string[];
  readonly ipset: string;
  readonly ipvsadm: string;
  readonly iptables: string;
}

/** One text with a `### <tool>` header before each part, in the order the sync applies them. */
export function ipvsDumpBundle(parts: IpvsDumpParts): string {
  const lines = (text: string) => (text === '' || text.endsWith('\n') ? text : `${text}\n`);
  return [
    `### ip\n${lines(parts.addresses.join('\n'))}`,
    `### ipset\n${lines(parts.ipset)}`,
    `### ipvsadm\n${lines(parts.ipvsadm)}`,
    `### iptables\n${lines(parts.iptables)}`,
  ].join('');
}
