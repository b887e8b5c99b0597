// Nothing breaks on a bad object, a dropped watch or a failed iptables-restore: the real
// kube-proxy process (iptables mode) against the in-repo API server, with real traffic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import { Cluster } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';

const skip = kernelSkipReason();
let cluster: Cluster | undefined;
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};

async function answers(host: string, port = 80): Promise<boolean> {
  const [outcome] = await c().topology.probe(c().topology.pod('client').ns, { host, port, timeoutMs: 300 });
  return outcome?.ok === true;
}

async function createWorking(name: string, ip: string): Promise<void> {
  await c().api.create(
    service({ name, clusterIPs: [ip], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
  );
  await c().api.create(
    endpointSlice({
      service: name,
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ ip: c().topology.pod('a').ipv4, node: 'node1' }],
    }),
  );
  await pollUntil(`${name} to answer`, async () => ((await answers(ip)) ? true : undefined), 15_000);
}

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({
    mode: 'iptables',
    tag: 'kpr',
    pods: [
      { name: 'a', node: 'node1' },
      { name: 'client', node: 'node1' },
    ],
    // A short retry interval so the failure test sees the retry within seconds.
    args: ['--iptables-sync-period=2s'],
  });
  await createWorking('web', '10.96.0.10');
});

after(async () => {
  await cluster?.destroy();
  await cleanupNetns();
});

test('kube-proxy survives the API server restarting and keeps following changes', { skip }, async () => {
  await c().restartApiServer();
  assert.ok(await answers('10.96.0.10'), 'rules stay in place while the API server is away');
  await createWorking('after-restart', '10.96.0.11');
  const healthz = await c().httpGet('http://127.0.0.1:10256/healthz');
  assert.equal(healthz.status, 200);
});

test('hostile objects are skipped, named in the log, and never reach the rules', { skip }, async () => {
  const api = c().api;
  const podA = c().topology.pod('a').ipv4;
  const hostile: Service[] = [
    service({ name: 'bad-ip', clusterIPs: ['10.96.0.30 -j ACCEPT'], ports: [{ name: 'http', port: 80 }] }),
    service({ name: 'bad-port', clusterIPs: ['10.96.0.31'], ports: [{ name: 'http', port: 99999 }] }),
    service({
      name: 'bad-portname',
      clusterIPs: ['10.96.0.32'],
      ports: [{ name: 'x"\n-A INPUT -j ACCEPT', port: 80 }],
    }),
  ];
  hostile.push({
    ...service({ name: 'bad-proto', clusterIPs: ['10.96.0.33'], ports: [{ name: 'http', port: 80 }] }),
  });
  const badProto = hostile[3]?.spec?.ports?.[0];
  if (badProto) badProto.protocol = 'ICMP; -j ACCEPT';
  for (const svc of hostile) await api.create(svc);
  // A valid Service with hostile extras: the bad externalIP and source range are dropped alone.
  await api.create(
    service({
      name: 'mixed',
      type: 'LoadBalancer',
      clusterIPs: ['10.96.0.34'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30100 }],
      externalIPs: ['198.51.100.7\n-A INPUT -j ACCEPT'],
      loadBalancerIPs: ['203.0.113.7'],
      loadBalancerSourceRanges: ['0.0.0.0/0 -j ACCEPT', '192.0.2.0/24'],
    }),
  );
  const evilSlice: EndpointSlice = endpointSlice({
    service: 'mixed',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [
      { ip: '10.244.1.99 --to-destination 1.1.1.1', node: 'node1' },
      { ip: podA, node: 'node1' },
    ],
  });
  await api.create(evilSlice);
  await createWorking('good', '10.96.0.35');
  await pollUntil('mixed to answer through its valid endpoint', async () =>
    (await answers('10.96.0.34')) ? true : undefined,
  );

  const rules = (await c().topology.node1.ns.exec('iptables-save', [])).stdout;
  for (const needle of [
    '10.96.0.30',
    '10.96.0.31',
    '10.96.0.32',
    '10.96.0.33',
    '1.1.1.1',
    '198.51.100.7',
    '0.0.0.0/0 -j',
  ]) {
    assert.ok(!rules.includes(needle), `${needle} must not reach the rules`);
  }
  assert.ok(!/-A INPUT .*-j ACCEPT/.test(rules), 'no injected INPUT ACCEPT rule');
  assert.match(rules, /-A KUBE-FW-\w+ -s 192\.0\.2\.0\/24 /, 'the valid source range is kept');
  const log = c().logs().join('\n');
  assert.match(log, /Service default\/bad-ip: spec\.cluster/);
  assert.match(log, /Service default\/bad-port: spec\.ports\[0\]\.port/);
  assert.match(log, /Service default\/bad-proto: spec\.ports\[0\]\.protocol/);
  assert.match(log, /EndpointSlice default\/mixed-v4: endpoints\[0\]/);
  assert.ok(await answers('10.96.0.10'), 'other Services keep working');
});

test('a failed iptables-restore leaves the previous rules in place and is retried', { skip }, async () => {
  const node1 = c().topology.node1.ns;
  await createWorking('doomed', '10.96.0.40');
  const save = (await node1.exec('iptables-save', ['-t', 'nat'])).stdout;
  const chain = /-A KUBE-SERVICES .*"default\/doomed:http cluster IP".* -j (KUBE-SVC-\w+)/.exec(save)?.[1];
  assert.ok(chain, 'the doomed Service has its chain');
  // A foreign rule referencing the chain makes the kernel refuse to delete it, so the restore
  // that removes the Service fails as a whole.
  await node1.exec('iptables', ['-t', 'nat', '-I', 'PREROUTING', '-d', '192.0.2.250', '-j', chain]);
  await c().api.delete('Service', 'default', 'doomed');
  await c().api.create(
    service({
      name: 'late',
      clusterIPs: ['10.96.0.41'],
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    }),
  );
  await c().api.create(
    endpointSlice({
      service: 'late',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ ip: c().topology.pod('a').ipv4, node: 'node1' }],
    }),
  );
  await c().waitForLog(/Failed to execute iptables-restore/, 15_000);
  assert.ok(await answers('10.96.0.10'), 'existing Services keep working while restores fail');
  assert.ok(await answers('10.96.0.40'), 'the previous rules are untouched by the failed restore');
  const metrics = await c().httpGet('http://127.0.0.1:10249/metrics');
  assert.match(
    metrics.body,
    /kubeproxy_sync_proxy_rules_iptables_restore_failures_total\{ip_family="IPv4"\} [1-9]/,
  );
  const healthy = await c().httpGet('http://127.0.0.1:10256/livez');
  assert.equal(healthy.status, 200, 'not yet stale: 2 x syncPeriod has not passed');

  await node1.exec('iptables', ['-t', 'nat', '-D', 'PREROUTING', '-d', '192.0.2.250', '-j', chain]);
  await pollUntil(
    'the retry to program the late Service',
    async () => ((await answers('10.96.0.41')) ? true : undefined),
    20_000,
  );
  await pollUntil(
    'the deleted Service to be gone',
    async () => ((await answers('10.96.0.40')) ? undefined : true),
    20_000,
  );
  const after = (await node1.exec('iptables-save', ['-t', 'nat'])).stdout;
  assert.ok(!after.includes(chain), 'the stale chain is deleted by the retry');
});
