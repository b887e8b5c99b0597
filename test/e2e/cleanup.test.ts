// Switching modes and `kube-proxy --cleanup`, with the real binary in a node namespace: starting
// one mode removes the other modes' leftovers (userspace included), and --cleanup removes everything
// we created.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, KUBE_PROXY_BIN } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';

const skip = kernelSkipReason();
let cluster: Cluster | undefined;
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};

const natRules = async () => (await c().topology.node1.ns.exec('iptables-save', ['-t', 'nat'])).stdout;
const nftTables = async () => (await c().topology.node1.ns.exec('nft', ['list', 'tables'])).stdout;
const answers = async () => {
  const [outcome] = await c().topology.probe(c().topology.pod('client').ns, {
    host: '10.96.0.10',
    port: 80,
    timeoutMs: 300,
  });
  return outcome?.ok === true ? true : undefined;
};

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({
    mode: 'iptables',
    tag: 'kpc',
    pods: [
      { name: 'a', node: 'node1' },
      { name: 'client', node: 'node1' },
    ],
  });
  await c().api.create(
    service({
      name: 'web',
      clusterIPs: ['10.96.0.10'],
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    }),
  );
  await c().api.create(
    endpointSlice({
      service: 'web',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ ip: c().topology.pod('a').ipv4, node: 'node1' }],
    }),
  );
  await pollUntil('web to answer in iptables mode', answers);
});

after(async () => {
  await cluster?.destroy();
  await cleanupNetns();
});

test('starting nftables mode removes iptables leftovers, and back', { skip }, async () => {
  assert.match(await natRules(), /KUBE-SVC-/);
  await c().stopProxy();
  assert.ok(await answers(), 'rules survive a stopped proxy (no flush on exit)');

  await c().restartProxy('nftables');
  await pollUntil('web to answer in nftables mode', answers);
  // The old mode's rules go once the new mode's first syncs are in (a seamless switch).
  await pollUntil('iptables leftovers removed', async () =>
    /KUBE-(SVC|SEP|SERVICES)/.test(await natRules()) ? undefined : true,
  );
  assert.match(await nftTables(), /table ip kube-proxy/);

  await c().stopProxy();
  await c().restartProxy('iptables');
  await pollUntil('web to answer in iptables mode again', answers);
  await pollUntil('nftables leftovers removed', async () =>
    /kube-proxy/.test(await nftTables()) ? undefined : true,
  );
});

test(
  'userspace joins the switch: iptables -> userspace -> nftables -> userspace, serving after each',
  { skip },
  async () => {
    await c().stopProxy();
    await c().restartProxy('userspace');
    await pollUntil('web to answer in userspace mode', answers);
    await pollUntil('iptables leftovers removed', async () =>
      /KUBE-(SVC|SEP|SERVICES)/.test(await natRules()) ? undefined : true,
    );
    assert.match(await natRules(), /-A KUBE-PORTALS-CONTAINER .*-d 10\.96\.0\.10\/32/);

    await c().stopProxy();
    await c().restartProxy('nftables');
    await pollUntil('web to answer in nftables mode', answers);
    await pollUntil('userspace leftovers removed', async () =>
      /KUBE-(PORTALS|NODEPORT-(CONTAINER|HOST|NON-LOCAL))/.test(await natRules()) ? undefined : true,
    );

    await c().stopProxy();
    await c().restartProxy('userspace');
    await pollUntil('web to answer in userspace mode again', answers);
    await pollUntil('nftables leftovers removed', async () =>
      /kube-proxy/.test(await nftTables()) ? undefined : true,
    );
  },
);

test('kube-proxy --cleanup removes every rule of every mode and exits 0', { skip }, async () => {
  await c().stopProxy();
  const node1 = c().topology.node1.ns;
  // Leave nftables leftovers too, as after a mode switch that never completed.
  await node1.exec('nft', ['add', 'table', 'ip', 'kube-proxy']);
  const result = await node1.exec(KUBE_PROXY_BIN, ['--cleanup', '--v=2']);
  assert.equal(result.code, 0);
  const nat = await natRules();
  assert.doesNotMatch(nat, /KUBE-(SVC|SEP|SERVICES|NODEPORTS|POSTROUTING|EXT|FW|SVL)/);
  assert.doesNotMatch(nat, /KUBE-(PORTALS|NODEPORT-(CONTAINER|HOST|NON-LOCAL))/, 'userspace chains too');
  assert.doesNotMatch(nat, /-j KUBE-/, 'no jump into our chains is left');
  const filter = (await node1.exec('iptables-save', ['-t', 'filter'])).stdout;
  assert.doesNotMatch(filter, /KUBE-(SERVICES|EXTERNAL-SERVICES|FORWARD|NODEPORTS)/);
  assert.doesNotMatch(await nftTables(), /kube-proxy/);
  const [outcome] = await c().topology.probe(c().topology.pod('client').ns, {
    host: '10.96.0.10',
    port: 80,
    timeoutMs: 300,
  });
  assert.equal(outcome?.ok, false, 'the Service no longer answers');
});
