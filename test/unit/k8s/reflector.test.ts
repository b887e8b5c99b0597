import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import { Backoff, DEFAULT_BACKOFF, Reflector, type ReflectorOptions } from '../../../src/k8s/reflector.ts';
import {
  KubeApiError,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  type KubeClient,
} from '../../../src/k8s/client.ts';
import { startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { pollUntil } from '../../support/netns.ts';
import {
  captureLogs,
  clientFor,
  FAST,
  listRequests,
  Recorder,
  service,
  serverView,
  watchRequests,
} from './helpers.ts';

const PATH = '/api/v1/services';

describe('Backoff (full jitter, capped, Retry-After first)', () => {
  test('the base doubles from 500 ms to the 2 s cap; each delay is uniform below it', () => {
    let now = 0;
    const almostOne = 0.999999;
    const b = new Backoff(
      DEFAULT_BACKOFF,
      () => almostOne,
      () => now,
    );
    const seen = Array.from({ length: 5 }, () => {
      now += 10;
      return Math.round(b.next());
    });
    assert.deepEqual(seen, [500, 1000, 2000, 2000, 2000]);
    const zero = new Backoff(DEFAULT_BACKOFF, () => 0);
    assert.equal(zero.next(), 0, 'full jitter reaches down to no wait at all');
  });

  test("the server's Retry-After is a floor, spread over at most one more second", () => {
    const b = new Backoff(DEFAULT_BACKOFF, () => 0.5);
    assert.equal(b.next(3_000), 3_500);
    assert.equal(b.next(400), 700, 'the larger of Retry-After and the jittered back-off (500)');
    // Retry-After: 0 never means "at once, forever": the jittered back-off still applies.
    assert.equal(b.next(0), 1_000);
  });

  test('starts again at the initial delay after a quiet period', () => {
    let now = 0;
    const b = new Backoff(
      DEFAULT_BACKOFF,
      () => 0.5,
      () => now,
    );
    b.next();
    b.next();
    now += 60_000;
    assert.equal(b.next(), 1000, 'within two minutes the sequence continues (base 2 s)');
    now += 120_001;
    assert.equal(b.next(), 250);
  });
});

describe('Retry-After', () => {
  test('delay-seconds and HTTP-dates, capped; garbage is ignored', () => {
    assert.equal(parseRetryAfter('3'), 3_000);
    assert.equal(parseRetryAfter(['1', '9']), 1_000);
    assert.equal(parseRetryAfter(new Date(10_000 + 4_000).toUTCString(), 10_000), 4_000);
    assert.equal(parseRetryAfter('999999'), MAX_RETRY_AFTER_MS);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });

  test('a 429 from the API server carries its Retry-After', async () => {
    const server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    try {
      const client = clientFor(server);
      server.faults.failNext(429, 1);
      const error = await client.getJSON('/api/v1/services').catch((e: unknown) => e);
      assert.ok(error instanceof KubeApiError);
      assert.equal(error.statusCode, 429);
      assert.equal(error.retryAfterMs, 1_000);
      client.close();
    } finally {
      await server.close();
    }
  });
});

describe('Reflector against the in-repo API server', () => {
  let server: FakeApiServer;
  let client: KubeClient;
  const running: Reflector<Service>[] = [];

  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    client = clientFor(server);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
    await pollUntil('watches closed', () => (server.openWatches() === 0 ? true : undefined), 5_000, 5);
    server.faults.clear();
    for (const s of server.list('Service'))
      server.delete('Service', s.metadata?.namespace ?? '', s.metadata?.name ?? '');
    server.requests.length = 0;
  });
  after(async () => {
    client.close();
    await server.close();
  });

  function start(rec: Recorder<Service>, extra: Partial<ReflectorOptions<Service>> = {}): Reflector<Service> {
    const r = new Reflector<Service>({ client, path: PATH, handlers: rec.handlers(), ...FAST, ...extra });
    running.push(r);
    r.start();
    return r;
  }

  async function synced(r: Reflector<Service>): Promise<void> {
    await pollUntil('reflector synced', () => (r.hasSynced() ? true : undefined), 5_000, 5);
  }

  async function watching(count = 1): Promise<void> {
    await pollUntil(
      `${count} open watch(es)`,
      () => (server.openWatches(PATH) >= count ? true : undefined),
      5_000,
      5,
    );
  }

  async function converged(rec: Recorder<Service>): Promise<void> {
    await pollUntil(
      'handler state equals server state',
      () => (JSON.stringify(rec.view()) === JSON.stringify(serverView(server, 'Service')) ? true : undefined),
      5_000,
      5,
    );
  }

  test('lists page by page with limit and continue, then reports synced once', async () => {
    for (let i = 0; i < 7; i++) server.create(service(`s${i}`));
    const rec = new Recorder<Service>();
    const r = start(rec, { pageSize: 3 });
    await synced(r);
    const lists = listRequests(server, PATH);
    assert.equal(lists.length, 3, 'seven objects in pages of three');
    assert.deepEqual(
      lists.map((u) => u.searchParams.get('limit')),
      ['3', '3', '3'],
    );
    assert.equal(
      lists[0]?.searchParams.get('resourceVersion'),
      '0',
      'the first list may be served from cache',
    );
    assert.equal(lists[0].searchParams.get('continue'), null);
    assert.ok(lists[1]?.searchParams.get('continue'), 'later pages carry the continue token');
    assert.equal(lists[1]?.searchParams.get('resourceVersion'), null, 'and no resourceVersion');
    assert.equal(rec.events.filter((e) => e.startsWith('add ')).length, 7);
    for (const obj of rec.state.values()) {
      assert.equal(obj.kind, 'Service', 'list items get the kind watch events carry');
      assert.equal(obj.apiVersion, 'v1');
    }
    assert.equal(rec.events.at(-1), 'synced', 'synced comes after every add of the first list');
    assert.equal(rec.synced, 1);
    assert.equal(r.lastResourceVersion, String(server.resourceVersion()));
    assert.equal(r.stats.lists, 1);
    await watching(); // so no request of this test reaches the server during the next one
  });

  test('watches with bookmarks, a jittered timeout and the selectors, from the listed resourceVersion', async () => {
    server.create(service('mine'));
    server.create(service('theirs', { 'service.kubernetes.io/service-proxy-name': 'other' }));
    const rec = new Recorder<Service>();
    const r = start(rec, {
      labelSelector: '!service.kubernetes.io/service-proxy-name',
      fieldSelector: 'metadata.namespace=default',
    });
    await synced(r);
    await watching();
    const listed = r.lastResourceVersion;
    const w = watchRequests(server, PATH)[0];
    assert.ok(w);
    assert.equal(w.searchParams.get('watch'), '1');
    assert.equal(w.searchParams.get('allowWatchBookmarks'), 'true');
    assert.equal(w.searchParams.get('resourceVersion'), listed);
    const timeout = Number(w.searchParams.get('timeoutSeconds'));
    assert.ok(Number.isInteger(timeout) && timeout >= 300 && timeout < 600, `timeoutSeconds ${timeout}`);
    for (const u of [listRequests(server, PATH)[0], w]) {
      assert.equal(u?.searchParams.get('labelSelector'), '!service.kubernetes.io/service-proxy-name');
      assert.equal(u.searchParams.get('fieldSelector'), 'metadata.namespace=default');
    }
    assert.deepEqual(
      [...rec.state.keys()],
      ['default/mine'],
      "the selector kept the other proxy's service out",
    );

    // A bookmark moves the resourceVersion without touching the handlers.
    server.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
    const before = rec.events.length;
    assert.equal(server.faults.sendBookmark(), 1);
    await pollUntil(
      'bookmark seen',
      () => (r.lastResourceVersion === String(server.resourceVersion()) ? true : undefined),
      5_000,
      5,
    );
    assert.equal(rec.events.length, before);
    server.delete('Node', '', 'n1');
  });

  test('delivers adds, updates and deletes; a closed watch resumes from the last resourceVersion without a relist', async () => {
    server.create(service('a'));
    const rec = new Recorder<Service>();
    const r = start(rec);
    await synced(r);
    await watching();
    const b = server.create(service('b'));
    server.update({ ...b, spec: { ...b.spec, clusterIP: '10.0.0.2' } });
    server.delete('Service', 'default', 'a');
    await converged(rec);
    assert.deepEqual(rec.events, [
      'add default/a',
      'synced',
      'add default/b',
      'update default/b',
      'delete default/a',
    ]);

    const rvBefore = r.lastResourceVersion;
    assert.equal(server.faults.closeWatches(), 1);
    await pollUntil(
      're-watched',
      () => (watchRequests(server, PATH).length === 2 ? true : undefined),
      5_000,
      5,
    );
    assert.equal(watchRequests(server, PATH)[1]?.searchParams.get('resourceVersion'), rvBefore);
    assert.equal(listRequests(server, PATH).length, 1, 'no relist');
    await watching();
    server.create(service('c'));
    await converged(rec);
    assert.equal(rec.events.at(-1), 'add default/c');
  });

  test('410 as an ERROR event: relists at the last resourceVersion, with synthetic deletes and updates', async () => {
    for (const n of ['a', 'b', 'c']) server.create(service(n));
    const rec = new Recorder<Service>();
    const r = start(rec);
    await synced(r);
    await watching();
    const lastRV = r.lastResourceVersion;
    // The watcher falls behind, then history is compacted past it.
    server.faults.holdWatches(true);
    server.delete('Service', 'default', 'b');
    const c = server.get('Service', 'default', 'c') as Service;
    server.update({ ...c, metadata: { ...c.metadata, labels: { changed: 'yes' } } });
    server.create(service('d'));
    server.compact();
    await converged(rec);
    server.faults.holdWatches(false);
    assert.deepEqual(rec.events.slice(4).sort(), ['add default/d', 'delete default/b', 'update default/c']);
    const lists = listRequests(server, PATH);
    assert.equal(lists.length, 2);
    assert.equal(
      lists[1]?.searchParams.get('resourceVersion'),
      lastRV,
      'relist "not older than" the last RV',
    );
    assert.equal(r.stats.relists, 1);
    await watching();
  });

  test('410 when opening the watch: relist; 410 on that list falls back to the latest; 429 re-watches without a relist', async () => {
    for (const n of ['a', 'b']) server.create(service(n));
    const rec = new Recorder<Service>();
    const r = start(rec);
    await synced(r);
    await watching();
    server.create(service('c')); // an event, so the closed watch is not "very short"
    await converged(rec);
    // Every watch is throttled for a while: backoff and re-watch, no relist.
    server.faults.failNext(429, 1_000, 'watch=1');
    server.faults.closeWatches();
    await pollUntil(
      'throttled watches',
      () => (watchRequests(server, PATH).length >= 4 ? true : undefined),
      5_000,
      5,
    );
    assert.equal(listRequests(server, PATH).length, 1, '429 does not relist');
    server.delete('Service', 'default', 'a');
    server.create(service('e'));
    server.compact();
    server.faults.clear();
    server.faults.failNext(410, 1, (req) => req.url.startsWith(PATH) && !req.url.includes('watch='));
    await converged(rec);
    const lists = listRequests(server, PATH);
    assert.equal(lists.length, 3, 'relist at the last RV (410), then the latest');
    assert.equal(lists[2]?.searchParams.get('resourceVersion'), null, 'RV "" means the latest, from etcd');
    assert.deepEqual(rec.events.slice(4).sort(), ['add default/e', 'delete default/a']);
    await watching();
  });

  test('500 on list and on watch: backs off and recovers', async () => {
    server.create(service('a'));
    server.faults.failNext(500, 3, (req) => !req.url.includes('watch='));
    const rec = new Recorder<Service>();
    const r = start(rec);
    await synced(r);
    assert.equal(listRequests(server, PATH).length, 4, 'three failures, then the list that worked');
    assert.ok(r.stats.errors >= 3);
    await watching();
    server.faults.failNext(500, 2, 'watch=1');
    server.create(service('b')); // an event, so the closed watch is not "very short"
    await converged(rec);
    server.faults.closeWatches();
    await watching();
    server.create(service('c'));
    await converged(rec);
    assert.ok(watchRequests(server, PATH).length >= 4);
  });

  test('a watch that ends at once without events counts as an error and relists', async () => {
    const rec = new Recorder<Service>();
    const r = start(rec, { minWatchDurationMs: 2_000 });
    await synced(r);
    await watching();
    server.faults.closeWatches();
    await pollUntil('relisted', () => (listRequests(server, PATH).length >= 2 ? true : undefined), 5_000, 5);
    assert.ok(r.stats.errors >= 1);
    await watching();
  });

  test('a hanging list or watch is abandoned after its deadline and retried', async () => {
    server.create(service('a'));
    server.faults.hangNext(1, (req) => !req.url.includes('watch='));
    const rec = new Recorder<Service>();
    const r = start(rec, { listTimeoutMs: 100, idleTimeoutMs: 150 });
    await synced(r);
    assert.equal(listRequests(server, PATH).length, 2);
    await watching();
    server.create(service('b'));
    await converged(rec);
    server.faults.hangNext(1, 'watch=1');
    server.faults.closeWatches();
    await pollUntil(
      'watch after the hung one',
      () => (watchRequests(server, PATH).length >= 3 ? true : undefined),
      5_000,
      5,
    );
    await watching();
    server.create(service('c'));
    await converged(rec);
    assert.equal(listRequests(server, PATH).length, 2, 'an idle watch resumes without a relist');
  });

  test('a silent but open stream is re-watched after the idle timeout', async () => {
    const rec = new Recorder<Service>();
    const r = start(rec, { idleTimeoutMs: 100 });
    await synced(r);
    await watching();
    await pollUntil(
      'second watch',
      () => (watchRequests(server, PATH).length >= 2 ? true : undefined),
      5_000,
      5,
    );
    assert.equal(listRequests(server, PATH).length, 1);
  });

  test('a malformed watch line is logged and the watch resumes from the last resourceVersion', async () => {
    const logs = captureLogs();
    try {
      server.create(service('a'));
      const rec = new Recorder<Service>();
      const r = start(rec);
      await synced(r);
      await watching();
      server.create(service('b'));
      await converged(rec);
      const rv = r.lastResourceVersion;
      server.faults.sendRawLine('{"type":"ADDED","object":{"metadata":{"name":"broken"');
      await pollUntil(
        're-watched',
        () => (watchRequests(server, PATH).length >= 2 ? true : undefined),
        5_000,
        5,
      );
      assert.equal(watchRequests(server, PATH)[1]?.searchParams.get('resourceVersion'), rv);
      assert.equal(listRequests(server, PATH).length, 1);
      const line = logs.lines.find((l) => l.includes('Bad watch event'));
      assert.ok(line, 'logged');
      // The client asks for protobuf: the text line is a corrupt frame there.
      assert.match(line, /malformed protobuf watch event/, 'the log says what was wrong');
      await watching();
      server.create(service('c'));
      await converged(rec);
    } finally {
      logs.restore();
    }
  });

  test('a handler that throws is logged and does not stop the reflector', async () => {
    const logs = captureLogs();
    try {
      const rec = new Recorder<Service>();
      const handlers = rec.handlers();
      const r = new Reflector<Service>({
        client,
        path: PATH,
        ...FAST,
        handlers: {
          ...handlers,
          onAdd: (obj) => {
            if (obj.metadata?.name === 'bad') throw new Error('boom');
            handlers.onAdd?.(obj);
          },
        },
      });
      running.push(r);
      server.create(service('bad'));
      r.start();
      await synced(r);
      await watching();
      server.create(service('good'));
      await pollUntil('good delivered', () => (rec.state.has('default/good') ? true : undefined), 5_000, 5);
      assert.ok(
        logs.lines.some(
          (l) => l.includes('Event handler failed') && l.includes('default/bad') && l.includes('boom'),
        ),
      );
      assert.equal(r.get('default/bad')?.metadata?.name, 'bad', 'the object is still cached');
    } finally {
      logs.restore();
    }
  });

  test('stop() aborts the watch and any backoff wait promptly', async () => {
    const rec = new Recorder<Service>();
    const r = start(rec);
    await synced(r);
    await watching();
    await r.stop();
    await pollUntil('watch closed', () => (server.openWatches(PATH) === 0 ? true : undefined), 5_000, 5);
    server.faults.failNext(500, 1_000);
    const r2 = start(new Recorder<Service>(), { backoff: { initialMs: 60_000 } });
    await pollUntil('first failure', () => (r2.stats.errors > 0 ? true : undefined), 5_000, 5);
    const t0 = Date.now();
    await r2.stop();
    assert.ok(Date.now() - t0 < 1_000, 'stop does not wait out the backoff');
    r2.start();
    assert.equal(r2.stats.lists, 0, 'a stopped reflector does not start again');
  });
});

describe('Reflector across an API server restart', () => {
  test('reconnects to a new server on the same port and converges to its state', async () => {
    let server = await startFakeApiServer({ bookmarkIntervalMs: 0, initialResourceVersion: 500 });
    const port = server.port;
    const client = clientFor(server);
    const rec = new Recorder<Service>();
    const r = new Reflector<Service>({ client, path: PATH, handlers: rec.handlers(), ...FAST });
    try {
      server.create(service('a'));
      server.create(service('b'));
      r.start();
      await pollUntil('synced', () => (r.hasSynced() ? true : undefined), 5_000, 5);
      server.create(service('x'));
      await pollUntil('x seen', () => (rec.state.has('default/x') ? true : undefined), 5_000, 5);
      await server.close();
      // The new server starts from a lower resourceVersion (lost state): the watch's RV is
      // "too large", the relist at that RV too, and the reflector lists the latest.
      server = await startFakeApiServer({ port, bookmarkIntervalMs: 0 });
      server.create(service('b'));
      server.create(service('c'));
      await pollUntil(
        'converged',
        () =>
          JSON.stringify(rec.view()) === JSON.stringify(serverView(server, 'Service')) ? true : undefined,
        5_000,
        5,
      );
      assert.ok(rec.events.includes('delete default/a'));
      assert.ok(rec.events.includes('delete default/x'));
      await pollUntil('watching again', () => (server.openWatches(PATH) === 1 ? true : undefined), 5_000, 5);
      server.create(service('d'));
      await pollUntil('d seen', () => (rec.state.has('default/d') ? true : undefined), 5_000, 5);
    } finally {
      await r.stop();
      client.close();
      await server.close();
    }
  });
});

describe('Reflector leaves nothing running', () => {
  test('a process that lists, watches, stops and closes exits by itself', async () => {
    const root = new URL('../../../', import.meta.url).pathname;
    const script = `
      import { Reflector } from '${root}src/k8s/reflector.ts';
      import { KubeClient } from '${root}src/k8s/client.ts';
      import { startFakeApiServer } from '${root}test/support/apiserver.ts';
      const server = await startFakeApiServer({ bookmarkIntervalMs: 10 });
      server.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'default' } });
      const client = new KubeClient({ server: server.url, insecureSkipTLSVerify: false, source: 'test' });
      const r = new Reflector({ client, path: '/api/v1/services', handlers: {} });
      r.start();
      while (server.openWatches() === 0) await new Promise((res) => setTimeout(res, 5));
      await r.stop();
      client.close();
      await server.close();
      process.stdout.write('done');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 10_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    assert.equal(exited, 0, `the child did not exit cleanly on its own (stderr: ${err})`);
    assert.equal(out, 'done');
  });
});
