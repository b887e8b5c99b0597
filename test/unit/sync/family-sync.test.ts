import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FamilySync } from '../../../src/sync/family-sync.ts';
import type { Backend, SyncRequest } from '../../../src/sync/backend.ts';
import type { ProxySnapshot } from '../../../src/model/types.ts';
import { ProxyHealth } from '../../../src/server/health.ts';
import { createProxyMetrics } from '../../../src/metrics/proxy.ts';
import { FakeClock } from '../../support/fake-clock.ts';

function emptySnapshot(triggerTimes = new Map<string, number[]>()): ProxySnapshot {
  return {
    family: 'IPv4',
    node: { name: 'n1', zone: '', labels: {}, podCIDRs: [], nodeIPs: [] },
    servicePorts: new Map(),
    serviceCIDRs: [],
    changedServices: new Set(),
    udpEndpointsChanged: false,
    triggerTimes,
    serviceChanges: 1,
    endpointChanges: 2,
  };
}

/** Records what the loop asked of the backend; can be told to fail or to report lost rules. */
class RecordingBackend implements Backend {
  readonly family = 'IPv4' as const;
  readonly mode = 'iptables';
  requests: SyncRequest[] = [];
  failures = 0;
  rulesLost = false;
  sync(request: SyncRequest) {
    this.requests.push(request);
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new Error('iptables-restore: exit status 1'));
    }
    return Promise.resolve({ full: request.full, renderSeconds: 0, applySeconds: 0 });
  }
  rulesIntact() {
    const lost = this.rulesLost;
    this.rulesLost = false;
    return Promise.resolve(!lost);
  }
}

function setup(triggerTimes?: Map<string, number[]>) {
  const clock = new FakeClock(10_000_000);
  const proxier = new RecordingBackend();
  const health = new ProxyHealth({ syncPeriodMs: 30_000, now: () => clock.now() });
  const metrics = createProxyMetrics({ defaultMetrics: false });
  const sync = new FamilySync({
    backend: proxier,
    source: { snapshot: () => emptySnapshot(triggerTimes) },
    health,
    metrics,
    minSyncPeriodMs: 1000,
    syncPeriodMs: 30_000,
    startTimeMs: 9_000_000,
    clock,
  });
  return { clock, proxier, health, metrics, sync };
}

test('first sync is full, later ones partial; a failure forces the next to be full', async () => {
  const { clock, proxier, sync } = setup();
  sync.start();
  await clock.advance(0);
  sync.requestSync();
  await clock.advance(1000);
  assert.deepEqual(
    proxier.requests.map((r) => r.full),
    [true, false],
  );
  proxier.failures = 1;
  sync.requestSync();
  await clock.advance(1000);
  sync.requestSync();
  await clock.advance(1000);
  assert.deepEqual(
    proxier.requests.map((r) => r.full),
    [true, false, false, true],
  );
  sync.stop();
});

test('a failed sync is retried within syncPeriod without any new request', async () => {
  const { clock, proxier, sync } = setup();
  proxier.failures = 1;
  sync.start();
  await clock.advance(0);
  assert.equal(sync.successfulSyncs, 0);
  await clock.advance(30_000);
  assert.equal(sync.successfulSyncs, 1);
  assert.equal(proxier.requests[1]?.full, true);
  sync.stop();
});

test('full sync at least every hour', async () => {
  const { clock, proxier, sync } = setup();
  sync.start();
  await clock.advance(0);
  await clock.advance(3_600_001);
  assert.equal(proxier.requests.length, 2);
  // Marked periodic: the backend must compare with the kernel rather than trust its record.
  const hourly = proxier.requests[1];
  assert.deepEqual([hourly?.full, hourly?.periodic], [true, true]);
  sync.stop();
});

test('only the hourly full sync is periodic; a node topology change is not', async () => {
  const { clock, proxier, sync } = setup();
  sync.start();
  await clock.advance(0);
  sync.requestSync();
  await clock.advance(1000);
  sync.requestFullSync();
  await clock.advance(1000);
  assert.deepEqual(
    proxier.requests.map((r) => [r.full, r.periodic]),
    [
      [true, true],
      [false, false],
      [true, false],
    ],
  );
  // The hour counts from the last full sync, forced or not.
  await clock.advance(3_600_000 - 2000);
  assert.equal(proxier.requests.length, 3);
  await clock.advance(2000);
  assert.equal(proxier.requests.length, 4);
  assert.deepEqual([proxier.requests[3]?.full, proxier.requests[3]?.periodic], [true, true]);
  sync.stop();
});

test('lost rules (canary) force a full sync within the integrity check period (5 s)', async () => {
  const { clock, proxier, sync } = setup();
  sync.start();
  await clock.advance(0);
  proxier.rulesLost = true;
  await clock.advance(5_000);
  assert.deepEqual(
    proxier.requests.map((r) => r.full),
    [true, true],
  );
  sync.stop();
});

test('healthz goes stale while syncs keep failing and recovers after success', async () => {
  const { clock, proxier, health, sync } = setup();
  sync.start();
  await clock.advance(0);
  proxier.failures = 100;
  sync.requestSync();
  await clock.advance(60_001);
  assert.equal(health.status().healthy, false);
  proxier.failures = 0;
  await clock.advance(30_000);
  assert.equal(health.status().healthy, true);
  sync.stop();
});

test('metrics: durations, last timestamp, programming latency only after start', async () => {
  const triggers = new Map([['default/web', [9_999_000, 8_000_000]]]);
  const { clock, metrics, sync } = setup(triggers);
  sync.start();
  await clock.advance(0);
  const text = await metrics.registry.metrics();
  assert.match(text, /kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} 1/);
  assert.match(text, /kubeproxy_sync_full_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} 1/);
  assert.match(text, /kubeproxy_sync_proxy_rules_last_timestamp_seconds\{ip_family="IPv4"\} 10000/);
  // One trigger time after proxy start (1 s old), one before: only the first is observed.
  assert.match(text, /kubeproxy_network_programming_duration_seconds_count\{ip_family="IPv4"\} 1/);
  assert.match(text, /kubeproxy_network_programming_duration_seconds_bucket\{le="1",ip_family="IPv4"\} 1/);
  sync.stop();
});

test('a failed sync carries its UDP flag, trigger times and changed Services to the retry', async () => {
  const clock = new FakeClock(10_000_000);
  const proxier = new RecordingBackend();
  const health = new ProxyHealth({ syncPeriodMs: 30_000, now: () => clock.now() });
  const snapshots: ProxySnapshot[] = [
    {
      ...emptySnapshot(new Map([['default/dns', [9_999_000]]])),
      changedServices: new Set(['default/dns']),
      udpEndpointsChanged: true,
    },
    emptySnapshot(),
  ];
  const seen: ProxySnapshot[] = [];
  const sync = new FamilySync({
    backend: proxier,
    source: { snapshot: () => snapshots.shift() ?? emptySnapshot() },
    health,
    minSyncPeriodMs: 1000,
    syncPeriodMs: 30_000,
    clock,
    afterSync: (snapshot) => {
      seen.push(snapshot);
    },
  });
  proxier.failures = 1;
  sync.start();
  await clock.advance(0);
  assert.equal(seen.length, 0, 'no post-sync step after a failure');
  await clock.advance(30_000);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.udpEndpointsChanged, true, 'conntrack cleanup is still owed');
  assert.deepEqual([...seen[0].changedServices], ['default/dns']);
  assert.deepEqual(seen[0].triggerTimes.get('default/dns'), [9_999_000]);
  sync.stop();
});

test('the canary is not consulted while a sync runs', async () => {
  const clock = new FakeClock(10_000_000);
  let release: (() => void) | undefined;
  let checks = 0;
  const proxier: Backend = {
    family: 'IPv4',
    mode: 'iptables',
    sync: async (request) => {
      await new Promise<void>((resolve) => (release = resolve));
      return { full: request.full, renderSeconds: 0, applySeconds: 0 };
    },
    rulesIntact: () => {
      checks++;
      return Promise.resolve(true);
    },
  };
  const sync = new FamilySync({
    backend: proxier,
    source: { snapshot: () => emptySnapshot() },
    health: new ProxyHealth({ syncPeriodMs: 30_000, now: () => clock.now() }),
    minSyncPeriodMs: 1000,
    syncPeriodMs: 30_000,
    clock,
  });
  sync.start();
  await clock.advance(30_000);
  assert.equal(checks, 0, 'the first sync is still running');
  release?.();
  await clock.advance(5_000);
  assert.equal(checks, 1);
  sync.stop();
});
