import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import { configureLogging } from '../../../src/log/log.ts';
import {
  healthCheckAddresses,
  mergeFamilies,
  serviceHealthBody,
  serviceHealthInfo,
  ServiceHealthServer,
} from '../../../src/server/service-health.ts';
import { endpointSlice, service, type EndpointSpec } from '../../support/objects.ts';
import { modelWith, NODE, snapshotOf } from '../conntrack/snapshot.ts';

const logged: string[] = [];
before(() => configureLogging({ write: (line) => logged.push(line) }));
after(() => configureLogging({ write: (line) => process.stderr.write(line) }));

/** A port nothing listens on right now (the kernel's pick for port 0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

function lbService(name: string, hcPort: number, extra: { clusterIPs?: string[] } = {}): Service {
  return service({
    name,
    namespace: 'shop',
    type: 'LoadBalancer',
    clusterIPs: extra.clusterIPs ?? ['10.96.0.80'],
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: hcPort,
    ports: [
      { name: 'http', port: 80, targetPort: 8080, nodePort: 30080 },
      { name: 'https', port: 443, targetPort: 8443, nodePort: 30443 },
    ],
  });
}

function slices(name: string, endpoints: EndpointSpec[], family: 'IPv4' | 'IPv6' = 'IPv4') {
  return endpointSlice({
    service: name,
    namespace: 'shop',
    family,
    ports: [
      { name: 'http', port: 8080 },
      { name: 'https', port: 8443 },
    ],
    endpoints,
  });
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers: Headers;
}

async function get(port: number, host = '127.0.0.1', path = '/'): Promise<Answer> {
  const response = await fetch(`http://${host}:${String(port)}${path}`, { headers: { connection: 'close' } });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

async function refused(port: number, host = '127.0.0.1'): Promise<boolean> {
  try {
    await get(port, host);
    return false;
  } catch (error) {
    return (error as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED';
  }
}

function server(healthy: () => boolean = () => true, recorder?: FakeRecorder, addresses = ['127.0.0.1']) {
  return new ServiceHealthServer({
    addresses,
    health: { status: () => ({ healthy: healthy() }) },
    nodeName: NODE,
    ...(recorder ? { recorder } : {}),
  });
}

interface RecordedEvent {
  readonly service: Service;
  readonly type: string;
  readonly reason: string;
  readonly action: string;
  readonly note: string;
}

class FakeRecorder {
  readonly events: RecordedEvent[] = [];
  serviceEvent(svc: Service, type: string, reason: string, action: string, note: string): Promise<boolean> {
    this.events.push({ service: svc, type, reason, action, note });
    return Promise.resolve(true);
  }
}

test('upstream body: tab-indented JSON without a trailing newline', () => {
  assert.equal(
    serviceHealthBody('shop/web', 2, true),
    '{\n\t"service": {\n\t\t"namespace": "shop",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}',
  );
});

test('local ready endpoints are counted once per address over all ports; others are not counted', () => {
  const snapshot = snapshotOf('IPv4', [
    lbService('web', 32000),
    slices('web', [
      { ip: '10.244.1.11', node: NODE },
      { ip: '10.244.1.12', node: NODE },
      { ip: '10.244.1.13', node: NODE, ready: false, serving: true, terminating: true },
      { ip: '10.244.2.11', node: 'node2' },
    ]),
    service({ name: 'plain', clusterIPs: ['10.96.0.81'], ports: [{ port: 80 }] }),
  ]);
  const info = serviceHealthInfo(snapshot);
  assert.deepEqual([...info.keys()], ['shop/web']);
  assert.equal(info.get('shop/web')?.port, 32000);
  assert.deepEqual([...(info.get('shop/web')?.localEndpoints ?? [])].sort(), ['10.244.1.11', '10.244.1.12']);
});

test('dual-stack: a Service of either family is served; a dual-stack pod counts once', () => {
  const v4 = serviceHealthInfo(
    snapshotOf('IPv4', [
      lbService('web', 32000, { clusterIPs: ['10.96.0.80', 'fd00:10:96::80'] }),
      slices('web', [{ ip: '10.244.1.11', node: NODE }]),
    ]),
  );
  const v6 = serviceHealthInfo(
    snapshotOf('IPv6', [
      lbService('web', 32000, { clusterIPs: ['10.96.0.80', 'fd00:10:96::80'] }),
      slices('web', [{ ip: 'fd00:10:244:1::11', node: NODE }], 'IPv6'),
      lbService('only6', 32001, { clusterIPs: ['fd00:10:96::81'] }),
    ]),
  );
  assert.deepEqual(
    [...mergeFamilies([v4, v6])],
    [
      ['shop/web', { port: 32000, localEndpoints: 1 }],
      ['shop/only6', { port: 32001, localEndpoints: 0 }],
    ],
  );
});

test('listen addresses: all, or the local addresses inside the node port CIDRs', () => {
  const local = ['127.0.0.1', '192.0.2.11', '10.244.1.1', '::1', 'fd00:2::11', 'fe80::1'];
  assert.equal(healthCheckAddresses('all', local), undefined);
  assert.deepEqual(healthCheckAddresses({ IPv4: ['192.0.2.11/32'], IPv6: ['fd00:2::/64'] }, local), [
    '192.0.2.11',
    'fd00:2::11',
  ]);
  assert.deepEqual(healthCheckAddresses({ IPv4: ['127.0.0.0/8'] }, local), ['127.0.0.1']);
  assert.deepEqual(healthCheckAddresses({}, local), []);
});

test('real HTTP: 200 with local endpoints, 503 without or when the proxy is unhealthy; headers', async () => {
  const port = await freePort();
  let healthy = true;
  const hc = server(() => healthy);
  try {
    const model = modelWith('IPv4', [
      lbService('web', port),
      slices('web', [
        { ip: '10.244.1.11', node: NODE },
        { ip: '10.244.1.12', node: NODE },
        { ip: '10.244.2.11', node: 'node2' },
      ]),
    ]);
    await hc.update(model.snapshot());
    const ok = await get(port, '127.0.0.1', '/any/path');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, serviceHealthBody('shop/web', 2, true));
    assert.equal(ok.headers.get('content-type'), 'application/json');
    assert.equal(ok.headers.get('x-content-type-options'), 'nosniff');

    healthy = false;
    const sick = await get(port);
    assert.equal(sick.status, 503);
    assert.equal(sick.body, serviceHealthBody('shop/web', 2, false));
    healthy = true;

    model.upsertSlice(slices('web', [{ ip: '10.244.2.11', node: 'node2' }]));
    await hc.update(model.snapshot());
    const none = await get(port);
    assert.equal(none.status, 503);
    assert.equal(none.body, serviceHealthBody('shop/web', 0, true));
    assert.deepEqual([...hc.openPorts()], [['shop/web', port]]);
  } finally {
    await hc.close();
  }
  assert.ok(await refused(port), 'closed with the server');
});

test('listeners follow the Services: opened, moved on a port change, closed on delete', async () => {
  const [first, second] = [await freePort(), await freePort()];
  const hc = server();
  try {
    const model = modelWith('IPv4', [slices('web', [{ ip: '10.244.1.11', node: NODE }])]);
    await hc.update(model.snapshot());
    assert.ok(await refused(first), 'nothing before the Service exists');

    model.upsertService(lbService('web', first));
    await hc.update(model.snapshot());
    assert.equal((await get(first)).status, 200);

    model.upsertService(lbService('web', second));
    await hc.update(model.snapshot());
    assert.ok(await refused(first), 'old port closed');
    assert.equal((await get(second)).status, 200);

    model.deleteService(lbService('web', second));
    await hc.update(model.snapshot());
    assert.ok(await refused(second), 'closed when the Service is gone');
    assert.deepEqual([...hc.openPorts()], []);
  } finally {
    await hc.close();
  }
});

test('only the given addresses listen', async () => {
  const port = await freePort();
  const hc = server(() => true, undefined, ['127.0.0.1']);
  try {
    await hc.update(
      snapshotOf('IPv4', [lbService('web', port), slices('web', [{ ip: '10.244.1.11', node: NODE }])]),
    );
    assert.equal((await get(port, '127.0.0.1')).status, 200);
    assert.ok(await refused(port, '127.0.0.2'), 'another loopback address is not served');
  } finally {
    await hc.close();
  }
});

test('a port in use: error log and Warning event on the Service, retried after the next sync', async () => {
  const port = await freePort();
  const squatter: Server = createServer();
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  const recorder = new FakeRecorder();
  const hc = server(() => true, recorder);
  try {
    const model = modelWith('IPv4', [
      lbService('web', port),
      slices('web', [{ ip: '10.244.1.11', node: NODE }]),
    ]);
    logged.length = 0;
    await hc.update(model.snapshot());
    assert.deepEqual([...hc.openPorts()], []);
    assert.equal(recorder.events.length, 1);
    const event = recorder.events[0];
    assert.deepEqual(event?.service.metadata, { namespace: 'shop', name: 'web' });
    assert.equal(event.type, 'Warning');
    assert.equal(event.reason, 'FailedToStartServiceHealthcheck');
    assert.match(
      event.note,
      new RegExp(`node node1 failed to start healthcheck "shop/web" on port ${String(port)}: .*EADDRINUSE`),
    );
    assert.ok(logged.some((line) => line.includes('Failed to start service health check')));

    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    await hc.update(model.snapshot()); // the next sync, even without changes
    assert.equal((await get(port)).status, 200);
    assert.equal(recorder.events.length, 1);
  } finally {
    squatter.close();
    await hc.close();
  }
});
