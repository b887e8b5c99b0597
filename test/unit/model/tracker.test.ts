import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyModel } from '../../../src/model/tracker.ts';
import { formatProblem, type Problem } from '../../../src/model/problem.ts';
import type { ProxySnapshot } from '../../../src/model/types.ts';
import { ep, frozen, node, service, slice } from './fixtures.ts';

const START = Date.UTC(2024, 0, 1);

function model(problems: Problem[] = []): ProxyModel {
  return new ProxyModel({
    family: 'IPv4',
    nodeName: 'node-a',
    proxyStartTimeMs: START,
    onProblem: (p) => problems.push(p),
  });
}

function endpointsOf(snap: ProxySnapshot, key: string): string[] {
  return snap.servicePorts.get(key)?.endpoints.map((e) => e.endpoint) ?? [];
}

describe('ProxyModel: snapshots', () => {
  it('builds service port states with merged endpoints, in sorted key order', () => {
    const m = model();
    m.upsertService(service({ name: 'web', ports: [{ name: 'http', port: 80 }] }));
    m.upsertService(
      service({
        name: 'api',
        clusterIP: '10.96.0.11',
        ports: [
          { name: 'b', port: 81 },
          { name: 'a', port: 80 },
        ],
      }),
    );
    m.upsertSlice(
      slice({ service: 'web', name: 'web-1', endpoints: [ep('10.0.0.9', { nodeName: 'node-a' })] }),
    );
    m.upsertSlice(slice({ service: 'web', name: 'web-2', endpoints: [ep('10.0.0.10')] }));
    const snap = m.snapshot();
    assert.deepEqual(
      [...snap.servicePorts.keys()],
      ['default/api:a/TCP', 'default/api:b/TCP', 'default/web:http/TCP'],
    );
    assert.deepEqual(endpointsOf(snap, 'default/web:http/TCP'), ['10.0.0.10:8080', '10.0.0.9:8080']);
    const web = snap.servicePorts.get('default/web:http/TCP');
    assert.deepEqual(
      web?.endpoints.map((e) => e.isLocal),
      [false, true],
    );
    assert.deepEqual(
      web.selection.clusterEndpoints.map((e) => e.endpoint),
      ['10.0.0.10:8080', '10.0.0.9:8080'],
    );
    assert.deepEqual(endpointsOf(snap, 'default/api:a/TCP'), []);
    assert.deepEqual([...snap.changedServices].sort(), ['default/api', 'default/web']);
    assert.equal(snap.serviceChanges, 2);
    assert.equal(snap.endpointChanges, 2);
    assert.equal(snap.family, 'IPv4');
    assert.deepEqual(snap.node, { name: 'node-a', zone: '', labels: {}, podCIDRs: [], nodeIPs: [] });
  });

  it('keeps sorted order when a Service whose keys sort first arrives later', () => {
    const m = model();
    m.upsertService(service({ name: 'zeta' }));
    m.snapshot();
    m.upsertService(service({ name: 'alpha' }));
    assert.deepEqual(
      [...m.snapshot().servicePorts.keys()],
      ['default/alpha:http/TCP', 'default/zeta:http/TCP'],
    );
  });

  it('reuses unchanged states by identity and reports only changed Services', () => {
    const m = model();
    m.upsertService(service({ name: 'a' }));
    m.upsertService(service({ name: 'b' }));
    m.upsertSlice(slice({ service: 'a', name: 'a-1' }));
    m.upsertSlice(slice({ service: 'b', name: 'b-1' }));
    const first = frozen(m.snapshot());
    m.upsertSlice(slice({ service: 'a', name: 'a-1', endpoints: [ep('10.244.1.5'), ep('10.244.1.6')] }));
    const second = m.snapshot();
    assert.deepEqual([...second.changedServices], ['default/a']);
    assert.equal(second.servicePorts.get('default/b:http/TCP'), first.servicePorts.get('default/b:http/TCP'));
    assert.notEqual(
      second.servicePorts.get('default/a:http/TCP'),
      first.servicePorts.get('default/a:http/TCP'),
    );
    // The service port itself did not change: its object is kept as well.
    assert.equal(
      second.servicePorts.get('default/a:http/TCP')?.servicePort,
      first.servicePorts.get('default/a:http/TCP')?.servicePort,
    );
    assert.deepEqual(endpointsOf(second, 'default/a:http/TCP'), ['10.244.1.5:8080', '10.244.1.6:8080']);
  });

  it('returns the same map and no changes when nothing happened', () => {
    const m = model();
    m.upsertService(service());
    const first = m.snapshot();
    const second = m.snapshot();
    assert.equal(second.servicePorts, first.servicePorts);
    assert.equal(second.changedServices.size, 0);
    assert.equal(second.serviceChanges, 0);
  });

  it('reports deleted Services as changed and drops their ports', () => {
    const m = model();
    m.upsertService(service({ name: 'a' }));
    m.upsertService(service({ name: 'b' }));
    m.snapshot();
    assert.equal(m.deleteService(service({ name: 'a' })), true);
    const snap = m.snapshot();
    assert.deepEqual([...snap.changedServices], ['default/a']);
    assert.deepEqual([...snap.servicePorts.keys()], ['default/b:http/TCP']);
    assert.equal(m.deleteService(service({ name: 'never-seen' })), false);
    assert.equal(m.deleteSlice(slice({ name: 'never-seen' })), false);
    assert.equal(m.hasPendingChanges(), false);
  });

  it('recomputes a Service when its port set changes (port removed)', () => {
    const m = model();
    m.upsertService(
      service({
        ports: [
          { name: 'a', port: 80 },
          { name: 'b', port: 81 },
        ],
      }),
    );
    m.snapshot();
    m.upsertService(service({ ports: [{ name: 'a', port: 80 }] }));
    const snap = m.snapshot();
    assert.deepEqual([...snap.servicePorts.keys()], ['default/web:a/TCP']);
    assert.deepEqual([...snap.changedServices], ['default/web']);
  });

  it('follows a slice whose service label moves it to another Service', () => {
    const m = model();
    m.upsertService(service({ name: 'a' }));
    m.upsertService(service({ name: 'b' }));
    m.upsertSlice(slice({ service: 'a', name: 's' }));
    m.snapshot();
    m.upsertSlice(slice({ service: 'b', name: 's' }));
    const snap = m.snapshot();
    assert.deepEqual([...snap.changedServices].sort(), ['default/a', 'default/b']);
    assert.deepEqual(endpointsOf(snap, 'default/a:http/TCP'), []);
    assert.deepEqual(endpointsOf(snap, 'default/b:http/TCP'), ['10.244.1.5:8080']);
  });
});

describe('ProxyModel: pending changes (spec 1.8)', () => {
  it('has no pending change for an update identical in effect (resync, label-only edit)', () => {
    const m = model();
    assert.equal(m.hasPendingChanges(), false);
    assert.equal(m.upsertService(service()), true);
    assert.equal(m.hasPendingChanges(), true);
    m.snapshot();
    assert.equal(m.upsertService(service()), false);
    const relabelled = service();
    relabelled.metadata = { ...relabelled.metadata, labels: { team: 'x' }, resourceVersion: '42' };
    assert.equal(m.upsertService(relabelled), false);
    assert.equal(m.hasPendingChanges(), false);
  });

  it('drops changes that revert before the next snapshot', () => {
    const m = model();
    m.upsertService(service());
    m.upsertSlice(slice());
    const first = m.snapshot();
    assert.equal(m.upsertService(service({ clusterIP: '10.96.0.99' })), true);
    assert.equal(m.upsertSlice(slice({ endpoints: [] })), true);
    assert.equal(m.hasPendingChanges(), true);
    assert.equal(m.upsertService(service()), true);
    assert.equal(m.upsertSlice(slice()), true);
    assert.equal(m.hasPendingChanges(), false);
    const second = m.snapshot();
    assert.equal(second.changedServices.size, 0);
    assert.equal(second.servicePorts, first.servicePorts);
  });

  it('an add followed by a delete before any snapshot is no change at all', () => {
    const m = model();
    m.upsertService(service());
    m.deleteService(service());
    assert.equal(m.hasPendingChanges(), false);
    assert.equal(m.snapshot().servicePorts.size, 0);
  });
});

describe('ProxyModel: UDP flag and trigger times', () => {
  const udp = [{ name: 'dns', port: 53, protocol: 'UDP' }];
  const udpSlice = (ips: string[]): ReturnType<typeof slice> =>
    slice({ ports: [{ name: 'dns', port: 53, protocol: 'UDP' }], endpoints: ips.map((ip) => ep(ip)) });

  it('sets udpEndpointsChanged when a UDP service port changes endpoints, not for TCP or port-only changes', () => {
    const m = model();
    m.upsertService(service({ ports: udp }));
    m.upsertService(service({ name: 'tcp' }));
    m.upsertSlice(udpSlice(['10.0.0.1']));
    assert.equal(m.snapshot().udpEndpointsChanged, true);
    m.upsertSlice(slice({ service: 'tcp', name: 'tcp-1' }));
    assert.equal(m.snapshot().udpEndpointsChanged, false);
    m.upsertService(service({ ports: udp, clusterIP: '10.96.0.77' }));
    const ipOnly = m.snapshot();
    assert.deepEqual([...ipOnly.changedServices], ['default/web']);
    assert.equal(ipOnly.udpEndpointsChanged, false);
    m.upsertSlice(udpSlice(['10.0.0.2']));
    assert.equal(m.snapshot().udpEndpointsChanged, true);
    m.deleteService(service({ ports: udp }));
    assert.equal(m.snapshot().udpEndpointsChanged, true);
  });

  it('reports trigger times after proxy start for changed Services, and drops them on delete', () => {
    const m = model();
    m.upsertService(service());
    m.upsertService(service({ name: 'old' }));
    m.upsertSlice(slice({ triggerTime: '2024-01-01T00:00:05Z' }));
    m.upsertSlice(slice({ service: 'old', name: 'old-1', triggerTime: '2023-12-31T23:59:59Z' }));
    const snap = m.snapshot();
    assert.deepEqual([...snap.triggerTimes], [['default/web', [START + 5000]]]);

    m.upsertSlice(slice({ endpoints: [], triggerTime: '2024-01-01T00:01:00Z' }));
    m.deleteSlice(slice());
    assert.deepEqual([...m.snapshot().triggerTimes], []);
    assert.deepEqual([...m.snapshot().triggerTimes], []);
  });

  it('records no trigger time for a slice update without effect', () => {
    const m = model();
    m.upsertService(service());
    m.upsertSlice(slice({ triggerTime: '2024-01-01T00:00:05Z' }));
    m.snapshot();
    assert.equal(m.upsertSlice(slice({ triggerTime: '2024-01-01T00:00:09Z' })), false);
    assert.equal(m.snapshot().triggerTimes.size, 0);
  });
});

describe('ProxyModel: node and topology', () => {
  const hinted = (): ReturnType<typeof slice> =>
    slice({ endpoints: [ep('10.0.0.1', { zones: ['z1'] }), ep('10.0.0.2', { zones: ['z2'] })] });

  it('takes zone, labels, podCIDRs and node IPs of its family; the first node is not a change', () => {
    const m = model();
    const result = m.setNode(
      node('node-a', {
        zone: 'z1',
        podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'],
        addresses: [
          { type: 'Hostname', address: 'node-a' },
          { type: 'ExternalIP', address: '203.0.113.5' },
          { type: 'InternalIP', address: 'fd00::5' },
          { type: 'InternalIP', address: '192.168.0.5' },
        ],
      }),
    );
    assert.deepEqual(result, { topologyChanged: false, contextChanged: false });
    assert.deepEqual(m.snapshot().node, {
      name: 'node-a',
      zone: 'z1',
      labels: { 'topology.kubernetes.io/zone': 'z1' },
      podCIDRs: ['10.244.1.0/24'],
      nodeIPs: ['192.168.0.5', '203.0.113.5'],
    });
  });

  it('re-selects every Service on a zone change, reusing states whose selection is the same', () => {
    const m = model();
    m.setNode(node('node-a', { zone: 'z1' }));
    m.upsertService(service());
    m.upsertService(service({ name: 'plain' }));
    m.upsertSlice(hinted());
    m.upsertSlice(slice({ service: 'plain', name: 'plain-1' }));
    const first = m.snapshot();
    assert.deepEqual(
      first.servicePorts.get('default/web:http/TCP')?.selection.clusterEndpoints.map((e) => e.ip),
      ['10.0.0.1'],
    );

    assert.deepEqual(m.setNode(node('node-a', { zone: 'z1' })), {
      topologyChanged: false,
      contextChanged: false,
    });
    assert.equal(m.hasPendingChanges(), false);
    assert.deepEqual(m.setNode(node('node-a', { zone: 'z2' })), {
      topologyChanged: true,
      contextChanged: true,
    });
    assert.equal(m.hasPendingChanges(), true);
    const second = m.snapshot();
    assert.deepEqual(
      second.servicePorts.get('default/web:http/TCP')?.selection.clusterEndpoints.map((e) => e.ip),
      ['10.0.0.2'],
    );
    assert.deepEqual([...second.changedServices], ['default/web']);
    assert.equal(
      second.servicePorts.get('default/plain:http/TCP'),
      first.servicePorts.get('default/plain:http/TCP'),
    );
    assert.equal(
      second.servicePorts.get('default/web:http/TCP')?.endpoints,
      first.servicePorts.get('default/web:http/TCP')?.endpoints,
    );
    assert.equal(m.lastSnapshotWork.recomputedServices, 0);
    assert.equal(m.lastSnapshotWork.reselectedServicePorts, 2);
  });

  it('re-selects when the first node brings a zone that earlier snapshots did not have', () => {
    const m = model();
    m.upsertService(service());
    m.upsertSlice(hinted());
    assert.equal(m.snapshot().servicePorts.get('default/web:http/TCP')?.selection.clusterEndpoints.length, 2);
    assert.deepEqual(m.setNode(node('node-a', { zone: 'z2' })).topologyChanged, false);
    assert.deepEqual(
      m
        .snapshot()
        .servicePorts.get('default/web:http/TCP')
        ?.selection.clusterEndpoints.map((e) => e.ip),
      ['10.0.0.2'],
    );
  });

  it('ignores another node and bad node addresses with problems', () => {
    const problems: Problem[] = [];
    const m = model(problems);
    m.setNode(node('node-b', { zone: 'z9' }));
    m.setNode(node('node-a', { addresses: [{ type: 'InternalIP', address: '10.0.0.1; rm' }] }));
    assert.equal(m.node.zone, '');
    assert.deepEqual(problems.map(formatProblem), [
      'Node node-b: metadata.name: "node-b" is not this node, ignored',
      'Node node-a: status.addresses[0].address: invalid IP "10.0.0.1; rm", ignored',
    ]);
  });
});

describe('ProxyModel: hostile input', () => {
  it('skips a malformed Service with a problem, leaving other Services untouched', () => {
    const problems: Problem[] = [];
    const m = model(problems);
    m.upsertService(service({ name: 'good' }));
    m.upsertService(service({ name: 'bad', ports: [{ name: 'x', port: 99999 }] }));
    const snap = m.snapshot();
    assert.deepEqual([...snap.servicePorts.keys()], ['default/good:http/TCP']);
    assert.deepEqual(problems.map(formatProblem), [
      'Service default/bad: spec.ports[0].port: invalid port 99999',
    ]);
  });

  it('removes a Service whose update turns malformed (never half-rendered), and restores it when fixed', () => {
    const m = model();
    m.upsertService(service());
    m.snapshot();
    m.upsertService(service({ clusterIP: '10.96.0.10 -j ACCEPT' }));
    const broken = m.snapshot();
    assert.equal(broken.servicePorts.size, 0);
    assert.deepEqual([...broken.changedServices], ['default/web']);
    m.upsertService(service());
    assert.equal(m.snapshot().servicePorts.size, 1);
  });

  it('never throws, whatever arrives, and a throwing problem sink is contained', () => {
    const m = new ProxyModel({
      family: 'IPv4',
      nodeName: 'node-a',
      proxyStartTimeMs: START,
      onProblem: () => {
        throw new Error('sink broke');
      },
    });
    const hostile: unknown[] = [
      null,
      undefined,
      3,
      'x',
      [],
      {},
      { metadata: null },
      { metadata: { name: 'a', namespace: 'b' }, spec: null },
    ];
    const getter = Object.defineProperty({}, 'metadata', {
      get(): never {
        throw new Error('boom');
      },
    });
    hostile.push(getter);
    for (const value of hostile) {
      assert.doesNotThrow(() => m.upsertService(value as never));
      assert.doesNotThrow(() => m.deleteService(value as never));
      assert.doesNotThrow(() => m.upsertSlice(value as never));
      assert.doesNotThrow(() => m.deleteSlice(value as never));
      assert.doesNotThrow(() => m.setNode(value as never));
    }
    m.upsertService(service({ clusterIP: 'nope' }));
    assert.equal(m.snapshot().servicePorts.size, 0);
  });
});

describe('ProxyModel: cost follows the change', () => {
  it('recomputes only the touched Service among 10,000', () => {
    const m = model();
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      const name = `svc-${i}`;
      m.upsertService(service({ name, clusterIP: `10.96.${i >> 8}.${i & 255}` }));
      m.upsertSlice(
        slice({ service: name, name: `${name}-1`, endpoints: [ep(`10.244.${i >> 8}.${i & 255}`)] }),
      );
    }
    const first = frozen(m.snapshot());
    assert.equal(first.servicePorts.size, N);
    assert.equal(m.lastSnapshotWork.recomputedServices, N);
    m.upsertSlice(slice({ service: 'svc-42', name: 'svc-42-1', endpoints: [ep('10.245.0.1')] }));
    const second = m.snapshot();
    assert.equal(m.lastSnapshotWork.recomputedServices, 1);
    assert.equal(m.lastSnapshotWork.reselectedServicePorts, 0);
    assert.deepEqual([...second.changedServices], ['default/svc-42']);
    assert.deepEqual([...(second.changedServicePorts ?? [])], ['default/svc-42:http/TCP']);
    assert.equal(second.generation, (first.generation ?? 0) + 1);
    assert.deepEqual(endpointsOf(second, 'default/svc-42:http/TCP'), ['10.245.0.1:8080']);
    let reused = 0;
    for (const [key, state] of second.servicePorts) if (first.servicePorts.get(key) === state) reused++;
    assert.equal(reused, N - 1);
  });
});

describe('ProxyModel: ServiceCIDRs', () => {
  const cidr = (name: string, cidrs: unknown): unknown => ({ metadata: { name }, spec: { cidrs } });

  it("carries the union of the family's CIDRs, sorted, and asks for a sync only when it changes", () => {
    const m = model();
    assert.deepEqual(m.snapshot().serviceCIDRs, []);
    assert.equal(m.upsertServiceCIDR(cidr('kubernetes', ['10.96.0.0/16', 'fd00:10:96::/112'])), true);
    assert.equal(m.hasPendingChanges(), true);
    const first = m.snapshot();
    assert.deepEqual(first.serviceCIDRs, ['10.96.0.0/16']);
    assert.equal(m.hasPendingChanges(), false);
    // The same CIDR from a second object changes nothing; a new one does.
    assert.equal(m.upsertServiceCIDR(cidr('copy', ['10.96.0.0/16'])), false);
    assert.equal(m.upsertServiceCIDR(cidr('extra', ['10.100.0.0/24'])), true);
    const second = m.snapshot();
    assert.deepEqual(second.serviceCIDRs, ['10.100.0.0/24', '10.96.0.0/16']);
    assert.equal(m.snapshot().serviceCIDRs, second.serviceCIDRs, 'unchanged: the same array');
    // Deleting one of two objects with the same CIDR keeps it.
    assert.equal(m.deleteServiceCIDR(cidr('kubernetes', [])), false);
    assert.equal(m.deleteServiceCIDR(cidr('extra', [])), true);
    assert.deepEqual(m.snapshot().serviceCIDRs, ['10.96.0.0/16']);
  });

  it('a change reverted before the next snapshot is no change', () => {
    const m = model();
    m.upsertServiceCIDR(cidr('kubernetes', ['10.96.0.0/16']));
    m.snapshot();
    assert.equal(m.upsertServiceCIDR(cidr('kubernetes', ['10.96.0.0/12'])), true);
    assert.equal(m.upsertServiceCIDR(cidr('kubernetes', ['10.96.0.0/16'])), false);
    assert.equal(m.hasPendingChanges(), false);
  });

  it('reports entries it cannot use, naming the object and field, and keeps the rest', () => {
    const problems: Problem[] = [];
    const m = model(problems);
    m.upsertServiceCIDR(cidr('bad', ['10.96.0.0/16', 'not-a-cidr', 7, ' 10.97.0.0/16']));
    m.upsertServiceCIDR({ spec: { cidrs: ['10.98.0.0/16'] } });
    m.upsertServiceCIDR(cidr('weird', 'text'));
    assert.deepEqual(m.snapshot().serviceCIDRs, ['10.96.0.0/16']);
    assert.deepEqual(problems.map(formatProblem), [
      'ServiceCIDR bad: spec.cidrs[1]: "not-a-cidr" is not a CIDR, ignored',
      'ServiceCIDR bad: spec.cidrs[2]: 7 is not a CIDR, ignored',
      'ServiceCIDR bad: spec.cidrs[3]: " 10.97.0.0/16" is not a CIDR, ignored',
      'ServiceCIDR : metadata.name: missing is not a name, the object is ignored',
      'ServiceCIDR weird: spec.cidrs: "text" is not a list',
    ]);
  });
});
