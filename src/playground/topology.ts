// A small cluster made of network namespaces, for the end-to-end tests, benchmarks and the demo.
//
//                         lan (bridge br0, 192.0.2.0/24, fd00:2::/64)
//            ┌──────────────────┬──────────────────────┬─────────────────┐
//     node1 192.0.2.11     node2 192.0.2.12      external 192.0.2.100
//     (kube-proxy runs     pods 10.244.2.0/24     (a client outside
//      here; API server)                            the cluster CIDR)
//     pods 10.244.1.0/24
//
// Pods are namespaces linked to their node by a veth pair, with /32 (/128) routes on the node
// and a default route via the node's gateway address, as common CNI plugins do. Nodes route each
// other's pod ranges over the LAN. Every namespace is named with a unique prefix and removed by
// destroy() (and on process exit by netns.ts).
import { createInterface } from 'node:readline';
import {
  cleanupNetns,
  createNetns,
  deleteNetns,
  linkNetns,
  stopProcess,
  TIMEOUT_SCALE,
  uniquePrefix,
  type Netns,
} from './netns.ts';
import type { ChildProcess } from 'node:child_process';
import { siblingScript } from './paths.ts';

export const CLUSTER_CIDR_V4 = '10.244.0.0/16';
export const CLUSTER_CIDR_V6 = 'fd00:10:244::/48';
export const SERVICE_CIDR_V4 = '10.96.0.0/16';
export const SERVICE_CIDR_V6 = 'fd00:10:96::/112';
/** Where tests put LoadBalancer ingress IPs (TEST-NET-3) and externalIPs (TEST-NET-2). */
export const LB_RANGE_V4 = '203.0.113.0/24';
export const EXTERNAL_IP_RANGE_V4 = '198.51.100.0/24';

const ECHO_SERVER = siblingScript('echo-server');
const PROBE = siblingScript('probe');

export type NodeName = 'node1' | 'node2';

export interface PodSpec {
  readonly name: string;
  readonly node: NodeName;
}

export interface Pod {
  readonly name: string;
  readonly node: NodeName;
  readonly ns: Netns;
  readonly ipv4: string;
  readonly ipv6: string;
}

export interface Host {
  readonly ns: Netns;
  readonly ipv4: string;
  readonly ipv6: string;
}

export interface ProbeOutcome {
  readonly ok: boolean;
  readonly name?: string;
  readonly peer?: string;
  readonly error?: string;
  readonly ms: number;
}

export interface ProbeOptions {
  readonly proto?: 'tcp' | 'udp';
  readonly host: string;
  readonly port: number;
  readonly count?: number;
  readonly timeoutMs?: number;
}

const NODE_INDEX: Record<NodeName, number> = { node1: 1, node2: 2 };

async function disableDad(ns: Netns): Promise<void> {
  // Duplicate address detection would delay IPv6 addresses by seconds on every new link.
  await ns.sysctl('net.ipv6.conf.all.accept_dad', '0');
  await ns.sysctl('net.ipv6.conf.default.accept_dad', '0');
  await ns.sysctl('net.ipv4.conf.all.rp_filter', '0');
  await ns.sysctl('net.ipv4.conf.default.rp_filter', '0');
}

export class Topology {
  readonly prefix: string;
  readonly lan: Netns;
  readonly node1: Host;
  readonly node2: Host;
  readonly external: Host;
  readonly pods = new Map<string, Pod>();
  private readonly backends: ChildProcess[] = [];
  private readonly podCounters: Record<NodeName, number> = { node1: 0, node2: 0 };

  constructor(prefix: string, lan: Netns, node1: Host, node2: Host, external: Host) {
    this.prefix = prefix;
    this.lan = lan;
    this.node1 = node1;
    this.node2 = node2;
    this.external = external;
  }

  node(name: NodeName): Host {
    return name === 'node1' ? this.node1 : this.node2;
  }

  pod(name: string): Pod {
    const pod = this.pods.get(name);
    if (!pod) throw new Error(`no pod ${name} in the topology`);
    return pod;
  }

  /** Starts an echo server in every pod (TCP and UDP on the given ports) and waits until ready. */
  async startBackends(ports: { tcp?: number[]; udp?: number[]; http?: number[] }): Promise<void> {
    await Promise.all(
      [...this.pods.values()].map(async (pod) => {
        const child = pod.ns.spawn(process.execPath, [
          ECHO_SERVER,
          '--name',
          pod.name,
          '--tcp',
          (ports.tcp ?? []).join(','),
          '--udp',
          (ports.udp ?? []).join(','),
          '--http',
          (ports.http ?? []).join(','),
        ]);
        this.backends.push(child);
        await waitForLine(child, 'ready', `echo server in ${pod.name}`);
      }),
    );
  }

  /**
   * Starts one more echo server in a pod (answering as `name`), stopped with the topology or by
   * the returned function.
   */
  async startEchoServer(
    pod: string,
    name: string,
    ports: { tcp?: number[]; udp?: number[]; hold?: number[]; http?: number[] },
  ): Promise<() => Promise<void>> {
    const child = this.pod(pod).ns.spawn(process.execPath, [
      ECHO_SERVER,
      '--name',
      name,
      '--tcp',
      (ports.tcp ?? []).join(','),
      '--udp',
      (ports.udp ?? []).join(','),
      '--hold',
      (ports.hold ?? []).join(','),
      '--http',
      (ports.http ?? []).join(','),
    ]);
    this.backends.push(child);
    await waitForLine(child, 'ready', `echo server ${name} in ${pod}`);
    return () => stopProcess(child, 'SIGKILL');
  }

  /** Runs the probe client inside `from` and returns one outcome per attempt. */
  async probe(from: Netns, options: ProbeOptions): Promise<ProbeOutcome[]> {
    const result = await from.exec(
      process.execPath,
      [
        PROBE,
        '--proto',
        options.proto ?? 'tcp',
        '--host',
        options.host,
        '--port',
        String(options.port),
        '--count',
        String(options.count ?? 1),
        '--timeout',
        String(options.timeoutMs ?? 1000),
      ],
      { timeoutMs: 60_000 },
    );
    return result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ProbeOutcome);
  }

  /**
   * Adds a pod: a namespace linked to its node by a veth pair, with the next address of the
   * node's pod range (10.244.<node>.<10+n>), a /32 route on the node and a default route back.
   */
  async addPod(spec: PodSpec): Promise<Pod> {
    if (this.pods.has(spec.name)) throw new Error(`pod ${spec.name} already exists in the topology`);
    const index = ++this.podCounters[spec.node];
    if (index > 240) throw new Error(`node ${spec.node} has no pod addresses left`);
    const nodeIndex = NODE_INDEX[spec.node];
    const node = this.node(spec.node);
    const ns = await createNetns(`${this.prefix}p-${spec.name}`);
    try {
      await disableDad(ns);
      const podIf = `vp${String(index)}`;
      await linkNetns(node.ns, podIf, ns, 'eth0');
      const ipv4 = `10.244.${String(nodeIndex)}.${String(10 + index)}`;
      const ipv6 = `fd00:10:244:${String(nodeIndex)}::${String(10 + index)}`;
      const gw4 = `10.244.${String(nodeIndex)}.1`;
      const gw6 = `fd00:10:244:${String(nodeIndex)}::1`;
      await node.ns.ip('addr', 'add', `${gw4}/32`, 'dev', podIf);
      await node.ns.ip('-6', 'addr', 'add', `${gw6}/128`, 'dev', podIf, 'nodad');
      await node.ns.ip('route', 'add', `${ipv4}/32`, 'dev', podIf);
      await node.ns.ip('-6', 'route', 'add', `${ipv6}/128`, 'dev', podIf);
      await ns.ip('addr', 'add', `${ipv4}/32`, 'dev', 'eth0');
      await ns.ip('-6', 'addr', 'add', `${ipv6}/128`, 'dev', 'eth0', 'nodad');
      await ns.ip('route', 'add', gw4, 'dev', 'eth0');
      await ns.ip('route', 'add', 'default', 'via', gw4);
      await ns.ip('-6', 'route', 'add', gw6, 'dev', 'eth0');
      await ns.ip('-6', 'route', 'add', 'default', 'via', gw6);
      const pod: Pod = { name: spec.name, node: spec.node, ns, ipv4, ipv6 };
      this.pods.set(spec.name, pod);
      return pod;
    } catch (error) {
      await deleteNetns(ns);
      throw error;
    }
  }

  /** Removes a pod's namespace (its veth pair, and the node's route through it, go with it). */
  async removePod(name: string): Promise<void> {
    const pod = this.pods.get(name);
    if (!pod) return;
    this.pods.delete(name);
    await deleteNetns(pod.ns);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.backends.map((child) => stopProcess(child, 'SIGKILL')));
    const all = [
      this.external.ns,
      this.node2.ns,
      this.node1.ns,
      this.lan,
      ...[...this.pods.values()].map((p) => p.ns),
    ];
    await Promise.all(all.map((ns) => deleteNetns(ns)));
  }
}

export function waitForLine(
  child: ChildProcess,
  text: string,
  what: string,
  timeoutMs = 20_000,
): Promise<string> {
  timeoutMs *= TIMEOUT_SCALE;
  return new Promise((resolve, reject) => {
    if (!child.stdout) {
      reject(new Error(`${what}: no stdout`));
      return;
    }
    const lines = createInterface({ input: child.stdout });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      lines.close();
      reject(
        new Error(
          `${what}: no "${text}" line within ${String(timeoutMs)} ms; stderr: ${stderr.slice(-2000)}`,
        ),
      );
    }, timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(
        new Error(`${what} exited with ${String(code)} before "${text}"; stderr: ${stderr.slice(-2000)}`),
      );
    };
    child.once('exit', onExit);
    lines.on('line', (line) => {
      if (line.includes(text)) {
        clearTimeout(timer);
        child.off('exit', onExit);
        lines.close();
        resolve(line);
      }
    });
  });
}

async function addHostOnLan(lan: Netns, ns: Netns, lanIf: string, ipv4: string, ipv6: string): Promise<void> {
  await linkNetns(lan, lanIf, ns, 'eth0');
  await lan.ip('link', 'set', lanIf, 'master', 'br0');
  await ns.ip('addr', 'add', `${ipv4}/24`, 'dev', 'eth0');
  await ns.ip('-6', 'addr', 'add', `${ipv6}/64`, 'dev', 'eth0', 'nodad');
}

/** Builds the cluster of namespaces. `pods` lists the pods and the node each runs on. */
export async function buildTopology(pods: readonly PodSpec[], tag = 'kpt'): Promise<Topology> {
  const prefix = uniquePrefix(tag);
  try {
    const lan = await createNetns(`${prefix}lan`);
    await lan.ip('link', 'add', 'br0', 'type', 'bridge');
    await lan.ip('link', 'set', 'br0', 'up');
    const hosts: Record<'node1' | 'node2' | 'external', Host> = {
      node1: { ns: await createNetns(`${prefix}node1`), ipv4: '192.0.2.11', ipv6: 'fd00:2::11' },
      node2: { ns: await createNetns(`${prefix}node2`), ipv4: '192.0.2.12', ipv6: 'fd00:2::12' },
      external: { ns: await createNetns(`${prefix}ext`), ipv4: '192.0.2.100', ipv6: 'fd00:2::100' },
    };
    for (const [name, host] of Object.entries(hosts)) {
      await disableDad(host.ns);
      await addHostOnLan(lan, host.ns, `l-${name}`, host.ipv4, host.ipv6);
    }
    const { node1, node2, external } = hosts;
    // Nodes route each other's pod ranges over the LAN.
    await node1.ns.ip('route', 'add', '10.244.2.0/24', 'via', node2.ipv4);
    await node2.ns.ip('route', 'add', '10.244.1.0/24', 'via', node1.ipv4);
    await node1.ns.ip('-6', 'route', 'add', 'fd00:10:244:2::/64', 'via', node2.ipv6);
    await node2.ns.ip('-6', 'route', 'add', 'fd00:10:244:1::/64', 'via', node1.ipv6);
    // Locally generated traffic to a service IP needs some route before DNAT (kernel-notes.md).
    await node1.ns.ip('route', 'add', SERVICE_CIDR_V4, 'dev', 'eth0');
    await node1.ns.ip('-6', 'route', 'add', SERVICE_CIDR_V6, 'dev', 'eth0');
    // node1 forwards LoadBalancer and external IPs it did not DNAT on to node2, which has no route
    // for them and answers with an ICMP error: so a test sees a timeout only when a rule dropped
    // the packet, never because of how the topology routes.
    await node1.ns.ip('route', 'add', LB_RANGE_V4, 'via', node2.ipv4);
    await node1.ns.ip('route', 'add', EXTERNAL_IP_RANGE_V4, 'via', node2.ipv4);
    // The external client reaches LoadBalancer and external IPs through node1, as a cloud LB would.
    await external.ns.ip('route', 'add', LB_RANGE_V4, 'via', node1.ipv4);
    await external.ns.ip('route', 'add', EXTERNAL_IP_RANGE_V4, 'via', node1.ipv4);
    await external.ns.ip('route', 'add', SERVICE_CIDR_V4, 'via', node1.ipv4);
    await external.ns.ip('-6', 'route', 'add', SERVICE_CIDR_V6, 'via', node1.ipv6);

    const topology = new Topology(prefix, lan, node1, node2, external);
    for (const spec of pods) await topology.addPod(spec);
    return topology;
  } catch (error) {
    await cleanupNetns();
    throw error;
  }
}
