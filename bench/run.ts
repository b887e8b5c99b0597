// The benchmark suite (`make bench SIZE=…`, as root): for each mode, a fresh namespace cluster,
// the in-repo API server preloaded with a generated workload, the real kube-proxy, and the
// figures of bench/README.md. Prints a table and writes them to bench/results.json. Asserts
// nothing about timings.
//   node bench/run.ts --size 1000 [--endpoints 10] [--modes nftables,iptables-legacy]
//        [--groups full-sync,change,churn,dataplane] [--changes 100] [--churn-rate 50] …
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupNetns, createNetns, deleteNetns, IS_ROOT, uniquePrefix } from '../test/support/netns.ts';
import {
  ALL_MODES,
  KNOWN_MODES,
  BenchCluster,
  CLIENT_POD,
  sleep,
  type BenchMode,
  type SyncLine,
} from './harness.ts';
import {
  bareApply,
  endpointInKernel,
  endpointsMissing,
  KernelWatch,
  servicesChainPosition,
} from './kernel.ts';
import { figure, formatTable, median, percentile, type Figure } from './results.ts';
import { TreeMemory } from './tree-memory.ts';
import {
  endpointChange,
  generateWorkload,
  manifestJSON,
  PROBE_CLUSTER_IP,
  PROBE_PORT,
  type EndpointChange,
  type Workload,
} from './workload.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CONNECT_PROBE = join(HERE, 'connect-probe.ts');

export const GROUPS = ['full-sync', 'change', 'churn', 'dataplane'] as const;
type Group = (typeof GROUPS)[number];

export interface BenchOptions {
  readonly size: number;
  readonly endpoints: number;
  readonly modes: readonly BenchMode[];
  readonly groups: ReadonlySet<Group>;
  readonly changes: number;
  readonly churnChanges: number;
  readonly churnRate: number;
  readonly fullSyncs: number;
  readonly connects: number;
  readonly baseline: number;
  readonly minSyncPeriod: string;
  readonly seed: number;
  readonly affinity: number;
  /** --ports: every Service with this many ports; undefined: the mixed default. */
  readonly portsPerService: number | undefined;
  readonly out: string;
  readonly cpuProf: string | undefined;
  readonly nodeOptions: string | undefined;
  /** Milliseconds to wait for one sync or one change before giving up. */
  readonly timeoutMs: number;
}

function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      size: { type: 'string', default: '1000' },
      endpoints: { type: 'string', default: '10' },
      modes: { type: 'string', default: ALL_MODES.join(',') },
      groups: { type: 'string', default: GROUPS.join(',') },
      changes: { type: 'string', default: '100' },
      'churn-changes': { type: 'string', default: '100' },
      'churn-rate': { type: 'string', default: '50' },
      'full-syncs': { type: 'string', default: '3' },
      connects: { type: 'string', default: '300' },
      baseline: { type: 'string', default: '100' },
      'min-sync-period': { type: 'string', default: '100ms' },
      seed: { type: 'string', default: '1' },
      affinity: { type: 'string', default: '0.03' },
      ports: { type: 'string', default: 'mixed' },
      out: { type: 'string', default: join(HERE, 'results.json') },
      'cpu-prof': { type: 'string' },
      'node-options': { type: 'string' },
      'timeout-ms': { type: 'string', default: '1800000' },
    },
    strict: true,
  });
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${name}: expected an integer >= ${min}, got "${text}"`);
    return n;
  };
  const fraction = (name: string, text: string): number => {
    const n = Number(text);
    if (!(n >= 0 && n <= 1)) throw new Error(`--${name}: expected a number in [0, 1], got "${text}"`);
    return n;
  };
  const modes = values.modes.split(',').map((m) => {
    if (!(KNOWN_MODES as readonly string[]).includes(m))
      throw new Error(`--modes: unknown mode "${m}" (known: ${KNOWN_MODES.join(', ')})`);
    return m as BenchMode;
  });
  const groups = new Set(
    values.groups.split(',').map((g) => {
      if (!(GROUPS as readonly string[]).includes(g))
        throw new Error(`--groups: unknown group "${g}" (known: ${GROUPS.join(', ')})`);
      return g as Group;
    }),
  );
  return {
    size: int('size', values.size, 1),
    endpoints: int('endpoints', values.endpoints, 1),
    modes,
    groups,
    changes: int('changes', values.changes, 1),
    churnChanges: int('churn-changes', values['churn-changes'], 1),
    churnRate: int('churn-rate', values['churn-rate'], 1),
    fullSyncs: int('full-syncs', values['full-syncs'], 1),
    connects: int('connects', values.connects, 1),
    baseline: int('baseline', values.baseline, 1),
    minSyncPeriod: values['min-sync-period'],
    seed: int('seed', values.seed, 0),
    affinity: fraction('affinity', values.affinity),
    portsPerService: values.ports === 'mixed' ? undefined : int('ports', values.ports, 1),
    out: values.out,
    cpuProf: values['cpu-prof'],
    nodeOptions: values['node-options'],
    timeoutMs: int('timeout-ms', values['timeout-ms'], 1000),
  };
}

function say(text: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
}

/** Waits until the dump file of the last full sync is newer than `after` (it is written after the sync). */
async function waitForDump(path: string, after: number, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path) || statSync(path).mtimeMs < after - 1000) {
    if (Date.now() > deadline) throw new Error(`bench: no rule dump at ${path}`);
    await sleep(20);
  }
  return readFileSync(path, 'utf8');
}

interface ChangeTiming {
  readonly latencyMs: number;
  readonly pollMs: number[];
  /** The kernel notification never came; timed by the read-back. */
  readonly missed: boolean;
}

/**
 * One change: API write, then the kernel until the new endpoint is there. With a KernelWatch the
 * time is when the kernel announced the commit, confirmed by reading it back; without one, or
 * when the notification was lost (nft monitor drops events when a big transaction overflows its
 * socket), the end of the first read-back that finds it (resolution: one read, see change-poll).
 */
async function timeChange(
  cluster: BenchCluster,
  mode: BenchMode,
  watch: KernelWatch | undefined,
  change: EndpointChange,
  timeoutMs: number,
): Promise<ChangeTiming> {
  const ns = cluster.topology.node1.ns;
  const needle = KernelWatch.needle(change);
  watch?.reset();
  const started = performance.now();
  await cluster.api.update(change.slice);
  const pollMs: number[] = [];
  let lastPoll = started;
  for (;;) {
    const announced = watch?.find(needle);
    // Announced by the kernel: read back for all changes at once at the end of the phase
    // (verifyChanges), since one nft read of a large map costs seconds of CPU.
    if (announced !== undefined) return { latencyMs: announced - started, pollMs: [], missed: false };
    const now = performance.now();
    // With notifications, read back only every 250 ms, in case the notification is lost.
    if (!watch || now - lastPoll >= 250) {
      const found = await endpointInKernel(ns, mode, change);
      lastPoll = performance.now();
      pollMs.push(lastPoll - now);
      if (found) {
        const at = watch?.find(needle);
        return {
          latencyMs: (at ?? lastPoll) - started,
          pollMs,
          missed: watch !== undefined && at === undefined,
        };
      }
    } else await watch.next(250 - (now - lastPoll));
    if (now - started > timeoutMs)
      throw new Error(
        `bench: ${change.added.ip} of ${change.printable} not in the kernel after ${timeoutMs} ms`,
      );
  }
}

/**
 * nftables: a change whose notification `nft monitor` lost is timed by reading the kernel back,
 * which takes seconds at 10k+ Services (`change-poll`): its figure says how slow the read was,
 * not the change. Those are left out of the percentiles (unless every notification was lost)
 * and printed.
 */
function reportLost(missed: number, readBack: readonly number[]): void {
  if (missed === 0) return;
  const times = readBack.map((ms) => ms.toFixed(0)).join(', ');
  say(
    `  (${missed} kernel notifications lost: timed by read-back instead, ${times} ms, left out of the percentiles)`,
  );
}

/**
 * Reads the kernel once and checks that every endpoint the measured changes left in place is
 * there (nftables, whose changes were timed by notifications). Returns the read's time in ms.
 */
async function verifyChanges(
  cluster: BenchCluster,
  state: ReadonlyMap<number, readonly { ip: string }[]>,
): Promise<number> {
  const started = performance.now();
  const expected = [...state.values()].flatMap((endpoints) => endpoints.map((ep) => ep.ip));
  const missing = await endpointsMissing(cluster.topology.node1.ns, expected, 8080);
  if (missing.length > 0)
    throw new Error(`bench: ${missing.length} changed endpoints not in the kernel, e.g. ${missing[0]}`);
  return performance.now() - started;
}

/** Splits the changeable Services: even positions for measured changes, odd ones for churn. */
function pools(workload: Workload): { measured: Workload; churn: Workload } {
  const even = workload.changeable.filter((_, i) => i % 2 === 0);
  const odd = workload.changeable.filter((_, i) => i % 2 === 1);
  return {
    measured: { ...workload, changeable: even },
    churn: { ...workload, changeable: odd.length > 0 ? odd : even },
  };
}

class Churn {
  private stopped = false;
  private done: Promise<void> | undefined;
  writes = 0;
  private startedAt = 0;
  private endedAt = 0;

  start(cluster: BenchCluster, workload: Workload, rate: number, next: () => number): void {
    const current = new Map<number, { ip: string; node: string }[]>();
    const period = 1000 / rate;
    this.startedAt = performance.now();
    this.done = (async () => {
      let due = performance.now();
      while (!this.stopped) {
        await cluster.api.update(endpointChange(workload, next(), current).slice);
        this.writes++;
        due += period;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        else due = performance.now();
      }
      this.endedAt = performance.now();
    })();
  }

  async stop(): Promise<number> {
    this.stopped = true;
    await this.done;
    return (this.writes * 1000) / Math.max(1, this.endedAt - this.startedAt);
  }
}

async function connectTimes(cluster: BenchCluster, count: number): Promise<number[]> {
  const client = cluster.topology.pod(CLIENT_POD).ns;
  // Warm-up: ARP, neighbour entries and the code paths of the first connections.
  await client.exec(process.execPath, [CONNECT_PROBE, PROBE_CLUSTER_IP, String(PROBE_PORT), '10']);
  const out = await client.exec(
    process.execPath,
    [CONNECT_PROBE, PROBE_CLUSTER_IP, String(PROBE_PORT), String(count)],
    {
      timeoutMs: 600_000,
    },
  );
  const result = JSON.parse(out.stdout) as { ms: number[]; failures: number };
  if (result.failures > 0 || result.ms.length === 0)
    throw new Error(`bench: ${result.failures} of ${count} connections to the probe Service failed`);
  return result.ms;
}

function writeManifest(cluster: BenchCluster, name: string, workload: Workload): string {
  const path = join(cluster.dir, `${name}.json`);
  writeFileSync(path, manifestJSON(workload.objects));
  return path;
}

const SLICES_PATH = '/apis/discovery.k8s.io/v1/endpointslices';

/** Lists a collection the way kube-proxy's reflector does (pages of 500); returns the item count. */
async function listAll(cluster: BenchCluster, path: string): Promise<number> {
  let count = 0;
  let token = '';
  do {
    const page = (await cluster.api.request(
      'GET',
      `${path}?limit=500${token ? `&continue=${encodeURIComponent(token)}` : ''}`,
    )) as { items: unknown[]; metadata: { continue?: string } };
    count += page.items.length;
    token = page.metadata.continue ?? '';
  } while (token !== '');
  return count;
}

const isIPv4Full = (s: SyncLine) => s.family === 'IPv4' && s.full;

async function benchMode(mode: BenchMode, options: BenchOptions, figures: Figure[]): Promise<void> {
  const { size, endpoints: m } = options;
  const add = (name: Parameters<typeof figure>[0], value: number, services = size) => {
    figures.push(figure(name, mode, services, m, value));
    say(`  ${name} @${services}x${m} = ${figure(name, mode, services, m, value).value}`);
  };
  say(`${mode}: building the namespace cluster`);
  const cluster = await BenchCluster.create('kpb');
  try {
    const dumpDir = join(cluster.dir, 'dumps');
    mkdirSync(dumpDir);
    if (options.cpuProf) mkdirSync(options.cpuProf, { recursive: true });
    const probe = { endpoints: cluster.backendEndpoints(), targetPort: 8080 };
    const start = {
      mode,
      minSyncPeriod: options.minSyncPeriod,
      dumpDir,
      cpuProfDir: options.cpuProf,
      nodeOptions: options.nodeOptions,
    };
    const timeout = options.timeoutMs;

    // Data plane baseline: the same probe Service among `baseline` Services.
    if (options.groups.has('dataplane') && options.baseline < size) {
      const small = generateWorkload({
        services: options.baseline,
        endpointsPerService: m,
        seed: options.seed,
        affinity: options.affinity,
        portsPerService: options.portsPerService,
        probe,
      });
      await cluster.startApi(writeManifest(cluster, 'baseline', small));
      cluster.startProxy(start);
      await cluster.waitForSync('first sync (baseline)', 0, isIPv4Full, timeout);
      const times = await connectTimes(cluster, options.connects);
      add('connect-p50', median(times), options.baseline);
      add('connect-p99', percentile(times, 0.99), options.baseline);
      await cluster.stopProxy();
    }

    const workload = generateWorkload({
      services: size,
      endpointsPerService: m,
      seed: options.seed,
      affinity: options.affinity,
      portsPerService: options.portsPerService,
      probe,
    });
    say(
      `${mode}: ${size} Services x ${m} endpoints (${JSON.stringify(workload.counts)}); preloading the API server`,
    );
    const preload = performance.now();
    await cluster.startApi(writeManifest(cluster, 'workload', workload));
    say(`${mode}: API server ready in ${(performance.now() - preload).toFixed(0)} ms; starting kube-proxy`);

    // What listing everything costs the in-repo API server (part of every cold start below).
    const listed = performance.now();
    const items = (await listAll(cluster, '/api/v1/services')) + (await listAll(cluster, SLICES_PATH));
    say(
      `${mode}: listing ${items} objects in pages of 500 takes ${(performance.now() - listed).toFixed(0)} ms`,
    );

    // Cold start and the first (full) sync.
    const startedAt = cluster.startProxy(start);
    const tree = new TreeMemory(cluster.proxyPid);
    const first = await cluster.waitForSync('first sync', 0, isIPv4Full, timeout);
    add('cold-start', first.seenAt - startedAt);
    say(
      `  (cold start: ${(first.seenAt - startedAt - first.elapsedMs).toFixed(0)} ms before the first sync began)`,
    );
    add('first-sync-total', first.elapsedMs);
    add('first-sync-render', first.renderMs);
    add('first-sync-apply', first.applyMs);
    await cluster.waitForSync('first IPv6 sync', 0, (s) => s.family === 'IPv6', timeout);
    const coldTree = tree.peak;
    add('tree-rss-peak-start', coldTree.treeMiB);
    say(
      `  (tree peak until the first syncs: kube-proxy ${coldTree.proxyMiB.toFixed(0)} MiB + its tools ` +
        `${coldTree.childrenMiB.toFixed(0)} MiB; largest tool seen ${coldTree.childPeakMiB.toFixed(0)} MiB)`,
    );
    const dumpPath = join(dumpDir, `${mode}-IPv4.rules`);
    const firstText = await waitForDump(dumpPath, first.seenAt, timeout);
    copyFileSync(dumpPath, join(dumpDir, 'first.rules'));
    if (options.groups.has('full-sync')) {
      // Floor of the first sync: the same text into a namespace whose tables are empty.
      const scratch = await createNetns(`${uniquePrefix('kpbf')}x`);
      try {
        const floor = await bareApply(scratch, mode, firstText);
        add('first-sync-floor', floor);
        add('first-sync-ratio', first.elapsedMs / floor);
      } finally {
        await deleteNetns(scratch);
      }
    }

    if (options.groups.has('dataplane')) {
      if (mode === 'iptables-legacy' || mode === 'iptables-nft') {
        const where = await servicesChainPosition(cluster.topology.node1.ns, mode, PROBE_CLUSTER_IP);
        say(`  probe Service is cluster IP rule ${where.position} of ${where.rules} in nat KUBE-SERVICES`);
      }
      const times = await connectTimes(cluster, options.connects);
      add('connect-p50', median(times));
      add('connect-p99', percentile(times, 0.99));
    }

    if (options.groups.has('full-sync')) {
      const syncs: SyncLine[] = [];
      for (let r = 0; r < options.fullSyncs; r++) {
        const from = cluster.syncLines().length;
        await cluster.toggleZone();
        syncs.push(await cluster.waitForSync('forced full sync', from, isIPv4Full, timeout));
        await cluster.waitForSync(
          'forced IPv6 full sync',
          from,
          (s) => s.family === 'IPv6' && s.full,
          timeout,
        );
      }
      const last = syncs.at(-1);
      const text = await waitForDump(dumpPath, last?.seenAt ?? 0, timeout);
      const floors: number[] = [];
      // The same text again into the same tables: exactly the state a forced full sync meets.
      for (let r = 0; r < options.fullSyncs; r++)
        floors.push(await bareApply(cluster.topology.node1.ns, mode, text));
      const total = median(syncs.map((s) => s.elapsedMs));
      add('full-sync-total', total);
      add('full-sync-render', median(syncs.map((s) => s.renderMs)));
      add('full-sync-apply', median(syncs.map((s) => s.applyMs)));
      add('full-sync-floor', median(floors));
      add('full-sync-ratio', total / median(floors));
    }

    const split = pools(workload);
    let counter = 0;
    const next = () => counter++;
    const measuredState = new Map<number, { ip: string; node: string }[]>();
    // Each measured change starts after the rate limit of the previous sync has passed.
    const gapMs = parseDuration(options.minSyncPeriod) + 50;
    const watch =
      options.groups.has('change') || options.groups.has('churn')
        ? await KernelWatch.start(cluster.topology.node1.ns, mode)
        : undefined;
    if (options.groups.has('change')) {
      const latencies: number[] = [];
      const polls: number[] = [];
      let missed = 0;
      const syncsBefore = cluster.syncLines().length;
      const readBack: number[] = [];
      for (let i = 0; i < options.changes; i++) {
        const change = endpointChange(split.measured, next(), measuredState);
        const timing = await timeChange(cluster, mode, watch, change, timeout);
        (timing.missed ? readBack : latencies).push(timing.latencyMs);
        polls.push(...timing.pollMs);
        if (timing.missed) missed++;
        await sleep(gapMs);
      }
      reportLost(missed, readBack);
      if (watch) polls.push(await verifyChanges(cluster, measuredState));
      const timed = latencies.length > 0 ? latencies : readBack;
      add('change-p50', median(timed));
      add('change-p99', percentile(timed, 0.99));
      add('change-poll', median(polls));
      const partial = cluster
        .syncLines()
        .slice(syncsBefore)
        .filter((sync) => sync.family === 'IPv4' && !sync.full);
      add('change-sync', median(partial.map((sync) => sync.elapsedMs)));
    }

    if (options.groups.has('churn')) {
      const churn = new Churn();
      churn.start(cluster, split.churn, options.churnRate, next);
      await sleep(1000);
      const latencies: number[] = [];
      let missed = 0;
      const readBack: number[] = [];
      for (let i = 0; i < options.churnChanges; i++) {
        const change = endpointChange(split.measured, next(), measuredState);
        const timing = await timeChange(cluster, mode, watch, change, timeout);
        (timing.missed ? readBack : latencies).push(timing.latencyMs);
        if (timing.missed) missed++;
        await sleep(gapMs);
      }
      reportLost(missed, readBack);
      add('churn-rate', await churn.stop());
      if (watch) await verifyChanges(cluster, measuredState);
      const timed = latencies.length > 0 ? latencies : readBack;
      add('churn-change-p50', median(timed));
      add('churn-change-p99', percentile(timed, 0.99));
    }

    await watch?.stop();

    // Memory once the last changes are synced and the process is idle.
    await sleep(2000);
    const memory = cluster.memory();
    add('rss-peak', memory.peakMiB);
    add('rss-steady', memory.rssMiB);
    const treePeak = tree.stop();
    add('tree-rss-peak', treePeak.treeMiB);
    say(
      `  (tree peak: kube-proxy ${treePeak.proxyMiB.toFixed(0)} MiB + its tools ${treePeak.childrenMiB.toFixed(0)} MiB; ` +
        `largest tool seen ${treePeak.childPeakMiB.toFixed(0)} MiB; ${String(treePeak.samples)} samples; ` +
        `its tools at the end, idle: ${treePeak.lastChildrenMiB.toFixed(0)} MiB)` +
        (treePeak.peakTools.length > 0 ? `\n  (tools at the peak: ${treePeak.peakTools.join('; ')})` : ''),
    );
    await cluster.stopProxy();
  } finally {
    await cluster.destroy();
  }
}

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(text);
  if (!match) throw new Error(`--min-sync-period: expected e.g. 100ms or 1s, got "${text}"`);
  return Number(match[1]) * (match[2] === 's' ? 1000 : 1);
}

export async function runBench(options: BenchOptions): Promise<Figure[]> {
  const figures: Figure[] = [];
  try {
    for (const mode of options.modes) await benchMode(mode, options, figures);
  } finally {
    await cleanupNetns();
  }
  return figures;
}

async function main(): Promise<void> {
  if (!IS_ROOT) {
    process.stderr.write('bench: needs root (network namespaces, iptables, nft); run `make bench` as root\n');
    process.exit(2);
  }
  const options = parseOptions(process.argv.slice(2));
  parseDuration(options.minSyncPeriod);
  say(
    `kube-proxy-ts bench: ${options.size} Services x ${options.endpoints} endpoints, modes ${options.modes.join(', ')}, ` +
      `groups ${[...options.groups].join(', ')}, min sync period ${options.minSyncPeriod}`,
  );
  const figures = await runBench(options);
  process.stdout.write(`\n${formatTable(figures, options.modes)}\n`);
  writeFileSync(options.out, `${JSON.stringify(figures, null, 2)}\n`);
  say(`wrote ${figures.length} figures to ${options.out}`);
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  });
}
