// The userspace mode with `--userspace-capture=address`: the same traffic scenarios, reached
// without a single NAT rule (service addresses on the kube-userspace0 dummy link, listeners bound
// to them), and --cleanup removes the link.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KUBE_PROXY_BIN } from '../support/cluster.ts';
import { defineTrafficSuite } from './traffic-scenarios.ts';

defineTrafficSuite('userspace', {
  label: 'address capture',
  args: ['--userspace-capture=address'],
  tag: 'kpua',
  extra: (c, skip) => {
    test(
      'address capture: no NAT rule, the service addresses on kube-userspace0, removed with their Service',
      { skip },
      async () => {
        const node1 = c().topology.node1.ns;
        const nat = (await node1.exec('iptables-save', ['-t', 'nat'])).stdout;
        assert.doesNotMatch(nat, /KUBE-(PORTALS|NODEPORT-(CONTAINER|HOST))/);
        const v4 = (await node1.exec('ip', ['-o', '-4', 'addr', 'show', 'dev', 'kube-userspace0'])).stdout;
        const v6 = (await node1.exec('ip', ['-o', '-6', 'addr', 'show', 'dev', 'kube-userspace0'])).stdout;
        assert.match(v4, /inet 10\.96\.0\.53\/32/, 'a cluster IP');
        assert.match(v4, /inet 203\.0\.113\.10\/32/, 'a load balancer IP');
        assert.match(v6, /inet6 fd00:10:96::10\/128/, 'an IPv6 cluster IP');
        // The scenarios deleted the Service web (10.96.0.10): its address went with it.
        assert.doesNotMatch(v4, /inet 10\.96\.0\.10\//);
      },
    );

    test('address capture: --cleanup removes the link', { skip }, async () => {
      await c().stopProxy();
      const node1 = c().topology.node1.ns;
      const result = await node1.exec(KUBE_PROXY_BIN, ['--cleanup']);
      assert.equal(result.code, 0);
      const links = (await node1.exec('ip', ['-o', 'link', 'show'])).stdout;
      assert.doesNotMatch(links, /kube-userspace0/);
    });
  },
});
