// Issue 14 item 7 on the real kernel: the nftables mode drops traffic to an unallocated address
// of the ServiceCIDRs (no answer: the connection times out) while an allocated cluster IP on a
// port no Service has is rejected; a new ServiceCIDR object extends the drop at run time; an API
// server without ServiceCIDRs leaves the proxy working, with a log line; and a node port address
// added to the node at run time (inside --nodeport-addresses) starts answering node ports.
//
// To tell "dropped" from "forwarded to nobody", node2 holds the unallocated addresses: a packet
// the proxy lets through reaches node2, which has no listener and answers with a reset
// (ECONNREFUSED); a dropped one gets no answer (ETIMEDOUT).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil, type Netns } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';
import type { ProbeOutcome } from '../../src/playground/topology.ts';

const skip = kernelSkipReason();
let cluster: Cluster | undefined;
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};

const PODS = [
  { name: 'a', node: 'node1' },
  { name: 'client', node: 'node1' },
] as const;
const NODE_PORT = 30090;
const NODE_PORT_CIDR = '10.99.0.0/24';
const NEW_NODE_ADDRESS = '10.99.0.1';
/** Unallocated, inside the first ServiceCIDR (10.96.0.0/17). */
const UNALLOCATED = '10.96.9.9';
/** Unallocated, inside the second ServiceCIDR (10.96.128.0/17) only. */
const UNALLOCATED_LATER = '10.96.200.9';

const serviceCIDR = (name: string, cidrs: string[]) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'ServiceCIDR',
  metadata: { name },
  spec: { cidrs },
});

async function once(cl: Cluster, from: Netns, host: string, port: number): Promise<ProbeOutcome> {
  const [outcome] = await cl.topology.probe(from, { host, port, timeoutMs: 700 });
  if (!outcome) throw new Error(`no probe outcome for ${host}:${String(port)}`);
  return outcome;
}

/** Polls until a connection from `from` ends with `error` (or answers, for 'ok'). */
function waitFor(cl: Cluster, from: Netns, host: string, port: number, error: string): Promise<ProbeOutcome> {
  return pollUntil(
    `${host}:${String(port)} to give ${error}`,
    async () => {
      const outcome = await once(cl, from, host, port);
      return (error === 'ok' ? outcome.ok : outcome.error === error) ? outcome : undefined;
    },
    20_000,
    100,
  );
}

/** A Service web (cluster IP 10.96.0.10, port 80 -> 8080 on pod a, node port 30090). */
async function createWeb(cl: Cluster): Promise<void> {
  await cl.api.create(
    service({
      name: 'web',
      type: 'NodePort',
      clusterIPs: ['10.96.0.10'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: NODE_PORT }],
    }),
  );
  const a = cl.topology.pod('a');
  await cl.api.create(
    endpointSlice({
      service: 'web',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ ip: a.ipv4, node: a.node, pod: 'a' }],
    }),
  );
  await waitFor(cl, cl.topology.pod('client').ns, '10.96.0.10', 80, 'ok');
}

/** node2 holds the unallocated addresses, so whatever node1 forwards to them gets a reset. */
async function unallocatedOnNode2(cl: Cluster): Promise<void> {
  for (const ip of [UNALLOCATED, UNALLOCATED_LATER])
    await cl.topology.node2.ns.ip('addr', 'add', `${ip}/32`, 'dev', 'eth0');
}

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({
    mode: 'nftables',
    tag: 'kpsc',
    pods: PODS,
    tcpPorts: [8080],
    args: [`--nodeport-addresses=${NODE_PORT_CIDR}`],
  });
  await createWeb(c());
  await unallocatedOnNode2(c());
});

after(async () => {
  await cluster?.destroy();
  await cleanupNetns();
});

test(
  'unallocated cluster IPs are dropped once ServiceCIDRs exist; unused ports are rejected',
  { skip },
  async () => {
    const client = c().topology.pod('client').ns;
    // No ServiceCIDR object yet: the address is forwarded (node2 resets the connection).
    assert.equal((await once(c(), client, UNALLOCATED, 80)).error, 'ECONNREFUSED');

    await c().api.create(serviceCIDR('kubernetes', ['10.96.0.0/17', 'fd00:10:96::/112']));
    await waitFor(c(), client, UNALLOCATED, 80, 'ETIMEDOUT');
    // Every port of it, and from the node itself too (there the kernel refuses the send at once).
    assert.equal((await once(c(), client, UNALLOCATED, 8080)).error, 'ETIMEDOUT');
    const fromNode = await once(c(), c().topology.node1.ns, UNALLOCATED, 80);
    assert.equal(fromNode.ok, false);
    assert.notEqual(fromNode.error, 'ECONNREFUSED', 'dropped, not rejected');
    // An allocated cluster IP on a port no Service has: rejected (node1 answers at once).
    assert.equal((await once(c(), client, '10.96.0.10', 81)).error, 'ECONNREFUSED');
    // The Service itself still answers, and an address outside the ServiceCIDRs is forwarded.
    assert.equal((await once(c(), client, '10.96.0.10', 80)).name, 'a');
    assert.equal((await once(c(), client, UNALLOCATED_LATER, 80)).error, 'ECONNREFUSED');

    // A second ServiceCIDR extends the drop; deleting it ends it again.
    await c().api.create(serviceCIDR('extra', ['10.96.128.0/17']));
    await waitFor(c(), client, UNALLOCATED_LATER, 80, 'ETIMEDOUT');
    await c().api.delete('ServiceCIDR', '', 'extra');
    await waitFor(c(), client, UNALLOCATED_LATER, 80, 'ECONNREFUSED');
    assert.equal((await once(c(), client, UNALLOCATED, 80)).error, 'ETIMEDOUT', 'the first one stays');
  },
);

test('a node port address added to the node at run time starts answering node ports', { skip }, async () => {
  const client = c().topology.pod('client').ns;
  assert.equal((await once(c(), client, NEW_NODE_ADDRESS, NODE_PORT)).ok, false, 'not on the node yet');
  await c().topology.node1.ns.ip('addr', 'add', `${NEW_NODE_ADDRESS}/32`, 'dev', 'eth0');
  const outcome = await waitFor(c(), client, NEW_NODE_ADDRESS, NODE_PORT, 'ok');
  assert.equal(outcome.name, 'a');
  await c().waitForLog(/"Node port addresses changed"/);
  // And it stops once the address is gone.
  await c().topology.node1.ns.ip('addr', 'del', `${NEW_NODE_ADDRESS}/32`, 'dev', 'eth0');
  await pollUntil(
    'the node port to stop answering on the removed address',
    async () => ((await once(c(), client, NEW_NODE_ADDRESS, NODE_PORT)).ok ? undefined : true),
    20_000,
    100,
  );
});

test('an API server without ServiceCIDRs: the proxy works on, says so, drops nothing', { skip }, async () => {
  await cluster?.destroy();
  cluster = undefined;
  const old = await Cluster.start({
    mode: 'nftables',
    tag: 'kpsn',
    pods: PODS,
    tcpPorts: [8080],
    unservedResources: ['servicecidrs'],
  });
  try {
    await old.waitForLog(/does not serve networking\.k8s\.io\/v1 ServiceCIDRs/);
    await createWeb(old);
    await unallocatedOnNode2(old);
    // Nothing is dropped: the proxy knows no ServiceCIDR.
    const client = old.topology.pod('client').ns;
    assert.equal((await once(old, client, UNALLOCATED, 80)).error, 'ECONNREFUSED');
    assert.equal(
      (await once(old, client, '10.96.0.10', 81)).error,
      'ECONNREFUSED',
      'unused ports still rejected',
    );
    assert.equal((await once(old, client, '10.96.0.10', 80)).name, 'a');
    assert.equal(
      old.logs().filter((line) => line.includes('does not serve networking.k8s.io/v1 ServiceCIDRs')).length,
      1,
      'one warning, not one per retry',
    );
  } finally {
    await old.destroy();
  }
});
