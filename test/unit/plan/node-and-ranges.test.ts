// The one Node parser, and the source-range decision both modes take from the traffic plan.
// Before the plan, iptables let the node's own VIP-sourced traffic through when the *first* node
// IP was in a range (bindAddress ignored) and nftables when *any* node IP was: these tests fail
// on either of those.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import { nodeContextOf, parseNode, primaryNodeIP } from '../../../src/model/node.ts';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import { buildRecord, nodeFacts } from '../../../src/dataplane/nftables/service.ts';
import type { ProxySnapshot } from '../../../src/model/types.ts';
import { BASE_OPTIONS } from '../iptables/scenarios.ts';
import { servicePortState, snapshot } from '../iptables/fixture.ts';

const node: Node = {
  metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/zone': 'z1' } },
  spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64', 'not-a-cidr'] },
  status: {
    addresses: [
      { type: 'Hostname', address: '198.51.100.1' },
      { type: 'ExternalIP', address: '192.0.2.200' },
      { type: 'InternalIP', address: '192.0.2.11' },
      { type: 'InternalIP', address: 'fd00::11' },
      { type: 'InternalIP', address: '192.0.2.99' },
    ],
  },
};

test('parseNode: InternalIP before ExternalIP, other types ignored, bindAddress first', () => {
  const plain = parseNode(node);
  assert.deepEqual(plain.ips, { IPv4: ['192.0.2.11', '192.0.2.99', '192.0.2.200'], IPv6: ['fd00::11'] });
  assert.equal(plain.primaryFamily, 'IPv4');
  assert.equal(plain.zone, 'z1');
  assert.deepEqual(plain.podCIDRs, ['10.244.1.0/24', 'fd00:10:244:1::/64']);
  assert.deepEqual(
    plain.problems.map((p) => p.field),
    ['spec.podCIDRs[2]'],
  );

  const bound = parseNode(node, { bindAddress: '192.0.2.99' });
  assert.deepEqual(bound.ips.IPv4, ['192.0.2.99', '192.0.2.11', '192.0.2.200']);
  assert.equal(primaryNodeIP(nodeContextOf(bound, 'IPv4'), 'IPv4'), '192.0.2.99');
  assert.equal(parseNode(node, { bindAddress: 'fd00::11' }).primaryFamily, 'IPv6');
  // The unspecified address is no node IP.
  assert.deepEqual(parseNode(node, { bindAddress: '0.0.0.0' }).ips, plain.ips);
  assert.deepEqual(nodeContextOf(bound, 'IPv6').podCIDRs, ['fd00:10:244:1::/64']);
  assert.equal(primaryNodeIP(nodeContextOf(parseNode({ metadata: { name: 'n' } }), 'IPv6'), 'IPv6'), '::1');
});

const VIP = '203.0.113.7';

function lbSnapshot(range: string): ProxySnapshot {
  const state = servicePortState({
    name: 'lb',
    clusterIP: '10.96.0.30',
    port: 80,
    nodePort: 30080,
    loadBalancerVIPs: [VIP],
    loadBalancerSourceRanges: [range],
    endpoints: [{ ip: '10.244.1.5', port: 8080, local: true }],
  });
  const context = nodeContextOf(parseNode(node, { bindAddress: '192.0.2.99' }), 'IPv4');
  return { ...snapshot([state]), node: context };
}

/** Whether each mode lets sources with the VIP address through the source-range firewall. */
function vipSourceAllowed(range: string): { iptables: boolean; nftables: boolean } {
  const snap = lbSnapshot(range);
  const text = renderIptables({ snapshot: snap, full: true, options: BASE_OPTIONS }).text;
  const iptables = text
    .split('\n')
    .some((line) => line.startsWith('-A KUBE-FW-') && line.includes(`-s ${VIP} `));
  const state = [...snap.servicePorts.values()][0];
  assert.ok(state);
  const record = buildRecord(state, nodeFacts('IPv4', snap.node));
  const allow = record.elements.filter((element) => element.set === 'firewall-allow').map((e) => e.key);
  assert.ok(allow.length > 0, 'the port has a firewall');
  const nftables = allow.includes(`${VIP} . tcp . 80 . ${VIP}`);
  return { iptables, nftables };
}

test('source ranges: the node is allowed when its bindAddress-aware IP is in a range, in both modes', () => {
  assert.deepEqual(vipSourceAllowed('192.0.2.99/32'), { iptables: true, nftables: true });
  // Another node IP (the first InternalIP) in the range is not the node's IP for this purpose.
  assert.deepEqual(vipSourceAllowed('192.0.2.11/32'), { iptables: false, nftables: false });
  assert.deepEqual(vipSourceAllowed('192.0.2.0/24'), { iptables: true, nftables: true });
});
