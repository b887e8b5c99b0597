import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clientAddress, routerFor, type RouteContext } from '../../../src/dataplane/userspace/routes.ts';
import type { Route } from '../../../src/dataplane/userspace/route.ts';
import { planServicePort, type PlanNode } from '../../../src/plan/service-port.ts';
import { servicePortState, type ServiceSpec } from '../iptables/fixture.ts';

const NODE: PlanNode = { family: 'IPv4', nodeIP: '192.168.0.10' };
const CTX: RouteContext = {
  localDetector: { kind: 'cidr', cidr: '10.244.0.0/16' },
  isNodeAddress: (ip) => ip === '192.168.0.10' || ip.startsWith('127.'),
};
const POD = { ip: '10.244.1.9', port: 40000 };
const HOST = { ip: '192.168.0.10', port: 40000 };
const OUTSIDE = { ip: '192.0.2.100', port: 40000 };

const local = { ip: '10.244.1.2', port: 8080, local: true };
const remote = { ip: '10.244.2.2', port: 8080 };

function plan(spec: Partial<ServiceSpec>) {
  return planServicePort(
    servicePortState({ name: 'web', portName: 'http', clusterIP: '10.96.0.10', port: 80, ...spec }),
    NODE,
  );
}

function ips(route: Route): string[] | string {
  return route.kind === 'endpoints' ? route.endpoints.map((e) => e.ip) : route.kind;
}

describe('routerFor', () => {
  test('cluster IP: the internal verdict, whoever asks', () => {
    const router = routerFor(plan({ endpoints: [local, remote] }), 'cluster IP', CTX);
    for (const client of [POD, HOST, OUTSIDE])
      assert.deepEqual(ips(router(client)), ['10.244.1.2', '10.244.2.2']);
  });

  test('internalTrafficPolicy Local: local endpoints only, DROP without', () => {
    assert.deepEqual(
      ips(routerFor(plan({ endpoints: [local, remote], internalPolicyLocal: true }), 'cluster IP', CTX)(POD)),
      ['10.244.1.2'],
    );
    assert.equal(
      ips(routerFor(plan({ endpoints: [remote], internalPolicyLocal: true }), 'cluster IP', CTX)(POD)),
      'drop',
    );
  });

  test('no endpoints: reject on every frontend', () => {
    const p = plan({ nodePort: 30080, externalIPs: ['198.51.100.7'] });
    for (const frontend of ['cluster IP', 'external IP', 'node port'] as const) {
      assert.equal(ips(routerFor(p, frontend, CTX)(OUTSIDE)), 'reject', frontend);
    }
  });

  test('eTP Local: outside clients get local endpoints, pods and the node every endpoint', () => {
    const p = plan({ endpoints: [local, remote], nodePort: 30081, externalPolicyLocal: true });
    const router = routerFor(p, 'node port', CTX);
    assert.deepEqual(ips(router(OUTSIDE)), ['10.244.1.2']);
    assert.deepEqual(ips(router(POD)), ['10.244.1.2', '10.244.2.2']);
    assert.deepEqual(ips(router(HOST)), ['10.244.1.2', '10.244.2.2']);
    assert.deepEqual(ips(router({ ip: '127.0.0.1', port: 1 })), ['10.244.1.2', '10.244.2.2']);
    const none = routerFor(
      plan({ endpoints: [remote], nodePort: 30082, externalPolicyLocal: true }),
      'node port',
      CTX,
    );
    assert.equal(ips(none(OUTSIDE)), 'drop');
    assert.deepEqual(ips(none(POD)), ['10.244.2.2']);
  });

  test('load balancer IP: sources outside loadBalancerSourceRanges are dropped', () => {
    const p = plan({
      endpoints: [remote],
      loadBalancerVIPs: ['203.0.113.10'],
      loadBalancerSourceRanges: ['192.0.2.0/24'],
    });
    const router = routerFor(p, 'load balancer IP', CTX);
    assert.deepEqual(ips(router(OUTSIDE)), ['10.244.2.2']);
    assert.equal(ips(router({ ip: '198.51.100.200', port: 1 })), 'drop');
    assert.equal(ips(router(HOST)), 'drop', 'the ranges do not cover the node');
    // The ranges bind the LB IP only: the same service's cluster IP and node port ignore them.
    assert.deepEqual(ips(routerFor(p, 'cluster IP', CTX)({ ip: '198.51.100.200', port: 1 })), ['10.244.2.2']);
  });

  test('interface-based detectors never see a pod: such clients are routed as external', () => {
    const p = plan({ endpoints: [local, remote], nodePort: 30081, externalPolicyLocal: true });
    const router = routerFor(p, 'node port', { ...CTX, localDetector: { kind: 'bridge', iface: 'cni0' } });
    assert.deepEqual(ips(router(POD)), ['10.244.1.2']);
  });

  test('routes are decided once per kind of client and follow IPv4-mapped addresses', () => {
    const router = routerFor(plan({ endpoints: [local] }), 'cluster IP', CTX);
    assert.equal(router(POD), router({ ip: '10.244.3.3', port: 9 }));
    assert.equal(clientAddress('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(clientAddress('::ffff:a00:1'), '::ffff:a00:1');
    assert.equal(clientAddress('fd00::1'), 'fd00::1');
  });
});
