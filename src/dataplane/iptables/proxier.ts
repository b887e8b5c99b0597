// The iptables Proxier: decides what a sync writes (full or partial), renders, and applies with
// one iptables-restore per sync. It owns the "next sync must be full" flag for everything it can
// see itself: first sync, a failed restore, a vanished canary.
//
// It also keeps a record of the per-service nat chains its last successful restore left in the
// kernel, so that a sync need not read the kernel to know which chains are stale: with the legacy
// backend that read (iptables-save of the whole nat table) costs a quarter of the restore. The
// kernel is read instead whenever the record cannot be trusted: the first sync (leftovers of an
// earlier run), any sync after a failed one, after the canary was lost, and the periodic full
// sync, which is also the one that puts back jump rules someone deleted by hand.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { log } from '../../log/log.ts';
import { DUMP_RULES_ENV, dumpRules } from '../../util/dump.ts';
import { execTool } from '../../util/exec.ts';
import type { Backend, SyncRequest, SyncResult } from '../../sync/backend.ts';
import {
  awaitCanaryFlush,
  canaryPresent,
  chainsInSave,
  detectIptablesBackend,
  ensureBase,
  iptablesTools,
  restore,
  saveTable,
  supportsRandomFully,
  type IptablesBackend,
  type IptablesTools,
  type Runner,
} from '../xtables/index.ts';
import { localAddressesIn } from './apply.ts';
import { chunkRestore } from './chunk.ts';
import { IPTABLES_CANARY, IPTABLES_OWNER } from './owner.ts';
import {
  LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
  NO_NFACCT,
  effectiveLocalhostNodePorts,
  validateIptablesOptions,
  type IptablesOptions,
  type NfacctCounters,
} from './options.ts';
import { renderIptables, type IptablesRenderCache, type RenderCounts } from './render.ts';
import { nodePortAddressesFor } from '../../plan/node-ports.ts';

/**
 * Chains per input of a chunked full sync on the nft backend (about 45 Services with 10
 * endpoints). Measured (bench/README.md, "iptables-nft in pieces"): 2k Services x 10 endpoints
 * load in 9.5 s with 500, 10.3 s with 1,000, 13 s with 2,000, 25 s with 4,000 chains per input,
 * and 263 s as one input.
 */
export const CHUNK_CHAINS = 500;

/** IptablesOptions with the host-dependent parts optional: detected at init when omitted. */
export interface IptablesProxierOptions extends Omit<
  IptablesOptions,
  'randomFully' | 'nfacct' | 'conntrackInvalidDrop' | 'nodeIPsForNodePorts'
> {
  /** Default: detected from `iptables --version` (>= 1.6.2). */
  readonly randomFully?: boolean;
  /** Default: detected, true unless net.netfilter.nf_conntrack_tcp_be_liberal is non-zero. */
  readonly conntrackInvalidDrop?: boolean;
  /** Which nfacct counters exist (iptables/nfacct.ts creates them). Default: none. */
  readonly nfacct?: NfacctCounters;
  /** Default: detectIptablesBackend (environment override, then what the host uses). */
  readonly backend?: IptablesBackend;
  /** syncPeriod: stale-chain scan spacing in large-cluster mode. Default 30 s. */
  readonly syncPeriodMs?: number;
  /** Set net.ipv4.conf.all.route_localnet=1 at init when localhost NodePorts apply. Default true. */
  readonly setRouteLocalnet?: boolean;
}

export interface IptablesProxierDeps {
  /** Runs system tools; tests pass one that runs inside a network namespace. */
  readonly run?: Runner;
  /** Milliseconds clock for the stale-chain scan spacing. */
  readonly now?: () => number;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** What init found out, for logs and debug output. */
export interface IptablesProxierInfo {
  readonly backend: IptablesBackend;
  readonly randomFully: boolean;
  readonly conntrackInvalidDrop: boolean;
  readonly localhostNodePorts: boolean;
}

/** A sync's result with the render's rule counts, which the mode's rule gauges report. */
export interface IptablesSyncResult extends SyncResult {
  readonly counts: RenderCounts;
}

export interface IptablesProxier extends Backend {
  /**
   * Detects the backend and host features and sets route_localnet (upstream does this when
   * creating the proxier; failures are fatal there). sync() calls it when it has not run.
   */
  init(): Promise<IptablesProxierInfo>;
  /** Undefined until init succeeded. */
  info(): IptablesProxierInfo | undefined;
  sync(request: SyncRequest): Promise<IptablesSyncResult>;
  rulesIntact(): Promise<boolean>;
}

async function readSysctl(run: Runner, key: string): Promise<string | undefined> {
  try {
    return (await run('sysctl', ['-n', key])).stdout.trim();
  } catch {
    return undefined;
  }
}

export function createIptablesProxier(
  proxierOptions: IptablesProxierOptions,
  deps: IptablesProxierDeps = {},
): IptablesProxier {
  const run: Runner = deps.run ?? execTool;
  const now = deps.now ?? Date.now;
  const family = proxierOptions.family;
  const syncPeriodMs = proxierOptions.syncPeriodMs ?? 30_000;
  const problems = validateIptablesOptions({
    ...proxierOptions,
    randomFully: false,
    nfacct: NO_NFACCT,
    conntrackInvalidDrop: true,
  });
  if (problems.length > 0) throw new Error(`iptables proxier (${family}): ${problems.join('; ')}`);
  // Already resolved (no `primary`): node IPs do not matter here.
  const nodePortAddresses = nodePortAddressesFor(proxierOptions.nodePortAddresses, family, []);

  let info: IptablesProxierInfo | undefined;
  let options: IptablesOptions | undefined;
  let tools: IptablesTools | undefined;
  let needFull = true;
  let cache: IptablesRenderCache | undefined;
  let largeClusterMode = false;
  let lastStaleScan = -Infinity;
  /**
   * KUBE-SVC/SVL/EXT/FW/SEP chains in the nat table after our last successful restore; undefined
   * when unknown (nothing synced yet, a sync failed, the canary vanished, or the last sync could
   * not list the table). Only we create such chains, so while it is defined it is the truth.
   */
  let natChainsInKernel: ReadonlySet<string> | undefined;
  /** Bumped when the canary vanishes: a sync that was running then must not restore the record. */
  let flushesSeen = 0;

  async function init(): Promise<IptablesProxierInfo> {
    if (info) return info;
    const backend = proxierOptions.backend ?? (await detectIptablesBackend(run, deps.env));
    const t = iptablesTools(backend, family);
    let randomFully = proxierOptions.randomFully;
    if (randomFully === undefined) {
      const version = await run(t.iptables, ['--version']);
      randomFully = supportsRandomFully(version.stdout);
    }
    let conntrackInvalidDrop = proxierOptions.conntrackInvalidDrop;
    if (conntrackInvalidDrop === undefined) {
      const liberal = await readSysctl(run, 'net.netfilter.nf_conntrack_tcp_be_liberal');
      conntrackInvalidDrop = liberal === undefined || liberal === '0' || liberal === '';
      if (!conntrackInvalidDrop)
        log.info('nf_conntrack_tcp_be_liberal set, not installing DROP rules for INVALID packets');
    }
    const fixed: IptablesOptions = {
      ...proxierOptions,
      randomFully,
      conntrackInvalidDrop,
      nfacct: proxierOptions.nfacct ?? NO_NFACCT,
    };
    const localhostNodePorts = effectiveLocalhostNodePorts(fixed, []);
    if (localhostNodePorts && (proxierOptions.setRouteLocalnet ?? true)) {
      // Localhost NodePorts need the kernel to route 127/8 destinations; without it they
      // silently do not work, so failing here is the honest outcome.
      const key = 'net.ipv4.conf.all.route_localnet';
      if ((await readSysctl(run, key)) !== '1') await run('sysctl', ['-q', '-w', `${key}=1`]);
    }
    tools = t;
    options = fixed;
    info = { backend, randomFully, conntrackInvalidDrop, localhostNodePorts };
    log.info('Using iptables Proxier', { ipFamily: family, ...info });
    return info;
  }

  /**
   * The nat chains in the kernel, for stale-chain deletion: this sync's dump, else our record,
   * else one `iptables-save -t nat` (undefined when none could be had: stale chains then wait).
   */
  async function knownNatChains(
    t: IptablesTools,
    saved: Awaited<ReturnType<typeof ensureBase>>,
    record: ReadonlySet<string> | undefined,
  ): Promise<ReadonlySet<string> | undefined> {
    const savedNat = saved?.get('nat');
    if (savedNat) {
      // The full sync's dump already lists the nat chains (what ensureBase added is not ours).
      lastStaleScan = now();
      return savedNat.chains;
    }
    if (record !== undefined) return record;
    // Neither a record nor a nat table in this sync's dump (a read failed, or the legacy nat
    // table did not exist yet). iptables-save can take seconds on big hosts and stale chains
    // are harmless (unreferenced), so large clusters try at most once per syncPeriod.
    if (largeClusterMode && now() - lastStaleScan <= syncPeriodMs) return undefined;
    lastStaleScan = now();
    try {
      return chainsInSave(await saveTable(run, t, 'nat'));
    } catch (error) {
      log.error('Failed to execute iptables-save: stale chains will not be deleted', error, {
        ipFamily: family,
      });
      return undefined;
    }
  }

  /** This host's addresses inside the node port CIDRs (undefined for match-all, or on failure). */
  async function nodePortIPs(): Promise<readonly string[] | undefined> {
    if (nodePortAddresses.matchAll) return undefined;
    try {
      return await localAddressesIn(run, family, nodePortAddresses.cidrs);
    } catch (error) {
      log.error(
        'Failed to get node IP addresses matching nodeport CIDRs, services with nodeport may not work as intended',
        error,
        { CIDRs: nodePortAddresses.cidrs },
      );
      return undefined;
    }
  }

  async function sync(request: SyncRequest): Promise<IptablesSyncResult> {
    const started = performance.now();
    await init();
    const t = tools;
    const opts = options;
    if (!t || !opts) throw new Error('iptables proxier: init did not complete');
    const { snapshot } = request;
    if (snapshot.family !== family) {
      throw new Error(`iptables proxier (${family}): got a ${snapshot.family} snapshot`);
    }
    const full = request.full || needFull;
    // Whatever happens from here, a failure leaves the kernel in an unknown mix: resync fully,
    // reading the kernel rather than our record.
    needFull = true;
    const flushesAtStart = flushesSeen;
    const recorded = natChainsInKernel;
    natChainsInKernel = undefined;
    // A full sync we can trust our record for (a node topology change) rewrites every chain and
    // deletes the recorded stale ones without reading the kernel; the jump rules and canaries
    // were ensured by an earlier full sync and are watched by the canary check.
    const readKernel = full && (recorded === undefined || request.periodic === true);
    // Full syncs: canaries, our chains and the jumps into them (spec 3.2, 3.4).
    const saved = readKernel ? await ensureBase(run, t, IPTABLES_OWNER) : undefined;

    let endpoints = 0;
    for (const state of snapshot.servicePorts.values()) endpoints += state.endpoints.length;
    largeClusterMode = endpoints > (opts.largeClusterThreshold ?? LARGE_CLUSTER_ENDPOINTS_THRESHOLD);
    const existingNatChains = await knownNatChains(t, saved, readKernel ? undefined : recorded);
    const nodeIPsForNodePorts = await nodePortIPs();

    const renderStart = performance.now();
    const out = renderIptables({
      snapshot,
      full,
      options: nodeIPsForNodePorts ? { ...opts, nodeIPsForNodePorts } : opts,
      previous: cache,
      existingNatChains,
    });
    const renderSeconds = (performance.now() - renderStart) / 1000;
    cache = out.cache;
    for (const warning of out.warnings) log.error(warning, undefined, { ipFamily: family });
    const verbose = log.v(2);
    if (verbose.enabled) {
      verbose.info('Reloading service iptables data', {
        ipFamily: family,
        full,
        numServices: out.counts.servicePorts,
        numEndpoints: out.counts.endpoints,
        numFilterRules: out.counts.filterRules,
        numNATChains: out.counts.natChainsWritten,
        numNATRules: out.counts.natRulesWritten,
      });
    }
    // iptables-nft-restore is quadratic in the chains of one input: a large full sync goes in
    // pieces, each Service whole in one (chunk.ts). The legacy backend rewrites the whole table
    // per input, so there one input is cheapest.
    const inputs = full && t.backend === 'nft' ? chunkRestore(out.text, CHUNK_CHAINS) : [out.text];
    const applyStart = performance.now();
    try {
      for (const input of inputs) await restore(run, t, input);
    } catch (error) {
      log.error('Failed to execute iptables-restore', error, { ipFamily: family, full });
      throw error;
    }
    if (inputs.length > 1) {
      log.info('Wrote a large rule set in pieces (iptables-nft-restore slows down with large inputs)', {
        ipFamily: family,
        inputs: inputs.length,
        seconds: Math.round(performance.now() - applyStart) / 1000,
        hint: 'at this size nftables mode (--proxy-mode=nftables) programs the same Services much faster',
      });
    }
    // A flush seen while we ran may have removed what we just wrote: stay full and read the kernel.
    if (flushesSeen === flushesAtStart) {
      needFull = false;
      // The stale chains this text deleted are gone and every active chain exists (written now
      // or, in a partial sync, by an earlier one); without a complete view of the table we
      // know nothing.
      if (existingNatChains !== undefined) natChainsInKernel = out.activeNatChains;
    }
    const total = (performance.now() - started) / 1000;
    const dumpDir = (deps.env ?? process.env)[DUMP_RULES_ENV];
    if (full && dumpDir) dumpRules(join(dumpDir, `iptables-${t.backend}-${family}.rules`), out.text);
    return {
      full,
      renderSeconds,
      applySeconds: total - renderSeconds,
      counts: out.counts,
      details: {
        backend: t.backend,
        largeClusterMode: String(out.largeClusterMode),
        servicePorts: out.counts.servicePorts,
        endpoints: out.counts.endpoints,
        filterRules: out.counts.filterRules,
        natRulesWritten: out.counts.natRulesWritten,
        natRulesTotal: out.counts.natRulesTotal,
        natChainsWritten: out.counts.natChainsWritten,
        natChainsDeleted: out.counts.natChainsDeleted,
        noLocalEndpointsInternal: out.counts.noLocalEndpointsInternal,
        noLocalEndpointsExternal: out.counts.noLocalEndpointsExternal,
        restoreBytes: out.text.length,
      },
    };
  }

  /** Only the canary's question: are our tables unflushed? (Our own failures force full syncs elsewhere.) */
  async function rulesIntact(): Promise<boolean> {
    const t = tools;
    if (!t) return true;
    if (await canaryPresent(run, t, IPTABLES_CANARY)) return true;
    // Someone is flushing the tables: wait (briefly) for the flush to finish everywhere before
    // the full resync, or we might write rules that are flushed right after.
    log.info('iptables canary removed, waiting for the flush to complete', { ipFamily: family });
    natChainsInKernel = undefined;
    flushesSeen++;
    await awaitCanaryFlush(run, t, IPTABLES_CANARY, { now });
    needFull = true;
    return false;
  }

  return {
    family,
    mode: 'iptables',
    init,
    info: () => info,
    sync,
    rulesIntact,
  };
}
