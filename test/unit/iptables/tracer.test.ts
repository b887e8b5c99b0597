// The iptables tracer on its own: what it reads, how it walks, and that it refuses what it does
// not understand. The flow tables (test/unit/flows) run it over whole rendered rule sets.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TraceError, type Packet } from '../../../src/dataplane/common/trace.ts';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import { applyRestore, parseRestore, traceIptables } from '../../../src/dataplane/iptables/tracer.ts';
import { servicePortState as sp, snapshot } from './fixture.ts';
import { BASE_OPTIONS } from './scenarios.ts';

const HOST = { localAddresses: ['192.168.0.10'] };

const fromPod = (destIP: string, destPort: number, extra: Partial<Packet> = {}): Packet => ({
  family: 'IPv4',
  protocol: 'TCP',
  sourceIP: '10.244.1.9',
  destIP,
  destPort,
  origin: { kind: 'arriving', iif: 'veth1' },
  ...extra,
});

/** A nat table whose KUBE-SERVICES holds `rules` (each a `-A KUBE-SERVICES …` line's arguments). */
function natWith(chains: readonly string[], rules: readonly string[]): string {
  return [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    ...chains.map((chain) => `:${chain} - [0:0]`),
    ...rules,
    'COMMIT',
    '',
  ].join('\n');
}

describe('iptables tracer: reading rules', () => {
  test('an unknown match, option or target is refused, naming it and its line', () => {
    assert.throws(
      () => parseRestore(natWith([], ['-A KUBE-SERVICES -m owner --uid-owner 0 -j RETURN'])),
      (error: unknown) =>
        error instanceof TraceError &&
        /line 3/.test(error.message) &&
        /unknown match -m owner/.test(error.message),
    );
    assert.throws(
      () => parseRestore(natWith([], ['-A KUBE-SERVICES -o eth0 -j RETURN'])),
      /unknown option -o/,
    );
    assert.throws(
      () => parseRestore(natWith([], ['-A KUBE-SERVICES -j DNAT --to-source 1.2.3.4'])),
      /unknown option --to-source of target DNAT/,
    );
    assert.throws(
      () => parseRestore(natWith([], ['-A KUBE-SERVICES --dport 80 -j RETURN'])),
      /--dport without -p/,
    );
    // A target that is no chain fails when a packet reaches it.
    const rules = parseRestore(natWith([], ['-A KUBE-SERVICES -d 10.96.0.1 -j LOG']));
    assert.throws(() => traceIptables(rules, fromPod('10.96.0.1', 80), HOST), /unknown chain or target LOG/);
  });

  test('restore input on top of a rule set: declared chains are flushed, -X deletes, others stay', () => {
    const base = parseRestore(natWith(['A', 'B'], ['-A A -j RETURN', '-A B -j RETURN']));
    const next = applyRestore(base, ['*nat', ':A - [0:0]', ':B - [0:0]', '-X B', 'COMMIT', ''].join('\n'));
    assert.deepEqual([...(next.get('nat')?.keys() ?? [])].sort(), ['A', 'KUBE-SERVICES']);
    assert.deepEqual(next.get('nat')?.get('A'), []);
    assert.equal(base.get('nat')?.get('A')?.length, 1, 'the rule set it started from is unchanged');
  });
});

describe('iptables tracer: walking rules', () => {
  test('every statistic branch is explored and each path says how it got there', () => {
    const rules = parseRestore(
      natWith(
        ['SVC', 'E1', 'E2', 'E3'],
        [
          '-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.1 --dport 80 -j SVC',
          '-A SVC -m statistic --mode random --probability 0.3333333333 -j E1',
          '-A SVC -m statistic --mode random --probability 0.5000000000 -j E2',
          '-A SVC -j E3',
          ...['E1', 'E2', 'E3'].map(
            (e, i) => `-A ${e} -m tcp -p tcp -j DNAT --to-destination 10.244.0.${i + 1}:8080`,
          ),
        ],
      ),
    );
    const result = traceIptables(rules, fromPod('10.96.0.1', 80), HOST);
    assert.deepEqual(result.outcome, {
      kind: 'endpoints',
      endpoints: ['10.244.0.1:8080', '10.244.0.2:8080', '10.244.0.3:8080'],
      masquerade: false,
    });
    assert.deepEqual(
      result.paths.map((path) => path.choices),
      [
        ['statistic 0.3333333333: taken'],
        ['statistic 0.3333333333: not taken', 'statistic 0.5: taken'],
        ['statistic 0.3333333333: not taken', 'statistic 0.5: not taken'],
      ],
    );
    // The built-in chain's jump (from JUMP_RULES) comes first.
    assert.deepEqual(result.paths[0]?.rules.slice(0, 2), [
      {
        table: 'nat',
        chain: 'PREROUTING',
        rule: '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      },
      { table: 'nat', chain: 'KUBE-SERVICES', rule: '-m tcp -p tcp -d 10.96.0.1 --dport 80 -j SVC' },
    ]);
  });

  test('paths that end differently are an error, not a guess', () => {
    const rules = parseRestore(
      natWith(
        ['SVC', 'E1'],
        [
          '-A KUBE-SERVICES -d 10.96.0.1 -j SVC',
          '-A SVC -m statistic --mode random --probability 0.5 -j E1',
          '-A E1 -m tcp -p tcp -j DNAT --to-destination 10.244.0.1:8080',
        ],
      ),
    );
    assert.throws(() => traceIptables(rules, fromPod('10.96.0.1', 80), HOST), /paths end differently/);
  });

  test('interface matches, negation, marks and recent', () => {
    const text = natWith(
      ['X'],
      [
        '-A KUBE-SERVICES ! -i veth+ -j RETURN',
        '-A KUBE-SERVICES -m recent --name X --rcheck --seconds 10 --reap -j RETURN',
        '-A KUBE-SERVICES -j MARK --or-mark 0x4000',
        '-A KUBE-SERVICES -m mark ! --mark 0x4000/0x4000 -j RETURN',
        '-A KUBE-SERVICES -m recent --name X --set -m tcp -p tcp -j DNAT --to-destination 10.244.0.9:80',
      ],
    );
    const rules = parseRestore(text);
    assert.deepEqual(traceIptables(rules, fromPod('10.96.0.1', 80), HOST).outcome, {
      kind: 'endpoints',
      endpoints: ['10.244.0.9:80'],
      masquerade: false,
    });
    const outside = fromPod('10.96.0.1', 80, { origin: { kind: 'arriving', iif: 'eth0' } });
    assert.deepEqual(traceIptables(rules, outside, HOST).outcome, { kind: 'pass', masquerade: false });
  });

  test('a partial restore on top of the full one traces like a fresh full one', () => {
    const web = (ips: string[]) =>
      sp({
        name: 'web',
        clusterIP: '10.96.0.10',
        port: 80,
        nodePort: 30080,
        endpoints: ips.map((ip) => ({ ip, port: 8080 })),
      });
    const db = sp({
      name: 'db',
      clusterIP: '10.96.0.20',
      port: 5432,
      endpoints: [{ ip: '10.244.3.3', port: 5432 }],
    });
    const first = renderIptables({
      snapshot: snapshot([web(['10.244.1.5']), db]),
      full: true,
      options: BASE_OPTIONS,
    });
    const later = snapshot([web(['10.244.1.5', '10.244.2.7']), db], { changed: ['default/web'] });
    const partial = renderIptables({
      snapshot: later,
      full: false,
      options: BASE_OPTIONS,
      previous: first.cache,
      existingNatChains: first.activeNatChains,
    });
    const fresh = renderIptables({ snapshot: later, full: true, options: BASE_OPTIONS });
    const layered = applyRestore(parseRestore(first.text), partial.text);
    for (const packet of [
      fromPod('10.96.0.10', 80),
      fromPod('10.96.0.20', 5432),
      fromPod('192.168.0.10', 30080, { origin: { kind: 'arriving', iif: 'eth0' }, sourceIP: '198.51.100.1' }),
    ]) {
      assert.deepEqual(
        traceIptables(layered, packet, HOST).outcome,
        traceIptables(parseRestore(fresh.text), packet, HOST).outcome,
      );
    }
    assert.deepEqual(traceIptables(layered, fromPod('10.96.0.10', 80), HOST).outcome, {
      kind: 'endpoints',
      endpoints: ['10.244.1.5:8080', '10.244.2.7:8080'],
      masquerade: false,
    });
  });
});
