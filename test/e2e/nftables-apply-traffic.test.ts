// Real packets through the map-based nftables layout: a node namespace holding the rules,
// three pods behind it (pod1 and pod3 "on this node", pod2 pretending to be elsewhere) and an
// external client on the node's subnet.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createNftablesProxier, type NftablesProxier } from '../../src/dataplane/nftables/proxier.ts';
import type { ServicePortState } from '../../src/model/types.ts';
import { cleanupNetns, kernelSkipReason, uniquePrefix, type Netns } from '../support/netns.ts';
import {
  buildNftNet,
  CLIENT_IP,
  connectMany,
  NODE_IP,
  POD_GATEWAY,
  startServer,
  type NftNet,
} from '../support/nft-net.ts';
import { OPTIONS_V4, port, snapshot } from '../unit/nftables/fixtures.ts';

const CLUSTER_IP = '10.96.0.10';
const EMPTY_IP = '10.96.0.40';
const STICKY_IP = '10.96.0.30';
const NODE_PORT = 30080;

function answeredBy(results: readonly { reply?: string; error?: string }[]): Map<string, string[]> {
  const byPod = new Map<string, string[]>();
  for (const result of results) {
    assert.ok(result.reply, `connection failed: ${result.error ?? '?'}`);
    const [pod = '', remote = ''] = result.reply.split(' ');
    byPod.set(pod, [...(byPod.get(pod) ?? []), remote]);
  }
  return byPod;
}

describe('nftables layout with real traffic', { skip: kernelSkipReason() }, () => {
  let net: NftNet;
  let proxier: NftablesProxier;
  let services: ServicePortState[];

  before(async () => {
    net = await buildNftNet(uniquePrefix('kpnt'), 3);
    await Promise.all(net.pods.map((pod) => startServer(pod, 8080)));
    // The external client reaches cluster IPs through the node (a static route, as upstream
    // documents for off-cluster access); the node needs a route for locally sent traffic.
    await net.client.ip('route', 'add', '10.96.0.0/16', 'via', NODE_IP);
    const endpoints = net.pods.map((pod) => ({ ip: pod.ip, local: pod.name !== 'pod2' }));
    services = [
      port({ name: 'web', clusterIP: CLUSTER_IP, port: 80, endpoints }),
      port({ name: 'empty', clusterIP: EMPTY_IP, port: 80 }),
      port({ name: 'sticky', clusterIP: STICKY_IP, port: 80, affinitySeconds: 60, endpoints }),
      port({
        name: 'local',
        clusterIP: '10.96.0.20',
        port: 80,
        nodePort: NODE_PORT,
        externalLocal: true,
        endpoints,
      }),
    ];
    const run = (file: string, args: readonly string[], options?: Parameters<Netns['exec']>[2]) =>
      net.node.exec(file, args, options);
    proxier = await createNftablesProxier(
      {
        ...OPTIONS_V4,
        localDetector: { kind: 'cidr', cidr: '10.244.0.0/16' },
        nodePortAddresses: { kind: 'ips', ips: [NODE_IP] },
      },
      { run },
    );
    await proxier.sync({ snapshot: snapshot(services, { nodeIPs: [NODE_IP] }), full: true });
  });
  after(cleanupNetns);

  test('ClusterIP: DNAT balanced over every endpoint, pod sources kept, hairpin masqueraded', async () => {
    const pod3 = net.pods[2] as NftNet['pods'][0];
    const fromPod = answeredBy(await connectMany(pod3.ns, CLUSTER_IP, 80, 30));
    assert.deepEqual([...fromPod.keys()].sort(), ['pod1', 'pod2', 'pod3'], 'each endpoint answered');
    // Pod-to-pod through the service keeps the client's address...
    assert.deepEqual(
      [...new Set([...(fromPod.get('pod1') ?? []), ...(fromPod.get('pod2') ?? [])])],
      [pod3.ip],
    );
    // ...but a pod reaching itself is masqueraded, or its reply would bypass conntrack.
    assert.deepEqual([...new Set(fromPod.get('pod3'))], [POD_GATEWAY]);
  });

  test('ClusterIP from off the cluster is masqueraded', async () => {
    const fromOutside = answeredBy(await connectMany(net.client, CLUSTER_IP, 80, 6));
    for (const remotes of fromOutside.values()) assert.deepEqual([...new Set(remotes)], [POD_GATEWAY]);
  });

  test('a service without endpoints and an unused port of a cluster IP are rejected at once', async () => {
    for (const [host, portNumber] of [
      [EMPTY_IP, 80],
      [CLUSTER_IP, 81],
    ] as const) {
      const results = await connectMany(net.pods[0]?.ns as Netns, host, portNumber, 3);
      for (const result of results) {
        assert.equal(result.error, 'ECONNREFUSED', `${host}:${portNumber}`);
        assert.ok(result.ms < 1000, `rejected quickly (${result.ms} ms)`);
      }
    }
  });

  test('NodePort with externalTrafficPolicy Local: external clients reach only local endpoints, unmasqueraded', async () => {
    const results = answeredBy(await connectMany(net.client, NODE_IP, NODE_PORT, 24));
    assert.deepEqual([...results.keys()].sort(), ['pod1', 'pod3']);
    for (const remotes of results.values()) assert.deepEqual([...new Set(remotes)], [CLIENT_IP]);
    // Pods use the cluster-wide set (the short-circuit), as upstream does.
    const fromPod = answeredBy(await connectMany(net.pods[0]?.ns as Netns, NODE_IP, NODE_PORT, 30));
    assert.ok(fromPod.has('pod2'), 'pod traffic to a node port may reach the remote endpoint');
  });

  test('ClientIP affinity: one client keeps its endpoint, remembered once in the affinity set', async () => {
    const chosen = new Map<string, string>();
    for (const [from, address] of [
      [net.client, CLIENT_IP],
      [net.pods[0]?.ns as Netns, net.pods[0]?.ip ?? ''],
    ] as const) {
      const results = answeredBy(await connectMany(from, STICKY_IP, 80, 12));
      assert.equal(
        results.size,
        1,
        `one endpoint for all connections, got ${[...results.keys()].join(', ')}`,
      );
      chosen.set(address, [...results.keys()][0] ?? '');
    }
    // Each client has one entry: client . cluster IP . port . endpoint . port, the endpoint
    // being the pod that answered.
    const listing = (await net.node.exec('nft', ['list', 'set', 'ip', 'kube-proxy', 'affinity-tcp'])).stdout;
    for (const [client, pod] of chosen) {
      const entries = [
        ...listing.matchAll(/(\d+\.\d+\.\d+\.\d+) \. ([\d.]+) \. (\d+) \. ([\d.]+) \. (\d+)/g),
      ].filter((match) => match[1] === client);
      assert.equal(entries.length, 1, `one affinity entry for ${client}:\n${listing}`);
      const endpoint = net.pods.find((p) => p.name === pod)?.ip;
      assert.deepEqual(entries[0]?.slice(2), [STICKY_IP, '80', endpoint, '8080']);
    }
  });

  test('ClientIP affinity: when its endpoint goes away the client picks another one and keeps it', async () => {
    const before = [...answeredBy(await connectMany(net.client, STICKY_IP, 80, 4)).keys()];
    assert.equal(before.length, 1);
    const remaining = net.pods
      .filter((pod) => pod.name !== before[0])
      .map((pod) => ({ ip: pod.ip, local: pod.name !== 'pod2' }));
    services[2] = port({
      name: 'sticky',
      clusterIP: STICKY_IP,
      port: 80,
      affinitySeconds: 60,
      endpoints: remaining,
    });
    const result = await proxier.sync({ snapshot: snapshot(services, { nodeIPs: [NODE_IP] }), full: false });
    assert.equal(result.full, false);
    const after = answeredBy(await connectMany(net.client, STICKY_IP, 80, 12));
    assert.equal(after.size, 1, `one endpoint after the change, got ${[...after.keys()].join(', ')}`);
    assert.notEqual([...after.keys()][0], before[0]);
  });

  test('a partial sync moves the service to another class; new connections follow', async () => {
    const [pod1] = net.pods;
    services[0] = port({
      name: 'web',
      clusterIP: CLUSTER_IP,
      port: 80,
      endpoints: [{ ip: pod1?.ip ?? '', local: true }],
    });
    const result = await proxier.sync({ snapshot: snapshot(services, { nodeIPs: [NODE_IP] }), full: false });
    assert.equal(result.full, false);
    const after = answeredBy(await connectMany(net.client, CLUSTER_IP, 80, 8));
    assert.deepEqual([...after.keys()], ['pod1']);
  });
});
