import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  localDetectorFor,
  nftNodePortAddresses,
  nodePortCIDRsFor,
  type DataplaneSettings,
  type NodeInfo,
} from '../../../src/dataplane/common/settings.ts';

const node: NodeInfo = {
  name: 'node1',
  primaryFamily: 'IPv4',
  ips: { IPv4: ['192.0.2.11'], IPv6: ['::1'] },
  podCIDRs: ['10.244.1.0/24'],
};

const settings: DataplaneSettings = {
  masqueradeBit: 14,
  masqueradeAll: false,
  detectLocalMode: 'ClusterCIDR',
  clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/48'],
  bridgeInterface: '',
  interfaceNamePrefix: '',
  nodePortAddresses: { kind: 'primary' },
  localhostNodePorts: true,
  syncPeriodMs: 30_000,
};

test('primary node-port addresses: the node IP of the family; none of the family means all', () => {
  assert.deepEqual(nodePortCIDRsFor({ kind: 'primary' }, 'IPv4', node), {
    kind: 'cidrs',
    cidrs: ['192.0.2.11/32'],
  });
  assert.deepEqual(nftNodePortAddresses({ kind: 'primary' }, 'IPv4', node, []), {
    kind: 'ips',
    ips: ['192.0.2.11'],
  });
  // The node has no IPv6 address but loopback: IPv6 node ports accept every address, as upstream.
  assert.deepEqual(nftNodePortAddresses({ kind: 'primary' }, 'IPv6', node, []), { kind: 'all' });
});

test('CIDR node-port addresses of another family only, or a /0, mean all addresses', () => {
  assert.deepEqual(nftNodePortAddresses({ kind: 'cidrs', cidrs: ['192.0.2.0/24'] }, 'IPv6', node, []), {
    kind: 'all',
  });
  assert.deepEqual(nftNodePortAddresses({ kind: 'cidrs', cidrs: ['0.0.0.0/0'] }, 'IPv4', node, []), {
    kind: 'all',
  });
  assert.deepEqual(nftNodePortAddresses({ kind: 'cidrs', cidrs: ['198.51.100.0/24'] }, 'IPv4', node, []), {
    kind: 'ips',
    ips: [],
  });
});

test('CIDR node-port addresses pick the node IPs and host addresses inside them, once each', () => {
  assert.deepEqual(
    nftNodePortAddresses({ kind: 'cidrs', cidrs: ['192.0.2.0/24', '127.0.0.0/8'] }, 'IPv4', node, [
      '192.0.2.11',
      '192.0.2.77',
      '198.51.100.1',
      'fd00::1',
    ]),
    { kind: 'ips', ips: ['192.0.2.11', '192.0.2.77'] },
  );
});

test('local detection per family', () => {
  assert.deepEqual(localDetectorFor(settings, 'IPv6', node), { kind: 'cidr', cidr: 'fd00:10:244::/48' });
  assert.deepEqual(localDetectorFor({ ...settings, clusterCIDRs: ['10.244.0.0/16'] }, 'IPv6', node), {
    kind: 'none',
  });
  const nodeCIDR = { ...settings, detectLocalMode: 'NodeCIDR' as const };
  assert.deepEqual(localDetectorFor(nodeCIDR, 'IPv4', node), { kind: 'cidr', cidr: '10.244.1.0/24' });
  assert.deepEqual(localDetectorFor(nodeCIDR, 'IPv6', node), { kind: 'none' });
  assert.deepEqual(
    localDetectorFor(
      { ...settings, detectLocalMode: 'InterfaceNamePrefix', interfaceNamePrefix: 'veth' },
      'IPv4',
      node,
    ),
    {
      kind: 'prefix',
      prefix: 'veth',
    },
  );
});
