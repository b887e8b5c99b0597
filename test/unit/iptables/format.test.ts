import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  endpointChainName,
  hash16,
  isServiceChainName,
  serviceChainNames,
} from '../../../src/dataplane/iptables/chains.ts';
import {
  commentArg,
  masqueradeMark,
  probability,
  MAX_COMMENT_LENGTH,
} from '../../../src/dataplane/iptables/format.ts';

test('chain names: the verified examples of spec 3.3', () => {
  assert.equal(serviceChainNames('ns1/svc1:p80', 'TCP').cluster, 'KUBE-SVC-XPGD46QRK7WJZT7O');
  assert.equal(endpointChainName('ns1/svc1:p80', 'TCP', '10.180.0.1:80'), 'KUBE-SEP-SXIVWICOYRO3J4NJ');
  // Spec 3.10 example.
  assert.equal(serviceChainNames('default/web:http', 'TCP').cluster, 'KUBE-SVC-CDGGSHYLG3RE2FKL');
  assert.equal(endpointChainName('default/web:http', 'TCP', '10.244.1.5:8080'), 'KUBE-SEP-AFGSLHOD2HFNCBX4');
});

test('chain names: all four per-port chains share the hash; protocol matters', () => {
  const names = serviceChainNames('ns1/svc1:p80', 'TCP');
  assert.deepEqual(names, {
    cluster: 'KUBE-SVC-XPGD46QRK7WJZT7O',
    local: 'KUBE-SVL-XPGD46QRK7WJZT7O',
    external: 'KUBE-EXT-XPGD46QRK7WJZT7O',
    firewall: 'KUBE-FW-XPGD46QRK7WJZT7O',
  });
  assert.notEqual(serviceChainNames('ns1/svc1:p80', 'UDP').cluster, names.cluster);
  assert.match(hash16('anything'), /^[A-Z2-7]{16}$/);
  assert.equal(hash16('x'), hash16('x'));
});

test('ours: the five per-service prefixes only', () => {
  for (const chain of ['KUBE-SVC-A', 'KUBE-SVL-A', 'KUBE-EXT-A', 'KUBE-FW-A', 'KUBE-SEP-A']) {
    assert.equal(isServiceChainName(chain), true, chain);
  }
  for (const chain of [
    'KUBE-SERVICES',
    'KUBE-NODEPORTS',
    'KUBE-MARK-MASQ',
    'KUBE-FIREWALL',
    'KUBE-PROXY-FIREWALL',
    'OTHER',
  ]) {
    assert.equal(isServiceChainName(chain), false, chain);
  }
});

test('probability: 10 decimals, exact ties to even like upstream', () => {
  assert.equal(probability(1), '1.0000000000');
  assert.equal(probability(2), '0.5000000000');
  assert.equal(probability(3), '0.3333333333');
  assert.equal(probability(6), '0.1666666667');
  assert.equal(probability(7), '0.1428571429');
  // 1/2048 = 0.00048828125 exactly: the tie goes to the even digit (toFixed would round up).
  assert.equal(probability(2048), '0.0004882812');
  assert.equal((1 / 2048).toFixed(10), '0.0004882813');
  // 1/4096 = 0.000244140625: not a tie at 10 decimals.
  assert.equal(probability(4096), '0.0002441406');
  assert.equal(probability(1_000_000), '0.0000010000');
  // Agrees with toFixed everywhere there is no exact tie.
  for (let k = 1; k <= 3000; k++) {
    if (k === 2048) continue;
    assert.equal(probability(k), (1 / k).toFixed(10), `k=${k}`);
  }
  assert.throws(() => probability(0), /not a positive integer/);
});

test('masquerade mark: 0x and 8 hex digits', () => {
  assert.equal(masqueradeMark(14), '0x00004000');
  assert.equal(masqueradeMark(0), '0x00000001');
  assert.equal(masqueradeMark(31), '0x80000000');
  assert.throws(() => masqueradeMark(32), /masqueradeBit 32/);
});

test('comments: quoted only with spaces, hostile text neutralised, bounded', () => {
  assert.equal(commentArg('default/web:http'), 'default/web:http');
  assert.equal(commentArg('default/web:http cluster IP'), '"default/web:http cluster IP"');
  assert.equal(commentArg('ns/a -> [fd00::1]:80'), '"ns/a -> [fd00::1]:80"');
  const hostile = commentArg('x" -j ACCEPT\n-A INPUT -j ACCEPT \\ \'#');
  assert.equal(hostile, '"x_ -j ACCEPT_-A INPUT -j ACCEPT _ __"');
  assert.doesNotMatch(hostile.slice(1, -1), /["\\\n\r]/);
  assert.equal(commentArg(''), '_');
  assert.equal(commentArg('a'.repeat(400)).length, MAX_COMMENT_LENGTH);
  assert.equal(commentArg('ü\u0000\t'), '___');
});
