// The address capture's pure parts: which listeners and link addresses a set of service ports
// needs, reading the link's addresses back from `ip -o addr`, and the `ip -batch` lines that
// reconcile them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CAPTURE_LINK,
  linkAddressScript,
  parseLinkAddresses,
  planAddressCapture,
} from '../../../src/dataplane/userspace/address-capture.ts';
import { servicePortState } from '../iptables/fixture.ts';

const NODE_IP = '192.0.2.11';
const isNode = (ip: string) => ip === NODE_IP;

describe('userspace address capture', () => {
  test('one listener per service address at the service port, node ports on the wildcard', () => {
    const web = servicePortState({
      name: 'web',
      portName: 'http',
      clusterIP: '10.96.0.10',
      port: 80,
      nodePort: 30080,
      externalIPs: ['198.51.100.7', NODE_IP],
      loadBalancerVIPs: ['203.0.113.10'],
    });
    const dns = servicePortState({ name: 'dns', protocol: 'UDP', clusterIP: '10.96.0.53', port: 53 });
    const plan = planAddressCapture('IPv4', [web, dns], isNode);
    assert.deepEqual(
      plan.listeners.map((l) => `${l.frontend} ${l.host}:${l.port}`),
      [
        'cluster IP 10.96.0.10:80',
        'external IP 198.51.100.7:80',
        `external IP ${NODE_IP}:80`,
        'load balancer IP 203.0.113.10:80',
        'node port 0.0.0.0:30080',
        'cluster IP 10.96.0.53:53',
      ],
    );
    // The node's own address is listened on but never put on the link.
    assert.deepEqual([...plan.addresses].sort(), [
      '10.96.0.10',
      '10.96.0.53',
      '198.51.100.7',
      '203.0.113.10',
    ]);
    assert.equal(new Set(plan.listeners.map((l) => l.key)).size, plan.listeners.length, 'keys are unique');
  });

  test('IPv6: addresses of the other family are ignored, the wildcard is ::', () => {
    const web6 = servicePortState({
      name: 'web6',
      family: 'IPv6',
      clusterIP: 'fd00:10:96:0:0:0:0:10',
      port: 80,
      nodePort: 30081,
      externalIPs: ['198.51.100.7'],
    });
    const plan = planAddressCapture('IPv6', [web6], isNode);
    assert.deepEqual(
      plan.listeners.map((l) => `${l.host} ${l.port}`),
      ['fd00:10:96::10 80', ':: 30081'],
    );
    assert.deepEqual([...plan.addresses], ['fd00:10:96::10']);
  });

  test("reads the link's addresses of one family back, canonical, link-local left out", () => {
    const out = [
      `7: ${CAPTURE_LINK}    inet 10.96.0.10/32 scope global ${CAPTURE_LINK}\\       valid_lft forever`,
      `7: ${CAPTURE_LINK}    inet6 fd00:10:96:0::10/128 scope global \\       valid_lft forever`,
      `7: ${CAPTURE_LINK}    inet6 fe80::1/64 scope link \\       valid_lft forever`,
    ].join('\n');
    assert.deepEqual([...parseLinkAddresses('IPv4', out)], ['10.96.0.10']);
    assert.deepEqual([...parseLinkAddresses('IPv6', out)], ['fd00:10:96::10']);
  });

  test('adds what is missing (IPv6 without DAD), deletes extras only when asked', () => {
    const current = new Set(['10.96.0.10', '10.96.0.99']);
    const wanted = new Set(['10.96.0.10', '10.96.0.11']);
    assert.deepEqual(linkAddressScript('IPv4', current, wanted, false), [
      `address add 10.96.0.11/32 dev ${CAPTURE_LINK}`,
    ]);
    assert.deepEqual(linkAddressScript('IPv4', current, wanted, true), [
      `address add 10.96.0.11/32 dev ${CAPTURE_LINK}`,
      `address del 10.96.0.99/32 dev ${CAPTURE_LINK}`,
    ]);
    assert.deepEqual(linkAddressScript('IPv6', new Set(), new Set(['fd00::1']), true), [
      `address add fd00::1/128 dev ${CAPTURE_LINK} nodad`,
    ]);
  });

  test('a changed port is a new listener (a bound socket cannot move)', () => {
    const at = (port: number, nodePort: number) =>
      planAddressCapture(
        'IPv4',
        [servicePortState({ name: 'web', clusterIP: '10.96.0.10', port, nodePort })],
        isNode,
      ).listeners.map((l) => l.key);
    const before = at(80, 30080);
    const after = at(8080, 30081);
    assert.equal(
      before.filter((key) => after.includes(key)).length,
      0,
      `${before.join(' ')} / ${after.join(' ')}`,
    );
  });
});
