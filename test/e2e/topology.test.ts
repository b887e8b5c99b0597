// The test topology itself must route as designed before any proxy test can mean anything.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupNetns, kernelSkipReason } from '../support/netns.ts';
import { buildTopology, type Topology } from '../support/topology.ts';

const skip = kernelSkipReason();
let topo: Topology | undefined;

before(async () => {
  if (skip) return;
  topo = await buildTopology([
    { name: 'a', node: 'node1' },
    { name: 'b', node: 'node2' },
  ]);
  await topo.startBackends({ tcp: [8080], udp: [5353] });
});
after(async () => {
  await topo?.destroy();
  await cleanupNetns();
});

test('pods reach pods on both nodes directly, unmasqueraded, over IPv4 and IPv6', { skip }, async () => {
  const t = topo!;
  const a = t.pod('a');
  const b = t.pod('b');
  const [tcp4] = await t.probe(a.ns, { host: b.ipv4, port: 8080 });
  assert.deepEqual([tcp4?.ok, tcp4?.name, tcp4?.peer], [true, 'b', a.ipv4]);
  const [tcp6] = await t.probe(a.ns, { host: b.ipv6, port: 8080 });
  assert.deepEqual([tcp6?.ok, tcp6?.name, tcp6?.peer], [true, 'b', a.ipv6]);
  const [udp] = await t.probe(b.ns, { proto: 'udp', host: a.ipv4, port: 5353 });
  assert.deepEqual([udp?.ok, udp?.name, udp?.peer], [true, 'a', b.ipv4]);
});

test('without proxy rules a service IP does not answer and a closed port is refused', { skip }, async () => {
  const t = topo!;
  const [svc] = await t.probe(t.pod('a').ns, { host: '10.96.0.10', port: 80, timeoutMs: 300 });
  assert.equal(svc?.ok, false);
  const [closed] = await t.probe(t.external.ns, { host: t.node1.ipv4, port: 9, timeoutMs: 2000 });
  assert.deepEqual([closed?.ok, closed?.error], [false, 'ECONNREFUSED']);
});
