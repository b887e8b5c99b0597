// A tiny network for proving the nftables layout with real packets: a "node" namespace where
// the rules go, pod namespaces hanging off it on veth links with /32 routes (like a simple CNI),
// and an external client on the node's own subnet. Servers and clients are small node scripts
// run inside the namespaces; every server answers `<name> <remote address>` so a test can see
// which endpoint answered and which source address it saw.
import type { ChildProcess } from 'node:child_process';
import { createNetns, linkNetns, pollUntil, type Netns } from './netns.ts';

export const NODE_IP = '192.168.0.10';
export const CLIENT_IP = '192.168.0.20';
/** The node-side address of every pod link (a gateway the pods can ARP for). */
export const POD_GATEWAY = '10.244.0.1';

export interface PodNet {
  readonly name: string;
  readonly ns: Netns;
  readonly ip: string;
}

export interface NftNet {
  readonly node: Netns;
  readonly client: Netns;
  readonly pods: readonly PodNet[];
}

/** Builds node + `podCount` pods (10.244.0.11, .12, ...) + a client (192.168.0.20). */
export async function buildNftNet(prefix: string, podCount: number): Promise<NftNet> {
  const node = await createNetns(`${prefix}node`);
  const client = await createNetns(`${prefix}client`);
  await linkNetns(node, 'vc', client, 'eth0');
  await node.ip('addr', 'add', `${NODE_IP}/24`, 'dev', 'vc');
  await client.ip('addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0');
  await client.ip('route', 'add', 'default', 'via', NODE_IP);
  // Like a real node, ours has a default route (the client plays the upstream router), so
  // traffic to a service IP that is not DNATed is routed and meets our filter rules.
  await node.ip('route', 'add', 'default', 'via', CLIENT_IP);
  const pods: PodNet[] = [];
  for (let i = 1; i <= podCount; i++) {
    const ns = await createNetns(`${prefix}pod${i}`);
    const ip = `10.244.0.${10 + i}`;
    await linkNetns(node, `vp${i}`, ns, 'eth0');
    await node.ip('addr', 'add', `${POD_GATEWAY}/32`, 'dev', `vp${i}`);
    await node.ip('route', 'add', `${ip}/32`, 'dev', `vp${i}`);
    await ns.ip('addr', 'add', `${ip}/32`, 'dev', 'eth0');
    await ns.ip('route', 'add', `${POD_GATEWAY}/32`, 'dev', 'eth0');
    await ns.ip('route', 'add', 'default', 'via', POD_GATEWAY, 'dev', 'eth0');
    pods.push({ name: `pod${i}`, ns, ip });
  }
  return { node, client, pods };
}

const SERVER = `
const net = require('node:net');
const [name, port] = process.argv.slice(1);
net.createServer((socket) => socket.end(name + ' ' + socket.remoteAddress.replace(/^::ffff:/, '') + '\\n'))
  .listen(Number(port), '0.0.0.0', () => console.log('listening'));
`;

/** Starts the answering server in a pod; resolves once it listens. */
export async function startServer(pod: PodNet, port: number): Promise<ChildProcess> {
  const child = pod.ns.spawn(process.execPath, ['-e', SERVER, pod.name, String(port)]);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await pollUntil(`server in ${pod.name}`, () => (out.includes('listening') ? true : undefined), 10_000);
  return child;
}

const CLIENT = `
const net = require('node:net');
const [host, port, count, timeout] = process.argv.slice(1);
const results = [];
function once() {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect({ host, port: Number(port) });
    let data = '';
    const timer = setTimeout(() => { socket.destroy(); resolve({ error: 'TIMEOUT', ms: Date.now() - started }); }, Number(timeout));
    socket.on('data', (chunk) => (data += chunk));
    socket.on('end', () => { clearTimeout(timer); resolve({ reply: data.trim(), ms: Date.now() - started }); });
    socket.on('error', (error) => { clearTimeout(timer); resolve({ error: error.code || error.message, ms: Date.now() - started }); });
  });
}
(async () => {
  for (let i = 0; i < Number(count); i++) results.push(await once());
  console.log(JSON.stringify(results));
})();
`;

export interface ConnectResult {
  readonly reply?: string;
  readonly error?: string;
  readonly ms: number;
}

/** Opens `count` TCP connections one after another (each a new source port) from `from`. */
export async function connectMany(
  from: Netns,
  host: string,
  port: number,
  count: number,
  timeoutMs = 3000,
): Promise<ConnectResult[]> {
  const result = await from.exec(
    process.execPath,
    ['-e', CLIENT, host, String(port), String(count), String(timeoutMs)],
    {
      timeoutMs: count * timeoutMs + 10_000,
    },
  );
  return JSON.parse(result.stdout) as ConnectResult[];
}
