// A whole test cluster: the namespace topology, the in-repo API server running inside node1
// (kube-proxy there cannot reach the test process's loopback; the test drives the server over a
// unix socket, which is not namespaced), and the real `bin/kube-proxy` process in node1 against it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { FakeApiClient } from './apiserver-client.ts';
import { removeDirectory, removeOnExit, stopProcess, TIMEOUT_SCALE } from './netns.ts';
import { nodeObject } from './objects.ts';
import { REPO_ROOT, siblingScript } from './paths.ts';
import { buildTopology, waitForLine, type PodSpec, type Topology } from './topology.ts';

export const KUBE_PROXY_BIN = join(REPO_ROOT, 'bin', 'kube-proxy');
const API_SERVER = siblingScript('apiserver-main');
const API_ADDRESS = '127.0.0.1:6443';

/** The usual test cluster: pods a, b and a client on node1 (this node), pod c on node2. */
export const STANDARD_PODS: readonly PodSpec[] = [
  { name: 'a', node: 'node1' },
  { name: 'b', node: 'node1' },
  { name: 'client', node: 'node1' },
  { name: 'c', node: 'node2' },
];

/** The modes the namespace cluster runs the real proxy in (ipvs only where the kernel has IPVS: the VM lane). */
export type ProxyModeUnderTest = 'iptables' | 'nftables' | 'userspace' | 'ipvs';
/** The ipvs helper's name for it. */
export type KernelMode = ProxyModeUnderTest;

export interface ClusterOptions {
  readonly mode: ProxyModeUnderTest;
  readonly pods: readonly PodSpec[];
  readonly tcpPorts?: readonly number[];
  readonly udpPorts?: readonly number[];
  readonly httpPorts?: readonly number[];
  /** Extra kube-proxy flags. */
  readonly args?: readonly string[];
  /** Extra environment of the kube-proxy process (e.g. PATH with fault-injecting tools first). */
  readonly env?: Readonly<Record<string, string>>;
  readonly tag?: string;
  /**
   * The kube-proxy program and any leading arguments (default: bin/kube-proxy); the test's flags
   * follow. The release tests run the single executable this way.
   */
  readonly proxyCommand?: readonly [string, ...string[]];
  /** Resources the API server answers 404 for (e.g. `servicecidrs`, as before v1.33). */
  readonly unservedResources?: readonly string[];
}

async function spawnApiServer(
  topology: Topology,
  socket: string,
  extra: readonly string[],
): Promise<ChildProcess> {
  const child = topology.node1.ns.spawn(process.execPath, [
    API_SERVER,
    '--listen',
    API_ADDRESS,
    '--socket',
    socket,
    '--bookmark-interval-ms',
    '5000',
    ...extra,
  ]);
  await waitForLine(child, 'listening', 'fake API server');
  return child;
}

export class Cluster {
  readonly topology: Topology;
  readonly api: FakeApiClient;
  mode: ProxyModeUnderTest;
  private readonly dir: string;
  private apiProcess: ChildProcess;
  private proxy: ChildProcess | undefined;
  private proxyLog: string[] = [];
  private proxyCommand: readonly [string, ...string[]] = [KUBE_PROXY_BIN];
  /** Extra environment of every kube-proxy this cluster starts. */
  proxyEnv: Readonly<Record<string, string>> = {};
  /** Extra arguments of every API server process this cluster starts. */
  private apiServerArgs: readonly string[] = [];

  private constructor(
    topology: Topology,
    api: FakeApiClient,
    mode: ProxyModeUnderTest,
    dir: string,
    apiProcess: ChildProcess,
  ) {
    this.topology = topology;
    this.api = api;
    this.mode = mode;
    this.dir = dir;
    this.apiProcess = apiProcess;
  }

  static async start(options: ClusterOptions): Promise<Cluster> {
    const topology = await buildTopology(options.pods, options.tag ?? 'kpt');
    const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-ts-'));
    removeOnExit(dir);
    try {
      await topology.startBackends({
        tcp: [...(options.tcpPorts ?? [8080])],
        udp: [...(options.udpPorts ?? [])],
        http: [...(options.httpPorts ?? [])],
      });
      const socket = join(dir, 'api.sock');
      const apiServerArgs = (options.unservedResources ?? []).flatMap((resource) => [
        '--unserved-resource',
        resource,
      ]);
      const apiProcess = await spawnApiServer(topology, socket, apiServerArgs);
      const api = new FakeApiClient(socket);
      await api.create(
        nodeObject({
          name: 'node1',
          ips: [topology.node1.ipv4, topology.node1.ipv6],
          podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
          zone: 'zone-a',
        }),
      );
      writeFileSync(
        join(dir, 'kubeconfig'),
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters: [{name: fake, cluster: {server: "http://' + API_ADDRESS + '"}}]',
          'users: [{name: kube-proxy, user: {token: test-token}}]',
          'contexts: [{name: fake, context: {cluster: fake, user: kube-proxy}}]',
          'current-context: fake',
          '',
        ].join('\n'),
      );
      const cluster = new Cluster(topology, api, options.mode, dir, apiProcess);
      cluster.apiServerArgs = apiServerArgs;
      if (options.proxyCommand) cluster.proxyCommand = options.proxyCommand;
      cluster.proxyEnv = options.env ?? {};
      await cluster.startProxy(options.args ?? []);
      return cluster;
    } catch (error) {
      await topology.destroy();
      removeDirectory(dir);
      throw error;
    }
  }

  /**
   * Restarts the API server process, keeping every stored object (as a real API server backed by
   * etcd would), but with new resourceVersions: watchers must relist to carry on.
   */
  async restartApiServer(
    options: {
      /** Runs while the API server is down (an outage of the test's choosing). */
      readonly whileDown?: () => Promise<void>;
      /** Objects the API server holds when it comes back (created during the outage). */
      readonly add?: readonly unknown[];
    } = {},
  ): Promise<void> {
    const items: unknown[] = [];
    const kinds = [
      ['Node', 'v1'],
      ['Service', 'v1'],
      ['EndpointSlice', 'discovery.k8s.io/v1'],
      ['ServiceCIDR', 'networking.k8s.io/v1'],
    ] as const;
    for (const [kind, apiVersion] of kinds) {
      // List items carry no kind, as from a real API server.
      for (const item of await this.api.list(kind)) items.push({ ...item, kind, apiVersion });
    }
    items.push(...(options.add ?? []));
    const dump = join(this.dir, 'objects.json');
    writeFileSync(dump, JSON.stringify({ kind: 'List', apiVersion: 'v1', items }));
    await stopProcess(this.apiProcess);
    await options.whileDown?.();
    this.apiProcess = await spawnApiServer(this.topology, join(this.dir, 'api.sock'), [
      '--objects',
      dump,
      ...this.apiServerArgs,
    ]);
  }

  get kubeconfigPath(): string {
    return join(this.dir, 'kubeconfig');
  }

  /** Starts the real kube-proxy in node1 and waits until its first sync is done. */
  async startProxy(extraArgs: readonly string[]): Promise<void> {
    const args = [
      `--proxy-mode=${this.mode}`,
      `--kubeconfig=${this.kubeconfigPath}`,
      '--hostname-override=node1',
      '--cluster-cidr=10.244.0.0/16,fd00:10:244::/48',
      '--conntrack-max-per-core=0',
      '--iptables-min-sync-period=100ms',
      '--ipvs-min-sync-period=100ms',
      '--metrics-bind-address=127.0.0.1:10249',
      '--v=2',
      ...extraArgs,
    ];
    const [program, ...leading] = this.proxyCommand;
    const proxy = this.topology.node1.ns.spawn(program, [...leading, ...args], this.proxyEnv);
    this.proxy = proxy;
    this.proxyLog = [];
    proxy.stderr?.on('data', (chunk: Buffer) => {
      this.proxyLog.push(...chunk.toString().split('\n').filter(Boolean));
      if (this.proxyLog.length > 5000) this.proxyLog.splice(0, this.proxyLog.length - 5000);
    });
    await this.waitForLog(/"Synced proxy rules"/, 30_000);
  }

  /** Resolves with kube-proxy's exit code once it exits by itself. */
  waitForProxyExit(timeoutMs = 15_000): Promise<number | null> {
    const proxy = this.proxy;
    if (!proxy) return Promise.reject(new Error('kube-proxy is not running'));
    if (proxy.exitCode !== null) return Promise.resolve(proxy.exitCode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`kube-proxy still running after ${String(timeoutMs)} ms`)),
        timeoutMs,
      );
      proxy.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  /** Starts kube-proxy again (after stopProxy), possibly in another mode. */
  async restartProxy(mode: ProxyModeUnderTest = this.mode, extraArgs: readonly string[] = []): Promise<void> {
    this.mode = mode;
    await this.startProxy(extraArgs);
  }

  async stopProxy(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.proxy) await stopProcess(this.proxy, signal);
    this.proxy = undefined;
  }

  /** The running kube-proxy's PID (`ip netns exec` and bin/kube-proxy both exec). */
  get proxyPid(): number | undefined {
    return this.proxy?.pid;
  }

  /** kube-proxy's log lines so far (stderr), for assertions and failure messages. */
  logs(): readonly string[] {
    return this.proxyLog;
  }

  async waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    timeoutMs *= TIMEOUT_SCALE;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.proxyLog.find((l) => pattern.test(l));
      if (line) return line;
      if (this.proxy?.exitCode !== null && this.proxy?.exitCode !== undefined) {
        throw new Error(
          `kube-proxy exited with ${String(this.proxy.exitCode)}:\n${this.proxyLog.slice(-30).join('\n')}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `no log line matching ${String(pattern)} within ${String(timeoutMs)} ms:\n${this.proxyLog.slice(-30).join('\n')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** GET from inside node1 (kube-proxy's servers listen there). */
  async httpGet(url: string): Promise<{ status: number; body: string; contentType: string }> {
    const script =
      'const r = await fetch(process.argv[1]); ' +
      'console.log(JSON.stringify({ status: r.status, body: await r.text(), contentType: r.headers.get("content-type") }));';
    const result = await this.topology.node1.ns.exec(process.execPath, [
      '--input-type=module',
      '-e',
      script,
      url,
    ]);
    return JSON.parse(result.stdout) as { status: number; body: string; contentType: string };
  }

  async destroy(): Promise<void> {
    await this.stopProxy().catch(() => undefined);
    await stopProcess(this.apiProcess).catch(() => undefined);
    await this.topology.destroy();
    removeDirectory(this.dir);
  }
}
