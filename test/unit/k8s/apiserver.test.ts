// The fake API server is test support, but other tests trust it: check its wire behaviour.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { KubeApiError, type KubeClient } from '../../../src/k8s/client.ts';
import { parseLabelSelector, startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { FakeApiClient } from '../../support/apiserver-client.ts';
import { clientFor, service } from './helpers.ts';

interface List {
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: { metadata: { name: string } }[];
}

async function watchLines(
  client: KubeClient,
  path: string,
  count: number,
): Promise<{ type: string; object: { metadata: { name?: string; resourceVersion: string } } }[]> {
  const out: { type: string; object: { metadata: { name?: string; resourceVersion: string } } }[] = [];
  const controller = new AbortController();
  await client
    .watchStream(path, {
      signal: controller.signal,
      idleTimeoutMs: 2_000,
      onEvent: (event) => {
        out.push(event as (typeof out)[number]);
        if (out.length === count) controller.abort();
      },
    })
    .catch((e: unknown) => {
      if (!(e instanceof Error && e.name === 'AbortError')) throw e;
    });
  return out;
}

describe('fake API server', () => {
  let server: FakeApiServer;
  let client: KubeClient;
  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    client = clientFor(server);
    for (const n of ['a', 'b', 'c', 'd', 'e'])
      server.create(service(n, { tier: n < 'c' ? 'front' : 'back' }));
  });
  after(async () => {
    client.close();
    await server.close();
  });

  test('label selectors: exists, not exists, =, ==, !=, in, notin, AND; bad syntax is a 400', async () => {
    const names = async (sel: string): Promise<string[]> =>
      ((await client.getJSON(`/api/v1/services?labelSelector=${encodeURIComponent(sel)}`)) as List).items.map(
        (i) => i.metadata.name,
      );
    assert.deepEqual(await names('tier'), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(await names('!tier'), []);
    assert.deepEqual(await names('tier=front'), ['a', 'b']);
    assert.deepEqual(await names('tier==back'), ['c', 'd', 'e']);
    assert.deepEqual(await names('tier!=back'), ['a', 'b']);
    assert.deepEqual(await names('tier in (front, x)'), ['a', 'b']);
    assert.deepEqual(await names('tier notin (front),!nope'), ['c', 'd', 'e']);
    assert.throws(() => parseLabelSelector('a,,b'));
    await assert.rejects(
      client.getJSON('/api/v1/services?labelSelector=%3D%3D'),
      (e: unknown) => e instanceof KubeApiError && e.statusCode === 400,
    );
    await assert.rejects(
      client.getJSON('/api/v1/services?fieldSelector=spec.foo%3D1'),
      /field label not supported/,
    );
  });

  test('pagination is a consistent snapshot; an old continue token is 410 after compaction', async () => {
    const first = (await client.getJSON('/api/v1/services?limit=2')) as List;
    assert.deepEqual(
      first.items.map((i) => i.metadata.name),
      ['a', 'b'],
    );
    assert.equal(first.metadata.remainingItemCount, 3);
    server.delete('Service', 'default', 'c');
    const second = (await client.getJSON(
      `/api/v1/services?limit=2&continue=${first.metadata.continue ?? ''}`,
    )) as List;
    assert.deepEqual(
      second.items.map((i) => i.metadata.name),
      ['c', 'd'],
      'the deleted c is still in the snapshot',
    );
    assert.equal(second.metadata.resourceVersion, first.metadata.resourceVersion);
    server.compact();
    await assert.rejects(
      client.getJSON(`/api/v1/services?limit=2&continue=${second.metadata.continue ?? ''}`),
      (e: unknown) => e instanceof KubeApiError && e.statusCode === 410,
    );
    server.create(service('c', { tier: 'back' }));
  });

  test('a selected list in pages: every match once, in key order, at the first page’s snapshot', async () => {
    const names = Array.from({ length: 25 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    // Created out of order; every third one does not match the selector.
    for (const name of [...names].reverse())
      server.create(service(name, { paged: Number(name.slice(1)) % 3 === 0 ? 'no' : 'yes' }, 'paging'));
    const expected = names.filter((name) => Number(name.slice(1)) % 3 !== 0);
    const seen: string[] = [];
    const remaining: (number | undefined)[] = [];
    const rvs = new Set<string>();
    let token = '';
    do {
      const page = (await client.getJSON(
        `/api/v1/namespaces/paging/services?limit=4&labelSelector=paged%3Dyes${token ? `&continue=${token}` : ''}`,
      )) as List;
      seen.push(...page.items.map((i) => i.metadata.name));
      remaining.push(page.metadata.remainingItemCount);
      rvs.add(page.metadata.resourceVersion);
      token = page.metadata.continue ?? '';
      // Writes between pages are not part of this list.
      if (seen.length === 4) {
        server.delete('Service', 'paging', 'p10');
        server.create(service('p05x', { paged: 'yes' }, 'paging'));
      }
    } while (token !== '');
    assert.deepEqual(seen, expected);
    assert.deepEqual(remaining, [12, 8, 4, undefined]);
    assert.equal(rvs.size, 1);
    const now = (await client.getJSON(
      '/api/v1/namespaces/paging/services?labelSelector=paged%3Dyes',
    )) as List;
    assert.deepEqual(
      now.items.map((i) => i.metadata.name),
      [...expected.slice(0, 4), 'p05x', ...expected.slice(4)].filter((name) => name !== 'p10'),
    );
    for (const item of now.items) server.delete('Service', 'paging', item.metadata.name);
    for (const name of names.filter((n) => Number(n.slice(1)) % 3 === 0))
      server.delete('Service', 'paging', name);
  });

  test('watch replays history after the given resourceVersion; older than compaction is 410; newer than now is 504', async () => {
    const rv = server.resourceVersion();
    server.create(service('f'));
    server.delete('Service', 'default', 'f');
    const events = await watchLines(client, `/api/v1/services?watch=1&resourceVersion=${rv}`, 2);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.object.metadata.name ?? ''}`),
      ['ADDED f', 'DELETED f'],
    );
    assert.equal(
      events[1]?.object.metadata.resourceVersion,
      String(rv + 2),
      'a DELETED carries the deletion RV',
    );
    server.compact();
    await assert.rejects(
      client.watchStream(`/api/v1/services?watch=1&resourceVersion=${rv}`, {
        idleTimeoutMs: 2_000,
        onEvent: () => undefined,
      }),
      (e: unknown) => e instanceof KubeApiError && e.statusCode === 410 && e.reason === 'Expired',
    );
    await assert.rejects(
      client.watchStream(`/api/v1/services?watch=1&resourceVersion=${rv + 1000}`, {
        idleTimeoutMs: 2_000,
        onEvent: () => undefined,
      }),
      (e: unknown) => e instanceof KubeApiError && e.statusCode === 504,
    );
    const initial = await watchLines(client, '/api/v1/services?watch=1&labelSelector=tier%3Dfront', 2);
    assert.deepEqual(
      initial.map((e) => `${e.type} ${e.object.metadata.name ?? ''}`),
      ['ADDED a', 'ADDED b'],
      'no RV: current state as ADDED',
    );
  });

  test('create/update/delete over REST: conflicts, not found, uid and creationTimestamp', async () => {
    const created = (await client.postJSON('/api/v1/namespaces/ns1/services', service('x', {}, 'ns1'))) as {
      metadata: { uid: string; creationTimestamp: string };
    };
    assert.ok(created.metadata.uid);
    assert.match(created.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    await assert.rejects(
      client.postJSON('/api/v1/namespaces/ns1/services', service('x', {}, 'ns1')),
      (e: unknown) => e instanceof KubeApiError && e.statusCode === 409 && e.reason === 'AlreadyExists',
    );
    await assert.rejects(
      client.postJSON('/api/v1/namespaces/ns2/services', service('y', {}, 'ns1')),
      (e: unknown) => e instanceof KubeApiError && e.statusCode === 400,
    );
    const stale = {
      ...service('x', {}, 'ns1'),
      metadata: { name: 'x', namespace: 'ns1', resourceVersion: '1' },
    };
    assert.throws(() => server.update(stale), /modified/);
    assert.equal(((await client.getJSON('/api/v1/namespaces/ns1/services')) as List).items.length, 1);
    server.delete('Service', 'ns1', 'x');
    assert.throws(() => server.delete('Service', 'ns1', 'x'), /not found/);
  });

  test('the unix socket serves the API and the admin endpoints', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kpt-api-'));
    const sock = join(dir, 'api.sock');
    const s2 = await startFakeApiServer({ socketPath: sock, bookmarkIntervalMs: 0 });
    const c2 = clientFor(s2);
    try {
      const admin = new FakeApiClient(sock);
      const svc = await admin.create(service('sock'));
      assert.equal(s2.get('Service', 'default', 'sock')?.metadata?.uid, svc.metadata?.uid);
      await admin.update({ ...svc, spec: { ...svc.spec, clusterIP: '10.0.0.9' } });
      assert.equal((await admin.list('Service')).length, 1);
      await admin.faults.failNext(503, 1, '/api/v1/nodes');
      await assert.rejects(
        c2.getJSON('/api/v1/nodes'),
        (e: unknown) => e instanceof KubeApiError && e.statusCode === 503,
      );
      await c2.getJSON('/api/v1/nodes');
      await admin.compact();
      assert.equal((await admin.state()).openWatches, 0);
      await admin.delete('Service', 'default', 'sock');
      assert.equal(await admin.get('Service', 'default', 'sock'), undefined);
      assert.ok((await admin.requests()).some((r) => r.url === '/api/v1/nodes'));
    } finally {
      c2.close();
      await s2.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fake API server timing', () => {
  test('periodic bookmarks only when allowed, and timeoutSeconds ends the stream', async () => {
    const server = await startFakeApiServer({ bookmarkIntervalMs: 20 });
    const client = clientFor(server);
    try {
      const rv = String(server.resourceVersion());
      const lines: unknown[] = [];
      const t0 = Date.now();
      await client.watchStream(
        `/api/v1/nodes?watch=1&allowWatchBookmarks=true&resourceVersion=${rv}&timeoutSeconds=1`,
        {
          idleTimeoutMs: 5_000,
          onEvent: (event) => lines.push(event),
        },
      );
      const lasted = Date.now() - t0;
      assert.ok(lasted >= 900 && lasted < 3_000, `lasted ${lasted} ms`);
      assert.ok(lines.length >= 3, 'bookmarks arrive on the interval');
      for (const line of lines) {
        assert.deepEqual(line, {
          type: 'BOOKMARK',
          object: { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: rv } },
        });
      }
      const quiet: unknown[] = [];
      const controller = new AbortController();
      setTimeout(() => {
        controller.abort();
      }, 100);
      await client
        .watchStream(`/api/v1/nodes?watch=1&resourceVersion=${rv}`, {
          idleTimeoutMs: 5_000,
          signal: controller.signal,
          onEvent: (event) => quiet.push(event),
        })
        .catch(() => undefined);
      assert.deepEqual(quiet, [], 'no bookmarks unless allowWatchBookmarks');
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('apiserver-main (standalone)', () => {
  test('loads manifests, prints "listening <url>", serves, and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kpt-api-'));
    writeFileSync(
      join(dir, 'objects.yaml'),
      'apiVersion: v1\nkind: Service\nmetadata: {name: one, namespace: default}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: n1}}\n',
    );
    const main = new URL('../../support/apiserver-main.ts', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [main, '--listen', '127.0.0.1:0', '--socket', join(dir, 's.sock'), '--objects', dir],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const first = await new Promise<string>((resolve, reject) => {
        const rl = createInterface({ input: child.stdout });
        rl.once('line', resolve);
        child.once('exit', (code) => reject(new Error(`exited with ${String(code)}`)));
      });
      const m = /^listening (http:\/\/127\.0\.0\.1:\d+)$/.exec(first);
      assert.ok(m, first);
      const c = clientFor({ url: m[1] ?? '' });
      try {
        assert.equal(((await c.getJSON('/api/v1/services')) as List).items[0]?.metadata.name, 'one');
        assert.equal(((await c.getJSON('/api/v1/nodes')) as List).items[0]?.metadata.name, 'n1');
      } finally {
        c.close();
      }
      assert.equal((await new FakeApiClient(join(dir, 's.sock')).list('Node')).length, 1);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
