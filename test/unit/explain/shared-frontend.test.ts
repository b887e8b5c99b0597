// Two Services listing the same external IP and port: every mode sends the traffic to the one
// with the smallest service port key (the nftables ledger, the iptables rule order, the IPVS
// virtual server), whatever order they arrived in, and explain says which.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explain } from '../../../src/explain/engine.ts';
import { sortObjects, stateFromManifests } from '../../../src/explain/manifests.ts';
import { endpointSlice, node, service } from '../../support/objects.ts';
import { NODE_PORTS, settingsFor } from './fixtures.ts';

const objects = [
  node({ name: 'node1', ips: ['192.168.0.10'], podCIDRs: ['10.244.1.0/24'], zone: 'a' }),
  // beta first: arrival order must not matter.
  service({
    name: 'beta',
    clusterIPs: ['10.96.0.11'],
    externalIPs: ['198.51.100.50'],
    ports: [{ name: 'http', port: 80, targetPort: 8080 }],
  }),
  endpointSlice({
    service: 'beta',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ ip: '10.244.2.5', node: 'node2' }],
  }),
  service({
    name: 'alpha',
    clusterIPs: ['10.96.0.10'],
    externalIPs: ['198.51.100.50'],
    ports: [{ name: 'http', port: 80, targetPort: 8080 }],
  }),
  endpointSlice({
    service: 'alpha',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ ip: '10.244.1.5', node: 'node1' }],
  }),
];

for (const mode of ['iptables', 'nftables', 'ipvs', 'userspace'] as const) {
  test(`${mode}: a shared external IP and port goes to the smallest service port key`, () => {
    const state = stateFromManifests(sortObjects(objects, 'test'), {
      nodeName: 'node1',
      mode,
      settings: settingsFor(['10.244.0.0/16'], NODE_PORTS[mode]),
      from: 'test',
    }).state;
    const e = explain(state, { src: '203.0.113.9', dst: '198.51.100.50', dport: 80, from: 'external' });
    assert.equal(e.match.servicePort, 'default/alpha:http');
    assert.deepEqual(e.verdict.to, ['10.244.1.5:8080']);
    assert.ok(!e.caveats.some((c) => c.includes('departs') || c.includes('a bug')), e.caveats.join('\n'));
  });
}
