// Issue 15, hostile and malformed input: arbitrary JSON and crafted objects as Services,
// EndpointSlices and Nodes go through the model, and every mode renders and traces the result.
// Invariants: no exception escapes the model or any renderer; no hostile text (every crafted
// string carries the marker EVIL, which no valid Kubernetes name, address or port can) ever
// reaches rule text of any mode; a well-formed Service beside the hostile ones keeps its rules
// and its traffic. `make fuzz` runs this with KUBE_PROXY_FUZZ_RUNS=100000 (docs/reliability.md).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Node, Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import { render as renderNftables } from '../../../src/dataplane/nftables/render.ts';
import { MODES } from '../../../src/dataplane/modes.ts';
import type { NodeInfo } from '../../../src/dataplane/common/settings.ts';
import { ProxyModel } from '../../../src/model/tracker.ts';
import type { ProxySnapshot } from '../../../src/model/types.ts';
import { endpointSlice, node, service } from '../../support/objects.ts';
import { settingsFor } from '../explain/fixtures.ts';
import { BASE_OPTIONS } from '../iptables/scenarios.ts';
import { OPTIONS_V4 } from '../nftables/fixtures.ts';

const RUNS = Number(process.env['KUBE_PROXY_FUZZ_RUNS'] ?? '150');
const NODE = 'node1';
const NODE_IP = '192.168.0.10';
const MARKER = 'EVIL';

/** Strings an attacker (another tenant) would try: each carries the marker. */
const hostileString = fc.oneof(
  fc.constantFrom(
    `10.0.0.1 -j ${MARKER}`,
    `"; ${MARKER}`,
    `a\n-A KUBE-SERVICES -j ${MARKER}`,
    `} ${MARKER} {`,
    `${MARKER}\u0000`,
    `10.96.0.${MARKER}`,
    `$(${MARKER})`,
    `\`${MARKER}\``,
    `${MARKER}`.padEnd(300, 'x'),
  ),
  fc.string({ maxLength: 20 }).map((s) => `${s}${MARKER}${s}`),
);

/** Anything: the JSON-ish values a broken or hostile API server could send, markers inside. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 3, withObjectString: true, withNullPrototype: true }),
  hostileString,
);

/** A field that is sometimes right, sometimes hostile, sometimes anything. */
function mostly<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: valid, weight: 6 },
    { arbitrary: hostileString, weight: 2 },
    { arbitrary: anyValue, weight: 1 },
  );
}

const craftedService: fc.Arbitrary<unknown> = fc
  .record({
    name: mostly(fc.constantFrom('a', 'b', 'c')),
    namespace: mostly(fc.constant('default')),
    clusterIP: mostly(fc.constantFrom('10.96.0.1', '10.96.0.2', 'None', 'fd00::1')),
    type: mostly(fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName')),
    portName: mostly(fc.constantFrom('http', '')),
    port: mostly(fc.constantFrom(80, 443)),
    protocol: mostly(fc.constantFrom('TCP', 'UDP', 'SCTP')),
    nodePort: mostly(fc.constantFrom(30080, 30081)),
    targetPort: mostly(fc.constantFrom(8080, 'web')),
    externalIPs: mostly(fc.constant(['198.51.100.1'])),
    sourceRanges: mostly(fc.constant(['10.0.0.0/8'])),
    lbIP: mostly(fc.constant('203.0.113.1')),
    policy: mostly(fc.constantFrom('Cluster', 'Local')),
    affinity: mostly(fc.constantFrom('None', 'ClientIP')),
    timeout: mostly(fc.constantFrom(10, 10800)),
  })
  .map((f) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: f.name, namespace: f.namespace, uid: 'u', resourceVersion: '1' },
    spec: {
      type: f.type,
      clusterIP: f.clusterIP,
      clusterIPs: [f.clusterIP],
      ipFamilies: ['IPv4'],
      ports: [
        {
          name: f.portName,
          port: f.port,
          protocol: f.protocol,
          nodePort: f.nodePort,
          targetPort: f.targetPort,
        },
      ],
      externalIPs: f.externalIPs,
      loadBalancerSourceRanges: f.sourceRanges,
      externalTrafficPolicy: f.policy,
      internalTrafficPolicy: f.policy,
      sessionAffinity: f.affinity,
      sessionAffinityConfig: { clientIP: { timeoutSeconds: f.timeout } },
    },
    status: { loadBalancer: { ingress: [{ ip: f.lbIP }] } },
  }));

const craftedSlice: fc.Arbitrary<unknown> = fc
  .record({
    service: mostly(fc.constantFrom('a', 'b', 'c')),
    name: mostly(fc.constantFrom('a-1', 'b-1', 'c-1')),
    addressType: mostly(fc.constantFrom('IPv4', 'IPv6', 'FQDN')),
    address: mostly(fc.constantFrom('10.244.1.5', '10.244.2.6', 'fd00::5')),
    portName: mostly(fc.constantFrom('http', '')),
    port: mostly(fc.constantFrom(8080, 9090)),
    protocol: mostly(fc.constantFrom('TCP', 'UDP')),
    ready: mostly(fc.boolean()),
    nodeName: mostly(fc.constantFrom(NODE, 'node2')),
    zone: mostly(fc.constantFrom('zone-a', 'zone-b')),
  })
  .map((f) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: f.name,
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': f.service },
      resourceVersion: '1',
    },
    addressType: f.addressType,
    ports: [{ name: f.portName, port: f.port, protocol: f.protocol }],
    endpoints: [
      {
        addresses: [f.address],
        conditions: { ready: f.ready, serving: f.ready, terminating: false },
        nodeName: f.nodeName,
        zone: f.zone,
        hints: { forZones: [{ name: f.zone }] },
      },
    ],
  }));

const craftedNode: fc.Arbitrary<unknown> = fc
  .record({
    ip: mostly(fc.constantFrom(NODE_IP, '192.168.0.11')),
    zone: mostly(fc.constantFrom('zone-a', 'zone-b')),
    podCIDR: mostly(fc.constant('10.244.1.0/24')),
  })
  .map((f) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: NODE, labels: { 'topology.kubernetes.io/zone': f.zone } },
    spec: { podCIDR: f.podCIDR, podCIDRs: [f.podCIDR] },
    status: { addresses: [{ type: 'InternalIP', address: f.ip }] },
  }));

type Event =
  | { readonly kind: 'service' | 'slice' | 'node'; readonly object: unknown }
  | { readonly kind: 'delete-service' | 'delete-slice'; readonly object: unknown };

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { arbitrary: craftedService.map((object) => ({ kind: 'service' as const, object })), weight: 4 },
  { arbitrary: craftedSlice.map((object) => ({ kind: 'slice' as const, object })), weight: 4 },
  { arbitrary: craftedNode.map((object) => ({ kind: 'node' as const, object })), weight: 1 },
  {
    arbitrary: fc
      .constantFrom('service', 'slice', 'node', 'delete-service', 'delete-slice')
      .chain((kind) => anyValue.map((object) => ({ kind, object }) as Event)),
    weight: 2,
  },
);

/** The well-formed Service every case starts with: it must keep working whatever comes after. */
const GOOD_IP = '10.96.9.9';
function goodObjects(): [Service, EndpointSlice] {
  return [
    service({ name: 'good', clusterIPs: [GOOD_IP], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    endpointSlice({
      service: 'good',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ ip: '10.244.1.9', node: NODE }],
    }),
  ];
}

function apply(model: ProxyModel, event: Event): void {
  switch (event.kind) {
    case 'service':
      model.upsertService(event.object as Service);
      return;
    case 'slice':
      model.upsertSlice(event.object as EndpointSlice);
      return;
    case 'node':
      model.setNode(event.object as Node);
      return;
    case 'delete-service':
      model.deleteService(event.object as Service);
      return;
    case 'delete-slice':
      model.deleteSlice(event.object as EndpointSlice);
      return;
  }
}

const NODE_INFO: NodeInfo = {
  name: NODE,
  primaryFamily: 'IPv4',
  ips: { IPv4: [NODE_IP], IPv6: [] },
  podCIDRs: ['10.244.1.0/24'],
};

/** Every mode's renders of the snapshot; returns their texts (and traces the good Service). */
function renderEverywhere(snapshot: ProxySnapshot): string[] {
  const texts = [
    renderIptables({ snapshot, options: BASE_OPTIONS, full: true }).text,
    renderNftables(undefined, snapshot, OPTIONS_V4, true).script,
  ];
  for (const mode of Object.values(MODES)) {
    const explainer = mode.explainer;
    if (!explainer) continue;
    const rules = explainer.render({
      family: 'IPv4',
      snapshot,
      settings: settingsFor(['10.244.0.0/16'], { kind: 'all' }),
      node: NODE_INFO,
      hostAddresses: [NODE_IP],
    });
    const result = rules.trace(
      {
        family: 'IPv4',
        protocol: 'TCP',
        sourceIP: '10.244.1.20',
        destIP: GOOD_IP,
        destPort: 80,
        origin: { kind: 'arriving', iif: 'eth0' },
      },
      { localAddresses: [NODE_IP] },
    );
    texts.push(JSON.stringify(result));
    assert.match(
      JSON.stringify(result),
      /10\.244\.1\.9/,
      `${mode.name}: the good Service still reaches its endpoint`,
    );
  }
  return texts;
}

test(`hostile and malformed API objects never escape as exceptions or into rules (${String(RUNS)} cases)`, () => {
  const started = performance.now();
  fc.assert(
    fc.property(fc.array(eventArb, { minLength: 1, maxLength: 12 }), (events) => {
      const model = new ProxyModel({
        family: 'IPv4',
        nodeName: NODE,
        proxyStartTimeMs: 0,
        onProblem: () => undefined,
      });
      model.setNode(node({ name: NODE, ips: [NODE_IP], podCIDRs: ['10.244.1.0/24'] }));
      const [goodService, goodSlice] = goodObjects();
      model.upsertService(goodService);
      model.upsertSlice(goodSlice);
      for (const event of events) apply(model, event);
      const snapshot = model.snapshot();
      for (const text of renderEverywhere(snapshot)) {
        assert.ok(!text.includes(MARKER), `hostile text reached the rules:\n${text.slice(0, 2000)}`);
      }
    }),
    { numRuns: RUNS },
  );
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `# fuzz: ${String(RUNS)} cases in ${seconds.toFixed(1)} s (${(RUNS / seconds).toFixed(0)} cases/s)\n`,
  );
});

test('absurd sizes: 10,000 ports, 1 MB names and annotations, 100,000 endpoints in one slice', () => {
  const model = new ProxyModel({
    family: 'IPv4',
    nodeName: NODE,
    proxyStartTimeMs: 0,
    onProblem: () => undefined,
  });
  model.setNode(node({ name: NODE, ips: [NODE_IP], podCIDRs: ['10.244.1.0/24'] }));
  const [goodService, goodSlice] = goodObjects();
  model.upsertService(goodService);
  model.upsertSlice(goodSlice);
  const ports = Array.from({ length: 10_000 }, (_, i) => ({ name: `p${String(i)}`, port: 1 + (i % 65535) }));
  model.upsertService(service({ name: 'many-ports', clusterIPs: ['10.96.1.1'], ports }));
  const big = 'x'.repeat(1 << 20);
  model.upsertService({
    ...service({ name: 'big', clusterIPs: ['10.96.1.2'], ports: [{ name: 'http', port: 80 }] }),
    metadata: { name: `big${big}`, namespace: 'default', annotations: { note: big } },
  });
  const endpoints = Array.from({ length: 100_000 }, (_, i) => ({
    ip: `10.${String(100 + Math.floor(i / 65536))}.${String(Math.floor(i / 256) % 256)}.${String(i % 256)}`,
    node: 'node2',
  }));
  model.upsertSlice(endpointSlice({ service: 'many-ports', ports: [{ name: 'p0', port: 8080 }], endpoints }));
  const snapshot = model.snapshot();
  const texts = renderEverywhere(snapshot);
  assert.ok(!texts.some((text) => text.includes(big)), 'the 1 MB name never reaches the rules');
  assert.ok(texts.every((text) => text.length > 0));
});
