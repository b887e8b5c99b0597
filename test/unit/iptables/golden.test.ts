// Golden tests: the full restore text for representative services. The spec 3.10 example is
// inlined byte for byte; the others live in golden/<name>.txt (reviewed by hand against spec 3.5;
// regenerate with UPDATE_GOLDEN=1 only after such a review).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import { servicePortState, snapshot } from './fixture.ts';
import { BASE_OPTIONS, SCENARIOS } from './scenarios.ts';

const SPEC_3_10 = `*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-FIREWALL - [0:0]
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-SEP-AFGSLHOD2HFNCBX4 - [0:0]
:KUBE-SEP-2RIJ5GIYXEFH6G4D - [0:0]
-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000
-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.5:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-AFGSLHOD2HFNCBX4
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.7:8080" -j KUBE-SEP-2RIJ5GIYXEFH6G4D
-A KUBE-SEP-AFGSLHOD2HFNCBX4 -m comment --comment default/web:http -s 10.244.1.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-AFGSLHOD2HFNCBX4 -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SEP-2RIJ5GIYXEFH6G4D -m comment --comment default/web:http -s 10.244.2.7 -j KUBE-MARK-MASQ
-A KUBE-SEP-2RIJ5GIYXEFH6G4D -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.2.7:8080
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
`;

test('spec 3.10 example, byte for byte', () => {
  const web = servicePortState({
    name: 'web',
    portName: 'http',
    clusterIP: '10.96.0.10',
    port: 80,
    endpoints: [
      { ip: '10.244.1.5', port: 8080 },
      { ip: '10.244.2.7', port: 8080 },
    ],
  });
  const out = renderIptables({ snapshot: snapshot([web]), full: true, options: BASE_OPTIONS });
  assert.equal(out.text, SPEC_3_10);
  assert.deepEqual(
    [...out.activeNatChains],
    ['KUBE-SVC-CDGGSHYLG3RE2FKL', 'KUBE-SEP-AFGSLHOD2HFNCBX4', 'KUBE-SEP-2RIJ5GIYXEFH6G4D'],
  );
  assert.equal(out.counts.filterRules, 4);
  assert.equal(out.counts.natRulesWritten, 13);
  assert.equal(out.largeClusterMode, false);
});

const update = process.env['UPDATE_GOLDEN'] === '1';
for (const scenario of SCENARIOS) {
  test(`golden: ${scenario.name}`, () => {
    const file = new URL(`golden/${scenario.name}.txt`, import.meta.url);
    const out = renderIptables({ snapshot: scenario.snapshot, full: true, options: scenario.options });
    if (update) writeFileSync(file, out.text);
    assert.equal(out.text, readFileSync(file, 'utf8'));
  });
}

test('eTP Local without local endpoints drops external traffic and counts it', () => {
  const scenario = SCENARIOS.find((s) => s.name === 'loadbalancer-etp-local-without-local-endpoint')!;
  const out = renderIptables({ snapshot: scenario.snapshot, full: true, options: scenario.options });
  assert.match(
    out.text,
    /-A KUBE-EXTERNAL-SERVICES -m comment --comment "default\/lb:http has no local endpoints" .* -j DROP/,
  );
  assert.doesNotMatch(out.text, /KUBE-SVL-/);
  assert.equal(out.counts.noLocalEndpointsExternal, 1);
  assert.equal(out.counts.noLocalEndpointsInternal, 0);
});

test('render is deterministic and the cache does not change the bytes', () => {
  for (const scenario of SCENARIOS) {
    const first = renderIptables({ snapshot: scenario.snapshot, full: true, options: scenario.options });
    const again = renderIptables({
      snapshot: scenario.snapshot,
      full: true,
      options: scenario.options,
      previous: first.cache,
    });
    assert.equal(again.text, first.text, scenario.name);
  }
});

test('snapshot and options of different families are refused', () => {
  const s = SCENARIOS.find((x) => x.name === 'ipv6')!;
  assert.throws(
    () => renderIptables({ snapshot: s.snapshot, full: true, options: BASE_OPTIONS }),
    /family IPv6/,
  );
});
