import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  mergeEndpointSlices,
  mergeSliceEndpoints,
  parseEndpointSlice,
  sliceEndpoints,
  parseRFC3339,
  type ParsedEndpointSlice,
} from '../../../src/model/endpointslice.ts';
import { formatProblem } from '../../../src/model/problem.ts';
import { ep, rawSlice, slice, type SliceOptions } from './fixtures.ts';

function parsed(options: SliceOptions, family: 'IPv4' | 'IPv6' = 'IPv4'): ParsedEndpointSlice {
  const result = parseEndpointSlice(slice(options), family);
  assert.ok(result.slice, `slice ignored: ${result.problems.map(formatProblem).join('; ')}`);
  return result.slice;
}

function endpointStrings(slices: ParsedEndpointSlice[], port = 'http/TCP'): string[] {
  return (mergeEndpointSlices(slices, 'node-a').get(port) ?? []).map((e) => e.endpoint);
}

describe('parseEndpointSlice (spec 1.3, 1.4)', () => {
  it('reads service label, ports, addresses[0], conditions, node name and hints', () => {
    const s = parsed({
      endpoints: [
        {
          addresses: ['10.244.1.5', '10.244.1.6'],
          conditions: {},
          nodeName: 'node-a',
          hints: { forZones: [{ name: 'z2' }, { name: 'z1' }] },
        },
        ep('10.244.2.7', { ready: false, serving: true, terminating: true, nodes: ['node-b'] }),
      ],
    });
    assert.equal(s.key, 'default/web-abc');
    assert.equal(s.service, 'default/web');
    assert.deepEqual(s.ports, [{ name: 'http', protocol: 'TCP', port: 8080 }]);
    assert.deepEqual(s.endpoints, [
      {
        ip: '10.244.1.5',
        ready: true,
        serving: true,
        terminating: false,
        nodeName: 'node-a',
        zoneHints: ['z1', 'z2'],
        nodeHints: undefined,
      },
      {
        ip: '10.244.2.7',
        ready: false,
        serving: true,
        terminating: true,
        nodeName: '',
        zoneHints: undefined,
        nodeHints: ['node-b'],
      },
    ]);
  });

  it('ignores slices of the other family, FQDN slices and unlabelled slices, silently', () => {
    for (const options of [
      { addressType: 'IPv6' },
      { addressType: 'FQDN' },
      { service: null },
    ] as SliceOptions[]) {
      assert.deepEqual(parseEndpointSlice(slice(options), 'IPv4'), { slice: undefined, problems: [] });
    }
  });

  it('skips ports with a nil name or a nil/zero port', () => {
    const s = parsed({
      ports: [
        { name: null, port: 80 },
        { name: 'a', port: null },
        { name: 'b', port: 0 },
        { name: '', port: 81 },
      ],
    });
    assert.deepEqual(s.ports, [{ name: '', protocol: 'TCP', port: 81 }]);
  });

  it('drops endpoints with an invalid or wrong-family address, with a problem naming the field', () => {
    const result = parseEndpointSlice(
      slice({ endpoints: [ep('10.0.0.1 -j ACCEPT'), ep('fd00::1'), ep('10.244.1.5'), { addresses: [] }] }),
      'IPv4',
    );
    assert.deepEqual(
      result.slice?.endpoints.map((e) => e.ip),
      ['10.244.1.5'],
    );
    assert.deepEqual(result.problems.map(formatProblem), [
      'EndpointSlice default/web-abc: endpoints[0].addresses[0]: invalid IP "10.0.0.1 -j ACCEPT", endpoint ignored',
      'EndpointSlice default/web-abc: endpoints[1].addresses[0]: "fd00::1" is not an IPv4 address, endpoint ignored',
    ]);
  });

  it('canonicalises IPv6 addresses', () => {
    assert.equal(
      parsed({ addressType: 'IPv6', endpoints: [ep('FD00:0:0::0:5')] }, 'IPv6').endpoints[0]?.ip,
      'fd00::5',
    );
  });

  it('drops ports with bad protocol, number or name, and skips slices with bad identity', () => {
    const result = parseEndpointSlice(
      slice({
        ports: [
          { name: 'a', port: 80, protocol: 'ICMP' },
          { name: 'b', port: 99999 },
          { name: 'C', port: 80 },
          { name: 'd', port: 81 },
        ],
      }),
      'IPv4',
    );
    assert.deepEqual(result.slice?.ports, [{ name: 'd', protocol: 'TCP', port: 81 }]);
    assert.deepEqual(
      result.problems.map((p) => p.field),
      ['ports[0].protocol', 'ports[1].port', 'ports[2].name'],
    );
    assert.equal(parseEndpointSlice(slice({ service: 'web"; drop' }), 'IPv4').slice, undefined);
    assert.equal(parseEndpointSlice(slice({ name: 'Web_1' }), 'IPv4').problems[0]?.field, 'metadata.name');
    assert.equal(
      parseEndpointSlice(slice({ namespace: 'a\nb' }), 'IPv4').problems[0]?.field,
      'metadata.namespace',
    );
  });

  it('reads the last-change-trigger-time annotation as epoch ms', () => {
    assert.equal(parsed({ triggerTime: '2024-05-01T10:00:00Z' }).triggerTimeMs, Date.UTC(2024, 4, 1, 10));
    assert.equal(
      parsed({ triggerTime: '2024-05-01T12:00:00.250+02:00' }).triggerTimeMs,
      Date.UTC(2024, 4, 1, 10) + 250,
    );
    const bad = parseEndpointSlice(slice({ triggerTime: 'yesterday' }), 'IPv4');
    assert.equal(bad.slice?.triggerTimeMs, undefined);
    assert.equal(bad.problems.length, 1);
    assert.equal(parseRFC3339('2024-02-30T00:00:00Z'), undefined);
  });

  it('never throws on malformed objects', () => {
    for (const value of [
      null,
      'x',
      {
        addressType: 'IPv4',
        metadata: { labels: { 'kubernetes.io/service-name': 'w' }, name: 'w', namespace: 'd' },
        ports: 'p',
        endpoints: [null, { addresses: 'x' }, { addresses: [5] }],
      },
    ]) {
      assert.doesNotThrow(() => parseEndpointSlice(rawSlice(value), 'IPv4'));
    }
  });
});

describe('mergeEndpointSlices (spec 1.3)', () => {
  it('merges slices per port name and protocol, sorted in plain string order', () => {
    const a = parsed({ name: 'web-a', endpoints: [ep('10.0.0.9')] });
    const b = parsed({ name: 'web-b', endpoints: [ep('10.0.0.10')] });
    assert.deepEqual(endpointStrings([a, b]), ['10.0.0.10:8080', '10.0.0.9:8080']);
  });

  it('keys by port name and protocol: a UDP port of the same name is separate', () => {
    const s = parsed({
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns', port: 53, protocol: 'TCP' },
      ],
    });
    const merged = mergeEndpointSlices([s], 'node-a');
    assert.deepEqual([...merged.keys()].sort(), ['dns/TCP', 'dns/UDP']);
  });

  it('dedupes ip:port across slices, a non-terminating copy beating a terminating one', () => {
    const terminating = parsed({
      name: 'web-a',
      endpoints: [ep('10.0.0.1', { ready: false, terminating: true })],
    });
    const live = parsed({ name: 'web-b', endpoints: [ep('10.0.0.1')] });
    for (const order of [
      [terminating, live],
      [live, terminating],
    ]) {
      const eps = mergeEndpointSlices(order, 'node-a').get('http/TCP') ?? [];
      assert.equal(eps.length, 1);
      assert.equal(eps[0]?.terminating, false);
      assert.equal(eps[0].ready, true);
    }
  });

  it('dedupes within one slice by the same rule, and across three slices whatever their order', () => {
    const inOne = parsed({
      name: 'web-a',
      endpoints: [ep('10.0.0.1', { ready: false, terminating: true }), ep('10.0.0.1'), ep('10.0.0.2')],
    });
    assert.deepEqual(
      (mergeEndpointSlices([inOne], 'node-a').get('http/TCP') ?? []).map((e) => [e.endpoint, e.terminating]),
      [
        ['10.0.0.1:8080', false],
        ['10.0.0.2:8080', false],
      ],
    );
    const t1 = parsed({
      name: 'web-a',
      endpoints: [ep('10.0.0.1', { ready: false, terminating: true, nodeName: 'x' })],
    });
    const t2 = parsed({
      name: 'web-b',
      endpoints: [ep('10.0.0.1', { ready: false, terminating: true, nodeName: 'y' })],
    });
    const live = parsed({ name: 'web-c', endpoints: [ep('10.0.0.1', { nodeName: 'z' })] });
    for (const order of [
      [t1, t2, live],
      [live, t2, t1],
      [t2, live, t1],
    ]) {
      assert.equal(mergeEndpointSlices(order, 'node-a').get('http/TCP')?.[0]?.nodeName, 'z');
    }
    // All terminating: the first in slice-key order wins, not the first to arrive.
    assert.equal(mergeEndpointSlices([t2, t1], 'node-a').get('http/TCP')?.[0]?.nodeName, 'x');
  });

  it("a Service's only slice is used as it is: its lists are the merge result", () => {
    const one = sliceEndpoints(parsed({ endpoints: [ep('10.0.0.2'), ep('10.0.0.1')] }), 'node-a');
    const merged = mergeSliceEndpoints([one]);
    assert.equal(merged.get('http/TCP'), one.ports[0]?.endpoints);
    assert.deepEqual(
      merged.get('http/TCP')?.map((e) => e.endpoint),
      ['10.0.0.1:8080', '10.0.0.2:8080'],
    );
  });

  it('marks endpoints on this node as local and brackets IPv6 endpoint strings', () => {
    const s = parsed(
      {
        addressType: 'IPv6',
        endpoints: [ep('fd00::1', { nodeName: 'node-a' }), ep('fd00::2', { nodeName: 'node-b' })],
      },
      'IPv6',
    );
    const eps = mergeEndpointSlices([s], 'node-a').get('http/TCP') ?? [];
    assert.deepEqual(
      eps.map((e) => [e.endpoint, e.isLocal]),
      [
        ['[fd00::1]:8080', true],
        ['[fd00::2]:8080', false],
      ],
    );
  });
});
