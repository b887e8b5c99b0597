// Golden tests of the userspace capture rules (spec 2.3.2). The spec's example is inlined byte
// for byte (it is what iptables-save prints for it); the others live in golden/<name>.txt
// (reviewed by hand against spec 2.3.2; regenerate with UPDATE_GOLDEN=1 only after a review).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { frontendsOf, renderCapture } from '../../../src/dataplane/userspace/render.ts';
import { servicePortState } from '../iptables/fixture.ts';
import { SCENARIOS, SPEC_EXAMPLE, WILDCARD_V4 } from './scenarios.ts';

const SPEC_2_3_2 = `*nat
:KUBE-PORTALS-CONTAINER - [0:0]
:KUBE-PORTALS-HOST - [0:0]
:KUBE-NODEPORT-CONTAINER - [0:0]
:KUBE-NODEPORT-HOST - [0:0]
-A KUBE-PORTALS-CONTAINER -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -j REDIRECT --to-ports 36421
-A KUBE-PORTALS-CONTAINER -d 203.0.113.7/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -m physdev ! --physdev-is-in -j REDIRECT --to-ports 36421
-A KUBE-PORTALS-CONTAINER -d 203.0.113.7/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j REDIRECT --to-ports 36421
-A KUBE-PORTALS-HOST -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -j DNAT --to-destination 192.168.1.10:36421
-A KUBE-PORTALS-HOST -d 203.0.113.7/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination 192.168.1.10:36421
-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j REDIRECT --to-ports 36421
-A KUBE-NODEPORT-HOST -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j DNAT --to-destination 192.168.1.10:36421
COMMIT
*filter
:KUBE-NODEPORT-NON-LOCAL - [0:0]
-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "default/web:http" -m tcp --dport 36421 -m state --state NEW -j ACCEPT
COMMIT
`;

test('spec 2.3.2 example, byte for byte', () => {
  const out = renderCapture(SPEC_EXAMPLE, WILDCARD_V4);
  assert.equal(out.text, SPEC_2_3_2);
  assert.deepEqual(out.counts, { listeners: 3, natRules: 7, filterRules: 1 });
});

const update = process.env['UPDATE_GOLDEN'] === '1';
for (const scenario of SCENARIOS) {
  test(`golden: ${scenario.name}`, () => {
    const file = new URL(`golden/${scenario.name}.txt`, import.meta.url);
    const out = renderCapture(scenario.listeners, scenario.options);
    if (update) writeFileSync(file, out.text);
    assert.equal(out.text, readFileSync(file, 'utf8'));
  });
}

describe('renderCapture', () => {
  test('refuses addresses of the other family', () => {
    assert.throws(() => renderCapture([], { ...WILDCARD_V4, hostIP: 'fd00::1' }), /hostIP "fd00::1"/);
    assert.throws(() => renderCapture([], { ...WILDCARD_V4, listenIP: '::' }), /listenIP "::"/);
  });

  test('a hostile port name cannot add arguments or lines', () => {
    const sp = servicePortState({ name: 'x', portName: 'a" -j ACCEPT\n-A', clusterIP: '10.96.0.1', port: 1 });
    const out = renderCapture(
      [{ servicePort: sp.servicePort, frontend: 'cluster IP', proxyPort: 5 }],
      WILDCARD_V4,
    );
    assert.equal(out.counts.natRules, 2);
    assert.equal(out.text.split('\n').length, 12);
    assert.match(out.text, /--comment "default\/x:a_ -j ACCEPT_-A" -m tcp/);
  });
});

describe('frontendsOf', () => {
  test('the cluster IP always, the others when the port has them', () => {
    const plain = servicePortState({ name: 'a', clusterIP: '10.96.0.1', port: 80 }).servicePort;
    assert.deepEqual(frontendsOf(plain), ['cluster IP']);
    const all = servicePortState({
      name: 'b',
      clusterIP: '10.96.0.2',
      port: 80,
      externalIPs: ['192.0.2.1'],
      loadBalancerVIPs: ['192.0.2.2'],
      nodePort: 30000,
    }).servicePort;
    assert.deepEqual(frontendsOf(all), ['cluster IP', 'external IP', 'load balancer IP', 'node port']);
  });
});
