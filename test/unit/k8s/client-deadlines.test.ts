// The API client's connection deadlines (issue 15, goal 3: a silent black hole to the API server).
// Each is shown against a local server that misbehaves the way a dead path looks from the client:
// a SYN never answered, a TLS handshake never answered, a request never answered on a new or a
// pooled connection. The deadlines are shrunk to a few hundred ms; nothing sleeps, every wait is a
// promise with a deadline.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import {
  DEFAULT_DEADLINES,
  KubeClient,
  KubeTimeoutError,
  type ConnectionDeadlines,
  type KubeRequester,
  type KubeTimeoutKind,
} from '../../../src/k8s/client.ts';
import { Reflector, WATCH_IDLE_TIMEOUT_MS } from '../../../src/k8s/reflector.ts';
import { startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { pollUntil } from '../../support/netns.ts';
import { FAST, Recorder, listRequests, service, watchRequests } from './helpers.ts';

const SHORT = 300;
/** Far longer than any deadline under test: a test that waits this long has failed. */
const NEVER = 60_000;

function client(url: string, deadlines: Partial<ConnectionDeadlines>): KubeClient {
  return new KubeClient(
    { server: url, insecureSkipTLSVerify: true, source: 'test' },
    { deadlines: { connectTimeoutMs: NEVER, headersTimeoutMs: NEVER, ...deadlines } },
  );
}

/** Resolves with the KubeTimeoutError the promise rejects with, and how long that took. */
async function timedOut(
  promise: Promise<unknown>,
): Promise<{ error: KubeTimeoutError; ms: number; kind: KubeTimeoutKind }> {
  const t0 = performance.now();
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof KubeTimeoutError, `expected a KubeTimeoutError, got ${String(error)}`);
    return { error, ms: performance.now() - t0, kind: error.kind };
  }
  assert.fail('the request succeeded');
}

/** A TCP server that accepts connections and never writes a byte (nor closes them). */
async function silentServer(): Promise<{ port: number; connections: () => number; close: () => void }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(typeof address === 'object' && address !== null);
  return {
    port: address.port,
    connections: () => accepted,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/**
 * A listening socket whose SYNs go unanswered, as through a black hole: a worker thread listens
 * with the smallest backlog and never runs its event loop, the test fills the accept queue, and
 * Linux then drops every further SYN. All on loopback; `stop` releases it.
 */
async function unansweredListener(): Promise<{ port: number; stop: () => Promise<void> }> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const server = require('node:net').createServer(() => undefined);
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       // Block the loop (no accept) until the test sets the flag.
       while (Atomics.load(workerData, 0) === 0) Atomics.wait(workerData, 0, 0, 50);
       server.close();
     });`,
    { eval: true, workerData: flag },
  );
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (value: number) => resolve(value));
    worker.once('error', reject);
  });
  // Fill the accept queue (backlog 1 holds two); a further SYN is dropped, so a third connect hangs.
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
  }
  return {
    port,
    stop: async () => {
      for (const socket of fillers) socket.destroy();
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      await worker.terminate();
    },
  };
}

describe('connect deadline', () => {
  test('a SYN that is never answered: the request fails at the connect deadline, not after TCP gives up', async () => {
    const listener = await unansweredListener();
    const c = client(`http://127.0.0.1:${String(listener.port)}`, { connectTimeoutMs: SHORT });
    try {
      const { kind, ms, error } = await timedOut(c.getJSON('/api/v1/nodes', { timeoutMs: NEVER }));
      assert.equal(kind, 'connect');
      assert.match(error.message, /GET \/api\/v1\/nodes: no connection to the API server within 300 ms/);
      assert.ok(ms >= SHORT - 50 && ms < 5_000, `${String(ms)} ms`);
      const watch = await timedOut(
        c.watchStream('/api/v1/nodes?watch=1', { idleTimeoutMs: NEVER, onEvent: () => undefined }),
      );
      assert.equal(watch.kind, 'connect', 'a watch has the same deadline');
    } finally {
      c.close();
      await listener.stop();
    }
  });

  test('a TLS handshake that is never answered counts as not connected', async () => {
    const silent = await silentServer();
    const c = client(`https://127.0.0.1:${String(silent.port)}`, { connectTimeoutMs: SHORT });
    try {
      const { kind, ms } = await timedOut(c.getJSON('/api/v1/nodes', { timeoutMs: NEVER }));
      assert.equal(kind, 'connect');
      assert.ok(ms < 5_000, `${String(ms)} ms`);
      assert.equal(silent.connections(), 1, 'the TCP connection itself was made');
    } finally {
      c.close();
      silent.close();
    }
  });
});

describe('response-headers deadline', () => {
  test('a server that accepts and never answers: lists, posts and watches fail at the deadline', async () => {
    const silent = await silentServer();
    const c = client(`http://127.0.0.1:${String(silent.port)}`, {
      connectTimeoutMs: SHORT,
      headersTimeoutMs: SHORT,
    });
    try {
      const list = await timedOut(c.getJSON('/api/v1/services', { timeoutMs: NEVER }));
      assert.equal(list.kind, 'headers');
      assert.match(list.error.message, /GET \/api\/v1\/services: no response headers within 300 ms/);
      assert.ok(list.ms >= SHORT - 50 && list.ms < 5_000, `${String(list.ms)} ms`);
      const post = await timedOut(c.postJSON('/api/v1/namespaces/default/events', {}, { timeoutMs: NEVER }));
      assert.equal(post.kind, 'headers');
      assert.match(post.error.message, /^POST /);
      const watch = await timedOut(
        c.watchStream('/api/v1/services?watch=1', { idleTimeoutMs: NEVER, onEvent: () => undefined }),
      );
      assert.equal(watch.kind, 'headers');
    } finally {
      c.close();
      silent.close();
    }
  });

  test('a pooled connection that went dead is dropped with its request, and the next request connects afresh', async () => {
    // The first request on each connection is answered; later ones on the same connection are
    // swallowed, as when the path under an idle keep-alive connection died.
    const served = new WeakSet<net.Socket>();
    let connections = 0;
    const server = http.createServer((req, res) => {
      if (served.has(req.socket)) return;
      served.add(req.socket);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"kind":"NodeList","items":[]}');
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(typeof address === 'object' && address !== null);
    const c = client(`http://127.0.0.1:${String(address.port)}`, { headersTimeoutMs: SHORT });
    try {
      assert.deepEqual(await c.getJSON('/api/v1/nodes'), { kind: 'NodeList', items: [] });
      const stuck = await timedOut(c.getJSON('/api/v1/nodes', { timeoutMs: NEVER }));
      assert.equal(stuck.kind, 'headers');
      assert.equal(connections, 1, 'the stuck request went out on the pooled connection');
      assert.deepEqual(await c.getJSON('/api/v1/nodes', { timeoutMs: 5_000 }), {
        kind: 'NodeList',
        items: [],
      });
      assert.equal(connections, 2, 'the dead connection was not reused');
    } finally {
      c.close();
      server.closeAllConnections();
      server.close();
    }
  });

  test('neither deadline cuts a slow answer on a reused connection nor a watch streaming longer than both', async () => {
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests++;
      if (req.url?.includes('watch=1') === true) {
        // Headers at once, then an event every 100 ms for 4 x the deadlines, then the end.
        res.writeHead(200, { 'Content-Type': 'application/json' });
        let sent = 0;
        const timer = setInterval(() => {
          res.write(
            `${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(++sent) } } })}\n`,
          );
          if (sent === 12) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
        return;
      }
      const answer = () => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"kind":"NodeList","items":[]}');
      };
      // The second request (on the pooled connection) waits 2/3 of the headers deadline.
      if (requests === 2) setTimeout(answer, (2 * SHORT) / 3);
      else answer();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(typeof address === 'object' && address !== null);
    // The connect deadline is shorter than the slow answer: it must not apply to a pooled connection.
    const c = client(`http://127.0.0.1:${String(address.port)}`, {
      connectTimeoutMs: SHORT / 3,
      headersTimeoutMs: SHORT,
    });
    try {
      await c.getJSON('/api/v1/nodes');
      await c.getJSON('/api/v1/nodes');
      const events: unknown[] = [];
      await c.watchStream('/api/v1/nodes?watch=1', { idleTimeoutMs: NEVER, onEvent: (e) => events.push(e) });
      assert.equal(events.length, 12);
    } finally {
      c.close();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('TLS: the deadlines end at the handshake and at the headers', { skip: skipWithoutOpenssl() }, () => {
  let dir: string;
  let server: https.Server;
  let url: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kpt-deadline-'));
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'key.pem',
        '-out',
        'cert.pem',
        '-days',
        '1',
        '-subj',
        '/CN=kubernetes',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    assert.equal(made.status, 0, made.stderr);
    server = https.createServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (_req, res) => {
        // Answers after longer than the connect deadline: it must have been cleared at the handshake.
        setTimeout(() => {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end('{"kind":"NodeList","items":[]}');
        }, SHORT);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `https://127.0.0.1:${typeof address === 'object' && address ? String(address.port) : '0'}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An HTTP CONNECT proxy on loopback; `answer: false` takes the CONNECT and never replies. */
  async function connectProxy(
    answer: boolean,
  ): Promise<{ url: string; tunnels: () => number; close: () => void }> {
    let tunnels = 0;
    const sockets = new Set<net.Socket>();
    const proxy = http.createServer();
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      tunnels++;
      sockets.add(client);
      client.on('error', () => undefined);
      if (!answer) return;
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host ?? '', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const address = proxy.address();
    assert.ok(typeof address === 'object' && address !== null);
    return {
      url: `http://127.0.0.1:${String(address.port)}`,
      tunnels: () => tunnels,
      close: () => {
        for (const socket of sockets) socket.destroy();
        proxy.close();
      },
    };
  }

  function proxied(proxyURL: string, deadlines: Partial<ConnectionDeadlines>): KubeClient {
    return new KubeClient(
      { server: url, insecureSkipTLSVerify: true, source: 'test', proxyURL },
      { deadlines: { connectTimeoutMs: NEVER, headersTimeoutMs: NEVER, ...deadlines } },
    );
  }

  test('through an HTTP proxy: the tunnel and the handshake have the connect deadline, and it ends there', async () => {
    const proxy = await connectProxy(true);
    const c = proxied(proxy.url, { connectTimeoutMs: SHORT / 2 });
    try {
      // The server answers after 2 x the connect deadline: it must have ended with the handshake.
      assert.deepEqual(await c.getJSON('/api/v1/nodes'), { kind: 'NodeList', items: [] });
      assert.deepEqual(await c.getJSON('/api/v1/nodes'), { kind: 'NodeList', items: [] });
      assert.equal(proxy.tunnels(), 1, 'one tunnel, reused');
    } finally {
      c.close();
      proxy.close();
    }
    const dead = await connectProxy(false);
    const stuck = proxied(dead.url, { connectTimeoutMs: SHORT });
    try {
      // Failed by the agent's own tunnel timeout (a request destroyed while its tunnel is pending
      // would never hear of it), with Node's error.
      const t0 = performance.now();
      await assert.rejects(
        stuck.getJSON('/api/v1/nodes', { timeoutMs: NEVER }),
        /proxy tunnel timed out after 300ms/,
      );
      const ms = performance.now() - t0;
      assert.ok(ms >= SHORT - 50 && ms < 5_000, `${String(ms)} ms`);
      assert.equal(dead.tunnels(), 1);
    } finally {
      stuck.close();
      dead.close();
    }
  });

  test('a slow answer after a completed handshake is not a connect timeout', async () => {
    const c = client(url, { connectTimeoutMs: SHORT / 2, headersTimeoutMs: NEVER });
    try {
      assert.deepEqual(await c.getJSON('/api/v1/nodes'), { kind: 'NodeList', items: [] });
      assert.deepEqual(
        await c.getJSON('/api/v1/nodes'),
        { kind: 'NodeList', items: [] },
        'and on the pooled one',
      );
    } finally {
      c.close();
    }
  });
});

function skipWithoutOpenssl(): false | string {
  return spawnSync('openssl', ['version']).status === 0 ? false : 'openssl is not installed';
}

describe('the reflector and the deadlines', () => {
  let server: FakeApiServer;
  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
  });
  after(async () => {
    await server.close();
  });

  test('a watch whose headers never come is re-watched from the last resourceVersion, without a relist', async () => {
    server.create(service('a'));
    const c = new KubeClient(
      { server: server.url, insecureSkipTLSVerify: false, source: 'test' },
      { deadlines: { headersTimeoutMs: SHORT } },
    );
    const rec = new Recorder<Service>();
    // The first watch hangs before its headers (the idle deadline is far away: not what fires).
    server.faults.hangNext(1, 'watch=1');
    const r = new Reflector<Service>({
      ...FAST,
      idleTimeoutMs: NEVER,
      client: c,
      path: '/api/v1/services',
      handlers: rec.handlers(),
    });
    r.start();
    try {
      await pollUntil(
        'a second watch',
        () => (watchRequests(server, '/api/v1/services').length >= 2 ? true : undefined),
        10_000,
        10,
      );
      const [first, second] = watchRequests(server, '/api/v1/services');
      assert.equal(second?.searchParams.get('resourceVersion'), first?.searchParams.get('resourceVersion'));
      assert.equal(listRequests(server, '/api/v1/services').length, 1);
      server.create(service('b'));
      await pollUntil('b delivered', () => (rec.state.has('default/b') ? true : undefined), 10_000, 10);
    } finally {
      await r.stop();
      c.close();
    }
  });

  test('the defaults: 10 s to connect, 30 s for the headers, keep-alive after 15 s, watches idle for 90 s', async () => {
    assert.deepEqual(DEFAULT_DEADLINES, {
      connectTimeoutMs: 10_000,
      headersTimeoutMs: 30_000,
      keepAliveMs: 15_000,
    });
    assert.equal(WATCH_IDLE_TIMEOUT_MS, 90_000);
    const seen: number[] = [];
    const stop = new AbortController();
    const fake: KubeRequester = {
      getJSON: () => Promise.resolve({ kind: 'ServiceList', metadata: { resourceVersion: '1' }, items: [] }),
      postJSON: () => Promise.reject(new Error('not used')),
      watchStream: (_path, options) => {
        seen.push(options.idleTimeoutMs);
        stop.abort();
        return Promise.resolve();
      },
    };
    const r = new Reflector<Service>({ client: fake, path: '/api/v1/services', handlers: {} });
    r.start();
    await pollUntil('a watch', () => (stop.signal.aborted ? true : undefined), 5_000, 5);
    await r.stop();
    assert.equal(seen[0], WATCH_IDLE_TIMEOUT_MS);
  });
});
