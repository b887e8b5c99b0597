// The proxy and its Node (upstream-behavior.md 6.1, 9.1): the Starting event, node eligibility on
// /healthz, the clear error when conntrack sizing is impossible, and (as v1.36) a log line and a
// 503 /healthz instead of an exit when the Node is deleted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import { Cluster, KUBE_PROXY_BIN } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';

const skip = kernelSkipReason();
let cluster: Cluster | undefined;
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({ mode: 'nftables', tag: 'kpl', pods: [{ name: 'a', node: 'node1' }] });
});

after(async () => {
  await cluster?.destroy();
  await cleanupNetns();
});

test('a Normal Starting event is posted on the Node', { skip }, async () => {
  const event = await pollUntil('the Starting event', async () => {
    const events = await c().api.list('Event', 'default');
    return events.find((e) => (e as { reason?: string }).reason === 'Starting');
  });
  const e = event as { type?: string; action?: string; regarding?: { kind?: string; name?: string } };
  assert.deepEqual(
    [e.type, e.action, e.regarding?.kind, e.regarding?.name],
    ['Normal', 'StartKubeProxy', 'Node', 'node1'],
  );
});

test('/healthz turns 503 when the Node is tainted for deletion; /livez stays 200', { skip }, async () => {
  const current = (await c().api.get('Node', '', 'node1')) as Node;
  await c().api.update({
    ...current,
    spec: { ...current.spec, taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] },
  });
  await pollUntil('healthz 503', async () => {
    const r = await c().httpGet('http://127.0.0.1:10256/healthz');
    return r.status === 503 && r.body.includes('"nodeEligible": false') ? true : undefined;
  });
  assert.equal((await c().httpGet('http://127.0.0.1:10256/livez')).status, 200);
  const back = (await c().api.get('Node', '', 'node1')) as Node;
  await c().api.update({ ...back, spec: { ...back.spec, taints: [] } });
  await pollUntil('healthz 200 again', async () =>
    (await c().httpGet('http://127.0.0.1:10256/healthz')).status === 200 ? true : undefined,
  );
});

test('conntrack sizing inside a namespace fails with a message naming the way out', { skip }, async (t) => {
  // Written whenever it differs (v1.36): ask for a value it does not have, so the read-only sysctl
  // must be written.
  const current = Number(
    (await c().topology.node1.ns.exec('cat', ['/proc/sys/net/netfilter/nf_conntrack_max'])).stdout,
  );
  if (current === 1_048_576) {
    t.skip(`nf_conntrack_max is already ${String(current)}: nothing would be written`);
    return;
  }
  const result = await c()
    .topology.node1.ns.exec(
      KUBE_PROXY_BIN,
      [
        '--proxy-mode=nftables',
        `--kubeconfig=${c().kubeconfigPath}`,
        '--hostname-override=node1',
        '--healthz-bind-address=127.0.0.1:10266',
        '--metrics-bind-address=127.0.0.1:10259',
        '--conntrack-min=1048576',
      ],
      { timeoutMs: 30_000 },
    )
    .then(
      () => ({ code: 0, stderr: '' }),
      (error: unknown) => error as { code: number; stderr: string },
    );
  assert.equal(result.code, 1);
  assert.match(result.stderr, /nf_conntrack_max/);
  assert.match(result.stderr, /--conntrack-max-per-core=0/);
});

test('kube-proxy logs the deletion of its Node and keeps running, /healthz 503', { skip }, async () => {
  await c().api.delete('Node', '', 'node1');
  await pollUntil('the deletion logged', () =>
    c()
      .logs()
      .some((line) => line.includes('The Node was deleted'))
      ? true
      : undefined,
  );
  await pollUntil('healthz 503', async () =>
    (await c().httpGet('http://127.0.0.1:10256/healthz')).status === 503 ? true : undefined,
  );
  assert.equal((await c().httpGet('http://127.0.0.1:10256/livez')).status, 200, 'still running');
});
