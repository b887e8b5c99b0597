import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import {
  PROXY_LABEL_SELECTOR,
  nodeWatchSpec,
  watchEndpointSlices,
  watchNode,
  watchServices,
} from '../../../src/k8s/watches.ts';
import { startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { pollUntil } from '../../support/netns.ts';
import { clientFor, FAST, Recorder, service } from './helpers.ts';

function slice(name: string, labels: Record<string, string>): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'web', ...labels } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.1.0.5'], conditions: { ready: true } }],
    ports: [{ port: 8080, protocol: 'TCP' }],
  };
}

describe("kube-proxy's three watches", () => {
  let server: FakeApiServer;
  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
  });
  after(async () => {
    await server.close();
  });

  test("the selector is upstream's", () => {
    assert.equal(
      PROXY_LABEL_SELECTOR,
      '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless',
    );
    assert.deepEqual(nodeWatchSpec('worker-1'), {
      name: 'node worker-1',
      path: '/api/v1/nodes',
      expectedKind: { apiVersion: 'v1', kind: 'Node' },
      fieldSelector: 'metadata.name=worker-1',
    });
    assert.throws(() => nodeWatchSpec(''), /node name/);
  });

  test('Services and EndpointSlices of other proxies and headless Services are left out; only this Node is seen', async () => {
    server.create(service('web'));
    server.create(service('other', { 'service.kubernetes.io/service-proxy-name': 'cilium' }));
    server.create(service('headless', { 'service.kubernetes.io/headless': '' }));
    server.create(slice('web-abc', {}));
    server.create(slice('other-abc', { 'service.kubernetes.io/service-proxy-name': 'cilium' }));
    server.create(slice('headless-abc', { 'service.kubernetes.io/headless': '' }));
    const me: Node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'worker-1', labels: { 'topology.kubernetes.io/zone': 'z1' } },
      spec: { podCIDRs: ['10.244.1.0/24'] },
    };
    server.create(me);
    server.create({ ...me, metadata: { name: 'worker-2' } });

    const client = clientFor(server);
    const services = new Recorder<Service>();
    const slices = new Recorder<EndpointSlice>();
    const nodes = new Recorder<Node>();
    const reflectors: { stop(): Promise<void>; hasSynced(): boolean }[] = [];
    try {
      const rs = watchServices(client, services.handlers(), FAST);
      const re = watchEndpointSlices(client, slices.handlers(), FAST);
      const rn = watchNode(client, 'worker-1', nodes.handlers(), FAST);
      for (const r of [rs, re, rn]) {
        r.start();
        reflectors.push(r);
      }
      await pollUntil(
        'all synced',
        () => (reflectors.every((r) => r.hasSynced()) ? true : undefined),
        5_000,
        5,
      );
      assert.deepEqual([...services.state.keys()], ['default/web']);
      assert.deepEqual([...slices.state.keys()], ['default/web-abc']);
      assert.deepEqual([...nodes.state.keys()], ['worker-1']);
      assert.deepEqual(nodes.state.get('worker-1')?.spec?.podCIDRs, ['10.244.1.0/24']);
      // Handlers get whole objects; the Service and slice caches keep only identity and version
      // (the model has its own parsed copy), the Node cache keeps the whole Node.
      assert.ok(services.state.get('default/web')?.spec?.ports);
      const cachedService = rs.get('default/web');
      assert.equal(cachedService?.spec, undefined);
      assert.ok(cachedService?.metadata?.resourceVersion);
      assert.deepEqual(Object.keys(cachedService), ['metadata']);
      assert.deepEqual(Object.keys(cachedService.metadata).sort(), ['name', 'namespace', 'resourceVersion']);
      assert.equal(re.get('default/web-abc')?.endpoints, undefined);
      assert.deepEqual(rn.get('worker-1')?.spec?.podCIDRs, ['10.244.1.0/24']);

      // Labelling a Service for another proxy removes it from this one's view.
      await pollUntil('watching', () => (server.openWatches() === 3 ? true : undefined), 5_000, 5);
      const web = server.get('Service', 'default', 'web') as Service;
      server.update({
        ...web,
        metadata: { ...web.metadata, labels: { 'service.kubernetes.io/service-proxy-name': 'x' } },
      });
      await pollUntil('web gone', () => (services.state.size === 0 ? true : undefined), 5_000, 5);
      assert.equal(services.events.at(-1), 'delete default/web');
      // Changes to another Node are not seen; to this one they are.
      const other = server.get('Node', '', 'worker-2') as Node;
      server.update({ ...other, metadata: { ...other.metadata, labels: { changed: '1' } } });
      const mine = server.get('Node', '', 'worker-1') as Node;
      server.update({
        ...mine,
        metadata: { ...mine.metadata, labels: { 'topology.kubernetes.io/zone': 'z2' } },
      });
      await pollUntil(
        'zone change',
        () =>
          nodes.state.get('worker-1')?.metadata?.labels?.['topology.kubernetes.io/zone'] === 'z2'
            ? true
            : undefined,
        5_000,
        5,
      );
      assert.deepEqual(nodes.events, ['add worker-1', 'synced', 'update worker-1']);
    } finally {
      await Promise.all(reflectors.map((r) => r.stop()));
      client.close();
    }
  });
});
