import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConntrackEntry } from '../../../src/conntrack/entries.ts';
import {
  deleteCommand,
  deleteScripts,
  staleFlowFilters,
  udpFrontends,
  type DeleteFilter,
} from '../../../src/conntrack/stale.ts';
import { endpointSlice, service } from '../../support/objects.ts';
import { NODE, snapshotOf } from './snapshot.ts';
import { plansOf } from '../../../src/plan/service-port.ts';

const A = '10.244.1.11';
const B = '10.244.1.12';
const C = '10.244.1.13';
const GONE = '10.244.1.99';

const OBJECTS = [
  service({
    name: 'dns',
    type: 'LoadBalancer',
    clusterIPs: ['10.96.0.53'],
    externalIPs: ['198.51.100.5'],
    loadBalancerIPs: ['203.0.113.5'],
    ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP', nodePort: 30053 }],
  }),
  endpointSlice({
    service: 'dns',
    ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
    endpoints: [
      { ip: A, node: NODE },
      { ip: B, node: 'node2', ready: false, serving: true, terminating: true },
      { ip: C, node: NODE, ready: false, serving: false },
    ],
  }),
  service({
    name: 'empty',
    clusterIPs: ['10.96.0.54'],
    ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
  }),
  service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
  endpointSlice({
    service: 'web',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ ip: A, node: NODE }],
  }),
];

let clientPort = 40000;
function udp(
  dst: string,
  dport: number,
  replySrc: string,
  replySport: number,
  protocol = 'udp',
): ConntrackEntry {
  const sport = clientPort++;
  return {
    family: 'IPv4',
    protocol: protocol === 'udp' ? 'udp' : 'tcp',
    original: { src: '10.244.1.20', dst, sport, dport },
    reply: { src: replySrc, dst: '10.244.1.20', sport: replySport, dport: sport },
  };
}

test('frontends map cluster, external, load-balancer IPs and the node port to serving endpoints', () => {
  const frontends = udpFrontends(plansOf(snapshotOf('IPv4', OBJECTS)));
  const serving = [`${A}:5353`, `${B}:5353`];
  assert.deepEqual(
    [...frontends.byAddress].map(([k, v]) => [k, [...v].sort()]),
    [
      // The plan's order: cluster IP, external IPs, load balancer IPs.
      ['10.96.0.53:53', serving],
      ['198.51.100.5:53', serving],
      ['203.0.113.5:53', serving],
    ],
    'TCP ports and UDP ports without serving endpoints are left out',
  );
  assert.deepEqual(
    [...frontends.byNodePort].map(([k, v]) => [k, [...v].sort()]),
    [[30053, serving]],
  );
});

test('stale entries: vanished or non-serving endpoints and never-DNATed flows, nothing else', () => {
  const frontends = udpFrontends(plansOf(snapshotOf('IPv4', OBJECTS)));
  const entries = [
    udp('10.96.0.53', 53, A, 5353), // keep: ready endpoint
    udp('10.96.0.53', 53, B, 5353), // keep: terminating but serving
    udp('10.96.0.53', 53, C, 5353), // delete: not serving
    udp('10.96.0.53', 53, '10.96.0.53', 53), // delete: never DNATed (black hole)
    udp('10.96.0.53', 53, GONE, 5353), // delete: endpoint gone
    udp('10.96.0.53', 53, GONE, 5353), // same tuple from another client port: one filter
    udp('198.51.100.5', 53, GONE, 5353), // delete: external IP
    udp('203.0.113.5', 53, '203.0.113.5', 53), // delete: LB VIP never DNATed
    udp('192.0.2.11', 30053, GONE, 5353), // delete: node port, any address
    udp('192.0.2.11', 30053, A, 5353), // keep: node port to a serving endpoint
    udp('10.96.0.54', 53, '10.96.0.54', 53), // keep: service without endpoints is skipped
    udp('10.96.0.53', 54, '10.96.0.53', 54), // keep: not a service port
    udp('10.96.0.10', 80, GONE, 8080, 'tcp'), // keep: TCP is never touched
    udp('8.8.8.8', 53, '8.8.8.8', 53), // keep: not a service
  ];
  const filters = staleFlowFilters(frontends, entries);
  const f = (
    origDst: string | undefined,
    origDport: number,
    replySrc: string,
    replySport: number,
  ): DeleteFilter => ({
    protocol: 'udp',
    origDst,
    origDport,
    replySrc,
    replySport,
  });
  assert.deepEqual(
    new Set(filters),
    new Set([
      f('10.96.0.53', 53, C, 5353),
      f('10.96.0.53', 53, '10.96.0.53', 53),
      f('10.96.0.53', 53, GONE, 5353),
      f('198.51.100.5', 53, GONE, 5353),
      f('203.0.113.5', 53, '203.0.113.5', 53),
      f(undefined, 30053, GONE, 5353),
    ]),
  );
  assert.deepEqual(staleFlowFilters(frontends, [...entries].reverse()), filters, 'stable order');
});

test('IPv6 frontends and entries compare in canonical bracketed form', () => {
  const snapshot = snapshotOf('IPv6', [
    service({
      name: 'dns6',
      clusterIPs: ['fd00:10:96::35'],
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
    }),
    endpointSlice({
      service: 'dns6',
      family: 'IPv6',
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
      endpoints: [{ ip: 'fd00:10:244:1::b', node: NODE }],
    }),
  ]);
  const frontends = udpFrontends(plansOf(snapshot));
  const entry = (replySrc: string): ConntrackEntry => ({
    family: 'IPv6',
    protocol: 'udp',
    original: { src: 'fd00:10:244:1::c', dst: 'fd00:10:96::35', sport: 1000, dport: 53 },
    reply: { src: replySrc, dst: 'fd00:10:244:1::c', sport: 53, dport: 1000 },
  });
  assert.deepEqual(staleFlowFilters(frontends, [entry('fd00:10:244:1::b')]), []);
  assert.deepEqual(staleFlowFilters(frontends, [entry('fd00:10:96::35')]), [
    { protocol: 'udp', origDst: 'fd00:10:96::35', origDport: 53, replySrc: 'fd00:10:96::35', replySport: 53 },
  ]);
});

test('delete commands for conntrack -R, batched', () => {
  const service: DeleteFilter = {
    protocol: 'udp',
    origDst: '10.96.0.53',
    origDport: 53,
    replySrc: GONE,
    replySport: 5353,
  };
  const nodePort: DeleteFilter = { ...service, origDst: undefined, origDport: 30053 };
  assert.equal(deleteCommand(service), `-D -p udp -d 10.96.0.53 --dport 53 -r ${GONE} --reply-port-src 5353`);
  assert.equal(deleteCommand(nodePort), `-D -p udp --dport 30053 -r ${GONE} --reply-port-src 5353`);
  const filters = Array.from({ length: 5 }, (_, i) => ({ ...service, replySport: i + 1 }));
  const scripts = deleteScripts(filters, 2);
  assert.equal(scripts.length, 3);
  assert.deepEqual(
    scripts.map((s) => s.split('\n').filter(Boolean).length),
    [2, 2, 1],
  );
  assert.ok(scripts.every((s) => s.endsWith('\n')));
  assert.deepEqual(deleteScripts([]), []);
});
