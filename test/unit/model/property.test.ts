// Property tests: whatever sequence of events arrives, the model converges to what a fresh model
// builds from the final objects, reports exactly the Services that changed, shares unchanged
// states, and never lets an unparsed value into a snapshot.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Node, Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import { ProxyModel } from '../../../src/model/tracker.ts';
import type { IPFamily, ProxySnapshot, ServicePortState } from '../../../src/model/types.ts';
import { joinHostPort, parseCIDR, parseIP } from '../../../src/util/ip.ts';
import { frozen, node, rawService, rawSlice } from './fixtures.ts';

const RUNS = 200;

type ArbValue<A> = A extends fc.Arbitrary<infer T> ? T : never;

const SERVICE_NAMES = ['a', 'b'];
const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });

/** Mostly well-formed values, sometimes hostile ones: enough valid objects to build real state. */
function mostly<T>(valid: readonly T[], hostile: readonly T[]): fc.Arbitrary<T> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...valid), weight: 30 },
    { arbitrary: fc.constantFrom(...hostile), weight: 1 },
  );
}

const ip = mostly(
  ['10.96.0.1', '10.96.0.2', '::ffff:10.96.0.4', 'fd00::1', 'FD00:0::2'],
  ['10.0.0.1 -j ACCEPT', '"; drop', ' 10.96.0.5', '010.96.0.3', 'None', ''],
);
const cidr = mostly(['10.0.0.0/8', ' 192.168.1.7/24 ', 'fd00::/64', '0.0.0.0/0'], ['10.0.0.0/33', 'x/8']);
const portName = mostly(['http', 'http', 'http', ''], ['HTTP', 'a b', 'p\n']);
const protocol = mostly<string | undefined>(['TCP', undefined, 'UDP', 'SCTP', 'TCP'], ['ICMP', 'tcp']);
const portNumber = mostly([53, 80, 8080], [0, -1, 65536, 99999, 80.5]);

const serviceArb = fc.record({
  name: mostly(SERVICE_NAMES, ['Bad_Name']),
  type: optional(mostly(['ClusterIP', 'NodePort', 'LoadBalancer'], ['ExternalName'])),
  clusterIP: ip,
  dual: fc.boolean(),
  second: ip,
  // Unique name/protocol pairs: duplicates skip the whole Service (covered by unit tests).
  ports: fc.uniqueArray(
    fc.record({
      name: portName,
      protocol,
      port: portNumber,
      nodePort: optional(mostly([0, 30080], [70000])),
    }),
    { minLength: 1, maxLength: 2, selector: (p) => `${p.name}/${p.protocol ?? 'TCP'}` },
  ),
  externalIPs: optional(fc.array(ip, { maxLength: 3 })),
  ingress: optional(
    fc.array(fc.record({ ip, ipMode: optional(fc.constantFrom('VIP', 'Proxy')) }), { maxLength: 2 }),
  ),
  sourceRanges: optional(fc.array(cidr, { maxLength: 3 })),
  eTP: optional(fc.constantFrom('Local', 'Cluster')),
  iTP: optional(fc.constantFrom('Local', 'Cluster')),
  hc: optional(mostly([0, 32000], [70000])),
  affinity: optional(fc.constantFrom('ClientIP', 'None')),
  timeout: optional(mostly([1, 300, 86400], [0, 86401])),
});

function toService(s: ArbValue<typeof serviceArb>): Service {
  return rawService({
    metadata: { namespace: 'default', name: s.name },
    spec: {
      type: s.type,
      clusterIP: s.clusterIP,
      ...(s.dual
        ? {
            clusterIPs: [s.clusterIP, s.second],
            ipFamilies: [parseIP(s.clusterIP)?.family ?? 'IPv4', parseIP(s.second)?.family ?? 'IPv6'],
          }
        : {}),
      ports: s.ports,
      externalIPs: s.externalIPs,
      loadBalancerSourceRanges: s.sourceRanges,
      externalTrafficPolicy: s.eTP,
      internalTrafficPolicy: s.iTP,
      healthCheckNodePort: s.hc,
      sessionAffinity: s.affinity,
      ...(s.timeout !== undefined
        ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: s.timeout } } }
        : {}),
    },
    status: s.ingress ? { loadBalancer: { ingress: s.ingress } } : {},
  });
}

// Host numbers, turned into addresses of the slice's family; some hostile or wrong-family text.
const endpointIP = mostly(['1', '2', '9', '10'], ['10.244.0.1 x', 'nope', '10.244.0.3', 'fd00::3']);

function endpointAddress(host: string, addressType: string): string {
  if (!/^\d+$/.test(host)) return host;
  return addressType === 'IPv6' ? `fd00::${host}` : `10.244.0.${host}`;
}
const endpointArb = fc.record({
  address: endpointIP,
  ready: optional(fc.boolean()),
  serving: optional(fc.boolean()),
  terminating: optional(fc.boolean()),
  nodeName: optional(fc.constantFrom('node-a', 'node-b')),
  zones: optional(fc.array(fc.constantFrom('z1', 'z2'), { maxLength: 2 })),
  nodes: optional(fc.array(fc.constantFrom('node-a', 'node-b'), { maxLength: 2 })),
});

const sliceArb = fc.record({
  name: fc.constantFrom('s1', 's2', 's3', 's4'),
  service: mostly<string | undefined>(SERVICE_NAMES, [undefined, 'B"ad']),
  addressType: mostly(['IPv4', 'IPv6'], ['FQDN']),
  ports: fc.array(fc.record({ name: portName, protocol, port: mostly([53, 80, 8080], [0, 70000]) }), {
    minLength: 1,
    maxLength: 2,
  }),
  endpoints: fc.array(endpointArb, { minLength: 1, maxLength: 4 }),
});

function toSlice(s: ArbValue<typeof sliceArb>): EndpointSlice {
  return rawSlice({
    metadata: {
      namespace: 'default',
      name: s.name,
      labels: s.service !== undefined ? { 'kubernetes.io/service-name': s.service } : {},
    },
    addressType: s.addressType,
    ports: s.ports,
    endpoints: s.endpoints.map((e) => ({
      addresses: [endpointAddress(e.address, s.addressType)],
      conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating },
      nodeName: e.nodeName,
      hints: { forZones: e.zones?.map((name) => ({ name })), forNodes: e.nodes?.map((name) => ({ name })) },
    })),
  });
}

type Op =
  | { op: 'upsertService'; value: ArbValue<typeof serviceArb> }
  | { op: 'deleteService'; name: string }
  | { op: 'upsertSlice'; value: ArbValue<typeof sliceArb> }
  | { op: 'deleteSlice'; name: string }
  | { op: 'node'; zone: string }
  | { op: 'snapshot' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: serviceArb.map((value) => ({ op: 'upsertService' as const, value })), weight: 4 },
  {
    arbitrary: fc.constantFrom(...SERVICE_NAMES).map((name) => ({ op: 'deleteService' as const, name })),
    weight: 1,
  },
  { arbitrary: sliceArb.map((value) => ({ op: 'upsertSlice' as const, value })), weight: 5 },
  {
    arbitrary: fc.constantFrom('s1', 's2', 's3', 's4').map((name) => ({ op: 'deleteSlice' as const, name })),
    weight: 1,
  },
  { arbitrary: fc.constantFrom('z1', 'z2', '').map((zone) => ({ op: 'node' as const, zone })), weight: 1 },
  { arbitrary: fc.constant({ op: 'snapshot' as const }), weight: 2 },
);

const OPS = fc.array(opArb, { minLength: 5, maxLength: 25, size: 'max' });

function newModel(family: IPFamily): ProxyModel {
  return new ProxyModel({ family, nodeName: 'node-a', proxyStartTimeMs: 0 });
}

function nodeWithZone(zone: string): Node {
  return node('node-a', zone ? { zone } : {});
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Every value a renderer may write into rules parses back to itself. */
function assertClean(snap: ProxySnapshot): void {
  const keys = [...snap.servicePorts.keys()];
  assert.deepEqual(
    keys,
    [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    'keys in sorted order',
  );
  const canonicalIP = (text: string): void => {
    const parsed = parseIP(text);
    assert.ok(
      parsed && parsed.text === text && parsed.family === snap.family,
      `clean IP ${JSON.stringify(text)}`,
    );
  };
  const inRange = (n: number, min: number): void => {
    assert.ok(Number.isInteger(n) && n >= min && n <= 65535, `port ${n}`);
  };
  for (const [key, { servicePort: sp, endpoints, selection }] of snap.servicePorts) {
    assert.equal(sp.id.key, key);
    assert.match(sp.id.namespace, LABEL);
    assert.match(sp.id.name, LABEL);
    assert.ok(sp.id.portName === '' || LABEL.test(sp.id.portName));
    assert.ok(['TCP', 'UDP', 'SCTP'].includes(sp.id.protocol));
    canonicalIP(sp.clusterIP);
    sp.externalIPs.forEach(canonicalIP);
    sp.loadBalancerVIPs.forEach(canonicalIP);
    for (const c of sp.loadBalancerSourceRanges) {
      assert.equal(parseCIDR(c)?.text, c);
      assert.equal(parseCIDR(c)?.family, snap.family);
    }
    inRange(sp.port, 1);
    inRange(sp.nodePort, 0);
    inRange(sp.healthCheckNodePort, 0);
    if (sp.sessionAffinity.type === 'ClientIP') {
      const t = sp.sessionAffinity.timeoutSeconds;
      assert.ok(Number.isInteger(t) && t >= 1 && t <= 86400);
    }
    for (const e of endpoints) {
      canonicalIP(e.ip);
      inRange(e.port, 1);
      assert.equal(e.endpoint, joinHostPort(e.ip, e.port));
    }
    const known = new Set(endpoints);
    for (const list of [selection.clusterEndpoints, selection.localEndpoints, selection.allReachable]) {
      for (const e of list) assert.ok(known.has(e), 'selection picks from the port endpoints');
    }
  }
}

function statesOf(snap: ProxySnapshot, service: string): ServicePortState[] {
  return [...snap.servicePorts.values()].filter((s) => s.servicePort.id.service === service);
}

describe('ProxyModel properties', () => {
  it('converges to the snapshot of a fresh model fed only the final objects', () => {
    fc.assert(
      fc.property(fc.constantFrom<IPFamily>('IPv4', 'IPv4', 'IPv6'), OPS, (family, ops) => {
        const model = newModel(family);
        const services = new Map<string, Service>();
        const slices = new Map<string, EndpointSlice>();
        let zone: string | undefined;
        for (const op of ops) {
          switch (op.op) {
            case 'upsertService': {
              const svc = toService(op.value);
              services.set(op.value.name, svc);
              model.upsertService(svc);
              break;
            }
            case 'deleteService': {
              const svc =
                services.get(op.name) ?? rawService({ metadata: { namespace: 'default', name: op.name } });
              services.delete(op.name);
              model.deleteService(svc);
              break;
            }
            case 'upsertSlice': {
              const s = toSlice(op.value);
              slices.set(op.value.name, s);
              model.upsertSlice(s);
              break;
            }
            case 'deleteSlice': {
              const s =
                slices.get(op.name) ?? rawSlice({ metadata: { namespace: 'default', name: op.name } });
              slices.delete(op.name);
              model.deleteSlice(s);
              break;
            }
            case 'node':
              zone = op.zone;
              model.setNode(nodeWithZone(op.zone));
              break;
            case 'snapshot':
              assertClean(model.snapshot());
              break;
          }
        }
        const final = model.snapshot();
        assertClean(final);
        assert.equal(model.hasPendingChanges(), false);

        const fresh = newModel(family);
        if (zone !== undefined) fresh.setNode(nodeWithZone(zone));
        for (const svc of services.values()) fresh.upsertService(svc);
        for (const s of slices.values()) fresh.upsertSlice(s);
        assert.deepEqual([...final.servicePorts], [...fresh.snapshot().servicePorts]);
      }),
      { numRuns: RUNS },
    );
  });

  it('reports exactly the Services whose states changed, and shares the states of all others', () => {
    fc.assert(
      fc.property(OPS, (ops) => {
        const model = newModel('IPv4');
        let previous = frozen(model.snapshot());
        for (const op of ops) {
          if (op.op === 'upsertService') model.upsertService(toService(op.value));
          else if (op.op === 'deleteService')
            model.deleteService(rawService({ metadata: { namespace: 'default', name: op.name } }));
          else if (op.op === 'upsertSlice') model.upsertSlice(toSlice(op.value));
          else if (op.op === 'deleteSlice')
            model.deleteSlice(rawSlice({ metadata: { namespace: 'default', name: op.name } }));
          else if (op.op === 'node') model.setNode(nodeWithZone(op.zone));
          else {
            const pending = model.hasPendingChanges();
            const next = model.snapshot();
            for (const service of SERVICE_NAMES.map((n) => `default/${n}`)) {
              const before = statesOf(previous, service);
              const after = statesOf(next, service);
              let differs: boolean;
              try {
                assert.deepEqual(after, before);
                differs = false;
              } catch {
                differs = true;
              }
              assert.equal(next.changedServices.has(service), differs, `changed flag of ${service}`);
              if (!differs) {
                assert.equal(after.length, before.length);
                after.forEach((state, i) =>
                  assert.equal(state, before[i], 'unchanged state reused by identity'),
                );
              }
            }
            if (next.changedServices.size > 0) assert.ok(pending, 'changes imply pending changes');
            // The renderers' hint: exactly the keys whose state object differs, numbered in sequence.
            const differing = new Set<string>();
            for (const key of new Set([...previous.servicePorts.keys(), ...next.servicePorts.keys()])) {
              if (previous.servicePorts.get(key) !== next.servicePorts.get(key)) differing.add(key);
            }
            assert.deepEqual([...(next.changedServicePorts ?? [])].sort(), [...differing].sort());
            assert.equal(next.generation, (previous.generation ?? 0) + 1);
            previous = frozen(next);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});
