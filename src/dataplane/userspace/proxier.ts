// The userspace Proxier: one listener per (service port, frontend kind), opened, updated and
// closed through the data path (Forwarders), each with a router built from the plan; and the
// capture rules that send every frontend's traffic to its listener, written with one
// iptables-restore per sync: the five chains whole on a full sync, otherwise only the rules of
// the listeners that changed (deleted by specification, appended).
//
// Order within a sync: new listeners open first, then the rules are written, then removed
// listeners close: a rule never points at a port nobody listens on, except a port that could not
// be opened, which gets no rule at all (its traffic is left alone, as for an unknown address).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { PortRange } from '../../config/port-range.ts';
import { log } from '../../log/log.ts';
import type { IPFamily, ServicePortState } from '../../model/types.ts';
import type { LocalTrafficDetector } from '../../plan/local-traffic.ts';
import { planNodeOf, planOf, type Frontend } from '../../plan/service-port.ts';
import type { Backend, SyncRequest, SyncResult } from '../../sync/backend.ts';
import { ExecError, execTool } from '../../util/exec.ts';
import {
  awaitCanaryFlush,
  canaryPresent,
  detectIptablesBackend,
  ensureBase,
  iptablesTools,
  restore,
  type IptablesBackend,
  type IptablesTools,
  type Runner,
} from '../xtables/index.ts';
import { cleanupOwner } from '../xtables/index.ts';
import { deleteCaptureLink, DummyLink, planAddressCapture, type CaptureMethod } from './address-capture.ts';
import { USERSPACE_CANARY, USERSPACE_FILTER_CHAINS, USERSPACE_OWNER } from './owner.ts';
import { PortAllocator } from './port-allocator.ts';
import {
  frontendsOf,
  listenerRules,
  renderCapture,
  renderCaptureDelta,
  type CaptureCounts,
  type CaptureListener,
} from './render.ts';
import type { BalancerSettings, ListenerSpec, Router } from './route.ts';
import { routerFor } from './routes.ts';

/**
 * What the proxier needs of the data path (its Forwarders class), so tests can pass a fake:
 * listeners by key, opened, re-routed in place, and closed. One pool serves both families' proxiers
 * (its metrics are registered once), so keys carry the family and each proxier closes only its own.
 */
export interface ListenerPool {
  /** Binds; rejects (naming the port) when it cannot, e.g. EADDRINUSE. */
  open(spec: ListenerSpec): Promise<{ readonly port: number }>;
  /**
   * New endpoints or settings; the listener and its open connections stay (those to endpoints
   * no longer `reachable` drain).
   */
  update(key: string, router: Router, balancer: BalancerSettings, reachable: ReadonlySet<string>): unknown;
  /** Stops accepting; open TCP connections run on (until the data path's drain deadline). */
  close(key: string): unknown;
}

export interface UserspaceProxierOptions {
  readonly family: IPFamily;
  /** The address listeners bind to: the family's unspecified address, or --bind-address. */
  readonly listenIP: string;
  /** The node's address the node's own traffic is DNATed to (never loopback). */
  readonly hostIP: string;
  readonly localDetector: LocalTrafficDetector;
  /** Whether an address is this node's (then the client is the node itself). */
  readonly isNodeAddress: (ip: string) => boolean;
  /** --proxy-port-range; undefined lets the kernel choose. */
  readonly portRange: PortRange | undefined;
  /** Default round-robin (upstream). */
  readonly balancerPolicy?: BalancerSettings['policy'];
  /** Default: detectIptablesBackend. */
  readonly backend?: IptablesBackend;
  /**
   * How traffic reaches the listeners: `nat` (default, upstream's REDIRECT/DNAT rules) or
   * `address` (service addresses on a dummy link, listeners bound to them; address-capture.ts).
   */
  readonly capture?: CaptureMethod;
}

export interface UserspaceProxierDeps {
  readonly run?: Runner;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Milliseconds clock (the canary flush wait). */
  readonly now?: () => number;
  /** /proc/self/limits, for the file-descriptor check at start; undefined when unreadable. */
  readonly readLimits?: () => string | undefined;
  /** Random source of the port allocator. */
  readonly random?: () => number;
}

export interface UserspaceSyncResult extends SyncResult {
  readonly counts: CaptureCounts & {
    /** Listeners that could not be opened this sync (their service ports are not proxied). */
    readonly openFailures: number;
  };
}

export interface UserspaceProxier extends Backend {
  start(): Promise<void>;
  sync(request: SyncRequest): Promise<UserspaceSyncResult>;
  rulesIntact(): Promise<boolean>;
  close(): Promise<void>;
  /** The open listeners' keys and ports, for tests and debug output. */
  listeners(): ReadonlyMap<string, number>;
}

/** Upstream raised RLIMIT_NOFILE to this (soft and hard) at start. */
export const WANTED_OPEN_FILES = 64_000;

/** The soft "Max open files" of /proc/self/limits; undefined when unknown or unlimited. */
export function softOpenFilesLimit(limits: string): number | undefined {
  const match = /^Max open files\s+(\d+)\s/m.exec(limits);
  return match ? Number(match[1]) : undefined;
}

function readProcLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}

/** The listener key of a service port's frontend kind: stable while protocol and port name are. */
export function listenerKey(family: IPFamily, state: ServicePortState, frontend: Frontend): string {
  return `${family}|${state.servicePort.id.key}|${frontend}`;
}

function isAddressInUse(error: unknown): boolean {
  if (typeof error === 'object' && error !== null && 'code' in error && error.code === 'EADDRINUSE')
    return true;
  return error instanceof Error && error.message.includes('EADDRINUSE');
}

/** One open listener. */
interface OpenListener {
  readonly key: string;
  readonly protocol: 'TCP' | 'UDP';
  readonly frontend: Frontend;
  readonly port: number;
  /** Its port came from the allocator (NAT capture), not from the Service (address capture). */
  readonly allocated: boolean;
  /** The state its router was built from; a new state object means new endpoints or settings. */
  state: ServicePortState;
  /** The plan node its router was built from. */
  nodeIP: string;
}

/** A listener this sync wants. */
interface Wanted {
  readonly key: string;
  readonly state: ServicePortState;
  readonly frontend: Frontend;
  /** Address capture: where it must listen (no proxy port, no rule). */
  readonly bind?: { readonly host: string; readonly port: number };
}

export function createUserspaceProxier(
  options: UserspaceProxierOptions,
  pool: ListenerPool,
  deps: UserspaceProxierDeps = {},
): UserspaceProxier {
  const run: Runner = deps.run ?? execTool;
  const now = deps.now ?? Date.now;
  const family = options.family;
  const allocator = new PortAllocator(options.portRange, deps.random);
  const policy = options.balancerPolicy ?? 'round-robin';
  const capture: CaptureMethod = options.capture ?? 'nat';
  const link = new DummyLink(run, family);
  const open = new Map<string, OpenListener>();
  /** SCTP service ports already logged as not proxied (one line per port, not per sync). */
  const sctpLogged = new Set<string>();
  let tools: IptablesTools | undefined;
  let needFull = true;
  /** NAT capture: each listener's rules as the last successful sync wrote them. */
  let writtenRules = new Map<string, string[]>();
  /** Address capture: the addresses the dummy link must hold, from the last wanted(). */
  let linkAddresses: ReadonlySet<string> = new Set();

  async function init(): Promise<IptablesTools> {
    if (tools) return tools;
    // Address capture writes no rules: it must run where iptables cannot.
    const backend =
      options.backend ?? (capture === 'address' ? 'nft' : await detectIptablesBackend(run, deps.env));
    tools = iptablesTools(backend, family);
    log.info('Using userspace Proxier', {
      ipFamily: family,
      backend: capture === 'address' ? 'none (address capture)' : backend,
      capture,
      listenIP: options.listenIP,
      hostIP: options.hostIP,
      portRange: options.portRange ? `${options.portRange.base}+${options.portRange.size - 1}` : 'kernel',
    });
    return tools;
  }

  function checkOpenFiles(): void {
    // Upstream raised RLIMIT_NOFILE to 64000 itself; Node cannot call setrlimit without a native
    // addon, so the limit must be raised by whoever starts us (systemd LimitNOFILE, the
    // container runtime's ulimit). Every proxied connection costs two descriptors.
    const limits = (deps.readLimits ?? readProcLimits)();
    const soft = limits === undefined ? undefined : softOpenFilesLimit(limits);
    if (soft !== undefined && soft < WANTED_OPEN_FILES) {
      log.warn('The open-files limit is low for the userspace proxy: raise it before starting (ulimit -n)', {
        softLimit: soft,
        wanted: WANTED_OPEN_FILES,
        connectionsAtMost: Math.floor(soft / 2),
      });
    }
  }

  /** Ensures the jumps and canary, then flushes the five chains (spec 2.2 step 5). */
  async function start(): Promise<void> {
    const t = await init();
    checkOpenFiles();
    if (capture === 'address') {
      // An earlier run with NAT capture would still redirect service traffic to its old ports.
      const report = await cleanupOwner(run, USERSPACE_OWNER, { keep: [], env: deps.env ?? process.env });
      // A host without a usable nat table has no such rules to remove.
      if (report.errors.length > 0) {
        log.warn('Could not check for NAT capture rules of an earlier run', {
          ipFamily: family,
          errors: report.errors.join('; '),
        });
      }
      await link.ensure();
      needFull = false;
      return;
    }
    // An earlier run with address capture left the service addresses on the dummy link.
    if (await deleteCaptureLink(run))
      log.info('Removed the address-capture link of an earlier run', { ipFamily: family });
    await ensureBase(run, t, USERSPACE_OWNER);
    // Proxy ports of an earlier run mean nothing now: until the first sync, nothing is captured.
    await restore(run, t, renderCapture([], options).text);
    writtenRules = new Map();
    needFull = false;
  }

  function balancer(state: ServicePortState, nodeIP: string): BalancerSettings {
    return { policy, affinitySeconds: planOf(state, { family, nodeIP }).affinitySeconds };
  }

  function router(state: ServicePortState, frontend: Frontend, nodeIP: string): Router {
    return routerFor(planOf(state, { family, nodeIP }), frontend, options);
  }

  function reachable(state: ServicePortState, nodeIP: string): ReadonlySet<string> {
    return new Set(planOf(state, { family, nodeIP }).reachable.map((e) => e.endpoint));
  }

  /** Binds a listener, trying other ports of the range when one is taken by someone else. */
  async function openListener(want: Wanted, nodeIP: string): Promise<OpenListener> {
    const sp = want.state.servicePort;
    const protocol = sp.id.protocol;
    if (protocol === 'SCTP') throw new Error('SCTP is not proxied');
    if (want.bind !== undefined) {
      const bound = await pool.open({
        key: want.key,
        protocol,
        host: want.bind.host,
        port: want.bind.port,
        router: router(want.state, want.frontend, nodeIP),
        balancer: balancer(want.state, nodeIP),
        reachable: reachable(want.state, nodeIP),
        labels: { servicePort: sp.id.printable, frontend: want.frontend },
      });
      return {
        key: want.key,
        protocol,
        frontend: want.frontend,
        port: bound.port,
        allocated: false,
        state: want.state,
        nodeIP,
      };
    }
    const busy = new Set<number>();
    for (;;) {
      const port = allocator.take(busy);
      if (port === undefined) {
        throw new Error(
          busy.size > 0
            ? `no free port left in --proxy-port-range (${busy.size} in use by other processes)`
            : 'no remaining ports left to allocate in --proxy-port-range',
        );
      }
      try {
        const bound = await pool.open({
          key: want.key,
          protocol,
          host: options.listenIP,
          port,
          router: router(want.state, want.frontend, nodeIP),
          balancer: balancer(want.state, nodeIP),
          reachable: reachable(want.state, nodeIP),
          labels: { servicePort: sp.id.printable, frontend: want.frontend },
        });
        return {
          key: want.key,
          protocol,
          frontend: want.frontend,
          port: bound.port,
          allocated: true,
          state: want.state,
          nodeIP,
        };
      } catch (error) {
        allocator.release(port);
        if (port === 0 || !isAddressInUse(error)) throw error;
        busy.add(port);
      }
    }
  }

  /**
   * Deletes the conntrack entries of UDP flows redirected to a closed listener (upstream:
   * `conntrack -D --orig-dst <clusterIP> -p udp` on service removal). A UDP flow's packets follow
   * its entry, not the rules: without this, a client that keeps sending would keep reaching the
   * closed port, or, once the port is given to another listener, another Service. TCP needs
   * nothing: a new connection is a new entry, and old ones end with the closed socket.
   */
  async function forgetUdpFlows(port: number): Promise<void> {
    const args = [
      '-D',
      '-f',
      family === 'IPv4' ? 'ipv4' : 'ipv6',
      '-p',
      'udp',
      '--reply-port-src',
      String(port),
    ];
    try {
      await run('conntrack', args, { timeoutMs: 10_000 });
    } catch (error) {
      // Exit status 1 with "0 flow entries have been deleted" is the usual, harmless case.
      if (error instanceof ExecError && /0 flow entries/.test(error.stderr)) return;
      log.error('Failed to delete conntrack entries of a closed UDP listener', error, {
        ipFamily: family,
        port,
      });
    }
  }

  /** The listeners a snapshot wants, in its (sorted) order; SCTP ports logged once and skipped. */
  function wanted(states: Iterable<ServicePortState>): Wanted[] {
    const out: Wanted[] = [];
    const proxied: ServicePortState[] = [];
    const sctpNow = new Set<string>();
    for (const state of states) {
      const sp = state.servicePort;
      if (sp.id.protocol === 'SCTP') {
        sctpNow.add(sp.id.key);
        if (!sctpLogged.has(sp.id.key)) {
          log.warn('SCTP service ports are not proxied in userspace mode (Node.js has no SCTP sockets)', {
            servicePort: sp.id.printable,
          });
        }
        continue;
      }
      if (capture === 'nat') {
        for (const frontend of frontendsOf(sp))
          out.push({ key: listenerKey(family, state, frontend), state, frontend });
      } else {
        proxied.push(state);
      }
    }
    if (capture === 'address') {
      const plan = planAddressCapture(family, proxied, options.isNodeAddress);
      linkAddresses = plan.addresses;
      for (const l of plan.listeners) {
        out.push({ key: l.key, state: l.state, frontend: l.frontend, bind: { host: l.host, port: l.port } });
      }
    }
    sctpLogged.clear();
    for (const key of sctpNow) sctpLogged.add(key);
    return out;
  }

  /** The restore text that turns the written rules into `rules`: only what changed. */
  function captureDelta(rules: ReadonlyMap<string, readonly string[]>): string {
    const removed: string[] = [];
    const added: string[] = [];
    for (const [key, lines] of writtenRules) {
      const now = rules.get(key);
      if (now === undefined || now.join('') !== lines.join('')) removed.push(...lines);
    }
    for (const [key, lines] of rules) {
      const before = writtenRules.get(key);
      if (before === undefined || before.join('') !== lines.join('')) added.push(...lines);
    }
    return renderCaptureDelta(removed, added);
  }

  function countRules(rules: ReadonlyMap<string, readonly string[]>): CaptureCounts {
    let natRules = 0;
    let filterRules = 0;
    for (const lines of rules.values()) {
      for (const line of lines) {
        if (USERSPACE_FILTER_CHAINS.includes(line.split(' ', 2)[1] ?? '')) filterRules++;
        else natRules++;
      }
    }
    return { listeners: rules.size, natRules, filterRules };
  }

  async function sync(request: SyncRequest): Promise<UserspaceSyncResult> {
    const started = performance.now();
    const t = await init();
    const { snapshot } = request;
    if (snapshot.family !== family) {
      throw new Error(`userspace proxier (${family}): got a ${snapshot.family} snapshot`);
    }
    const full = request.full || needFull;
    needFull = true;
    // Full syncs put back jumps and the canary (or the link) someone removed.
    if (full) {
      if (capture === 'nat') await ensureBase(run, t, USERSPACE_OWNER);
      else await link.ensure();
    }

    const nodeIP = planNodeOf(snapshot).nodeIP;
    const want = wanted(snapshot.servicePorts.values());
    // Address capture: a listener can bind a service address only once the link holds it.
    if (capture === 'address') await link.reconcile(linkAddresses, false);
    const listening: CaptureListener[] = [];
    const listeningKeys: string[] = [];
    let openFailures = 0;
    for (const w of want) {
      let listener = open.get(w.key);
      if (listener === undefined) {
        try {
          listener = await openListener(w, nodeIP);
          open.set(w.key, listener);
          log.v(2).info('Opened a userspace listener', {
            servicePort: w.state.servicePort.id.printable,
            frontend: w.frontend,
            port: listener.port,
          });
        } catch (error) {
          // This service port's frontend is not proxied; every other one is.
          openFailures++;
          log.error('Failed to open a userspace listener: the frontend is not proxied', error, {
            ipFamily: family,
            servicePort: w.state.servicePort.id.printable,
            frontend: w.frontend,
          });
          continue;
        }
      } else if (listener.state !== w.state || listener.nodeIP !== nodeIP) {
        // Same protocol and port name: the listener stays, its connections keep running.
        pool.update(
          w.key,
          router(w.state, w.frontend, nodeIP),
          balancer(w.state, nodeIP),
          reachable(w.state, nodeIP),
        );
        listener.state = w.state;
        listener.nodeIP = nodeIP;
      }
      listening.push({ servicePort: w.state.servicePort, frontend: w.frontend, proxyPort: listener.port });
      listeningKeys.push(w.key);
    }

    const renderStart = performance.now();
    let out: { readonly text: string; readonly counts: CaptureCounts } = {
      text: '',
      counts: { listeners: listening.length, natRules: 0, filterRules: 0 },
    };
    const rules = new Map<string, string[]>();
    if (capture === 'nat') {
      for (const [i, listener] of listening.entries())
        rules.set(listeningKeys[i] ?? '', listenerRules(listener, options));
      out = full
        ? renderCapture(listening, options)
        : { text: captureDelta(rules), counts: countRules(rules) };
    }
    const renderSeconds = (performance.now() - renderStart) / 1000;
    if (out.text !== '') {
      try {
        await restore(run, t, out.text);
      } catch (error) {
        log.error('Failed to execute iptables-restore', error, { ipFamily: family });
        throw error;
      }
    }
    writtenRules = rules;

    // Only now that no rule points at them.
    const keep = new Set(want.map((w) => w.key));
    for (const [key, listener] of open) {
      if (keep.has(key)) continue;
      await pool.close(key);
      if (listener.allocated) {
        // Only redirected flows have conntrack entries pointing at the port.
        if (listener.protocol === 'UDP') await forgetUdpFlows(listener.port);
        allocator.release(listener.port);
      }
      open.delete(key);
      log.v(2).info('Closed a userspace listener', { key, port: listener.port });
    }
    if (capture === 'address') await link.reconcile(linkAddresses, true);
    needFull = false;
    const counts = { ...out.counts, openFailures };
    return {
      full,
      renderSeconds,
      applySeconds: (performance.now() - started) / 1000 - renderSeconds,
      counts,
      details: {
        backend: t.backend,
        servicePorts: snapshot.servicePorts.size,
        listeners: counts.listeners,
        openFailures,
        natRules: counts.natRules,
        filterRules: counts.filterRules,
        restoreBytes: out.text.length,
      },
    };
  }

  async function rulesIntact(): Promise<boolean> {
    const t = tools;
    if (!t) return true;
    if (capture === 'address') {
      if (await link.exists()) return true;
      log.info('The userspace address-capture link was removed: the next sync recreates it', {
        ipFamily: family,
      });
      needFull = true;
      return false;
    }
    if (await canaryPresent(run, t, USERSPACE_CANARY)) return true;
    log.info('userspace canary removed, waiting for the flush to complete', { ipFamily: family });
    await awaitCanaryFlush(run, t, USERSPACE_CANARY, { now });
    needFull = true;
    return false;
  }

  /** Closes every listener; the rules stay (as every mode leaves its rules on SIGTERM). */
  async function close(): Promise<void> {
    await Promise.all([...open.keys()].map((key) => pool.close(key)));
    for (const listener of open.values()) if (listener.allocated) allocator.release(listener.port);
    open.clear();
  }

  return {
    family,
    mode: 'userspace',
    // The daemon's hook deletes entries DNATed to removed endpoints; ours are REDIRECTs to our
    // own listeners (the proxy's connections to endpoints are ordinary sockets, no NAT), and the
    // proxier deletes those itself when it closes a UDP listener (forgetUdpFlows).
    postSyncHooks: { conntrackCleanup: false },
    start,
    sync,
    rulesIntact,
    close,
    listeners: () => new Map([...open].map(([key, listener]) => [key, listener.port])),
  };
}
