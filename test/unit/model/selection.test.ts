import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  externallyAccessible,
  selectEndpoints,
  topologyMode,
  usesClusterEndpoints,
  usesLocalEndpoints,
} from '../../../src/model/selection.ts';
import { makeServicePortName } from '../../../src/model/service.ts';
import type { Endpoint, EndpointSelection, ServicePort } from '../../../src/model/types.ts';

const NODE = { name: 'node-a', zone: 'zone-1' };

function sp(overrides: Partial<ServicePort> = {}): ServicePort {
  return {
    id: makeServicePortName('default', 'web', 'http', 'TCP'),
    family: 'IPv4',
    clusterIP: '10.96.0.10',
    port: 80,
    nodePort: 0,
    externalIPs: [],
    loadBalancerVIPs: [],
    loadBalancerSourceRanges: [],
    healthCheckNodePort: 0,
    sessionAffinity: { type: 'None' },
    externalPolicyLocal: false,
    internalPolicyLocal: false,
    ...overrides,
  };
}

interface EpOptions {
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  local?: boolean;
  zones?: string[];
  nodes?: string[];
}

/** Endpoint `10.0.0.<n>:8080`; defaults: ready, serving, not terminating, remote. */
function e(n: number, o: EpOptions = {}): Endpoint {
  return {
    ip: `10.0.0.${n}`,
    port: 8080,
    endpoint: `10.0.0.${n}:8080`,
    ready: o.ready ?? true,
    serving: o.serving ?? true,
    terminating: o.terminating ?? false,
    nodeName: o.local ? 'node-a' : 'node-b',
    isLocal: o.local ?? false,
    zoneHints: o.zones,
    nodeHints: o.nodes,
  };
}

const TERMINATING: EpOptions = { ready: false, serving: true, terminating: true };

/** Selection as endpoint numbers, for compact assertions. */
function summary(s: EndpointSelection): { cluster: string[]; local: string[]; all: string[]; any: boolean } {
  const n = (list: readonly Endpoint[]): string[] => list.map((x) => x.ip.slice('10.0.0.'.length));
  return {
    cluster: n(s.clusterEndpoints),
    local: n(s.localEndpoints),
    all: n(s.allReachable),
    any: s.hasAnyEndpoints,
  };
}

function sorted(eps: Endpoint[]): Endpoint[] {
  return eps.sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
}

describe('service port predicates (spec 1.2)', () => {
  it('externallyAccessible: node port, LB VIP or external IP', () => {
    assert.equal(externallyAccessible(sp()), false);
    assert.equal(externallyAccessible(sp({ nodePort: 30080 })), true);
    assert.equal(externallyAccessible(sp({ loadBalancerVIPs: ['203.0.113.1'] })), true);
    assert.equal(externallyAccessible(sp({ externalIPs: ['192.0.2.1'] })), true);
  });

  it('usesClusterEndpoints unless iTP Local without external access', () => {
    assert.equal(usesClusterEndpoints(sp()), true);
    assert.equal(usesClusterEndpoints(sp({ internalPolicyLocal: true })), false);
    assert.equal(usesClusterEndpoints(sp({ internalPolicyLocal: true, nodePort: 30080 })), true);
  });

  it('usesLocalEndpoints with iTP Local, or eTP Local and external access', () => {
    assert.equal(usesLocalEndpoints(sp()), false);
    assert.equal(usesLocalEndpoints(sp({ internalPolicyLocal: true })), true);
    assert.equal(usesLocalEndpoints(sp({ externalPolicyLocal: true })), false);
    assert.equal(usesLocalEndpoints(sp({ externalPolicyLocal: true, nodePort: 30080 })), true);
  });
});

describe('selectEndpoints: cluster traffic policy (spec 1.5 steps 1-3)', () => {
  it('uses every ready endpoint, and allReachable is the cluster set', () => {
    const eps = [e(1), e(2, { ready: false, serving: false }), e(3, { local: true })];
    assert.deepEqual(summary(selectEndpoints(sp(), eps, NODE)), {
      cluster: ['1', '3'],
      local: [],
      all: ['1', '3'],
      any: true,
    });
  });

  it('holds no copy of the list when every endpoint is used', () => {
    const eps = [e(1), e(2), e(3, { local: true })];
    const all = selectEndpoints(sp(), eps, NODE);
    assert.equal(all.clusterEndpoints, eps);
    assert.equal(all.allReachable, eps);
    const some = selectEndpoints(sp(), [...eps, e(4, { ready: false, serving: false })], NODE);
    assert.deepEqual(summary(some).cluster, ['1', '2', '3']);
  });

  it('falls back to serving terminating endpoints when none is ready', () => {
    const eps = [
      e(1, TERMINATING),
      e(2, { ready: false, serving: false, terminating: true }),
      e(3, { ready: false, serving: false }),
    ];
    assert.deepEqual(summary(selectEndpoints(sp(), eps, NODE)), {
      cluster: ['1'],
      local: [],
      all: ['1'],
      any: true,
    });
  });

  it('does not use terminating endpoints while a ready one exists', () => {
    assert.deepEqual(summary(selectEndpoints(sp(), [e(1, TERMINATING), e(2)], NODE)).cluster, ['2']);
  });

  it('has no endpoints when nothing is ready or serving-terminating', () => {
    const s = selectEndpoints(sp(), [e(1, { ready: false, serving: false })], NODE);
    assert.deepEqual(summary(s), { cluster: [], local: [], all: [], any: false });
    assert.equal(selectEndpoints(sp(), [], NODE).hasAnyEndpoints, false);
  });
});

describe('selectEndpoints: topology (spec 1.5 step 1)', () => {
  it('PreferSameZone: every ready endpoint has a zone hint and some name this zone', () => {
    const eps = [
      e(1, { zones: ['zone-1'] }),
      e(2, { zones: ['zone-2'] }),
      e(3, { zones: ['zone-1', 'zone-2'] }),
    ];
    assert.equal(topologyMode(eps, NODE), 'PreferSameZone');
    assert.deepEqual(summary(selectEndpoints(sp(), eps, NODE)), {
      cluster: ['1', '3'],
      local: [],
      all: ['1', '3'],
      any: true,
    });
  });

  it('ignores zone hints when one ready endpoint lacks them (non-ready ones do not count)', () => {
    const missing = [e(1, { zones: ['zone-1'] }), e(2)];
    assert.equal(topologyMode(missing, NODE), 'None');
    assert.deepEqual(summary(selectEndpoints(sp(), missing, NODE)).cluster, ['1', '2']);
    const notReadyWithout = [
      e(1, { zones: ['zone-1'] }),
      e(2, { zones: ['zone-2'] }),
      e(4, { ready: false, serving: false }),
    ];
    assert.equal(topologyMode(notReadyWithout, NODE), 'PreferSameZone');
  });

  it('ignores zone hints when none names this zone, or the node has no zone', () => {
    const eps = [e(1, { zones: ['zone-2'] }), e(2, { zones: ['zone-3'] })];
    assert.equal(topologyMode(eps, NODE), 'None');
    assert.deepEqual(summary(selectEndpoints(sp(), eps, NODE)).cluster, ['1', '2']);
    assert.equal(topologyMode([e(1, { zones: ['zone-1'] })], { name: 'node-a', zone: '' }), 'None');
  });

  it('PreferSameNode: every ready endpoint has a node hint and some name this node; it beats zone hints', () => {
    const eps = [
      e(1, { nodes: ['node-a'], zones: ['zone-2'] }),
      e(2, { nodes: ['node-b'], zones: ['zone-1'] }),
    ];
    assert.equal(topologyMode(eps, NODE), 'PreferSameNode');
    assert.deepEqual(summary(selectEndpoints(sp(), eps, NODE)).cluster, ['1']);
  });

  it('falls back from node hints to zone hints when no node hint names this node', () => {
    const eps = [
      e(1, { nodes: ['node-c'], zones: ['zone-2'] }),
      e(2, { nodes: ['node-b'], zones: ['zone-1'] }),
    ];
    assert.equal(topologyMode(eps, NODE), 'PreferSameZone');
    assert.deepEqual(summary(selectEndpoints(sp(), eps, NODE)).cluster, ['2']);
  });

  it('uses all serving-terminating endpoints, ignoring topology, when no ready endpoint is left', () => {
    const eps = [e(1, { ...TERMINATING, zones: ['zone-2'] }), e(2, { ...TERMINATING, zones: ['zone-1'] })];
    assert.deepEqual(summary(selectEndpoints(sp(), eps, NODE)).cluster, ['1', '2']);
  });
});

describe('selectEndpoints: local traffic policies (spec 1.5 steps 3-5)', () => {
  it('iTP Local without external access: only local ready endpoints, no cluster set', () => {
    const eps = [e(1, { local: true }), e(2), e(3, { local: true, ready: false, serving: false })];
    assert.deepEqual(summary(selectEndpoints(sp({ internalPolicyLocal: true }), eps, NODE)), {
      cluster: [],
      local: ['1'],
      all: ['1'],
      any: true,
    });
  });

  it('iTP Local: remote endpoints still set hasAny when no local one exists', () => {
    const s = selectEndpoints(sp({ internalPolicyLocal: true }), [e(2), e(3, TERMINATING)], NODE);
    assert.deepEqual(summary(s), { cluster: [], local: [], all: [], any: true });
  });

  it('iTP Local: local serving-terminating endpoints are the fallback when no local one is ready', () => {
    const eps = [e(1, { local: true, ...TERMINATING }), e(2)];
    assert.deepEqual(summary(selectEndpoints(sp({ internalPolicyLocal: true }), eps, NODE)).local, ['1']);
  });

  it('eTP Local with a node port, no topology, no fallback: allReachable is the cluster set', () => {
    const port = sp({ externalPolicyLocal: true, nodePort: 30080 });
    const eps = [e(1, { local: true }), e(2)];
    assert.deepEqual(summary(selectEndpoints(port, eps, NODE)), {
      cluster: ['1', '2'],
      local: ['1'],
      all: ['1', '2'],
      any: true,
    });
  });

  it('eTP Local with local fallback: allReachable is the union', () => {
    const port = sp({ externalPolicyLocal: true, nodePort: 30080 });
    const eps = [e(1, { local: true, ...TERMINATING }), e(2)];
    assert.deepEqual(summary(selectEndpoints(port, eps, NODE)), {
      cluster: ['2'],
      local: ['1'],
      all: ['1', '2'],
      any: true,
    });
  });

  it('eTP Local with zone topology excluding the local endpoint: allReachable is the union, sorted', () => {
    const port = sp({ externalPolicyLocal: true, loadBalancerVIPs: ['203.0.113.1'] });
    const eps = sorted([e(10, { local: true, zones: ['zone-2'] }), e(9, { zones: ['zone-1'] })]);
    const s = selectEndpoints(port, eps, NODE);
    assert.deepEqual(summary(s), { cluster: ['9'], local: ['10'], all: ['10', '9'], any: true });
  });

  it('eTP Local but not externally accessible behaves as Cluster', () => {
    const port = sp({ externalPolicyLocal: true });
    assert.deepEqual(summary(selectEndpoints(port, [e(1, { local: true }), e(2)], NODE)).local, []);
  });

  it('returns the same Endpoint objects it was given', () => {
    const eps = [e(1), e(2, { local: true })];
    const s = selectEndpoints(sp({ externalPolicyLocal: true, nodePort: 30080 }), eps, NODE);
    assert.equal(s.clusterEndpoints[0], eps[0]);
    assert.equal(s.localEndpoints[0], eps[1]);
  });
});
