import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyHealth, goTimeString, healthzBody, livezBody } from '../../../src/server/health.ts';
import { healthzHandler, serveHttp } from '../../../src/server/http.ts';
import { createProxyMetrics } from '../../../src/metrics/proxy.ts';

test('Go time text form', () => {
  assert.equal(goTimeString(Date.UTC(2026, 10, 22, 6, 5, 4, 120)), '2026-11-22 06:05:04.12 +0000 UTC');
  assert.equal(goTimeString(Date.UTC(2026, 0, 2, 3, 4, 5, 0)), '2026-01-02 03:04:05 +0000 UTC');
});

test('healthy until a queued update waits longer than 2 x syncPeriod', () => {
  let now = 1_000_000;
  const health = new ProxyHealth({ syncPeriodMs: 30_000, now: () => now });
  health.updated('IPv4');
  assert.equal(health.status().healthy, true);
  health.queued('IPv4');
  now += 60_000;
  assert.equal(health.status().healthy, true, 'exactly the timeout is still healthy');
  now += 1;
  const status = health.status();
  assert.equal(status.healthy, false);
  assert.equal(status.lastUpdated, 1_000_000, 'unhealthy reports the real last update');
  health.updated('IPv4');
  assert.equal(health.status().healthy, true);
  assert.equal(health.status().lastUpdated, now, 'healthy reports the current time');
});

test('a second queued request does not reset the pending clock', () => {
  let now = 0;
  const health = new ProxyHealth({ syncPeriodMs: 1000, now: () => now });
  health.updated('IPv4');
  health.queued('IPv4');
  now = 1500;
  health.queued('IPv4');
  now = 2500;
  assert.equal(health.status().healthy, false);
});

test('one stale family makes the proxy unhealthy (dual-stack)', () => {
  let now = 0;
  const health = new ProxyHealth({ syncPeriodMs: 1000, now: () => now });
  health.updated('IPv4');
  health.updated('IPv6');
  health.queued('IPv6');
  now = 5000;
  health.updated('IPv4');
  assert.equal(health.status().healthy, false);
});

test('exact upstream bodies', () => {
  const t = Date.UTC(2026, 10, 22, 10, 0, 0, 500);
  const status = { healthy: true, lastUpdated: t, currentTime: t, nodeEligible: true };
  assert.equal(
    healthzBody(status),
    '{"lastUpdated": "2026-11-22 10:00:00.5 +0000 UTC","currentTime": "2026-11-22 10:00:00.5 +0000 UTC", "nodeEligible": true}',
  );
  assert.equal(
    livezBody(status),
    '{"lastUpdated": "2026-11-22 10:00:00.5 +0000 UTC","currentTime": "2026-11-22 10:00:00.5 +0000 UTC"}',
  );
});

test('/healthz and /livez over HTTP: codes, headers, node eligibility, counters', async () => {
  let now = Date.now();
  const health = new ProxyHealth({ syncPeriodMs: 1000, now: () => now });
  const metrics = createProxyMetrics({ defaultMetrics: false });
  health.updated('IPv4');
  const server = serveHttp({
    name: 'healthz',
    host: '127.0.0.1',
    port: 0,
    handler: healthzHandler(health, metrics),
  });
  try {
    const port = await server.listening;
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${String(port)}${path}`, {
        method: path === '/livez' ? 'POST' : 'GET',
      });
      return {
        code: res.status,
        type: res.headers.get('content-type'),
        body: await res.text(),
        nosniff: res.headers.get('x-content-type-options'),
      };
    };
    let r = await get('/healthz');
    assert.equal(r.code, 200);
    assert.equal(r.type, 'application/json');
    assert.equal(r.nosniff, 'nosniff');
    assert.match(r.body, /"nodeEligible": true}$/);
    health.setNodeEligible(false);
    r = await get('/healthz');
    assert.equal(r.code, 503);
    assert.match(r.body, /"nodeEligible": false}$/);
    assert.equal((await get('/livez')).code, 200, 'livez ignores node eligibility');
    health.queued('IPv4');
    now += 2001;
    assert.equal((await get('/livez')).code, 503);
    assert.equal((await get('/nope')).code, 404);
    const text = await metrics.registry.metrics();
    assert.match(text, /kubeproxy_proxy_healthz_total\{code="200"\} 1/);
    assert.match(text, /kubeproxy_proxy_healthz_total\{code="503"\} 1/);
    assert.match(text, /kubeproxy_proxy_livez_total\{code="503"\} 1/);
  } finally {
    await server.close();
  }
});
