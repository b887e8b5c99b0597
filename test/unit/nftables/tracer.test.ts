// The nftables tracer on its own: lookups, jumps, the affinity path, and what it refuses. The
// flow tables (test/unit/flows) run it over whole rendered tables.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Packet } from '../../../src/dataplane/common/trace.ts';
import { applyScript, emptyTable, type FakeTable } from '../../../src/dataplane/nftables/fake.ts';
import { render } from '../../../src/dataplane/nftables/render.ts';
import { parseNftRule, traceNftables } from '../../../src/dataplane/nftables/tracer.ts';
import { OPTIONS_V4, port, snapshot } from './fixtures.ts';

const HOST = { localAddresses: ['192.168.0.10'] };
const P = 'ip kube-proxy';

const fromPod = (destIP: string, destPort: number, extra: Partial<Packet> = {}): Packet => ({
  family: 'IPv4',
  protocol: 'TCP',
  sourceIP: '10.244.1.9',
  destIP,
  destPort,
  origin: { kind: 'arriving', iif: 'veth1' },
  ...extra,
});

/** A table with one nat prerouting chain `pre` and the given extra commands. */
function tableWith(...commands: string[]): FakeTable {
  return applyScript(
    emptyTable(),
    [
      `add table ${P}`,
      `add chain ${P} pre { type nat hook prerouting priority -100 ; }`,
      ...commands.map((command) => command.replaceAll('@P', P)),
      '',
    ].join('\n'),
  );
}

describe('nftables tracer: reading rules', () => {
  test('unknown syntax is refused, naming it', () => {
    assert.throws(() => parseNftRule('tcp flags syn drop'), /unknown expression tcp flags/);
    assert.throws(() => parseNftRule('ip daddr 10.0.0.1 log prefix "x"'), /unknown expression log/);
    assert.throws(() => parseNftRule('reject with tcp reset'), /reject with/);
    const table = tableWith('add rule @P pre ip dscp 4 drop');
    assert.throws(() => traceNftables(table, fromPod('10.96.0.1', 80), HOST), /unknown expression ip dscp/);
  });
});

describe('nftables tracer: walking rules', () => {
  test('goto does not come back; jump does; a missing vmap key falls through', () => {
    const table = tableWith(
      'add chain @P a',
      'add chain @P b',
      'add map @P m { type ipv4_addr . inet_proto . inet_service : verdict ; }',
      'add rule @P pre ip daddr . meta l4proto . th dport vmap @m',
      'add rule @P pre jump a',
      'add rule @P pre meta l4proto tcp dnat to 10.244.0.3:80',
      'add rule @P a goto b',
      'add rule @P a meta l4proto tcp dnat to 10.244.0.1:80',
      'add rule @P b return',
      'add element @P m {',
      '\t10.96.0.9 . tcp . 80 : drop,',
      '}',
    );
    const endpoints = (packet: Packet): unknown => traceNftables(table, packet, HOST).outcome;
    assert.deepEqual(endpoints(fromPod('10.96.0.1', 80)), {
      kind: 'endpoints',
      endpoints: ['10.244.0.3:80'],
      masquerade: false,
    });
    assert.deepEqual(endpoints(fromPod('10.96.0.9', 80)), { kind: 'drop' });
  });

  test('an endpoint map with a hole loses connections: reported, not hidden', () => {
    const snap = snapshot([
      port({
        name: 'web',
        clusterIP: '10.96.0.10',
        port: 80,
        endpoints: [{ ip: '10.244.1.5' }, { ip: '10.244.2.7' }],
      }),
    ]);
    const table = applyScript(emptyTable(), render(undefined, snap, OPTIONS_V4, true).script);
    assert.deepEqual(traceNftables(table, fromPod('10.96.0.10', 80), HOST).outcome, {
      kind: 'endpoints',
      endpoints: ['10.244.1.5:8080', '10.244.2.7:8080'],
      masquerade: false,
    });
    const holed = applyScript(
      table,
      [`delete element ${P} ip-endpoints-tcp {`, '\t10.96.0.10 . 80 . 1,', '}', ''].join('\n'),
    );
    // Index 1 finds no endpoint: the packet goes on to the cluster IP and is rejected.
    assert.throws(
      () => traceNftables(holed, fromPod('10.96.0.10', 80), HOST),
      /paths end differently:[\s\S]*numgen random mod 2 = 1\] -> reject/,
    );
  });

  test('ClientIP affinity: a new client may get any endpoint, a remembered one only its own', () => {
    const snap = snapshot([
      port({
        name: 'sticky',
        clusterIP: '10.96.0.50',
        port: 80,
        affinitySeconds: 60,
        endpoints: [{ ip: '10.244.1.5' }, { ip: '10.244.2.7' }, { ip: '10.244.3.9' }],
      }),
    ]);
    const table = applyScript(emptyTable(), render(undefined, snap, OPTIONS_V4, true).script);
    const result = traceNftables(table, fromPod('10.96.0.50', 80), HOST);
    assert.deepEqual(result.outcome, {
      kind: 'endpoints',
      endpoints: ['10.244.1.5:8080', '10.244.2.7:8080', '10.244.3.9:8080'],
      masquerade: false,
    });
    assert.ok(
      result.rules.some((rule) => rule.rule.startsWith('numgen random mod 3 == 0 update @affinity-tcp')),
    );
    // The packet path remembered this client with the second endpoint.
    table.sets
      .get('affinity-tcp')
      ?.elements.set('10.244.1.9 . 10.96.0.50 . 80 . 10.244.2.7 . 8080', { value: '', comment: '' });
    assert.deepEqual(traceNftables(table, fromPod('10.96.0.50', 80), HOST).outcome, {
      kind: 'endpoints',
      endpoints: ['10.244.2.7:8080'],
      masquerade: false,
    });
    // Another client is not bound by it.
    const other = traceNftables(table, fromPod('10.96.0.50', 80, { sourceIP: '10.244.1.8' }), HOST);
    assert.equal(other.outcome.kind === 'endpoints' ? other.outcome.endpoints.length : 0, 3);
  });

  test('source ranges: an interval set matches by prefix', () => {
    const snap = snapshot([
      port({
        name: 'lb',
        clusterIP: '10.96.0.60',
        port: 443,
        loadBalancerVIPs: ['203.0.113.7'],
        sourceRanges: ['198.51.100.0/24'],
        endpoints: [{ ip: '10.244.1.5' }],
      }),
    ]);
    const table = applyScript(emptyTable(), render(undefined, snap, OPTIONS_V4, true).script);
    const from = (sourceIP: string): unknown =>
      traceNftables(
        table,
        { ...fromPod('203.0.113.7', 443), sourceIP, origin: { kind: 'arriving', iif: 'eth0' } },
        HOST,
      ).outcome;
    assert.deepEqual(from('198.51.100.77'), {
      kind: 'endpoints',
      endpoints: ['10.244.1.5:8080'],
      masquerade: true,
    });
    assert.deepEqual(from('198.51.101.77'), { kind: 'drop' });
  });
});
