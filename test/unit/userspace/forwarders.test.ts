// The userspace data path on loopback, with real sockets (no root needed): TCP forwarding with
// half-close, retry on refusal with passive ejection, reject, UDP flows with idle timeout and
// re-pick, affinity, drain of removed endpoints, and the metrics users read.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { Forwarders } from '../../../src/dataplane/userspace/forwarders.ts';
import type { BalancerSettings, Route, Router } from '../../../src/dataplane/userspace/route.ts';
import { createRegistry, type Registry } from '../../../src/metrics/registry.ts';
import type { Endpoint } from '../../../src/model/types.ts';
import { endpointAt } from './endpoint.ts';

const ep = endpointAt;

const RR: BalancerSettings = { policy: 'round-robin', affinitySeconds: 0 };
const toClose: (() => void)[] = [];
after(() => {
  for (const close of toClose) close();
});

/** A TCP backend that answers each connection, once the client has finished sending, with `name:<bytes received>`. */
async function tcpBackend(ip: string): Promise<{ endpoint: Endpoint; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('end', () => socket.end(`${ip}:${received}`));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  toClose.push(() => server.close());
  return { endpoint: ep(ip, address.port), server };
}

/** A port on `ip` where nobody listens (bound, then closed). */
async function refusingEndpoint(ip: string): Promise<Endpoint> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return ep(ip, address.port);
}

function routeTo(endpoints: readonly Endpoint[]): Router {
  const route: Route = endpoints.length > 0 ? { kind: 'endpoints', endpoints } : { kind: 'reject' };
  return () => route;
}

/** Sends `payload`, half-closes, and returns what came back before the close. */
function request(port: number, payload = 'hello'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let reply = '';
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString()));
    socket.on('end', () => {
      socket.end();
      resolve(reply);
    });
    socket.on('error', reject);
    socket.end(payload);
  });
}

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const json = await registry.getMetricsAsJSON();
  const found = json.find((m) => m.name === name);
  let sum = 0;
  for (const value of found?.values ?? []) {
    if (Object.entries(labels).every(([k, v]) => String(value.labels[k]) === v)) sum += value.value;
  }
  return sum;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function spec(key: string, protocol: 'TCP' | 'UDP', endpoints: readonly Endpoint[], balancer = RR) {
  return {
    key,
    protocol,
    host: '127.0.0.1',
    port: 0,
    router: routeTo(endpoints),
    balancer,
    reachable: new Set(endpoints.map((e) => e.endpoint)),
    labels: { servicePort: `ns/${key}:p`, frontend: 'cluster IP' },
  } as const;
}

describe('userspace data path (loopback)', () => {
  it('TCP: balances round robin, passes half-close both ways, counts bytes', async () => {
    const registry = createRegistry();
    const pool = new Forwarders(registry);
    toClose.push(() => pool.closeAll());
    const a = await tcpBackend('127.0.0.2');
    const b = await tcpBackend('127.0.0.3');
    const { port } = await pool.open(spec('web', 'TCP', [a.endpoint, b.endpoint]));
    const replies = await Promise.all(Array.from({ length: 6 }, () => request(port, 'x'.repeat(100_000))));
    assert.deepEqual(replies.map((r) => r.split(':')[0]).sort(), [
      '127.0.0.2',
      '127.0.0.2',
      '127.0.0.2',
      '127.0.0.3',
      '127.0.0.3',
      '127.0.0.3',
    ]);
    // The backend saw the client's whole payload and its FIN, and the client its answer.
    for (const reply of replies) assert.equal(reply.split(':')[1], '100000');
    await until('connections closed', () => pool.connections() === 0);
    assert.equal(
      await metric(registry, 'kubeproxy_userspace_bytes_total', { direction: 'to_endpoint' }),
      600_000,
    );
    assert.equal(
      await metric(registry, 'kubeproxy_userspace_connections_total', { endpoint: a.endpoint.endpoint }),
      3,
    );
    assert.equal(await metric(registry, 'kubeproxy_userspace_active_connections', {}), 0);
  });

  it('TCP: an endpoint that refuses costs no client connection; it is ejected and counted', async () => {
    const registry = createRegistry();
    const pool = new Forwarders(registry);
    toClose.push(() => pool.closeAll());
    const good = await tcpBackend('127.0.0.4');
    const dead = await refusingEndpoint('127.0.0.5');
    const { port } = await pool.open(spec('retry', 'TCP', [dead, good.endpoint]));
    const replies = await Promise.all(Array.from({ length: 20 }, () => request(port)));
    assert.ok(replies.every((r) => r.startsWith('127.0.0.4:')));
    const failures = await metric(registry, 'kubeproxy_userspace_connect_failures_total', {
      endpoint: dead.endpoint,
      reason: 'refused',
    });
    // Ejected after its first refusal: later connections skip it (concurrent ones may each hit it once).
    assert.ok(failures >= 1 && failures < 20, `refusals: ${failures}`);
    assert.ok(
      (await metric(registry, 'kubeproxy_userspace_endpoint_ejections_total', { endpoint: dead.endpoint })) >=
        1,
    );
  });

  it('TCP: no endpoints resets the connection; a listener that closes stops accepting', async () => {
    const registry = createRegistry();
    const pool = new Forwarders(registry);
    toClose.push(() => pool.closeAll());
    const { port } = await pool.open(spec('empty', 'TCP', []));
    await assert.rejects(request(port), /ECONNRESET|socket hang up/);
    assert.equal(await metric(registry, 'kubeproxy_userspace_refused_total', { reason: 'no_endpoints' }), 1);
    await pool.close('empty');
    await assert.rejects(request(port), /ECONNREFUSED/);
  });

  it('TCP: a removed endpoint keeps its connection by default; with a drain deadline it is closed', async () => {
    for (const drainMs of [undefined, 200]) {
      const pool = new Forwarders(createRegistry(), { drainMs });
      toClose.push(() => pool.closeAll());
      const a = await tcpBackend('127.0.0.6');
      const b = await tcpBackend('127.0.0.7');
      const { port } = await pool.open(spec(`drain${drainMs}`, 'TCP', [a.endpoint]));
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      await until('connection proxied', () => pool.connections() === 1);
      pool.update(`drain${drainMs}`, routeTo([b.endpoint]), RR, new Set([b.endpoint.endpoint]));
      if (drainMs === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 400));
        assert.equal(pool.connections(), 1, 'still open after the update');
        socket.destroy();
      } else {
        await closed;
      }
      await until('connection gone', () => pool.connections() === 0);
    }
  });

  it('UDP: one flow per client, replies come back, idle flows end, removed endpoints are re-picked', async () => {
    const registry = createRegistry();
    const pool = new Forwarders(registry, { udpIdleTimeoutMs: 300 });
    toClose.push(() => pool.closeAll());
    const backends: Endpoint[] = [];
    for (const ip of ['127.0.0.8', '127.0.0.9']) {
      const server = dgram.createSocket('udp4');
      server.on('message', (msg, from) => server.send(`${ip}:${msg.toString()}`, from.port, from.address));
      await new Promise<void>((resolve) => server.bind(0, ip, resolve));
      toClose.push(() => server.close());
      backends.push(ep(ip, server.address().port));
    }
    const [first, second] = backends;
    assert.ok(first && second);
    const { port } = await pool.open(spec('dns', 'UDP', backends));
    const client = dgram.createSocket('udp4');
    toClose.push(() => client.close());
    const replies: string[] = [];
    client.on('message', (msg) => replies.push(msg.toString()));
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    const send = (text: string) => client.send(text, port, '127.0.0.1');

    send('a');
    send('b');
    await until('two replies', () => replies.length === 2);
    const pinned = replies[0]?.split(':')[0];
    assert.equal(replies[1]?.split(':')[0], pinned, 'same flow, same endpoint');
    assert.equal(pool.connections(), 1);
    await until('idle flow ended', () => pool.connections() === 0);

    send('c');
    await until('a new flow', () => replies.length === 3);
    const now = replies[2]?.split(':')[0];
    const other = now === first.ip ? second : first;
    pool.update('dns', routeTo([other]), RR, new Set([other.endpoint]));
    send('d');
    await until('reply after the update', () => replies.length === 4);
    assert.equal(replies[3], `${other.ip}:d`, 'the flow moved to the live endpoint');
    assert.equal(await metric(registry, 'kubeproxy_userspace_connections_total', { protocol: 'UDP' }), 3);
  });

  it('affinity: one client stays on one endpoint', async () => {
    const pool = new Forwarders(createRegistry());
    toClose.push(() => pool.closeAll());
    const a = await tcpBackend('127.0.0.10');
    const b = await tcpBackend('127.0.0.11');
    const { port } = await pool.open(
      spec('sticky', 'TCP', [a.endpoint, b.endpoint], { policy: 'round-robin', affinitySeconds: 60 }),
    );
    const replies = [];
    for (let i = 0; i < 8; i++) replies.push((await request(port)).split(':')[0]);
    assert.equal(new Set(replies).size, 1, `all to one endpoint: ${replies.join(' ')}`);
  });

  it('TCP: a client that stops reading stops the endpoint (back-pressure), nothing piles up in the proxy', async () => {
    const pool = new Forwarders(createRegistry());
    toClose.push(() => pool.closeAll());
    const TOTAL = 256 * 1024 * 1024;
    let sender: net.Socket | undefined;
    const server = net.createServer((socket) => {
      sender = socket;
      socket.on('error', () => undefined);
      const chunk = Buffer.alloc(64 * 1024, 1);
      let sent = 0;
      const pump = () => {
        while (sent < TOTAL) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.12', resolve));
    toClose.push(() => server.close());
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    const { port } = await pool.open(spec('slow', 'TCP', [ep('127.0.0.12', address.port)]));
    const client = net.connect({ host: '127.0.0.1', port });
    client.on('error', () => undefined);
    client.pause(); // reads nothing
    // Wait until the endpoint's writes stall: its byte count stays put for ten polls in a row.
    let last = -1;
    let still = 0;
    await until(
      'the endpoint to stall',
      () => {
        const written = sender?.bytesWritten ?? 0;
        still = written === last && written > 0 ? still + 1 : 0;
        last = written;
        return still >= 10;
      },
      20_000,
    );
    assert.ok(
      last < 64 * 1024 * 1024,
      `the endpoint got only socket buffers' worth out (${last} bytes of ${TOTAL})`,
    );
    client.destroy();
    await until('connection gone', () => pool.connections() === 0);
  });

  it('metrics: the series of an endpoint that left go once it is idle; a closed listener takes its own', async () => {
    const registry = createRegistry();
    const pool = new Forwarders(registry, {}, 0);
    toClose.push(() => pool.closeAll());
    const a = await tcpBackend('127.0.0.2');
    const b = await tcpBackend('127.0.0.3');
    const { port } = await pool.open(spec('churn', 'TCP', [a.endpoint, b.endpoint]));
    await Promise.all(Array.from({ length: 4 }, () => request(port)));
    await until('connections closed', () => pool.connections() === 0);
    const series = async (endpoint: string) =>
      (await registry.getMetricsAsJSON())
        .filter((m) => m.name.startsWith('kubeproxy_userspace_'))
        .flatMap((m) => m.values)
        .filter((v) => v.labels['endpoint'] === endpoint).length;
    assert.ok((await series(b.endpoint.endpoint)) > 0, 'b served connections and has series');
    const only = spec('churn', 'TCP', [a.endpoint]);
    pool.update('churn', only.router, only.balancer, only.reachable);
    await until('b series removed', async () => (await series(b.endpoint.endpoint)) === 0);
    assert.equal(
      await metric(registry, 'kubeproxy_userspace_connections_total', { endpoint: a.endpoint.endpoint }),
      2,
      'the endpoint that stays keeps its counts',
    );
    await pool.close('churn');
    await until('a series removed', async () => (await series(a.endpoint.endpoint)) === 0);
  });
});
