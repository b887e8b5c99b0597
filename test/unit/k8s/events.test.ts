import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from 'kubernetes-types/events/v1.d.ts';
import { buildEvent, EventRecorder, microTime, nodeRef } from '../../../src/k8s/events.ts';
import { startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { captureLogs, clientFor, service } from './helpers.ts';

describe('EventRecorder', () => {
  let server: FakeApiServer;
  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
  });
  after(async () => {
    await server.close();
  });

  test('Starting: a Normal events.k8s.io/v1 Event on the Node, in the default namespace', async () => {
    const client = clientFor(server);
    const now = new Date('2026-01-02T03:04:05.678Z');
    try {
      const recorder = new EventRecorder({ client, nodeName: 'node-a', now: () => now });
      server.requests.length = 0;
      assert.equal(await recorder.starting(), true);
      assert.equal(server.requests[0]?.method, 'POST');
      assert.equal(server.requests[0].url, '/apis/events.k8s.io/v1/namespaces/default/events');
      const events = server.list('events.k8s.io/v1/Event', 'default') as Event[];
      assert.equal(events.length, 1);
      const event = events[0];
      assert.ok(event);
      assert.equal(event.metadata?.name, `node-a.${(BigInt(now.getTime()) * 1_000_000n).toString(16)}`);
      assert.equal(event.eventTime, '2026-01-02T03:04:05.678000Z');
      assert.equal(event.reportingController, 'kube-proxy');
      assert.equal(event.reportingInstance, 'kube-proxy-node-a');
      assert.equal(event.type, 'Normal');
      assert.equal(event.reason, 'Starting');
      assert.equal(event.action, 'StartKubeProxy');
      assert.deepEqual(event.regarding, { kind: 'Node', name: 'node-a', uid: 'node-a' });
    } finally {
      client.close();
    }
  });

  test('a Service event goes to the Service namespace and references it', async () => {
    const client = clientFor(server);
    try {
      const svc = server.create(service('web', {}, 'shop'));
      const recorder = new EventRecorder({ client, nodeName: 'node-a' });
      const ok = await recorder.serviceEvent(
        svc,
        'Warning',
        'FailedToStartServiceHealthcheck',
        'Listen',
        'port 30000 in use',
      );
      assert.equal(ok, true);
      const event = server.list('events.k8s.io/v1/Event', 'shop')[0] as Event | undefined;
      assert.equal(event?.type, 'Warning');
      assert.equal(event.note, 'port 30000 in use');
      assert.deepEqual(event.regarding, {
        kind: 'Service',
        apiVersion: 'v1',
        namespace: 'shop',
        name: 'web',
        uid: svc.metadata?.uid,
        resourceVersion: svc.metadata?.resourceVersion,
      });
    } finally {
      client.close();
    }
  });

  test('a failed post is logged and never thrown', async () => {
    const client = clientFor(server);
    const logs = captureLogs();
    try {
      server.faults.failNext(403, 1);
      const recorder = new EventRecorder({ client, nodeName: 'node-a' });
      assert.equal(await recorder.starting(), false);
      // Nobody listening at all.
      const port = server.port;
      const dead = clientFor({ url: `http://127.0.0.1:${port === 1 ? 2 : 1}` });
      assert.equal(
        await new EventRecorder({ client: dead, nodeName: 'n' }).nodeEvent('Warning', 'X', 'Y', 'z'),
        false,
      );
      dead.close();
    } finally {
      logs.restore();
      client.close();
    }
    const failures = logs.lines.filter((l) => l.includes('Failed to record event'));
    assert.equal(failures.length, 2);
    assert.match(failures[0] ?? '', /403/);
    assert.match(failures[0] ?? '', /reason="Starting"/);
  });

  test('buildEvent caps the note at 1 kB and microTime has microseconds', () => {
    const event = buildEvent(
      { regarding: nodeRef('n'), type: 'Normal', reason: 'R', action: 'A', note: 'é'.repeat(1000) },
      'kube-proxy-n',
      new Date(0),
    );
    assert.ok(Buffer.byteLength(event.note ?? '') <= 1024);
    assert.equal(microTime(new Date(0)), '1970-01-01T00:00:00.000000Z');
  });
});
