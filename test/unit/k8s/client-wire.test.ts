// What the API client puts on the wire and takes from it: protobuf by default and JSON when that
// is what arrives, gzip, errors in either encoding, the token-bucket rate limit, the
// rest_client_* metrics, exec credential plugins and HTTP proxies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeApiError, KubeClient } from '../../../src/k8s/client.ts';
import { loadClientConfig } from '../../../src/k8s/kubeconfig.ts';
import { TokenBucket } from '../../../src/k8s/rate-limit.ts';
import { noProxyMatches, proxyFor } from '../../../src/k8s/proxy.ts';
import { Reflector } from '../../../src/k8s/reflector.ts';
import { createRegistry } from '../../../src/metrics/registry.ts';
import { registerRestClientMetrics } from '../../../src/metrics/rest-client.ts';
import type { ExecResult } from '../../../src/util/exec.ts';
import { ExecError } from '../../../src/util/exec.ts';
import { startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { pollUntil } from '../../support/netns.ts';
import { FAST, Recorder, clientFor, service } from './helpers.ts';
import type { Service } from 'kubernetes-types/core/v1.d.ts';

const PROTOBUF = 'application/vnd.kubernetes.protobuf';

describe('content negotiation and gzip', () => {
  let server: FakeApiServer;
  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0, gzipMinBytes: 2048 });
    for (let i = 0; i < 40; i++) server.create(service(`s${String(i).padStart(2, '0')}`, { app: 'x' }));
  });
  after(async () => {
    await server.close();
  });

  test('lists, gets and watches arrive as protobuf (gzipped when large) and decode as the JSON ones', async () => {
    const proto = clientFor(server);
    const json = new KubeClient(
      { server: server.url, insecureSkipTLSVerify: false, source: 't' },
      { contentType: 'application/json' },
    );
    try {
      server.requests.length = 0;
      const viaProto = await proto.getJSON('/api/v1/services');
      const viaJSON = await json.getJSON('/api/v1/services');
      assert.deepEqual(viaProto, viaJSON);
      assert.deepEqual(
        server.requests.map((r) => [r.headers['accept'], r.served, r.encoding]),
        [
          [`${PROTOBUF}, application/json`, PROTOBUF, 'gzip'],
          ['application/json', 'application/json', 'gzip'],
        ],
      );
      const one = await proto.getJSON('/api/v1/namespaces/default/services/s01');
      assert.deepEqual(one, await json.getJSON('/api/v1/namespaces/default/services/s01'));
      assert.equal(server.requests.at(-2)?.encoding, '', 'a small answer is not compressed');

      const events: unknown[] = [];
      const controller = new AbortController();
      await proto
        .watchStream('/api/v1/services?watch=1&labelSelector=app%3Dx', {
          idleTimeoutMs: 5_000,
          signal: controller.signal,
          onEvent: (event) => {
            events.push(event);
            if (events.length === 40) controller.abort();
          },
        })
        .catch((error: unknown) => {
          if (!(error instanceof Error && error.name === 'AbortError')) throw error;
        });
      assert.equal(server.requests.at(-1)?.served, `${PROTOBUF};stream=watch`);
      const first = events[0] as { type: string; object: Service };
      assert.equal(first.type, 'ADDED');
      assert.deepEqual(first.object, server.get('Service', 'default', 's00'));
    } finally {
      proto.close();
      json.close();
    }
  });

  test('errors come back as a protobuf Status and keep reason and causes', async () => {
    const client = clientFor(server);
    try {
      await assert.rejects(
        client.getJSON(`/api/v1/services?resourceVersion=${server.resourceVersion() + 100}`),
        (error: unknown) => {
          assert.ok(error instanceof KubeApiError);
          assert.equal(error.statusCode, 504);
          assert.deepEqual(error.causes, ['ResourceVersionTooLarge']);
          return true;
        },
      );
      assert.equal(server.requests.at(-1)?.served, PROTOBUF);
      server.faults.failNext(429, 1);
      await assert.rejects(
        client.getJSON('/api/v1/nodes'),
        (error: unknown) =>
          error instanceof KubeApiError && error.reason === 'TooManyRequests' && error.retryAfterMs === 1000,
      );
    } finally {
      client.close();
    }
  });

  test('a server that only speaks JSON (protobuf off) and kinds without a schema (Events) answer JSON', async () => {
    const jsonOnly = await startFakeApiServer({ bookmarkIntervalMs: 0, protobuf: false });
    const client = clientFor(jsonOnly);
    try {
      jsonOnly.create(service('a'));
      const list = (await client.getJSON('/api/v1/services')) as { items: unknown[] };
      assert.equal(list.items.length, 1);
      assert.equal(jsonOnly.requests.at(-1)?.served, 'application/json');
      const event = await client.postJSON('/apis/events.k8s.io/v1/namespaces/default/events', {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: 'e1' },
      });
      assert.equal((event as { metadata: { name: string } }).metadata.name, 'e1');
    } finally {
      client.close();
      await jsonOnly.close();
    }
  });

  test('a reflector in protobuf mode lists, watches, resumes and relists as in JSON', async () => {
    const client = clientFor(server);
    const rec = new Recorder<Service>();
    const r = new Reflector<Service>({
      client,
      path: '/api/v1/services',
      labelSelector: 'app=x',
      handlers: rec.handlers(),
      pageSize: 7,
      ...FAST,
    });
    try {
      r.start();
      await pollUntil('synced', () => (r.hasSynced() ? true : undefined), 5_000, 5);
      assert.equal(rec.state.size, 40);
      server.create(service('late', { app: 'x' }));
      await pollUntil('watched', () => (rec.state.has('default/late') ? true : undefined), 5_000, 5);
      server.compact();
      server.delete('Service', 'default', 'late');
      await pollUntil('relisted', () => (!rec.state.has('default/late') ? true : undefined), 5_000, 5);
      assert.ok(
        server.requests
          .filter((q) => q.url.includes('watch=1'))
          .every((q) => q.served === `${PROTOBUF};stream=watch`),
      );
    } finally {
      await r.stop();
      client.close();
    }
  });
});

describe('client-side rate limit (clientConnection.qps / burst)', () => {
  test('a token bucket: burst at once, then qps per second, in order; a cancelled wait gives its token back', async () => {
    let now = 0;
    const sleeps: number[] = [];
    const bucket = new TokenBucket({
      qps: 5,
      burst: 2,
      now: () => now,
      sleep: (ms) => {
        sleeps.push(Math.round(ms));
        return Promise.resolve();
      },
    });
    for (let i = 0; i < 5; i++) await bucket.wait();
    assert.deepEqual(sleeps, [200, 400, 600], 'the 3rd..5th wait 1/qps apart');
    now += 2_000;
    assert.equal(bucket.tokens, 2, 'refilled up to burst, never beyond');
    const aborting = new TokenBucket({
      qps: 1,
      burst: 1,
      now: () => 0,
      sleep: () => Promise.reject(new Error('aborted')),
    });
    await aborting.wait();
    await assert.rejects(aborting.wait(), /aborted/);
    assert.equal(Math.round(aborting.tokens), 0, 'the cancelled request did not keep its reservation');
  });

  test('the client waits for tokens (20 qps, burst 2: the 5th request goes out after ~150 ms) and says so in its metrics', async () => {
    const server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    const registry = createRegistry({ defaultMetrics: false });
    const client = new KubeClient(
      { server: server.url, insecureSkipTLSVerify: false, source: 't' },
      { rateLimiter: new TokenBucket({ qps: 20, burst: 2 }), metrics: registerRestClientMetrics(registry) },
    );
    try {
      const started = performance.now();
      for (let i = 0; i < 5; i++) await client.getJSON('/api/v1/nodes');
      const took = performance.now() - started;
      assert.ok(took >= 140, `5 requests at 20 qps with burst 2 took ${took.toFixed(0)} ms`);
      const text = await registry.metrics();
      const host = new URL(server.url).host;
      assert.match(
        text,
        new RegExp(`rest_client_rate_limiter_duration_seconds_count\\{verb="GET",host="${host}"\\} 5`),
      );
      assert.match(
        text,
        new RegExp(
          `rest_client_rate_limiter_duration_seconds_bucket\\{le="0.005",verb="GET",host="${host}"\\} 2`,
        ),
      );
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('rest_client_* metrics', () => {
  test("upstream's names, labels, buckets and HELP; requests by code, method and host", async () => {
    const server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    const registry = createRegistry({ defaultMetrics: false });
    const client = new KubeClient(
      { server: server.url, insecureSkipTLSVerify: false, source: 't' },
      { metrics: registerRestClientMetrics(registry) },
    );
    try {
      server.create(service('a'));
      await client.getJSON('/api/v1/services');
      await client.getJSON('/api/v1/services');
      await client.postJSON('/apis/events.k8s.io/v1/namespaces/default/events', {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: 'e' },
      });
      await assert.rejects(client.getJSON('/api/v1/namespaces/default/services/missing'));
      const dead = new KubeClient(
        { server: 'http://127.0.0.1:1', insecureSkipTLSVerify: false, source: 't' },
        { metrics: registerRestClientMetrics(createRegistry({ defaultMetrics: false })) },
      );
      await assert.rejects(dead.getJSON('/api/v1/nodes'));
      dead.close();
      const text = await registry.metrics();
      const host = new URL(server.url).host;
      for (const line of [
        '# HELP rest_client_requests_total [ALPHA] Number of HTTP requests, partitioned by status code, method, and host.',
        '# TYPE rest_client_requests_total counter',
        `rest_client_requests_total{code="200",method="GET",host="${host}"} 2`,
        `rest_client_requests_total{code="201",method="POST",host="${host}"} 1`,
        `rest_client_requests_total{code="404",method="GET",host="${host}"} 1`,
        '# HELP rest_client_request_duration_seconds [ALPHA] Request latency in seconds. Broken down by verb, and host.',
        `rest_client_request_duration_seconds_bucket{le="0.005",verb="GET",host="${host}"}`,
        `rest_client_request_duration_seconds_bucket{le="60",verb="GET",host="${host}"} 3`,
        `rest_client_request_size_bytes_bucket{le="16777216",verb="POST",host="${host}"} 1`,
        `rest_client_response_size_bytes_bucket{le="64",verb="GET",host="${host}"}`,
        'rest_client_exec_plugin_ttl_seconds +Inf',
      ]) {
        assert.ok(text.includes(line), `missing: ${line}\n${text}`);
      }
    } finally {
      client.close();
      await server.close();
    }
  });

  test('a request that gets no answer counts as code "<error>"', async () => {
    const registry = createRegistry({ defaultMetrics: false });
    const dead = new KubeClient(
      { server: 'http://127.0.0.1:1', insecureSkipTLSVerify: false, source: 't' },
      { metrics: registerRestClientMetrics(registry) },
    );
    await assert.rejects(dead.getJSON('/api/v1/nodes'));
    dead.close();
    assert.match(
      await registry.metrics(),
      /rest_client_requests_total\{code="<error>",method="GET",host="127.0.0.1:1"\} 1/,
    );
  });
});

function kubeconfigWith(dir: string, server: string, user: string, cluster = ''): string {
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: c, cluster: {server: "${server}"${cluster}}}]`,
      `users: [{name: u, user: ${user}}]`,
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
      '',
    ].join('\n'),
  );
  return path;
}

describe('exec credential plugins', () => {
  let server: FakeApiServer;
  let dir: string;
  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    dir = mkdtempSync(join(tmpdir(), 'kp-exec-'));
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const credential = (apiVersion: string, token: string, expiry?: Date) => ({
    stdout: JSON.stringify({
      apiVersion,
      kind: 'ExecCredential',
      status: { token, ...(expiry ? { expirationTimestamp: expiry.toISOString() } : {}) },
    }),
    stderr: '',
    code: 0,
  });

  test('v1: the token is sent, cached until it expires, then the plugin runs again; KUBERNETES_EXEC_INFO tells it the cluster', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const runs: { file: string; args: readonly string[]; info: unknown }[] = [];
    const config = loadClientConfig({
      kubeconfig: kubeconfigWith(
        dir,
        server.url,
        '{exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token, args: [--cluster, c1], env: [{name: REGION, value: eu}], interactiveMode: Never, provideClusterInfo: true}}',
      ),
    });
    const client = new KubeClient(config, {
      now: () => now,
      runPlugin: (file, args, options): Promise<ExecResult> => {
        runs.push({ file, args, info: JSON.parse(options.env?.['KUBERNETES_EXEC_INFO'] ?? 'null') });
        assert.equal(options.env?.['REGION'], 'eu');
        return Promise.resolve(
          credential('client.authentication.k8s.io/v1', `tok-${runs.length}`, new Date(now + 60_000)),
        );
      },
    });
    try {
      server.requests.length = 0;
      await client.getJSON('/api/v1/nodes');
      await client.getJSON('/api/v1/nodes');
      assert.equal(runs.length, 1, 'cached while valid');
      now += 61_000;
      await client.getJSON('/api/v1/nodes');
      assert.equal(runs.length, 2, 'ran again after the expiry');
      assert.deepEqual(
        server.requests.map((r) => r.headers['authorization']),
        ['Bearer tok-1', 'Bearer tok-1', 'Bearer tok-2'],
      );
      const [firstRun] = runs;
      assert.ok(firstRun);
      assert.deepEqual(firstRun.args, ['--cluster', 'c1']);
      assert.deepEqual(firstRun.info, {
        kind: 'ExecCredential',
        apiVersion: 'client.authentication.k8s.io/v1',
        spec: { interactive: false, cluster: { server: server.url } },
      });
    } finally {
      client.close();
    }
  });

  test('v1beta1: a 401 makes the next request run the plugin again (a revoked token)', async () => {
    let runs = 0;
    const config = loadClientConfig({
      kubeconfig: kubeconfigWith(
        dir,
        server.url,
        '{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: get-token}}',
      ),
    });
    const client = new KubeClient(config, {
      runPlugin: () => Promise.resolve(credential('client.authentication.k8s.io/v1beta1', `tok-${++runs}`)),
    });
    try {
      await client.getJSON('/api/v1/nodes');
      server.faults.failNext(401, 1);
      await assert.rejects(
        client.getJSON('/api/v1/nodes'),
        (e: unknown) => e instanceof KubeApiError && e.statusCode === 401,
      );
      server.requests.length = 0;
      await client.getJSON('/api/v1/nodes');
      assert.equal(runs, 2);
      assert.equal(server.requests[0]?.headers['authorization'], 'Bearer tok-2');
    } finally {
      client.close();
    }
  });

  test('a real plugin script; failures name the plugin and never show its output', async () => {
    const script = join(dir, 'plugin.sh');
    writeFileSync(
      script,
      '#!/bin/sh\ncase "$1" in\n  ok) echo \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"script-token"}}\' ;;\n  bad) echo \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"secret-xyz","expirationTimestamp":"soon"}}\' ;;\n  *) echo "no credentials for you" >&2; exit 3 ;;\nesac\n',
    );
    chmodSync(script, 0o755);
    const make = (arg: string, command = script) =>
      new KubeClient(
        loadClientConfig({
          kubeconfig: kubeconfigWith(
            dir,
            server.url,
            `{exec: {apiVersion: client.authentication.k8s.io/v1, command: "${command}", args: [${arg}], interactiveMode: IfAvailable, installHint: "install it"}}`,
          ),
        }),
      );
    const ok = make('ok');
    server.requests.length = 0;
    await ok.getJSON('/api/v1/nodes');
    assert.equal(server.requests[0]?.headers['authorization'], 'Bearer script-token');
    ok.close();
    await assert.rejects(
      make('fail').getJSON('/api/v1/nodes'),
      /plugin\.sh.*failed: exit status 3: no credentials for you/,
    );
    await assert.rejects(
      make('bad').getJSON('/api/v1/nodes'),
      (e: unknown) =>
        e instanceof Error && /expirationTimestamp/.test(e.message) && !e.message.includes('secret-xyz'),
    );
    await assert.rejects(
      make('ok', join(dir, 'missing-plugin')).getJSON('/api/v1/nodes'),
      /executable not found; install it/,
    );
    assert.ok(ExecError);
  });
});

describe('HTTP proxies (proxy-url, HTTPS_PROXY/NO_PROXY)', () => {
  test('proxy-url: requests go through the proxy', async () => {
    const server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    const seen: string[] = [];
    // A forward proxy for http:// targets: it gets absolute-form request targets.
    const proxy = http.createServer((req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
      const target = new URL(req.url ?? '');
      const upstream = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: `${target.pathname}${target.search}`,
          method: req.method,
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const address = proxy.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const dir = mkdtempSync(join(tmpdir(), 'kp-proxy-'));
    try {
      const config = loadClientConfig({
        kubeconfig: kubeconfigWith(dir, server.url, '{token: t}', `, proxy-url: "http://127.0.0.1:${port}"`),
      });
      const client = new KubeClient(config, { env: {} });
      assert.equal(client.proxy, `http://127.0.0.1:${port}`);
      await client.getJSON('/api/v1/nodes');
      client.close();
      assert.deepEqual(seen, [`GET ${server.url}/api/v1/nodes`]);
      // Without proxy-url, the environment decides, and loopback is never proxied (Go's rule).
      const { proxyURL: _viaKubeconfig, ...withoutProxy } = config;
      const direct = new KubeClient(withoutProxy, { env: { HTTP_PROXY: `127.0.0.1:${port}` } });
      assert.equal(direct.proxy, undefined);
      direct.close();
    } finally {
      proxy.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('proxy choice (pure)', () => {
  const env = {
    HTTPS_PROXY: 'http://proxy:3128',
    http_proxy: 'proxy:8080',
    NO_PROXY: '.cluster.local,10.0.0.0/8,api.internal:6443,[fd00::1]',
  };
  test('as Go: HTTPS_PROXY for https, HTTP_PROXY (any case, bare host:port) for http, proxy-url wins', () => {
    assert.equal(proxyFor(new URL('https://api.example.com:6443'), undefined, env), 'http://proxy:3128');
    assert.equal(proxyFor(new URL('http://api.example.com'), undefined, env), 'http://proxy:8080');
    assert.equal(proxyFor(new URL('https://127.0.0.1:6443'), 'http://explicit:1', env), 'http://explicit:1');
    assert.equal(proxyFor(new URL('https://api.example.com'), undefined, {}), undefined);
  });
  test('NO_PROXY: domain suffixes, CIDRs, host:port, IPv6; loopback and localhost are never proxied', () => {
    for (const url of [
      'https://kube.cluster.local',
      'https://10.1.2.3:6443',
      'https://api.internal:6443',
      'https://[fd00::1]:6443',
      'https://localhost:6443',
      'https://127.0.0.5',
      'https://[::1]:6443',
    ]) {
      assert.equal(proxyFor(new URL(url), undefined, env), undefined, url);
    }
    for (const url of ['https://api.internal:443', 'https://11.0.0.1', 'https://cluster.local.evil.com']) {
      assert.equal(proxyFor(new URL(url), undefined, env), 'http://proxy:3128', url);
    }
    assert.ok(noProxyMatches('*', 'anything', '443'));
    assert.ok(noProxyMatches('example.com', 'a.example.com', '443'));
    assert.ok(!noProxyMatches('.example.com', 'example.com', '443'));
  });
});
