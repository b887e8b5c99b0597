// verify without a kernel: iptables-save output captured from iptables 1.8.9 (nf_tables) after
// restoring our render (fixtures/), compared in canonical form; a rule removed from it is
// reported under its Service port with its effect, an extra chain as unexpected.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { ToolRunner } from '../../../src/dataplane/common/mode.ts';
import { canonicalRule, rulesByChain } from '../../../src/dataplane/xtables/canonical.ts';
import { elementText } from '../../../src/dataplane/nftables/verify.ts';
import { formatVerify, verifyState } from '../../../src/verify/verify.ts';
import { CLUSTERS } from '../flows/clusters.ts';
import { stateOfCluster } from '../explain/fixtures.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const RENDERED = fixture('rendered-v4.txt');
const SAVED = { nat: fixture('saved-nat-v4.txt'), filter: fixture('saved-filter-v4.txt') };

function tableOf(text: string, table: string): string {
  const start = text.indexOf(`*${table}\n`);
  return text.slice(start, text.indexOf('COMMIT', start));
}

/** iptables-nft-save answering with the given tables; the legacy backend is empty. */
function fakeSave(tables: { nat: string; filter: string }): ToolRunner {
  return (file, args) => {
    const table = args[args.indexOf('-t') + 1];
    const stdout =
      file === 'iptables-nft-save'
        ? table === 'nat'
          ? tables.nat
          : table === 'filter'
            ? tables.filter
            : ''
        : '';
    return Promise.resolve({ stdout, stderr: '', code: 0 });
  };
}

describe('iptables-save canonical form', () => {
  test('an nfacct counter match is no difference (it counts, it decides nothing)', () => {
    const [counted] = rulesByChain(
      '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name  ct_state_invalid_dropped_pkts -j DROP\n',
    ).get('KUBE-FORWARD') ?? [[]];
    const [plain] = rulesByChain('-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n').get(
      'KUBE-FORWARD',
    ) ?? [[]];
    assert.equal(canonicalRule(counted ?? []), canonicalRule(plain ?? []));
  });

  test('every rule we render equals what iptables-save prints for it', () => {
    for (const table of ['nat', 'filter'] as const) {
      const rendered = rulesByChain(tableOf(RENDERED, table));
      const saved = rulesByChain(SAVED[table]);
      for (const [chain, rules] of rendered) {
        assert.deepEqual(
          (saved.get(chain) ?? []).map(canonicalRule),
          rules.map(canonicalRule),
          `${table} ${chain}`,
        );
      }
    }
  });

  test('a different rule stays different', () => {
    const a = canonicalRule([
      '-A',
      'X',
      '-d',
      '10.96.0.10',
      '-p',
      'tcp',
      '--dport',
      '80',
      '-j',
      'KUBE-SVC-A',
    ]);
    assert.equal(
      a,
      canonicalRule(['-A', 'X', '-p', 'tcp', '-d', '10.96.0.10/32', '--dport', '80', '-j', 'KUBE-SVC-A']),
    );
    assert.notEqual(
      a,
      canonicalRule(['-A', 'X', '-d', '10.96.0.10', '-p', 'tcp', '--dport', '81', '-j', 'KUBE-SVC-A']),
    );
    assert.notEqual(
      a,
      canonicalRule(['-A', 'X', '!', '-d', '10.96.0.10', '-p', 'tcp', '--dport', '80', '-j', 'KUBE-SVC-A']),
    );
  });
});

describe('verify (iptables, captured kernel state)', () => {
  const state = stateOfCluster(CLUSTERS.v4, 'iptables');

  test('the kernel as restored: no drift', async () => {
    const report = await verifyState(state, fakeSave(SAVED));
    assert.equal(report.drift, false, formatVerify(report));
    assert.match(formatVerify(report), /OK: the kernel holds what the last sync applied/);
  });

  test('one endpoint rule removed, one stale chain added: reported by Service port, with the effect', async () => {
    const lines = SAVED.nat.split('\n');
    const removed = lines.findIndex((l) => l.includes('"default/web:http -> 10.244.2.2:8080"'));
    assert.ok(removed > 0);
    lines.splice(removed, 1);
    lines.splice(
      lines.indexOf('COMMIT'),
      0,
      ':KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]',
      '-A KUBE-SEP-AAAAAAAAAAAAAAAA -m comment --comment "default/old:http" -p tcp -m tcp -j DNAT --to-destination 10.244.9.9:8080',
    );
    const report = await verifyState(state, fakeSave({ nat: lines.join('\n'), filter: SAVED.filter }));
    assert.equal(report.drift, true);
    const family = report.families[0];
    assert.ok(family);
    assert.deepEqual(family.counts, { missing: 1, unexpected: 1, changed: 0 });
    assert.deepEqual(
      family.servicePorts.map((sp) => sp.servicePort),
      ['default/old:http', 'default/web:http'],
    );
    const web = family.servicePorts.find((sp) => sp.servicePort === 'default/web:http');
    assert.deepEqual(web?.effects, [
      'endpoint 10.244.2.2:8080 missing from the kernel: 1 of 3 endpoints receive no new connections; the others take their share',
    ]);
    const text = formatVerify(report);
    assert.match(text, /DRIFT {2}1 missing · 1 unexpected · 0 changed/);
    assert.match(
      text,
      /default\/web:http {3}10\.96\.0\.10:80\/TCP\n {6}- chain nat KUBE-SVC-\w+ {2}-A KUBE-SVC-/,
    );
  });

  test('a tool that fails is an error of the family, not a crash', async () => {
    const report = await verifyState(state, () => Promise.reject(new Error('iptables-nft-save: not found')));
    assert.match(report.families[0]?.error ?? '', /not found/);
  });
});

test("nft -j elements in the renderer's text form", () => {
  assert.equal(
    elementText({ elem: { val: { concat: ['10.96.0.10', 'tcp', 80] }, comment: 'default/web:http' } }),
    '10.96.0.10 . tcp . 80 comment "default/web:http"',
  );
  assert.equal(elementText({ goto: { target: 'to-cluster-ip' } }), 'goto to-cluster-ip');
  assert.equal(elementText({ prefix: { addr: '10.0.0.0', len: 8 } }), '10.0.0.0/8');
});
