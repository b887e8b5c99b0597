// The protobuf codec: field numbers are upstream's (checked against bytes written by field number,
// not by our encoder), a decoded object has the JSON shape, so the model validates and parses it
// exactly as the JSON one; malformed bodies are errors naming the field, never crashes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import {
  FrameReader,
  ProtobufError,
  decodeObject,
  decodeWatchEvent,
  encodeEnvelope,
  encodeObject,
  encodeWatchEvent,
} from '../../../src/k8s/protobuf/codec.ts';
import { Reader, WIRE_BYTES, WIRE_VARINT, Writer } from '../../../src/k8s/protobuf/wire.ts';
import { servicePortsFromService } from '../../../src/model/service.ts';
import { parseEndpointSlice } from '../../../src/model/endpointslice.ts';
import { endpointSlice, node, service } from '../../support/objects.ts';

/** A message written field by field, the way upstream's generated.proto numbers them. */
function msg(build: (w: Writer) => void): Uint8Array {
  const w = new Writer();
  build(w);
  return w.finish();
}
const varint = (w: Writer, no: number, value: number) => {
  w.tag(no, WIRE_VARINT);
  w.varint(value);
};

describe('protobuf wire format', () => {
  test('varints: small, large, negative int32/int64 as Go sends them (10 bytes)', () => {
    for (const value of [
      0,
      1,
      127,
      128,
      300,
      65535,
      2 ** 31 - 1,
      2 ** 32 + 5,
      2 ** 53 - 1,
      -1,
      -30080,
      -(2 ** 31),
    ]) {
      const w = new Writer();
      w.varint(value);
      const bytes = w.finish();
      if (value < 0) assert.equal(bytes.length, 10, `${value} takes 10 bytes`);
      assert.equal(new Reader(bytes).varint(), value);
    }
    // -1 as Go writes it.
    assert.equal(
      new Reader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)).varint(),
      -1,
    );
  });

  test('a length past the end, a truncated varint and an 11-byte varint are errors', () => {
    assert.throws(
      () =>
        new Reader(Uint8Array.of(0x0a, 0x05, 0x61)).skip(
          WIRE_BYTES + 0 * new Reader(Uint8Array.of(0x0a)).varint(),
        ),
      ProtobufError,
    );
    assert.throws(() => new Reader(Uint8Array.of(0x80, 0x80)).varint(), /truncated varint/);
    assert.throws(() => new Reader(new Uint8Array(11).fill(0xff)).varint(), /longer than 10 bytes/);
  });
});

describe('Kubernetes protobuf objects', () => {
  test("a Service written by upstream's field numbers decodes to its JSON shape", () => {
    const port = msg((w) => {
      w.string(1, 'http'); // name
      w.string(2, 'TCP'); // protocol
      varint(w, 3, 80); // port
      w.bytes(
        4,
        msg((t) => (varint(t, 1, 1), varint(t, 2, 0), t.string(3, 'web'))),
      ); // targetPort (string)
      varint(w, 5, 30080); // nodePort
    });
    const spec = msg((w) => {
      w.bytes(1, port); // ports
      w.bytes(
        2,
        msg((e) => (e.string(1, 'app'), e.string(2, 'web'))),
      ); // selector entry
      w.string(3, '10.96.0.10'); // clusterIP
      w.string(4, 'NodePort'); // type
      w.string(7, 'None'); // sessionAffinity
      w.string(11, 'Local'); // externalTrafficPolicy
      varint(w, 12, 0); // healthCheckNodePort: Go sends 0, JSON leaves it out
      w.string(17, 'SingleStack'); // ipFamilyPolicy
      w.string(18, '10.96.0.10'); // clusterIPs
      w.string(19, 'IPv4'); // ipFamilies
      w.string(22, 'Cluster'); // internalTrafficPolicy
      w.string(23, 'PreferClose'); // trafficDistribution
      w.bytes(
        14,
        msg((s) =>
          s.bytes(
            1,
            msg((c) => varint(c, 1, 600)),
          ),
        ),
      ); // sessionAffinityConfig
    });
    const meta = msg((w) => {
      w.string(1, 'web');
      w.string(2, '');
      w.string(3, 'prod');
      w.string(5, 'uid-1');
      w.string(6, '42');
      w.bytes(
        8,
        msg((t) => (varint(t, 1, 1_700_000_000), varint(t, 2, 0))),
      ); // creationTimestamp
      w.bytes(
        11,
        msg((e) => (e.string(1, 'tier'), e.string(2, 'front'))),
      ); // labels
    });
    const body = msg((w) => {
      w.bytes(1, meta);
      w.bytes(2, spec);
      w.bytes(
        3,
        msg((s) => s.bytes(1, new Uint8Array(0))),
      ); // status.loadBalancer
    });
    const decoded = decodeObject(encodeEnvelope({ apiVersion: 'v1', kind: 'Service' }, body));
    assert.deepEqual(decoded, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'web',
        namespace: 'prod',
        uid: 'uid-1',
        resourceVersion: '42',
        creationTimestamp: '2023-11-14T22:13:20Z',
        labels: { tier: 'front' },
      },
      spec: {
        ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'web', nodePort: 30080 }],
        selector: { app: 'web' },
        clusterIP: '10.96.0.10',
        type: 'NodePort',
        sessionAffinity: 'None',
        externalTrafficPolicy: 'Local',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
        ipFamilyPolicy: 'SingleStack',
        clusterIPs: ['10.96.0.10'],
        ipFamilies: ['IPv4'],
        internalTrafficPolicy: 'Cluster',
        trafficDistribution: 'PreferClose',
      },
      status: { loadBalancer: {} },
    });
  });

  test('EndpointSlice: pointer fields keep their zero value (ready: false), hints by zone and node', () => {
    const endpoint = msg((w) => {
      w.string(1, '10.244.1.5'); // addresses
      w.bytes(
        2,
        msg((c) => (varint(c, 1, 0), varint(c, 2, 1), varint(c, 3, 0))),
      ); // conditions
      w.string(6, 'node1'); // nodeName
      w.string(7, 'zone-a'); // zone
      w.bytes(
        8,
        msg(
          (h) => (
            h.bytes(
              1,
              msg((z) => z.string(1, 'zone-a')),
            ),
            h.bytes(
              2,
              msg((n) => n.string(1, 'node1')),
            )
          ),
        ),
      ); // hints
    });
    const body = msg((w) => {
      w.bytes(
        1,
        msg((m) => (m.string(1, 'web-abc'), m.string(3, 'prod'))),
      );
      w.bytes(2, endpoint);
      w.bytes(
        3,
        msg((p) => (p.string(1, ''), p.string(2, 'UDP'), varint(p, 3, 53))),
      ); // ports: name is a pointer
      w.string(4, 'IPv4'); // addressType
    });
    const decoded = decodeObject(
      encodeEnvelope({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' }, body),
    );
    assert.deepEqual(decoded['endpoints'], [
      {
        addresses: ['10.244.1.5'],
        conditions: { ready: false, serving: true, terminating: false },
        nodeName: 'node1',
        zone: 'zone-a',
        hints: { forZones: [{ name: 'zone-a' }], forNodes: [{ name: 'node1' }] },
      },
    ]);
    assert.deepEqual(decoded['ports'], [{ name: '', protocol: 'UDP', port: 53 }]);
    assert.equal(decoded['addressType'], 'IPv4');
  });

  test('Node: podCIDRs = 7, taints, addresses = 5; unknown fields (capacity, images) are skipped', () => {
    const body = msg((w) => {
      w.bytes(
        1,
        msg((m) => m.string(1, 'node1')),
      );
      w.bytes(
        2,
        msg(
          (s) => (
            s.string(1, '10.244.1.0/24'),
            s.string(7, '10.244.1.0/24'),
            s.string(7, 'fd00::/64'),
            s.bytes(
              5,
              msg((t) => (t.string(1, 'ToBeDeletedByClusterAutoscaler'), t.string(3, 'NoSchedule'))),
            )
          ),
        ),
      );
      w.bytes(
        3,
        msg(
          (s) => (
            s.bytes(
              1,
              msg(
                (e) => (
                  e.string(1, 'cpu'),
                  e.bytes(
                    2,
                    msg((q) => q.string(1, '4')),
                  )
                ),
              ),
            ),
            s.bytes(
              5,
              msg((a) => (a.string(1, 'InternalIP'), a.string(2, '192.168.1.10'))),
            ),
            s.bytes(8, new Uint8Array(3))
          ),
        ),
      );
    });
    const decoded = decodeObject(encodeEnvelope({ apiVersion: 'v1', kind: 'Node' }, body));
    assert.deepEqual(decoded['spec'], {
      podCIDR: '10.244.1.0/24',
      podCIDRs: ['10.244.1.0/24', 'fd00::/64'],
      taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }],
    });
    assert.deepEqual(decoded['status'], { addresses: [{ type: 'InternalIP', address: '192.168.1.10' }] });
  });

  test('a Status (errors) and a list with no items keep the JSON shape', () => {
    const status = decodeObject(
      encodeObject({
        apiVersion: 'v1',
        kind: 'Status',
        status: 'Failure',
        reason: 'Expired',
        code: 410,
        message: 'too old',
        details: { causes: [{ reason: 'ResourceVersionTooLarge' }] },
      }),
    );
    assert.equal(status['reason'], 'Expired');
    assert.equal(status['code'], 410);
    assert.deepEqual(status['details'], { causes: [{ reason: 'ResourceVersionTooLarge' }] });
    assert.deepEqual(
      decodeObject(
        encodeObject({ apiVersion: 'v1', kind: 'ServiceList', metadata: { resourceVersion: '7' } }),
      ),
      {
        apiVersion: 'v1',
        kind: 'ServiceList',
        metadata: { resourceVersion: '7' },
        items: [],
      },
    );
  });

  test('malformed bodies are errors that say what is wrong', () => {
    assert.throws(() => decodeObject(Buffer.from('{"kind":"Service"}')), /no k8s\\0 prefix/);
    assert.throws(
      () => decodeObject(encodeEnvelope({ apiVersion: 'v1', kind: 'Pod' }, new Uint8Array(0))),
      /no protobuf schema for v1\/Pod/,
    );
    // spec.clusterIP (3) sent as a varint instead of a string.
    const wrong = msg((w) =>
      w.bytes(
        2,
        msg((s) => varint(s, 3, 5)),
      ),
    );
    assert.throws(
      () => decodeObject(encodeEnvelope({ apiVersion: 'v1', kind: 'Service' }, wrong)),
      /Service\.spec\.clusterIP: wire type 0/,
    );
    const good = encodeObject(
      service({ name: 'a', clusterIPs: ['10.0.0.1'], ports: [{ port: 80 }] }) as unknown as Record<
        string,
        unknown
      >,
    );
    // Cut anywhere: a ProtobufError, or (cut at a field boundary, which protobuf cannot tell
    // from a shorter message) an object; never anything else.
    let errors = 0;
    for (let cut = 4; cut < good.length; cut++) {
      try {
        assert.equal(typeof decodeObject(good.subarray(0, cut)), 'object');
      } catch (error) {
        assert.ok(error instanceof ProtobufError, `cut at ${cut}: ${String(error)}`);
        errors++;
      }
    }
    assert.ok(errors > good.length / 2, 'most cuts are caught');
    // An int32 field carrying more than 32 bits.
    const big = msg((w) =>
      w.bytes(
        2,
        msg((s) =>
          s.bytes(
            1,
            msg((p) => varint(p, 3, 2 ** 40)),
          ),
        ),
      ),
    );
    assert.throws(
      () => decodeObject(encodeEnvelope({ apiVersion: 'v1', kind: 'Service' }, big)),
      /spec\.ports\.port: \d+ is not an int32/,
    );
  });

  test('watch frames split anywhere are reassembled; an oversized frame is refused', () => {
    const frames = [
      encodeWatchEvent(
        'ADDED',
        service({ name: 'a', clusterIPs: ['10.0.0.1'], ports: [{ port: 80 }] }) as unknown as Record<
          string,
          unknown
        >,
      ),
      encodeWatchEvent('BOOKMARK', { apiVersion: 'v1', kind: 'Service', metadata: { resourceVersion: '9' } }),
      encodeWatchEvent('ERROR', { apiVersion: 'v1', kind: 'Status', code: 410, reason: 'Expired' }),
    ];
    const all = Buffer.concat(frames);
    for (const step of [1, 3, 17, all.length]) {
      const reader = new FrameReader();
      const out = [];
      for (let i = 0; i < all.length; i += step) out.push(...reader.push(all.subarray(i, i + step)));
      const events = out.map((f) => decodeWatchEvent(f));
      assert.deepEqual(
        events.map((e) => e.type),
        ['ADDED', 'BOOKMARK', 'ERROR'],
      );
      assert.deepEqual(events[1]?.object, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { resourceVersion: '9' },
      });
      assert.equal(events[2]?.object['code'], 410);
    }
    assert.throws(() => new FrameReader(100).push(Uint8Array.of(0, 0, 1, 0)), /exceeds the limit/);
  });

  test('the model sees the same Services and EndpointSlices from protobuf as from JSON (valid or not)', () => {
    const port = fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(0, 70000, -1));
    const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('', 'not-an-ip', '10.0.0.300'));
    fc.assert(
      fc.property(
        fc.record({
          // A real API server never serves an object without a name (JSON leaves an empty one out).
          name: fc.constantFrom('a', 'b-1', 'c.d'),
          clusterIPs: fc.array(ip, { minLength: 1, maxLength: 2 }),
          ports: fc.array(
            fc.record({
              name: fc.constantFrom('', 'http', 'dns'),
              port,
              protocol: fc.constantFrom('TCP' as const, 'UDP' as const),
            }),
            { minLength: 0, maxLength: 3 },
          ),
          type: fc.constantFrom('ClusterIP' as const, 'NodePort' as const, 'LoadBalancer' as const),
          nodePort: port,
          ready: fc.option(fc.boolean(), { nil: undefined }),
          endpointIPs: fc.array(ip, { maxLength: 3 }),
        }),
        (spec) => {
          const svc = service({
            name: spec.name,
            clusterIPs: spec.clusterIPs,
            type: spec.type,
            ports: spec.ports.map((p) => ({
              ...p,
              ...(spec.type !== 'ClusterIP' ? { nodePort: spec.nodePort } : {}),
            })),
          });
          const viaProto = decodeObject(
            encodeObject(svc as unknown as Record<string, unknown>),
          ) as unknown as Service;
          for (const family of ['IPv4', 'IPv6'] as const) {
            assert.deepEqual(servicePortsFromService(viaProto, family), servicePortsFromService(svc, family));
          }
          const slice = endpointSlice({
            service: spec.name,
            ports: spec.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
            endpoints: spec.endpointIPs.map((address) => ({
              ip: address,
              node: 'node1',
              ...(spec.ready !== undefined ? { ready: spec.ready } : {}),
            })),
          });
          const sliceViaProto = decodeObject(
            encodeObject(slice as unknown as Record<string, unknown>),
          ) as unknown as EndpointSlice;
          for (const family of ['IPv4', 'IPv6'] as const) {
            assert.deepEqual(parseEndpointSlice(sliceViaProto, family), parseEndpointSlice(slice, family));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a Node from the test builders survives the round trip as the JSON has it', () => {
    const n = node({
      name: 'node1',
      ips: ['192.168.1.10', 'fd00::10'],
      podCIDRs: ['10.244.1.0/24'],
      zone: 'zone-a',
    });
    const round = decodeObject(encodeObject(n as unknown as Record<string, unknown>));
    assert.deepEqual(round['spec'], n.spec);
    assert.deepEqual(round['status'], n.status);
    assert.deepEqual((round['metadata'] as { labels?: unknown }).labels, n.metadata?.labels);
  });

  test('times: RFC 3339 in UTC, whole seconds, as JSON has them, for any second Go can marshal', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62135596800, max: 253402300799 }), (seconds) => {
        fc.pre(seconds !== 0);
        const text = `${new Date(seconds * 1000).toISOString().slice(0, 19)}Z`;
        const round = decodeObject(
          encodeObject({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n', creationTimestamp: text } }),
        );
        assert.equal((round['metadata'] as { creationTimestamp?: string }).creationTimestamp, text);
      }),
      { numRuns: 2000 },
    );
  });
});
