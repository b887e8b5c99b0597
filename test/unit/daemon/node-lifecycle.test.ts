// Node handling as upstream v1.36 (issue 14, item 6): 30 s wait then a fallback, IP changes and
// deletion logged without exiting, podCIDR changes under NodeCIDR still fatal.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import {
  fallbackNode,
  NODE_WAIT_TIMEOUT_MS,
  NodeLifecycle,
  type NodeLifecycleSettings,
} from '../../../src/daemon/node-lifecycle.ts';
import { nodeInfoOf } from '../../../src/daemon/node.ts';
import type { KubeClient } from '../../../src/k8s/client.ts';
import { configureLogging } from '../../../src/log/log.ts';
import { startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { pollUntil } from '../../support/netns.ts';
import { node } from '../../support/objects.ts';
import { clientFor, FAST } from '../k8s/helpers.ts';

describe('Node lifecycle (v1.36)', () => {
  let server: FakeApiServer;
  let client: KubeClient;
  const lines: string[] = [];
  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    client = clientFor(server);
    configureLogging({ write: (line) => lines.push(line) });
  });
  after(async () => {
    configureLogging({ write: (line) => process.stderr.write(line) });
    client.close();
    await server.close();
  });

  function lifecycle(name: string, extra: Partial<NodeLifecycleSettings> = {}) {
    const fatal: string[] = [];
    const settings: NodeLifecycleSettings = {
      nodeName: name,
      requirePodCIDRs: false,
      onFatal: (message) => fatal.push(message),
      ...extra,
    };
    return { lifecycle: new NodeLifecycle(client, settings, FAST), fatal };
  }

  it('waits 30 s by default', () => {
    assert.equal(NODE_WAIT_TIMEOUT_MS, 30_000);
  });

  it('carries on without the Node after the timeout, on the bind address or loopback', async () => {
    const { lifecycle: nl } = lifecycle('absent', { nodeWaitTimeoutMs: 300 });
    nl.start();
    try {
      assert.equal(await nl.waitForNode(), undefined);
    } finally {
      await nl.stop();
    }
    assert.ok(lines.some((l) => l.includes('Timed out waiting for the Node')));
    assert.deepEqual(nodeInfoOf(fallbackNode('absent', undefined), undefined).ips.IPv4, ['127.0.0.1']);
    assert.deepEqual(nodeInfoOf(fallbackNode('absent', 'fd00::1'), 'fd00::1').ips.IPv6, ['fd00::1']);
  });

  it('still fails when NodeCIDR detection needs the podCIDRs', async () => {
    const { lifecycle: nl } = lifecycle('absent-cidr', { requirePodCIDRs: true, nodeWaitTimeoutMs: 200 });
    nl.start();
    try {
      await assert.rejects(nl.waitForNode(), /spec\.podCIDRs/);
    } finally {
      await nl.stop();
    }
  });

  it('logs new Node IPs and the deletion of the Node, and keeps running', async () => {
    server.create(node({ name: 'n1', ips: ['10.0.0.1'], podCIDRs: ['10.244.1.0/24'] }));
    const { lifecycle: nl, fatal } = lifecycle('n1');
    const eligible: boolean[] = [];
    const seen: Node[] = [];
    nl.start();
    try {
      const found = await nl.waitForNode();
      assert.ok(found);
      nl.follow(found, {
        health: { setNodeEligible: (e) => eligible.push(e) },
        setNode: (n) => seen.push(n),
      });
      const current = server.get('Node', '', 'n1') as Node;
      server.update({ ...current, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.2' }] } });
      await pollUntil('the update', () => (seen.length > 0 ? true : undefined), 5_000, 5);
      assert.ok(lines.some((l) => l.includes('The IPs of the Node changed')));
      server.delete('Node', '', 'n1');
      await pollUntil('the deletion', () => (eligible.at(-1) === false ? true : undefined), 5_000, 5);
      assert.ok(lines.some((l) => l.includes('The Node was deleted')));
      assert.deepEqual(fatal, [], 'neither ends the daemon');
    } finally {
      await nl.stop();
    }
  });

  it('ends the daemon when the podCIDRs change under NodeCIDR detection', async () => {
    server.create(node({ name: 'n2', ips: ['10.0.0.3'], podCIDRs: ['10.244.2.0/24'] }));
    const { lifecycle: nl, fatal } = lifecycle('n2', { requirePodCIDRs: true });
    nl.start();
    try {
      const found = await nl.waitForNode();
      assert.ok(found);
      nl.follow(found, { health: { setNodeEligible: () => undefined }, setNode: () => undefined });
      const current = server.get('Node', '', 'n2') as Node;
      server.update({ ...current, spec: { podCIDRs: ['10.244.9.0/24'] } });
      await pollUntil('fatal', () => (fatal.length > 0 ? true : undefined), 5_000, 5);
      assert.match(fatal[0] ?? '', /podCIDRs/);
    } finally {
      await nl.stop();
    }
  });
});
