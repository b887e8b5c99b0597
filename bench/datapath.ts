// The data-path benchmark (`make bench-datapath`, as root; part of `make bench`): in one run, in
// one namespace cluster with the same client pod and the same three backend pods, the traffic
// through nftables mode (kernel DNAT), HAProxy in TCP mode and the userspace mode, next to a
// direct client -> backend baseline. Prints the figures side by side with the ratios and writes
// bench/results-datapath.json; bench/README.md ("Data path") documents every figure. Asserts
// nothing about timings.
//   node bench/datapath.ts [--seconds 10] [--streams 50] [--rate 1000] [--idle 10000]
//        [--columns direct,nftables,haproxy,userspace] [--out bench/results-datapath.json]
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupNetns, IS_ROOT, stopProcess, type Netns } from '../test/support/netns.ts';
import { endpointSlice, service } from '../test/support/objects.ts';
import { waitForLine } from '../test/support/topology.ts';
import { BACKEND_PODS, BenchCluster, CLIENT_POD, sleep } from './harness.ts';
import {
  addedLatency,
  COLUMNS,
  datapathFigure,
  formatDatapathTable,
  goals,
  ratios,
  type Column,
  type DatapathFigure,
  type DatapathFigureName,
  type DatapathResults,
  type SkippedColumn,
} from './datapath-report.ts';
import {
  cleanupKubeProxy,
  findHaproxy,
  haproxyConfig,
  openFilesHardLimit,
  refusal,
  rssMiB,
  startHaproxy,
  startKubeProxy,
  portList,
  type ServicePorts,
  type Started,
} from './datapath-proxies.ts';
import { manifestJSON } from './workload.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const LOAD = join(HERE, 'datapath-load.ts');
const BACKEND = join(HERE, 'datapath-backend.ts');

/** The benchmark's Service: one cluster IP, a port per backend behaviour (port = targetPort). */
const SERVICE_IP = '10.96.77.77';
const PORTS: ServicePorts = { short: 9000, sink: 9001, echo: 9002 };

export interface DatapathOptions {
  readonly seconds: number;
  readonly warmup: number;
  readonly streams: number;
  readonly rate: number;
  readonly latencyConnections: number;
  readonly concurrency: number;
  readonly maxConnections: number;
  readonly idle: number;
  readonly columns: readonly Column[];
  readonly out: string;
}

function parseOptions(argv: readonly string[]): DatapathOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seconds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '1' },
      streams: { type: 'string', default: '50' },
      rate: { type: 'string', default: '1000' },
      'latency-connections': { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '16' },
      'max-connections': { type: 'string', default: '200000' },
      idle: { type: 'string', default: '10000' },
      columns: { type: 'string', default: COLUMNS.join(',') },
      out: { type: 'string', default: join(HERE, 'results-datapath.json') },
    },
    strict: true,
  });
  const positive = (name: string, text: string, integer: boolean): number => {
    const n = Number(text);
    if (!(n > 0) || (integer && !Number.isInteger(n)))
      throw new Error(`--${name}: expected a positive ${integer ? 'integer' : 'number'}, got "${text}"`);
    return n;
  };
  const columns = values.columns.split(',').map((c) => {
    if (!(COLUMNS as readonly string[]).includes(c))
      throw new Error(`--columns: unknown column "${c}" (known: ${COLUMNS.join(', ')})`);
    return c as Column;
  });
  // The added latency is measured against the direct column: it always runs.
  const ordered = COLUMNS.filter((c) => c === 'direct' || columns.includes(c));
  return {
    seconds: positive('seconds', values.seconds, false),
    warmup: positive('warmup', values.warmup, false),
    streams: positive('streams', values.streams, true),
    rate: positive('rate', values.rate, true),
    latencyConnections: positive('latency-connections', values['latency-connections'], true),
    concurrency: positive('concurrency', values.concurrency, true),
    maxConnections: positive('max-connections', values['max-connections'], true),
    idle: positive('idle', values.idle, true),
    columns: ordered,
    out: values.out,
  };
}

function say(text: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
}

/** Where the client sends traffic for one column, and the proxy process (none for direct). */
interface Target {
  readonly hosts: readonly string[];
  readonly proxy: Started | undefined;
}

class DatapathRun {
  readonly figures: DatapathFigure[] = [];
  readonly skipped: SkippedColumn[] = [];
  idleOpened = Number.MAX_SAFE_INTEGER;
  private readonly cluster: BenchCluster;
  private readonly options: DatapathOptions;
  private readonly idle: number;

  constructor(cluster: BenchCluster, options: DatapathOptions, idle: number) {
    this.cluster = cluster;
    this.options = options;
    this.idle = idle;
  }

  private get client(): Netns {
    return this.cluster.topology.pod(CLIENT_POD).ns;
  }

  private get node(): Netns {
    return this.cluster.topology.node1.ns;
  }

  private add(name: DatapathFigureName, column: Column, value: number): void {
    const f = datapathFigure(name, column, value);
    this.figures.push(f);
    say(`  ${column} ${name} = ${f.value} ${f.unit}`);
  }

  /** Runs one test of the load generator in the client pod; returns its JSON line. */
  private async load<T>(test: string, hosts: readonly string[], args: readonly string[]): Promise<T> {
    const boundMs = (this.options.seconds + this.options.warmup) * 1000 + 120_000;
    const out = await this.client.exec(process.execPath, [LOAD, test, '--hosts', hosts.join(','), ...args], {
      timeoutMs: boundMs,
    });
    return JSON.parse(out.stdout) as T;
  }

  /** Waits until the path through `hosts` answers, or the proxy exits (returns its output). */
  private async ready(column: Column, target: Target): Promise<'ready' | { exited: string }> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (target.proxy?.exited) return { exited: target.proxy.output() };
      try {
        await this.load('ready', target.hosts, [
          ...['--port', String(PORTS.echo), '--short', String(PORTS.short), '--timeout-ms', '2000'],
        ]);
        return 'ready';
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`bench: ${column} not answering after 60 s\n${target.proxy?.output() ?? ''}`, {
            cause: error,
          });
      }
    }
  }

  private warn(column: Column, what: string, failures: number): void {
    if (failures > 0) say(`  WARNING: ${column} ${what}: ${failures} failed connections or requests`);
  }

  private async measure(column: Column, target: Target): Promise<void> {
    const time = ['--seconds', String(this.options.seconds)];
    const conn = await this.load<{ perSecond: number; failures: number; connections: number }>(
      'connect',
      target.hosts,
      [
        ...['--port', String(PORTS.short), ...time, '--concurrency', String(this.options.concurrency)],
        ...['--max', String(this.options.maxConnections)],
      ],
    );
    this.warn(column, 'conn-rate', conn.failures);
    this.add('conn-rate', column, conn.perSecond);

    for (const [name, streams] of [
      ['bulk-1', 1],
      ['bulk-n', this.options.streams],
    ] as const) {
      const bulk = await this.load<{ bytesPerSecond: number; failures: number }>('bulk', target.hosts, [
        ...['--port', String(PORTS.sink), ...time, '--streams', String(streams)],
      ]);
      this.warn(column, name, bulk.failures);
      this.add(name, column, bulk.bytesPerSecond / 1e6);
    }

    // The baseline of the added latency: the direct path, just before this column's own test.
    if (column !== 'direct') {
      const direct = await this.latency('direct', this.hostsOf('direct'));
      this.add('direct-p50', column, direct.p50);
      this.add('direct-p99', column, direct.p99);
    }
    const latency = await this.latency(column, target.hosts);
    this.add('latency-p50', column, latency.p50);
    this.add('latency-p99', column, latency.p99);

    if (target.proxy) await this.memory(column, target.proxy);
  }

  /** Request-response at the fixed rate over persistent connections to the echo port. */
  private async latency(column: Column, hosts: readonly string[]): Promise<{ p50: number; p99: number }> {
    const result = await this.load<{ p50: number; p99: number; failures: number; perSecond: number }>(
      'latency',
      hosts,
      [
        ...['--port', String(PORTS.echo), '--seconds', String(this.options.seconds)],
        ...['--rate', String(this.options.rate), '--warmup', String(this.options.warmup)],
        ...['--connections', String(this.options.latencyConnections)],
      ],
    );
    this.warn(column, 'latency', result.failures);
    say(`  (${column} latency: ${result.perSecond.toFixed(0)} requests/s achieved)`);
    return result;
  }

  /** RSS of the proxy before and while the client holds the idle connections through it. */
  private async memory(column: Column, proxy: Started): Promise<void> {
    await sleep(500);
    const base = rssMiB(proxy.pid);
    this.add('rss-base', column, base);
    const holder = this.client.spawn(process.execPath, [
      ...[LOAD, 'idle', '--hosts', this.hostsOf(column).join(','), '--port', String(PORTS.echo)],
      ...['--count', String(this.idle), '--max-seconds', '600'],
    ]);
    try {
      const line = await waitForLine(holder, '"open"', `${column} idle connections`, 300_000);
      const { open, failures } = JSON.parse(line) as { open: number; failures: number };
      this.warn(column, `idle (${open} of ${this.idle} open)`, failures);
      this.idleOpened = Math.min(this.idleOpened, open);
      // Let the proxy's allocator and (Node) young generation settle before reading.
      await sleep(1000);
      const held = rssMiB(proxy.pid);
      this.add('rss-idle', column, held);
      // nftables mode holds no connection in the process (conntrack does, in the kernel).
      if (column !== 'nftables' && open > 0) this.add('rss-per-conn', column, ((held - base) * 1024) / open);
    } finally {
      await stopProcess(holder);
    }
  }

  private hostsOf(column: Column): string[] {
    switch (column) {
      case 'direct':
        return BACKEND_PODS.map((name) => this.cluster.topology.pod(name).ipv4);
      case 'nftables':
      case 'userspace':
        return [SERVICE_IP];
      case 'haproxy':
        return [this.cluster.topology.node1.ipv4];
      default: {
        const never: never = column;
        throw new Error(`unknown column ${String(never)}`);
      }
    }
  }

  private async startProxy(column: Column): Promise<Started | undefined | SkippedColumn> {
    switch (column) {
      case 'direct':
        return undefined;
      case 'nftables':
      case 'userspace':
        return startKubeProxy(this.node, column, this.cluster.kubeconfigPath);
      case 'haproxy': {
        const haproxy = await findHaproxy();
        if (!haproxy)
          return { column, reason: 'haproxy is not installed (`make bench-datapath` installs it as root)' };
        const config = join(this.cluster.dir, 'haproxy.cfg');
        writeFileSync(
          config,
          haproxyConfig({
            bind: this.cluster.topology.node1.ipv4,
            ports: PORTS,
            backends: this.hostsOf('direct'),
            maxconn: this.idle + 100,
          }),
        );
        return startHaproxy(this.node, haproxy, config);
      }
      default: {
        const never: never = column;
        throw new Error(`unknown column ${String(never)}`);
      }
    }
  }

  async column(column: Column): Promise<void> {
    say(`${column}: starting`);
    const started = await this.startProxy(column);
    if (started !== undefined && !('child' in started)) {
      this.skip(started);
      return;
    }
    const target: Target = { hosts: this.hostsOf(column), proxy: started };
    try {
      const state = await this.ready(column, target);
      if (state !== 'ready') {
        const reason = refusal(state.exited);
        if (column === 'userspace' && reason !== undefined) {
          this.skip({ column, reason: `kube-proxy refused --proxy-mode=userspace: ${reason}` });
          return;
        }
        throw new Error(`bench: the ${column} proxy exited before it served:\n${state.exited}`);
      }
      await this.measure(column, target);
    } finally {
      await started?.stop();
      if (column === 'nftables' || column === 'userspace') await cleanupKubeProxy(this.node);
    }
  }

  private skip(skipped: SkippedColumn): void {
    this.skipped.push(skipped);
    say(`SKIPPED ${skipped.column}: ${skipped.reason}`);
  }
}

/** Backends with the three behaviours in every backend pod; returns once all listen. */
async function startBackends(cluster: BenchCluster): Promise<ChildProcess[]> {
  return Promise.all(
    BACKEND_PODS.map(async (name) => {
      const child = cluster.topology
        .pod(name)
        .ns.spawn(process.execPath, [
          BACKEND,
          ...['--short', String(PORTS.short), '--sink', String(PORTS.sink), '--echo', String(PORTS.echo)],
        ]);
      await waitForLine(child, 'ready', `data-path backend in ${name}`);
      return child;
    }),
  );
}

function manifest(cluster: BenchCluster): string {
  const ports = portList(PORTS);
  const path = join(cluster.dir, 'datapath.json');
  writeFileSync(
    path,
    manifestJSON([
      service({ name: 'datapath', namespace: 'bench', clusterIPs: [SERVICE_IP], ports }),
      endpointSlice({
        service: 'datapath',
        namespace: 'bench',
        ports,
        endpoints: cluster.backendEndpoints(),
      }),
    ]),
  );
  return path;
}

/**
 * How many idle connections a proxy can hold here: it needs two descriptors per connection
 * (client and backend side) within the hard limit every process started here inherits.
 */
function idleBound(requested: number): number {
  const possible = Math.floor((openFilesHardLimit() - 400) / 2);
  if (possible >= requested) return requested;
  say(
    `idle connections: ${requested} asked, but the open-files hard limit (${openFilesHardLimit()}) lets a proxy hold ${possible}: measuring at ${possible}`,
  );
  return possible;
}

export async function runDatapath(options: DatapathOptions): Promise<DatapathResults> {
  const idle = idleBound(options.idle);
  say('building the namespace cluster');
  const cluster = await BenchCluster.create('kpd');
  let backends: ChildProcess[] = [];
  try {
    backends = await startBackends(cluster);
    await cluster.startApi(manifest(cluster));
    // Room for the connection-rate loops and the idle connections (own namespaces only).
    for (const ns of [cluster.topology.pod(CLIENT_POD).ns, cluster.topology.node1.ns])
      await ns.sysctl('net.ipv4.ip_local_port_range', '10000 65000');
    const run = new DatapathRun(cluster, options, idle);
    for (const column of options.columns) await run.column(column);
    const figures = [...run.figures, ...addedLatency(run.figures)];
    return {
      date: new Date().toISOString(),
      options: {
        seconds: options.seconds,
        warmup: options.warmup,
        streams: options.streams,
        rate: options.rate,
        latencyConnections: options.latencyConnections,
        concurrency: options.concurrency,
        idleRequested: options.idle,
      },
      idleConnections: run.idleOpened === Number.MAX_SAFE_INTEGER ? 0 : run.idleOpened,
      columns: options.columns.filter((c) => !run.skipped.some((s) => s.column === c)),
      skipped: run.skipped,
      figures,
      ratios: ratios(figures),
      goals: goals(figures),
    };
  } finally {
    await Promise.all(backends.map((child) => stopProcess(child, 'SIGKILL')));
    await cluster.destroy();
    await cleanupNetns();
  }
}

async function main(): Promise<void> {
  if (!IS_ROOT) {
    process.stderr.write('bench: needs root (network namespaces, nft); run `make bench-datapath` as root\n');
    process.exit(2);
  }
  const options = parseOptions(process.argv.slice(2));
  say(
    `kube-proxy-ts data-path bench: columns ${options.columns.join(', ')}, ${options.seconds} s per test, ` +
      `${options.streams} streams, ${options.rate} requests/s, ${options.idle} idle connections`,
  );
  const results = await runDatapath(options);
  process.stdout.write(
    `\n${formatDatapathTable(results.figures, results.ratios, options.columns)}\n` +
      `(bulk-n: ${options.streams} streams; rss-idle at ${results.idleConnections} idle connections)\n`,
  );
  for (const s of results.skipped) process.stdout.write(`skipped ${s.column}: ${s.reason}\n`);
  process.stdout.write('\nGoals of issue 12:\n');
  for (const g of results.goals) process.stdout.write(`  ${g.status.padEnd(7)} ${g.goal} (${g.detail})\n`);
  writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
  say(`wrote ${results.figures.length} figures to ${options.out}`);
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  });
}
