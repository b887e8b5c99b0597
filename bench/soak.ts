// The soak run (issue 15, goal 7; `make soak`, as root): the real kube-proxy in a namespace
// cluster with N Services (1000), endpoint changes at a steady rate (20/s) and an API fault
// every --fault-seconds, for --minutes (60). Every --sample-seconds it reads the process (RSS,
// open descriptors, child processes from /proc; V8 heap and pending timers from its /metrics)
// and times one endpoint change from the API write to the kernel. At the end: a table, a chart
// (PNG, rendered by chromium) and the goals, checked: RSS growth <= 5 % after the warm-up, no
// descriptor, child process or timer leaked, latency flat. Exits 1 when a goal is missed.
//   node bench/soak.ts [--minutes 60] [--mode nftables] [--services 1000] [--rate 20] …
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupNetns, IS_ROOT } from '../test/support/netns.ts';
import { BenchCluster, KNOWN_MODES, nsExec, sleep, type BenchMode } from './harness.ts';
import { endpointInKernel, endpointsMissing } from './kernel.ts';
import { screenshotPage } from './soak-plot.ts';
import {
  DEFAULT_GOALS,
  evaluate,
  FAULT_KINDS,
  formatTableRows,
  formatVerdicts,
  metricValue,
  renderPage,
  tableRows,
  type FaultEvent,
  type FaultKind,
  type Goals,
  type Quiet,
  type Sample,
  type SoakOutcome,
  type Verdict,
} from './soak-report.ts';
import { endpointChange, generateWorkload, manifestJSON, type Workload } from './workload.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));

export interface SoakOptions {
  readonly minutes: number;
  readonly mode: BenchMode;
  readonly services: number;
  readonly endpoints: number;
  /** Churn writes (endpoint changes) per second. */
  readonly rate: number;
  readonly sampleSeconds: number;
  readonly faultSeconds: number;
  /** Excluded from the RSS and latency goals; default: 10 minutes, or a third of a shorter run. */
  readonly warmupMinutes: number;
  readonly minSyncPeriod: string;
  readonly out: string;
  /** Render the PNG (chromium); the HTML, JSON and Markdown are always written. */
  readonly plot: boolean;
  /** How long the process may take to give back what the churn held, after it stops. */
  readonly settleSeconds: number;
  readonly seed: number;
  /** More NODE_OPTIONS for kube-proxy (e.g. --heapsnapshot-signal=SIGUSR2, or a preloaded probe). */
  readonly nodeOptions: string | undefined;
}

export interface SoakResult {
  readonly outcome: SoakOutcome;
  readonly verdicts: readonly Verdict[];
  readonly table: string;
  /** Namespace name prefixes this run created (the cluster's, the plot's). */
  readonly prefixes: readonly string[];
  readonly files: {
    readonly json: string;
    readonly markdown: string;
    readonly html: string;
    readonly png?: string;
  };
}

function say(text: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} soak: ${text}\n`);
}

export function parseSoakOptions(argv: readonly string[]): SoakOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      minutes: { type: 'string', default: '60' },
      mode: { type: 'string', default: 'nftables' },
      services: { type: 'string', default: '1000' },
      endpoints: { type: 'string', default: '10' },
      rate: { type: 'string', default: '20' },
      'sample-seconds': { type: 'string', default: '10' },
      'fault-seconds': { type: 'string', default: '60' },
      'warmup-minutes': { type: 'string' },
      'min-sync-period': { type: 'string', default: '1s' },
      'settle-seconds': { type: 'string', default: '60' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string', default: join(HERE, 'soak-results') },
      'no-plot': { type: 'boolean', default: false },
      'node-options': { type: 'string' },
    },
    strict: true,
  });
  const num = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min)
      throw new Error(`--${name}: expected a number >= ${min}, got "${text}"`);
    return n;
  };
  if (!(KNOWN_MODES as readonly string[]).includes(values.mode))
    throw new Error(`--mode: unknown mode "${values.mode}" (known: ${KNOWN_MODES.join(', ')})`);
  if (!/^\d+(\.\d+)?(ms|s)$/.test(values['min-sync-period']))
    throw new Error(`--min-sync-period: expected e.g. 1s or 100ms, got "${values['min-sync-period']}"`);
  const minutes = num('minutes', values.minutes, 0.5);
  const warmup = values['warmup-minutes'];
  return {
    minutes,
    mode: values.mode as BenchMode,
    services: Math.floor(num('services', values.services, 2)),
    endpoints: Math.floor(num('endpoints', values.endpoints, 1)),
    rate: num('rate', values.rate, 0.1),
    sampleSeconds: num('sample-seconds', values['sample-seconds'], 1),
    faultSeconds: num('fault-seconds', values['fault-seconds'], 5),
    warmupMinutes: warmup === undefined ? Math.min(10, minutes / 3) : num('warmup-minutes', warmup, 0),
    minSyncPeriod: values['min-sync-period'],
    settleSeconds: num('settle-seconds', values['settle-seconds'], 1),
    seed: Math.floor(num('seed', values.seed, 0)),
    out: values.out,
    plot: !values['no-plot'],
    nodeOptions: values['node-options'],
  };
}

// ---- readings of the kube-proxy process ----

function rssMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`soak: no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

/** Open descriptors by kind: "socket", "pipe", "anon_inode:[eventpoll]", or the file's path. */
function fdKinds(pid: number): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    const kind = /^(socket|pipe):/.exec(target)?.[1] ?? target;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** Child processes of every thread (a tool a sync runs, or a leaked one, zombies included). */
function childCount(pid: number): number {
  let count = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      count += readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).length;
    } catch {
      // thread gone
    }
  }
  return count;
}

/** The command lines of the children (a leaked one is named in the report). */
function childCommands(pid: number): string[] {
  const commands: string[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let list: string[];
    try {
      list = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean);
    } catch {
      continue;
    }
    for (const child of list) {
      try {
        commands.push(
          readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') ||
            `[${child}]`,
        );
      } catch {
        // exited meanwhile
      }
    }
  }
  return commands;
}

/** kube-proxy's TCP and unix sockets as `ss` shows them in node1 (which peer a leaked one has). */
async function sockets(cluster: BenchCluster, pid: number): Promise<string[]> {
  try {
    const out = await nsExec(cluster.topology.node1.ns, 'ss', ['-Htanp']);
    return out.stdout
      .split('\n')
      .filter((line) => line.includes(`pid=${pid},`))
      .map((line) =>
        line
          .replace(/\s+users:.*$/, '')
          .replace(/\s+/g, ' ')
          .trim(),
      );
  } catch {
    return [];
  }
}

interface Scrape {
  readonly heapUsedMiB: number | undefined;
  readonly timers: number | undefined;
  readonly resources: number | undefined;
}

/** kube-proxy's /metrics from inside node1 (prom-client's default process metrics). */
async function scrape(cluster: BenchCluster): Promise<Scrape> {
  try {
    const out = await nsExec(
      cluster.topology.node1.ns,
      'curl',
      ['-sf', '--max-time', '10', 'http://127.0.0.1:10249/metrics'],
      { timeoutMs: 15_000 },
    );
    const heap = metricValue(out.stdout, 'nodejs_heap_size_used_bytes');
    const resources = metricValue(out.stdout, 'nodejs_active_resources_total');
    return {
      heapUsedMiB: heap === undefined ? undefined : heap / 2 ** 20,
      // No Timeout line: no timer pending at that moment.
      timers:
        resources === undefined
          ? undefined
          : (metricValue(out.stdout, 'nodejs_active_resources', 'type="Timeout"') ?? 0),
      resources,
    };
  } catch {
    return { heapUsedMiB: undefined, timers: undefined, resources: undefined };
  }
}

/**
 * The idle process: the lowest descriptor and child counts over a few readings (a sync's tool
 * may be running at any one of them), and the timers then.
 */
async function quiet(cluster: BenchCluster, readings: number): Promise<Quiet> {
  const pid = cluster.proxyPid;
  let fds = Infinity;
  let children = Infinity;
  let timers: number | undefined;
  for (let i = 0; i < readings; i++) {
    fds = Math.min(fds, fdCount(pid));
    children = Math.min(children, childCount(pid));
    const t = (await scrape(cluster)).timers;
    if (t !== undefined) timers = Math.min(timers ?? Infinity, t);
    await sleep(500);
  }
  return {
    fds,
    children,
    timers,
    fdKinds: fdKinds(pid),
    childCommands: childCommands(pid),
    sockets: await sockets(cluster, pid),
  };
}

/**
 * After the churn: polls until descriptors, children and timers are back at the idle counts, or
 * the deadline passes (what remains then is a leak). The last reading is returned either way.
 */
async function settle(
  cluster: BenchCluster,
  before: Quiet,
  timerSlack: number,
  seconds: number,
): Promise<Quiet> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const now = await quiet(cluster, 3);
    const timersOk =
      before.timers === undefined || (now.timers !== undefined && now.timers <= before.timers + timerSlack);
    if ((now.fds <= before.fds && now.children <= before.children && timersOk) || Date.now() > deadline)
      return now;
    await sleep(1000);
  }
}

// ---- load and faults ----

/** Splits the changeable Services: even positions for measured changes, odd ones for the churn. */
function pools(workload: Workload): { measured: Workload; churn: Workload } {
  const even = workload.changeable.filter((_, i) => i % 2 === 0);
  const odd = workload.changeable.filter((_, i) => i % 2 === 1);
  return { measured: { ...workload, changeable: even }, churn: { ...workload, changeable: odd } };
}

/** One API fault. The injected failures match only GETs: kube-proxy's lists and watches, not our writes. */
async function injectFault(cluster: BenchCluster, kind: FaultKind): Promise<void> {
  const { faults } = cluster.api;
  switch (kind) {
    case 'close-watches':
      await faults.closeWatches(false);
      return;
    case 'reset-watches':
      await faults.closeWatches(true);
      return;
    case 'compact-410':
      // Open watches get an ERROR 410 and every watcher lists everything again.
      await cluster.api.compact();
      return;
    case 'http-500':
      await faults.failNext(500, 5, 'GET ');
      await faults.closeWatches(true);
      return;
    case 'http-429':
      await faults.failNext(429, 5, 'GET ');
      await faults.closeWatches(false);
      return;
    default: {
      const never: never = kind;
      throw new Error(`soak: unknown fault ${String(never)}`);
    }
  }
}

/** API write to the kernel for one endpoint change, polled every 25 ms; undefined after 60 s. */
async function timeChange(
  cluster: BenchCluster,
  mode: BenchMode,
  change: ReturnType<typeof endpointChange>,
): Promise<number | undefined> {
  const started = performance.now();
  await cluster.api.update(change.slice);
  while (performance.now() - started < 60_000) {
    if (await endpointInKernel(cluster.topology.node1.ns, mode, change)) return performance.now() - started;
    await sleep(25);
  }
  return undefined;
}

// ---- the run ----

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const goals: Goals = { ...DEFAULT_GOALS, warmupS: options.warmupMinutes * 60 };
  mkdirSync(options.out, { recursive: true });
  const prefixes: string[] = [];
  let outcome: SoakOutcome;
  say(`building the namespace cluster (${options.mode})`);
  const cluster = await BenchCluster.create('kpsk');
  prefixes.push(cluster.topology.prefix);
  try {
    const workload = generateWorkload({
      services: options.services,
      endpointsPerService: options.endpoints,
      seed: options.seed,
      probe: { endpoints: cluster.backendEndpoints(), targetPort: 8080 },
    });
    const manifest = join(cluster.dir, 'workload.json');
    writeFileSync(manifest, manifestJSON(workload.objects));
    await cluster.startApi(manifest);
    cluster.startProxy({
      mode: options.mode,
      minSyncPeriod: options.minSyncPeriod,
      nodeOptions: options.nodeOptions,
    });
    await cluster.waitForSync('first sync', 0, (s) => s.full && s.family === 'IPv4', 300_000);
    await cluster.waitForSync('first IPv6 sync', 0, (s) => s.family === 'IPv6', 300_000);
    // A few changes first: the nftables mode's long-lived `nft -i` session (a child process and
    // its pipes) starts with the first partial sync, and belongs in the idle picture.
    const { measured, churn } = pools(workload);
    const state = new Map<number, { ip: string; node: string }[]>();
    let counter = 0;
    for (let i = 0; i < 3; i++) {
      if ((await timeChange(cluster, options.mode, endpointChange(measured, counter++, state))) === undefined)
        throw new Error('soak: a warm-up change never reached the kernel');
    }
    await sleep(3000);
    const before = await quiet(cluster, 6);
    say(
      `${options.services} Services synced; idle: ${before.fds} descriptors, ${before.children} children, ${String(before.timers)} timers, ${rssMiB(cluster.proxyPid).toFixed(1)} MiB RSS`,
    );

    const startedAt = performance.now();
    const endAt = startedAt + options.minutes * 60_000;
    const elapsedS = () => (performance.now() - startedAt) / 1000;
    let writes = 0;
    let lostChanges = 0;
    const samples: Sample[] = [];
    const faults: FaultEvent[] = [];

    // One loop failing (kube-proxy gone, the API server down) stops the others at their next step.
    let failed = false;
    const running = () => !failed && performance.now() < endAt;
    const guard = (loop: Promise<void>): Promise<void> =>
      loop.catch((error: unknown) => {
        failed = true;
        throw error;
      });

    const churnLoop = guard(
      (async () => {
        const period = 1000 / options.rate;
        let due = performance.now();
        while (running()) {
          await cluster.api.update(endpointChange(churn, counter++, state).slice);
          writes++;
          due += period;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          else due = performance.now();
        }
      })(),
    );

    const faultLoop = guard(
      (async () => {
        let n = 0;
        for (;;) {
          const next = startedAt + (n + 1) * options.faultSeconds * 1000;
          // No fault in the last stretch: the run ends with the proxy caught up.
          if (next > endAt - options.faultSeconds * 500) return;
          while (running() && performance.now() < next) await sleep(Math.min(1000, next - performance.now()));
          if (!running()) return;
          const kind = FAULT_KINDS[n % FAULT_KINDS.length] ?? 'close-watches';
          await injectFault(cluster, kind);
          faults.push({ t: elapsedS(), kind });
          n++;
        }
      })(),
    );

    const sampleLoop = guard(
      (async () => {
        let syncsSeen = cluster.syncLines().length;
        let lastReport = 0;
        while (running()) {
          const tickStarted = performance.now();
          const pid = cluster.proxyPid;
          if (!existsSync(`/proc/${pid}`))
            throw new Error(`soak: kube-proxy (pid ${pid}) exited during the run`);
          const rss = rssMiB(pid);
          const fds = fdCount(pid);
          const children = childCount(pid);
          const metrics = await scrape(cluster);
          const changeMs = await timeChange(
            cluster,
            options.mode,
            endpointChange(measured, counter++, state),
          );
          if (changeMs === undefined) lostChanges++;
          const lines = cluster.syncLines();
          const syncMs = lines.slice(syncsSeen).map((s) => s.elapsedMs);
          syncsSeen = lines.length;
          const sample: Sample = {
            t: elapsedS(),
            rssMiB: rss,
            fds,
            children,
            ...metrics,
            changeMs,
            syncMs,
            writes,
          };
          samples.push(sample);
          if (sample.t - lastReport >= 60 || samples.length === 1) {
            lastReport = sample.t;
            say(
              `${(sample.t / 60).toFixed(1)} min: RSS ${rss.toFixed(1)} MiB, heap ${metrics.heapUsedMiB?.toFixed(1) ?? '-'} MiB, ${fds} fds, ${children} children, ${String(metrics.timers)} timers, change ${changeMs?.toFixed(0) ?? 'LOST'} ms, ${writes} writes, ${faults.length} faults`,
            );
          }
          const wait = tickStarted + options.sampleSeconds * 1000 - performance.now();
          if (wait > 0) await sleep(Math.max(0, Math.min(wait, endAt - performance.now())));
        }
      })(),
    );

    const ended = await Promise.allSettled([churnLoop, faultLoop, sampleLoop]);
    for (const loop of ended) if (loop.status === 'rejected') throw loop.reason;
    await cluster.api.faults.clear();
    say(
      `churn done: ${writes} writes in ${(elapsedS() / 60).toFixed(1)} min, ${faults.length} API faults; settling`,
    );
    const after = await settle(cluster, before, goals.timerSlack, options.settleSeconds);

    // Everything the churn and the measured changes left must be in the kernel (nftables: one read of the map).
    let missingAtEnd: number | undefined;
    if (options.mode === 'nftables') {
      const ips = [...state.values()].flatMap((endpoints) => endpoints.map((ep) => ep.ip));
      missingAtEnd = (await endpointsMissing(cluster.topology.node1.ns, ips, 8080)).length;
    }
    outcome = { samples, faults, before, after, lostChanges, missingAtEnd };
    await cluster.stopProxy();
  } finally {
    await cluster.destroy();
  }

  const written = await writeResults(options, outcome);
  prefixes.push(...written.prefixes);
  return { ...written, prefixes };
}

/** The table, the goals, the JSON, Markdown, HTML and (with options.plot) PNG of an outcome. */
async function writeResults(
  options: SoakOptions,
  outcome: SoakOutcome,
): Promise<Omit<SoakResult, 'prefixes'> & { prefixes: string[] }> {
  const goals: Goals = { ...DEFAULT_GOALS, warmupS: options.warmupMinutes * 60 };
  const prefixes: string[] = [];
  const verdicts = evaluate(outcome, goals);
  const table = formatTableRows(tableRows(outcome.samples, outcome.faults));
  const json = join(options.out, `soak-${options.mode}.json`);
  const markdown = join(options.out, `soak-${options.mode}.md`);
  const html = join(options.out, `soak-${options.mode}.html`);
  const title = `kube-proxy-ts soak: ${options.mode}, ${options.services} Services x ${options.endpoints} endpoints, ${options.rate} changes/s, ${options.minutes} min`;
  writeFileSync(json, `${JSON.stringify({ options, ...outcome, verdicts }, null, 1)}\n`);
  writeFileSync(markdown, `# ${title}\n\n${table}\n${formatVerdicts(verdicts)}`);
  const page = renderPage(outcome, verdicts, {
    title,
    subtitle: `An API fault every ${options.faultSeconds} s (${FAULT_KINDS.join(', ')}); a reading every ${options.sampleSeconds} s; min sync period ${options.minSyncPeriod}.`,
    warmupS: goals.warmupS,
    durationS: options.minutes * 60,
  });
  writeFileSync(html, page);
  let png: string | undefined;
  if (options.plot) {
    png = join(options.out, `soak-${options.mode}.png`);
    prefixes.push(await screenshotPage(page, png));
  }
  return { outcome, verdicts, table, prefixes, files: { json, markdown, html, ...(png ? { png } : {}) } };
}

/** `--replot <soak-mode.json>`: the table, goals, page and PNG again from a run's readings. */
async function replot(path: string | undefined): Promise<void> {
  if (path === undefined) throw new Error('--replot: expected the JSON file of a run');
  const saved = JSON.parse(readFileSync(path, 'utf8')) as Partial<SoakOutcome> & { options?: SoakOptions };
  const { options, samples, faults, before, after, lostChanges } = saved;
  if (!options || !Array.isArray(samples) || !faults || !before || !after || lostChanges === undefined)
    throw new Error(`--replot: ${path} is not the JSON of a soak run`);
  const result = await writeResults(
    { ...options, out: dirname(path), plot: true },
    { samples, faults, before, after, lostChanges, missingAtEnd: saved.missingAtEnd },
  );
  try {
    process.stdout.write(`${result.table}\n${formatVerdicts(result.verdicts)}`);
    say(`wrote ${Object.values(result.files).join(', ')}`);
  } finally {
    await cleanupNetns();
  }
}

async function main(): Promise<void> {
  if (!IS_ROOT) {
    process.stderr.write('soak: needs root (network namespaces, nft, iptables); run `make soak` as root\n');
    process.exit(2);
  }
  if (process.argv[2] === '--replot') {
    await replot(process.argv[3]);
    return;
  }
  const options = parseSoakOptions(process.argv.slice(2));
  say(
    `${options.minutes} min, ${options.mode}, ${options.services} Services x ${options.endpoints} endpoints, ${options.rate} changes/s, an API fault every ${options.faultSeconds} s, warm-up ${options.warmupMinutes.toFixed(1)} min`,
  );
  let result: SoakResult;
  try {
    result = await runSoak(options);
  } finally {
    await cleanupNetns();
  }
  process.stdout.write(`\n${result.table}\n${formatVerdicts(result.verdicts)}\n`);
  say(`wrote ${Object.values(result.files).join(', ')}`);
  const missed = result.verdicts.filter((v) => !v.ok);
  if (missed.length > 0) {
    process.stderr.write(`soak: ${missed.length} goal(s) missed: ${missed.map((v) => v.goal).join('; ')}\n`);
    process.exitCode = 1;
  }
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  });
}
