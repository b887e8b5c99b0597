// The benchmark's cluster: the test topology (namespaces: node1 runs kube-proxy and the API
// server, backend pods on node2, a client pod on node1), the in-repo API server preloaded from a
// manifest (restartable with another one), and the real kube-proxy with its sync log parsed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { execTool, type ExecOptions, type ExecResult } from '../src/util/exec.ts';
import { FakeApiClient } from '../test/support/apiserver-client.ts';
import { stopProcess, type Netns } from '../test/support/netns.ts';
import { node as nodeObject } from '../test/support/objects.ts';
import { buildTopology, waitForLine, type Topology } from '../test/support/topology.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const KUBE_PROXY_BIN = join(ROOT, 'bin', 'kube-proxy');
const API_SERVER = join(ROOT, 'test', 'support', 'apiserver-main.ts');
const API_ADDRESS = '127.0.0.1:6443';

export type BenchMode = 'iptables-legacy' | 'iptables-nft' | 'nftables' | 'ipvs';
/** The modes this machine's kernel runs (the default of --modes). */
export const ALL_MODES: readonly BenchMode[] = ['iptables-legacy', 'iptables-nft', 'nftables'];
/** Every mode --modes accepts: IPVS needs a kernel with ip_vs (the VM lane's, `make bench-vm`). */
export const KNOWN_MODES: readonly BenchMode[] = [...ALL_MODES, 'ipvs'];

export const BACKEND_PORT = 8080;
export const BACKEND_PODS = ['b1', 'b2', 'b3'] as const;
export const CLIENT_POD = 'client';

/** One "Synced proxy rules" line of kube-proxy's JSON log. */
export interface SyncLine {
  /** When the bench read the line (epoch ms, this process's clock). */
  readonly seenAt: number;
  readonly family: string;
  readonly full: boolean;
  readonly elapsedMs: number;
  readonly renderMs: number;
  readonly applyMs: number;
  readonly record: Readonly<Record<string, unknown>>;
}

export interface ProxyStart {
  readonly mode: BenchMode;
  readonly minSyncPeriod: string;
  /** Directory for KUBE_PROXY_DEBUG_DUMP_RULES. */
  readonly dumpDir?: string | undefined;
  /** Directory for `node --cpu-prof` output of the kube-proxy process. */
  readonly cpuProfDir?: string | undefined;
  /** More NODE_OPTIONS for the kube-proxy process (e.g. --heapsnapshot-signal=SIGUSR2). */
  readonly nodeOptions?: string | undefined;
}

function ms(value: unknown): number {
  const text = String(value);
  const match = /^([\d.]+)ms$/.exec(text);
  if (!match) throw new Error(`sync log: expected a duration like "12.3ms", got ${JSON.stringify(value)}`);
  return Number(match[1]);
}

/** Parses a JSON log line if it is a "Synced proxy rules" line. Exported for the smoke test. */
export function parseSyncLine(line: string, seenAt: number): SyncLine | undefined {
  if (!line.includes('"Synced proxy rules"')) return undefined;
  const record = JSON.parse(line) as Record<string, unknown>;
  if (record['msg'] !== 'Synced proxy rules') return undefined;
  return {
    seenAt,
    family: String(record['ipFamily']),
    full: record['full'] === true,
    elapsedMs: ms(record['elapsed']),
    renderMs: ms(record['render']),
    applyMs: ms(record['apply']),
    record,
  };
}

/** Runs a tool inside a namespace with nsenter: no `ip netns exec` mount setup, ~1 ms cheaper. */
export function nsExec(
  ns: Netns,
  file: string,
  args: readonly string[],
  options?: ExecOptions,
): Promise<ExecResult> {
  return execTool('nsenter', [`--net=/var/run/netns/${ns.name}`, file, ...args], options);
}

// Temporary directories (manifests, rule dumps) of live clusters: removed on exit too, since an
// interrupted run exits from netns.ts's signal handler without reaching destroy().
const liveDirs = new Set<string>();
process.on('exit', () => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

export class BenchCluster {
  readonly topology: Topology;
  readonly dir: string;
  readonly api: FakeApiClient;
  private apiProcess: ChildProcess | undefined;
  private proxy: ChildProcess | undefined;
  private syncs: SyncLine[] = [];
  private tail: string[] = [];
  private zone = 'zone-a';

  private constructor(topology: Topology, dir: string) {
    this.topology = topology;
    this.dir = dir;
    this.api = new FakeApiClient(join(dir, 'api.sock'));
  }

  static async create(tag: string): Promise<BenchCluster> {
    const topology = await buildTopology(
      [
        ...BACKEND_PODS.map((name) => ({ name, node: 'node2' as const })),
        { name: CLIENT_POD, node: 'node1' },
      ],
      tag,
    );
    const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-bench-'));
    liveDirs.add(dir);
    const cluster = new BenchCluster(topology, dir);
    try {
      await topology.startBackends({ tcp: [BACKEND_PORT] });
      writeFileSync(
        cluster.kubeconfigPath,
        [
          'apiVersion: v1',
          'kind: Config',
          `clusters: [{name: fake, cluster: {server: "http://${API_ADDRESS}"}}]`,
          'users: [{name: kube-proxy, user: {token: bench-token}}]',
          'contexts: [{name: fake, context: {cluster: fake, user: kube-proxy}}]',
          'current-context: fake',
          '',
        ].join('\n'),
      );
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  get kubeconfigPath(): string {
    return join(this.dir, 'kubeconfig');
  }

  /** The real pods behind the probe Service. */
  backendEndpoints(): { ip: string; node: string }[] {
    return BACKEND_PODS.map((name) => ({ ip: this.topology.pod(name).ipv4, node: 'node2' }));
  }

  /** (Re)starts the API server with the objects of a manifest file, plus node1's Node. */
  async startApi(manifest: string): Promise<void> {
    if (this.apiProcess) await stopProcess(this.apiProcess);
    const socket = join(this.dir, 'api.sock');
    rmSync(socket, { force: true });
    const child = this.topology.node1.ns.spawn(process.execPath, [
      API_SERVER,
      '--listen',
      API_ADDRESS,
      '--socket',
      socket,
      '--objects',
      manifest,
    ]);
    this.apiProcess = child;
    await waitForLine(child, 'listening', 'fake API server', 300_000);
    await this.api.create(this.nodeObject());
  }

  private nodeObject() {
    return nodeObject({
      name: 'node1',
      ips: [this.topology.node1.ipv4, this.topology.node1.ipv6],
      podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
      zone: this.zone,
    });
  }

  /** Changes node1's zone label: kube-proxy answers with a full sync of every family. */
  async toggleZone(): Promise<void> {
    this.zone = this.zone === 'zone-a' ? 'zone-b' : 'zone-a';
    await this.api.update(this.nodeObject());
  }

  /** Starts kube-proxy in node1; returns the epoch ms just before the spawn. */
  startProxy(options: ProxyStart): number {
    if (this.proxy) throw new Error('bench: kube-proxy already running');
    const proxyMode = options.mode === 'nftables' || options.mode === 'ipvs' ? options.mode : 'iptables';
    const env: Record<string, string> = {};
    if (proxyMode === 'iptables') env['KUBE_PROXY_IPTABLES_BACKEND'] = options.mode.slice('iptables-'.length);
    if (options.dumpDir) env['KUBE_PROXY_DEBUG_DUMP_RULES'] = options.dumpDir;
    const nodeOptions = [
      ...(options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : []),
      ...(options.nodeOptions ? [options.nodeOptions] : []),
    ];
    if (nodeOptions.length > 0) env['NODE_OPTIONS'] = nodeOptions.join(' ');
    this.syncs = [];
    this.tail = [];
    const started = Date.now();
    const child = this.topology.node1.ns.spawn(
      KUBE_PROXY_BIN,
      [
        `--proxy-mode=${proxyMode}`,
        `--kubeconfig=${this.kubeconfigPath}`,
        '--hostname-override=node1',
        '--cluster-cidr=10.244.0.0/16,fd00:10:244::/48',
        '--conntrack-max-per-core=0',
        `--iptables-min-sync-period=${options.minSyncPeriod}`,
        `--ipvs-min-sync-period=${options.minSyncPeriod}`,
        '--metrics-bind-address=127.0.0.1:10249',
        '--logging-format=json',
        '--v=2',
      ],
      env,
    );
    this.proxy = child;
    if (!child.stderr) throw new Error('bench: kube-proxy has no stderr pipe');
    // Only sync lines are parsed; at --v=2 the first sync of a large cluster logs one line per
    // Service port, which must not cost this process (it shares the CPUs) more than a substring test.
    createInterface({ input: child.stderr }).on('line', (line) => {
      const seenAt = Date.now();
      if (line.includes('"Synced proxy rules"')) {
        const sync = parseSyncLine(line, seenAt);
        if (sync) this.syncs.push(sync);
      } else if (!line.includes('"Service port programmed"')) {
        this.tail.push(line);
        if (this.tail.length > 50) this.tail.shift();
      }
    });
    return started;
  }

  get proxyPid(): number {
    const pid = this.proxy?.pid;
    if (pid === undefined) throw new Error('bench: kube-proxy is not running');
    return pid;
  }

  /** Sync lines seen since the proxy started. */
  syncLines(): readonly SyncLine[] {
    return this.syncs;
  }

  /** Waits for a sync line at index >= `from` that matches. */
  async waitForSync(
    what: string,
    from: number,
    match: (sync: SyncLine) => boolean,
    timeoutMs: number,
  ): Promise<SyncLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.syncs.slice(from).find(match);
      if (found) return found;
      const proxy = this.proxy;
      if (!proxy || proxy.exitCode !== null || proxy.signalCode !== null) {
        throw new Error(`bench: kube-proxy exited while waiting for ${what}:\n${this.tail.join('\n')}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`bench: no ${what} within ${timeoutMs} ms; last log lines:\n${this.tail.join('\n')}`);
      }
      await sleep(10);
    }
  }

  /** VmHWM (peak) and VmRSS (now) of kube-proxy, MiB. */
  memory(): { peakMiB: number; rssMiB: number } {
    const status = readFileSync(`/proc/${this.proxyPid}/status`, 'utf8');
    const field = (name: string): number => {
      const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
      if (!match) throw new Error(`bench: no ${name} in /proc/${this.proxyPid}/status`);
      return Number(match[1]) / 1024;
    };
    return { peakMiB: field('VmHWM'), rssMiB: field('VmRSS') };
  }

  async stopProxy(): Promise<void> {
    if (this.proxy) await stopProcess(this.proxy);
    this.proxy = undefined;
  }

  async destroy(): Promise<void> {
    await this.stopProxy().catch(() => undefined);
    if (this.apiProcess) await stopProcess(this.apiProcess).catch(() => undefined);
    await this.topology.destroy();
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}

export function sleep(msToWait: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msToWait));
}
