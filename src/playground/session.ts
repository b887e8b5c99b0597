// One playground: the namespace cluster (node1 runs the real kube-proxy against the in-repo API
// server; node2 hosts pods; an external host sits on the LAN), the pods it starts, the
// EndpointSlice controller, and the verbs. Every change is followed by the sync it caused and the
// rule diff in node1. Output goes through `out`, so the REPL and the tests read the same text.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import { stringify } from 'yaml';
import { stateFromDump, dumpOf } from '../explain/dump.ts';
import { formatExplanation } from '../explain/format.ts';
import { sortObjects, stateFromManifests } from '../explain/manifests.ts';
import { EXPLAIN_API_VERSION, type Explanation } from '../explain/types.ts';
import { SERVICE_NAME_LABEL } from '../model/endpointslice.ts';
import { field, stringField } from '../model/validate.ts';
import { ExecError } from '../util/exec.ts';
import { allocate, inUseBy } from './allocate.ts';
import type { KubeObj } from './apiserver.ts';
import { FakeApiClientError } from './apiserver-client.ts';
import { Cluster, type ProxyModeUnderTest } from './cluster.ts';
import {
  CommandError,
  HELP,
  type Command,
  type Kind,
  type ObjectRef,
  type OutputFormat,
} from './commands.ts';
import { desiredSlices, isManaged, sliceContent, type RunningPod } from './controller.ts';
import { DebugClient, formatSyncs, syncViews } from './debug.ts';
import { removeDirectory, removeOnExit, stopProcess, type Netns } from './netns.ts';
import { nodeObject } from './objects.ts';
import { siblingScript } from './paths.ts';
import { diffLines, formatDiff, listingLines, readRules, type RuleListing } from './rules.ts';
import { objectsOf, readDocuments, sameContent, userFields } from './manifests.ts';
import { fingerprint } from './settle.ts';
import { waitForLine } from './topology.ts';
import {
  deploymentObject,
  describeService,
  NODE_IPS,
  plural,
  podObject,
  resourceName,
  table,
  tableOf,
  ZONES,
} from './views.ts';
import {
  deploymentPods,
  ManifestError,
  metaOf,
  parseDeployment,
  parsePod,
  type DeploymentSpec,
  type NodeName,
  type PodSpec,
} from './workloads.ts';

const EXTERNAL_IP = '192.0.2.100';
/** How long a change may take to show in the proxy's view before the playground says so. */
const SETTLE_MS = 15_000;

export interface PlaygroundOptions {
  readonly mode: ProxyModeUnderTest;
  readonly out: (text: string) => void;
  /** Extra kube-proxy flags. */
  readonly proxyArgs?: readonly string[];
}

interface LivePod extends RunningPod {
  readonly stop: () => Promise<void>;
  readonly ipv6: string;
}

/** A change a command made, for its report line (`service/web created`). */
type Outcome = 'created' | 'configured' | 'unchanged' | 'deleted';

export class Playground {
  readonly cluster: Cluster;
  readonly mode: ProxyModeUnderTest;
  private readonly out: (text: string) => void;
  private readonly debug: DebugClient;
  private readonly dir: string;
  private readonly relay: ChildProcess;
  private readonly pods = new Map<string, LivePod>();
  private readonly deployments = new Map<string, DeploymentSpec>();

  private constructor(cluster: Cluster, options: PlaygroundOptions, dir: string, relay: ChildProcess) {
    this.cluster = cluster;
    this.mode = options.mode;
    this.out = options.out;
    this.dir = dir;
    this.relay = relay;
    this.debug = new DebugClient(join(dir, 'debug.sock'));
  }

  /** Builds the cluster, starts kube-proxy in node1 and a `client` pod; removes it all on failure. */
  static async start(options: PlaygroundOptions): Promise<Playground> {
    const cluster = await Cluster.start({
      mode: options.mode,
      tag: 'kpplay',
      pods: [],
      tcpPorts: [],
      args: options.proxyArgs ?? [],
    });
    const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-playground-'));
    removeOnExit(dir);
    try {
      await cluster.api.create(
        nodeObject({
          name: 'node2',
          ips: [cluster.topology.node2.ipv4, cluster.topology.node2.ipv6],
          podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'],
          zone: ZONES.node2,
        }),
      );
      const relay = cluster.topology.node1.ns.spawn(process.execPath, [
        siblingScript('relay'),
        '--socket',
        join(dir, 'debug.sock'),
        '--to',
        '127.0.0.1:10249',
      ]);
      await waitForLine(relay, 'ready', 'the debug relay in node1');
      const playground = new Playground(cluster, options, dir, relay);
      await playground.startPod({
        namespace: 'default',
        name: 'client',
        labels: { app: 'client' },
        node: 'node1',
        ports: [],
        ready: true,
      });
      return playground;
    } catch (error) {
      await cluster.destroy();
      removeDirectory(dir);
      throw error;
    }
  }

  /** The namespaces and the proxy, for the banner. */
  describeCluster(): string {
    const t = this.cluster.topology;
    const client = this.pods.get('default/client');
    return [
      `kube-proxy playground (${this.mode} mode), namespaces ${t.prefix}*:`,
      `  node1     ${t.node1.ipv4}  ${ZONES.node1}  runs kube-proxy (${this.mode}) and the API server; pods 10.244.1.0/24`,
      `  node2     ${t.node2.ipv4}  ${ZONES.node2}  pods 10.244.2.0/24 (no kube-proxy: clients live on node1)`,
      `  external  ${t.external.ipv4}           a host outside the cluster, routed to Services through node1`,
      `  pod client ${client?.ipv4 ?? '?'} on node1, for curl --from client`,
      'Type help for the commands, exit or Ctrl-D to leave (everything is removed).',
    ].join('\n');
  }

  async destroy(): Promise<void> {
    await stopProcess(this.relay).catch(() => undefined);
    await Promise.all([...this.pods.values()].map((pod) => pod.stop().catch(() => undefined)));
    await this.cluster.destroy();
    removeDirectory(this.dir);
  }

  private print(...lines: string[]): void {
    if (lines.length > 0) this.out(`${lines.join('\n')}\n`);
  }

  /** Runs one command; false when it failed (the error is printed, kubectl-style). */
  async run(command: Command, stdin?: string): Promise<boolean> {
    try {
      switch (command.verb) {
        case 'nothing':
        case 'exit':
          return true;
        case 'help':
          this.out(HELP);
          return true;
        case 'apply':
          await this.change(() => this.apply(command.file, stdin));
          return true;
        case 'delete':
          await this.change(() =>
            'file' in command ? this.deleteFile(command.file, stdin) : this.deleteRefs(command.refs),
          );
          return true;
        case 'get':
          await this.get(command.kind, command.namespace, command.output, command.name);
          return true;
        case 'describe':
          await this.describe(command.ref);
          return true;
        case 'explain':
          await this.explain(command);
          return true;
        case 'curl':
          await this.curl(command.from, command.dst, command.dport, command.count);
          return true;
        case 'rules': {
          const listing = await this.rules();
          this.print(...listingLines(listing));
          return true;
        }
      }
    } catch (error) {
      this.print(`error: ${errorText(error)}`);
      return false;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Changes: apply, delete, the controller, and the report of what node1 did.

  private rules(): Promise<RuleListing> {
    const ns = this.cluster.topology.node1.ns;
    return readRules(this.mode, (file, args) => ns.exec(file, args));
  }

  /**
   * Runs a change, then the controller; waits until the proxy's view matches the API's objects
   * and prints the sync it took and the rule diff. A failing change still reports what it did.
   */
  private async change(body: () => Promise<void>): Promise<void> {
    const before = await this.rules();
    const syncsBefore = syncViews(await this.debug.get('/debug/proxy'));
    let failure: Error | undefined;
    try {
      await body();
    } catch (error) {
      failure = error instanceof Error ? error : new Error('the change failed');
    }
    await this.reconcileSlices();
    const settled = await this.settle();
    const syncsAfter = syncViews(await this.debug.get('/debug/proxy'));
    const after = await this.rules();
    if (!settled)
      this.print(
        `warning: kube-proxy has not shown this change within ${SETTLE_MS / 1000} s (see get, explain)`,
      );
    this.print(...formatSyncs(syncsBefore, syncsAfter));
    this.print(...formatDiff(diffLines(listingLines(before), listingLines(after)), after.syntax));
    if (failure !== undefined) throw failure;
  }

  /** Polls the proxy's view until it matches what the model makes of the API's objects. */
  private async settle(): Promise<boolean> {
    const api = this.cluster.api;
    const [services, slices, nodes] = await Promise.all([
      api.list('Service'),
      api.list('EndpointSlice'),
      api.list('Node'),
    ]);
    const withKind = (kind: string, apiVersion: string, items: KubeObj[]) =>
      items.map((item) => ({ ...item, kind, apiVersion }));
    const objects = sortObjects(
      [
        ...withKind('Service', 'v1', services),
        ...withKind('EndpointSlice', 'discovery.k8s.io/v1', slices),
        ...withKind('Node', 'v1', nodes),
      ],
      'the API server',
    );
    const deadline = Date.now() + SETTLE_MS;
    for (;;) {
      const live = await this.debug.get('/debug/proxy/state');
      const settings = stateFromDump(live, 'live').settings;
      const expected = stateFromManifests(objects, {
        nodeName: 'node1',
        mode: this.mode,
        settings,
        from: 'api',
      }).state;
      if (fingerprint(live) === fingerprint(dumpOf(expected, { generatedAt: new Date() }))) return true;
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private async apply(file: string, stdin: string | undefined): Promise<void> {
    const { docs, where } = readDocuments(file, stdin);
    const objects = objectsOf(docs, where);
    if (objects.length === 0) throw new ManifestError(`no objects passed to apply (${where})`);
    let failure: unknown;
    for (const obj of objects) {
      try {
        const kind = obj.kind ?? '';
        const outcome = await this.applyOne(obj, where);
        this.print(`${resourceName(kind as Kind)}/${obj.metadata?.name ?? ''} ${outcome}`);
      } catch (error) {
        // kubectl applies the other objects and reports each failure.
        this.print(`error: ${errorText(error)}`);
        failure ??= error;
      }
    }
    if (failure !== undefined) throw new ReportedError();
  }

  private async applyOne(obj: KubeObj, where: string): Promise<Outcome> {
    const kind = obj.kind ?? '';
    const apiVersion = obj.apiVersion ?? '';
    const expected: Readonly<Record<string, string>> = {
      Service: 'v1',
      EndpointSlice: 'discovery.k8s.io/v1',
      Pod: 'v1',
      Deployment: 'apps/v1',
    };
    if (expected[kind] === undefined || expected[kind] !== apiVersion) {
      throw new ManifestError(
        `resource mapping not found for name: ${JSON.stringify(obj.metadata?.name ?? '')} from ${JSON.stringify(where)}: no matches for kind ${JSON.stringify(kind)} in version ${JSON.stringify(apiVersion)} (the playground takes v1 Service, discovery.k8s.io/v1 EndpointSlice, v1 Pod, apps/v1 Deployment)`,
      );
    }
    switch (kind) {
      case 'Pod':
        return this.applyPod(parsePod(obj));
      case 'Deployment':
        return this.applyDeployment(parseDeployment(obj));
      default:
        return this.applyApiObject(obj);
    }
  }

  private async applyApiObject(input: KubeObj): Promise<Outcome> {
    const kind = input.kind ?? '';
    const { namespace, name } = metaOf(input, kind);
    const obj: KubeObj = { ...input, metadata: { ...input.metadata, namespace, name } };
    const api = this.cluster.api;
    const existing = await api.get(kind, namespace, name);
    let next = obj;
    if (kind === 'Service') {
      const others = (await api.list('Service')).filter(
        (svc) => !(svc.metadata?.namespace === namespace && svc.metadata.name === name),
      ) as Service[];
      next = allocate(obj as Service, existing as Service | undefined, inUseBy(others));
    }
    if (existing === undefined) {
      await api.create(next);
      return 'created';
    }
    if (
      sameContent(userFields(existing), userFields(next)) &&
      sameContent(
        (existing as { status?: unknown }).status ?? {},
        (next as { status?: unknown }).status ?? {},
      )
    ) {
      return 'unchanged';
    }
    await api.update({
      ...next,
      metadata: { ...next.metadata, resourceVersion: existing.metadata?.resourceVersion ?? '' },
    });
    return 'configured';
  }

  private podKey(namespace: string, name: string): string {
    return `${namespace}/${name}`;
  }

  private async startPod(spec: PodSpec): Promise<LivePod> {
    const node: NodeName = spec.node ?? this.lessBusyNode();
    const topologyName = spec.namespace === 'default' ? spec.name : `${spec.namespace}.${spec.name}`;
    const pod = await this.cluster.topology.addPod({ name: topologyName, node });
    let stop: () => Promise<void> = async () => this.cluster.topology.removePod(topologyName);
    const tcp = spec.ports.filter((p) => p.protocol === 'TCP').map((p) => p.port);
    const udp = spec.ports.filter((p) => p.protocol === 'UDP').map((p) => p.port);
    if (tcp.length + udp.length > 0) {
      try {
        const stopServer = await this.cluster.topology.startEchoServer(topologyName, spec.name, {
          http: tcp,
          udp,
        });
        stop = async () => {
          await stopServer();
          await this.cluster.topology.removePod(topologyName);
        };
      } catch (error) {
        await stop();
        throw error;
      }
    }
    const live: LivePod = { spec: { ...spec, node }, node, ipv4: pod.ipv4, ipv6: pod.ipv6, stop };
    this.pods.set(this.podKey(spec.namespace, spec.name), live);
    return live;
  }

  private lessBusyNode(): NodeName {
    const count = (node: NodeName) => [...this.pods.values()].filter((p) => p.node === node).length;
    return count('node2') < count('node1') ? 'node2' : 'node1';
  }

  private async stopPod(key: string): Promise<void> {
    const pod = this.pods.get(key);
    if (!pod) return;
    this.pods.delete(key);
    await pod.stop();
  }

  private async applyPod(spec: PodSpec): Promise<Outcome> {
    const key = this.podKey(spec.namespace, spec.name);
    const running = this.pods.get(key);
    if (!running) {
      await this.startPod(spec);
      return 'created';
    }
    if (running.spec.owner !== undefined && spec.owner === undefined) {
      throw new ManifestError(
        `Pod ${spec.name} belongs to deployment ${running.spec.owner}: change the Deployment instead`,
      );
    }
    const node = spec.node ?? running.node;
    if (node !== running.node || !sameContent(spec.ports, running.spec.ports)) {
      throw new ManifestError(
        `The Pod ${JSON.stringify(spec.name)} is invalid: spec: Forbidden: pod updates may not change fields other than labels and annotations (nodeName, ports): delete the pod and apply it again`,
      );
    }
    const next: PodSpec = { ...spec, node };
    if (sameContent(next, running.spec)) return 'unchanged';
    this.pods.set(key, { ...running, spec: next });
    return 'configured';
  }

  private async applyDeployment(spec: DeploymentSpec): Promise<Outcome> {
    const key = this.podKey(spec.namespace, spec.name);
    const previous = this.deployments.get(key);
    for (const pod of deploymentPods(spec)) {
      const other = this.pods.get(this.podKey(pod.namespace, pod.name));
      if (other && other.spec.owner !== spec.name) {
        throw new ManifestError(
          `Deployment ${spec.name}: pod ${pod.name} already exists and is not the deployment's`,
        );
      }
    }
    this.deployments.set(key, spec);
    await this.reconcileDeployment(spec);
    if (!previous) return 'created';
    return sameContent(previous, spec) ? 'unchanged' : 'configured';
  }

  /** Starts missing pods, stops extra ones, and replaces pods whose template changed beyond labels. */
  private async reconcileDeployment(spec: DeploymentSpec): Promise<void> {
    const wanted = deploymentPods(spec);
    const wantedKeys = new Set(wanted.map((pod) => this.podKey(pod.namespace, pod.name)));
    for (const [key, pod] of [...this.pods]) {
      if (pod.spec.owner === spec.name && pod.spec.namespace === spec.namespace && !wantedKeys.has(key))
        await this.stopPod(key);
    }
    for (const pod of wanted) {
      const key = this.podKey(pod.namespace, pod.name);
      const running = this.pods.get(key);
      if (running && (running.node !== pod.node || !sameContent(running.spec.ports, pod.ports)))
        await this.stopPod(key);
      const current = this.pods.get(key);
      if (!current) await this.startPod(pod);
      else this.pods.set(key, { ...current, spec: pod });
    }
  }

  /** The EndpointSlice controller: writes the slices every selector-bearing Service should have. */
  private async reconcileSlices(): Promise<void> {
    const api = this.cluster.api;
    const services = (await api.list('Service')) as Service[];
    const slices = (await api.list('EndpointSlice')) as EndpointSlice[];
    const pods = [...this.pods.values()];
    const wanted = new Map<string, EndpointSlice>();
    for (const service of services) {
      for (const slice of desiredSlices(service, pods, ZONES)) {
        wanted.set(`${slice.metadata?.namespace ?? ''}/${slice.metadata?.name ?? ''}`, slice);
      }
    }
    for (const slice of slices) {
      const key = `${slice.metadata?.namespace ?? ''}/${slice.metadata?.name ?? ''}`;
      if (!isManaged(slice)) continue;
      const want = wanted.get(key);
      if (!want)
        await api.delete('EndpointSlice', slice.metadata?.namespace ?? '', slice.metadata?.name ?? '');
      else if (sliceContent(want) !== sliceContent(slice)) {
        await api.update({
          ...want,
          metadata: { ...want.metadata, resourceVersion: slice.metadata?.resourceVersion ?? '' },
        });
      }
      wanted.delete(key);
    }
    for (const slice of wanted.values()) await api.create(slice);
  }

  private async deleteFile(file: string, stdin: string | undefined): Promise<void> {
    const { docs, where } = readDocuments(file, stdin);
    const refs = objectsOf(docs, where).map((obj): ObjectRef => {
      const kind = obj.kind ?? '';
      if (!['Service', 'EndpointSlice', 'Pod', 'Deployment'].includes(kind)) {
        throw new ManifestError(
          `no matches for kind ${JSON.stringify(kind)} (the playground deletes Service, EndpointSlice, Pod, Deployment)`,
        );
      }
      const { namespace, name } = metaOf(obj, kind);
      return { kind: kind as Kind, namespace, name };
    });
    await this.deleteRefs(refs);
  }

  private async deleteRefs(refs: readonly ObjectRef[]): Promise<void> {
    let failed = false;
    for (const ref of refs) {
      try {
        await this.deleteOne(ref);
        this.print(`${resourceName(ref.kind)} ${JSON.stringify(ref.name)} deleted`);
      } catch (error) {
        this.print(
          `${error instanceof NotFound ? 'Error from server (NotFound)' : 'error'}: ${errorText(error)}`,
        );
        failed = true;
      }
    }
    if (failed) throw new ReportedError();
  }

  private async deleteOne(ref: ObjectRef): Promise<void> {
    const key = this.podKey(ref.namespace, ref.name);
    switch (ref.kind) {
      case 'Pod': {
        const pod = this.pods.get(key);
        if (!pod) throw new NotFound(ref);
        await this.stopPod(key);
        // Its Deployment replaces it, as a ReplicaSet would (with a new address).
        const owner =
          pod.spec.owner !== undefined
            ? this.deployments.get(this.podKey(ref.namespace, pod.spec.owner))
            : undefined;
        if (owner) await this.reconcileDeployment(owner);
        return;
      }
      case 'Deployment': {
        const deployment = this.deployments.get(key);
        if (!deployment) throw new NotFound(ref);
        this.deployments.delete(key);
        for (const [podKey, pod] of [...this.pods]) {
          if (pod.spec.owner === deployment.name && pod.spec.namespace === deployment.namespace)
            await this.stopPod(podKey);
        }
        return;
      }
      case 'Node':
        throw new ManifestError('the playground keeps its two nodes');
      case 'Service':
      case 'EndpointSlice':
        try {
          await this.cluster.api.delete(ref.kind, ref.namespace, ref.name);
        } catch (error) {
          if (error instanceof FakeApiClientError && error.statusCode === 404) throw new NotFound(ref);
          throw error;
        }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Reading: get, describe.

  private async objectsOfKind(kind: Kind, namespace: string): Promise<unknown[]> {
    const inNamespace = (ns: string) => namespace === '' || ns === namespace;
    switch (kind) {
      case 'Pod':
        return [...this.pods.values()]
          .filter((p) => inNamespace(p.spec.namespace))
          .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
          .map((p) => podObject(p));
      case 'Deployment':
        return [...this.deployments.values()]
          .filter((d) => inNamespace(d.namespace))
          .map((d) => deploymentObject(d));
      case 'Node':
      case 'Service':
      case 'EndpointSlice': {
        // List items come without kind and apiVersion, as from a real API server: -o yaml adds them.
        const apiVersion = kind === 'EndpointSlice' ? 'discovery.k8s.io/v1' : 'v1';
        return (await this.cluster.api.list(kind, kind === 'Node' ? '' : namespace))
          .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
          .map((item) => ({ apiVersion, kind, ...item }));
      }
    }
  }

  private async get(
    kind: Kind | 'all',
    namespace: string,
    output: OutputFormat,
    name?: string,
  ): Promise<void> {
    const kinds: Kind[] = kind === 'all' ? ['Pod', 'Service', 'Deployment', 'EndpointSlice'] : [kind];
    const sections: string[] = [];
    for (const k of kinds) {
      let items = await this.objectsOfKind(k, namespace);
      if (name !== undefined) {
        items = items.filter((item) => stringField(field(item, 'metadata'), 'name') === name);
        if (items.length === 0) {
          throw new NotFound({ kind: k, name, namespace });
        }
      }
      if (output === 'yaml' || output === 'json') {
        const doc =
          items.length === 1 && name !== undefined ? items[0] : { apiVersion: 'v1', kind: 'List', items };
        sections.push(output === 'json' ? JSON.stringify(doc, null, 2) : stringify(doc).trimEnd());
        continue;
      }
      if (items.length === 0) {
        if (kind !== 'all') sections.push(`No resources found in ${namespace || 'any'} namespace.`);
        continue;
      }
      const rows = tableOf(k, items, output === 'wide', namespace === '');
      const prefix = kind === 'all' ? `${resourceName(k)}/` : '';
      sections.push(
        table(
          rows.map((row, i) =>
            i === 0 || prefix === '' ? row : [`${prefix}${row[0] ?? ''}`, ...row.slice(1)],
          ),
        ),
      );
    }
    this.print(sections.join('\n\n'));
  }

  private async describe(ref: ObjectRef): Promise<void> {
    const [item] = (await this.objectsOfKind(ref.kind, ref.namespace)).filter(
      (obj) => stringField(field(obj, 'metadata'), 'name') === ref.name,
    );
    if (item === undefined) throw new NotFound(ref);
    if (ref.kind !== 'Service') {
      this.print(
        `Name:       ${ref.name}`,
        ...(ref.kind === 'Node' ? [] : [`Namespace:  ${ref.namespace}`]),
        stringify(item).trimEnd(),
      );
      return;
    }
    const slices = ((await this.cluster.api.list('EndpointSlice', ref.namespace)) as EndpointSlice[]).filter(
      (slice) => slice.metadata?.labels?.[SERVICE_NAME_LABEL] === ref.name,
    );
    const lines = describeService(item as Service, slices, await this.debug.get('/debug/proxy/state'));
    this.print(...lines);
  }

  // ------------------------------------------------------------------------------------------
  // Traffic: explain, curl.

  /** The namespace and address a `--from` names: a pod, node1, node2 or external. */
  private source(from: string): {
    ns: Netns;
    ip: string;
    arrival: 'pod' | 'node' | 'external' | undefined;
    label: string;
  } {
    const t = this.cluster.topology;
    switch (from) {
      case 'node1':
        return { ns: t.node1.ns, ip: NODE_IPS.node1, arrival: 'node', label: `node1 (${NODE_IPS.node1})` };
      case 'node2':
        return {
          ns: t.node2.ns,
          ip: NODE_IPS.node2,
          arrival: 'external',
          label: `node2 (${NODE_IPS.node2})`,
        };
      case 'external':
        return {
          ns: t.external.ns,
          ip: EXTERNAL_IP,
          arrival: 'external',
          label: `external (${EXTERNAL_IP})`,
        };
    }
    const key = from.includes('/')
      ? from.replace(/^pods?\//, '').replace(/^(?!.*\/)/, 'default/')
      : `default/${from}`;
    const pod = this.pods.get(key.split('/').length === 2 ? key : `default/${key}`);
    if (!pod) {
      throw new CommandError(
        `--from ${JSON.stringify(from)}: no such pod (pods: ${[...this.pods.values()].map((p) => p.spec.name).join(', ')}; or node1, node2, external)`,
      );
    }
    const topologyName =
      pod.spec.namespace === 'default' ? pod.spec.name : `${pod.spec.namespace}.${pod.spec.name}`;
    return {
      ns: t.pod(topologyName).ns,
      ip: pod.ipv4,
      // A pod on node2 reaches node1 over the LAN: let explain infer how it arrives.
      arrival: pod.node === 'node1' ? 'pod' : undefined,
      label: `${pod.spec.name} (${pod.ipv4})`,
    };
  }

  private async explain(command: Extract<Command, { verb: 'explain' }>): Promise<void> {
    const source = this.source(command.from);
    const params = new URLSearchParams({
      src: source.ip,
      dst: command.dst,
      dport: String(command.dport),
      proto: command.proto,
    });
    if (source.arrival) params.set('from', source.arrival);
    const body = await this.debug.get(`/debug/proxy/explain?${params.toString()}`);
    const explanation = body as Partial<Explanation>;
    if (explanation.apiVersion !== EXPLAIN_API_VERSION || explanation.kind !== 'Explanation') {
      throw new Error(`/debug/proxy/explain did not answer with an ${EXPLAIN_API_VERSION} Explanation`);
    }
    this.out(
      command.output === 'json'
        ? `${JSON.stringify(body, null, 2)}\n`
        : formatExplanation(body as Explanation),
    );
  }

  /** The pod (or host) an echo server answer names, by the address it answered from. */
  private responder(name: string): { label: string; node: string } {
    const pod = [...this.pods.values()].find((p) => p.spec.name === name);
    return pod ? { label: name, node: pod.node } : { label: name, node: '?' };
  }

  private async curl(from: string, dst: string, dport: number, count: number): Promise<void> {
    const source = this.source(from);
    const host = dst.includes(':') ? `[${dst}]` : dst;
    const url = `http://${host}:${dport}/`;
    const answers = new Map<string, { count: number; saw: Set<string> }>();
    const failures = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      let text: string;
      try {
        // A new process per request: a new source port, so a new connection the rules balance.
        text = (await source.ns.exec('curl', ['-sS', '--max-time', '1', url], { timeoutMs: 5000 })).stdout;
      } catch (error) {
        const reason = curlFailure(error);
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
        continue;
      }
      const match = /^hello from (\S+) \(I see you as (\S+)\)/.exec(text);
      const who = match?.[1] ?? `an unknown server (${text.trim().slice(0, 60)})`;
      const entry = answers.get(who) ?? { count: 0, saw: new Set<string>() };
      entry.count++;
      if (match?.[2]) entry.saw.add(match[2]);
      answers.set(who, entry);
    }
    if (count === 1) {
      const [answer] = [...answers];
      if (answer) {
        const [who, entry] = answer;
        const { node } = this.responder(who);
        this.print(`${who} answered (on ${node}); it saw the client as ${[...entry.saw].join(', ')}`);
      } else for (const reason of failures.keys()) this.print(`no answer: ${reason}`);
      return;
    }
    const rows: string[][] = [['POD', 'NODE', 'ANSWERS', 'SAW THE CLIENT AS']];
    for (const [who, entry] of [...answers].sort(([a], [b]) => a.localeCompare(b))) {
      rows.push([who, this.responder(who).node, `${entry.count}/${count}`, [...entry.saw].join(', ')]);
    }
    const lines = [`${count} requests from ${source.label} to ${dst}:${dport}:`];
    if (answers.size > 0)
      lines.push(
        ...table(rows)
          .split('\n')
          .map((l) => `  ${l}`),
      );
    for (const [reason, n] of failures) lines.push(`  no answer: ${n}/${count} ${reason}`);
    lines.push(`responders: ${answers.size} ${answers.size === 1 ? 'pod' : 'pods'}`);
    this.print(...lines);
  }
}

class NotFound extends Error {
  override readonly name = 'NotFound';
  constructor(ref: ObjectRef) {
    super(`${plural(ref.kind)} ${JSON.stringify(ref.name)} not found`);
  }
}

/** A failure already printed (per object); the command only reports that it failed. */
class ReportedError extends Error {
  override readonly name = 'ReportedError';
}

function errorText(error: unknown): string {
  if (error instanceof ReportedError) return 'some objects failed (above)';
  return error instanceof Error ? error.message : String(error);
}

/** What a failed curl means for the learner: refused (REJECT), timed out (DROP), … */
function curlFailure(error: unknown): string {
  const code = error instanceof ExecError ? error.code : null;
  switch (code) {
    case 7:
      return 'connection refused (a REJECT, or nothing listening)';
    case 28:
      return 'timed out after 1 s (dropped)';
    case 56:
      return 'connection reset';
    default:
      return error instanceof ExecError ? error.stderr.trim() || error.message : String(error);
  }
}
