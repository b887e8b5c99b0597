// The iptables mode's nfacct packet counters come from the kernel (issue 14, item 4): a NodePort
// reached on 127.0.0.1 from the node counts in
// kubeproxy_iptables_localhost_nodeports_accepted_packets_total, and the INVALID drop rule counts
// into ct_state_invalid_dropped_pkts, both read back with the nfacct tool on each scrape.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';

const skip = kernelSkipReason();
let cluster: Cluster | undefined;
const c = (): Cluster => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};

function sample(metrics: string, name: string): number | undefined {
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics);
  return match ? Number(match[1]) : undefined;
}

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({
    mode: 'iptables',
    tag: 'kpf',
    pods: [{ name: 'a', node: 'node1' }],
    tcpPorts: [8080],
  });
  const pod = c().topology.pod('a');
  await c().api.create(
    service({
      name: 'np',
      type: 'NodePort',
      clusterIPs: ['10.96.3.10'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30310 }],
    }),
  );
  await c().api.create(
    endpointSlice({
      service: 'np',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ ip: pod.ipv4, node: pod.node, pod: 'a' }],
    }),
  );
});

after(async () => {
  await cluster?.destroy();
  await cleanupNetns();
});

test('localhost NodePort packets are counted by the kernel and exported', { skip }, async () => {
  const metricsURL = 'http://127.0.0.1:10249/metrics';
  const before = await c().httpGet(metricsURL);
  assert.match(before.body, /# HELP kubeproxy_iptables_ct_state_invalid_dropped_packets_total \[ALPHA\] /);
  assert.equal(sample(before.body, 'kubeproxy_iptables_localhost_nodeports_accepted_packets_total'), 0);
  try {
    await pollUntil('the NodePort answers on 127.0.0.1', async () => {
      const r = await c()
        .topology.node1.ns.exec('curl', ['-s', '--http0.9', '--max-time', '1', 'http://127.0.0.1:30310/'])
        .catch(() => undefined);
      return r ? true : undefined;
    });
  } catch (error) {
    const rules = await c().topology.node1.ns.exec('iptables-save', []);
    console.error(rules.stdout, c().logs().slice(-20).join('\n'));
    throw error;
  }
  const counted = await pollUntil('the counter to move', async () => {
    const value = sample(
      (await c().httpGet(metricsURL)).body,
      'kubeproxy_iptables_localhost_nodeports_accepted_packets_total',
    );
    return value !== undefined && value > 0 ? value : undefined;
  });
  assert.ok(counted > 0);
  const rules = await c().topology.node1.ns.exec('iptables-save', []);
  assert.match(rules.stdout, /-m nfacct --nfacct-name +localhost_nps_accepted_pkts/);
  assert.match(
    rules.stdout,
    /--ctstate INVALID -m nfacct --nfacct-name +ct_state_invalid_dropped_pkts -j DROP/,
  );
});
