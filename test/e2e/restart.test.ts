// Issue 15, restart and upgrade: while kube-proxy is SIGKILLed and restarted, stopped with
// SIGTERM and restarted, and switched between the iptables and nftables modes, an established
// connection keeps working and new connections (one every 50 ms from a pod) are served
// throughout. The rules stay in the kernel while the process is away (upstream never flushes on
// exit), and a new mode removes the old mode's rules only once its own are in.
import { after, before, test } from 'node:test';
import { Cluster, STANDARD_PODS } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';
import { TrafficWatch } from '../support/traffic-watch.ts';

const skip = kernelSkipReason();
const VIP = '10.96.6.10';
const HOLD_VIP = '10.96.6.11';
let cluster: Cluster | undefined;
let traffic: TrafficWatch | undefined;
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};
const w = () => {
  if (!traffic) throw new Error('no traffic watch');
  return traffic;
};

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({ mode: 'iptables', tag: 'kprs', pods: STANDARD_PODS, tcpPorts: [8080] });
  await c().topology.startEchoServer('a', 'a-hold', { hold: [9090] });
  const a = c().topology.pod('a');
  const ep = [{ ip: a.ipv4, node: a.node, pod: 'a' }];
  await c().api.create(
    service({ name: 'web', clusterIPs: [VIP], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
  );
  await c().api.create(
    endpointSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: ep }),
  );
  await c().api.create(
    service({ name: 'hold', clusterIPs: [HOLD_VIP], ports: [{ name: 'http', port: 80, targetPort: 9090 }] }),
  );
  await c().api.create(
    endpointSlice({ service: 'hold', ports: [{ name: 'http', port: 9090 }], endpoints: ep }),
  );
  const client = c().topology.pod('client').ns;
  await pollUntil('web to answer', async () => {
    const [o] = await c().topology.probe(client, { host: VIP, port: 80, timeoutMs: 300 });
    return o?.ok ? true : undefined;
  });
  traffic = await TrafficWatch.start(client, {
    vip: VIP,
    holdVip: HOLD_VIP,
    intervalMs: 50,
    connectTimeoutMs: 1000,
  });
});

after(async () => {
  await traffic?.stop();
  await cluster?.destroy();
  await cleanupNetns();
});

test('SIGKILL and restart: traffic never stops', { skip }, async (t) => {
  const since = Date.now();
  await c().stopProxy('SIGKILL');
  // Away for a while: the kernel keeps serving.
  await pollUntil('twenty connections while the proxy is away', () =>
    w().startedSince(since) >= 20 ? true : undefined,
  );
  await c().restartProxy('iptables');
  await w().throughout(t, 'SIGKILL and restart', since);
});

test('SIGTERM and restart: traffic never stops', { skip }, async (t) => {
  const since = Date.now();
  await c().stopProxy('SIGTERM');
  await pollUntil('twenty connections while the proxy is away', () =>
    w().startedSince(since) >= 20 ? true : undefined,
  );
  await c().restartProxy('iptables');
  await w().throughout(t, 'SIGTERM and restart', since);
});

test('switching iptables -> nftables -> iptables: traffic never stops', { skip }, async (t) => {
  for (const mode of ['nftables', 'iptables'] as const) {
    const since = Date.now();
    await c().stopProxy('SIGTERM');
    await c().restartProxy(mode);
    // The switch is over once the old mode's rules are gone.
    const ns = c().topology.node1.ns;
    await pollUntil(`the mode before ${mode} cleaned up`, async () => {
      const nft = (await ns.exec('nft', ['list', 'tables'])).stdout.includes('kube-proxy');
      const ipt = /KUBE-SVC-/.test((await ns.exec('iptables-save', ['-t', 'nat'])).stdout);
      return (mode === 'nftables' ? !ipt : !nft) ? true : undefined;
    });
    await w().throughout(t, `the switch to ${mode}`, since);
  }
});

// The same in nftables mode: its table stays in the kernel while the process is away, and a
// restart's first sync replaces it in one transaction.
for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  test(`nftables mode, ${signal} and restart: traffic never stops`, { skip }, async (t) => {
    if (c().mode !== 'nftables') {
      await c().stopProxy('SIGTERM');
      await c().restartProxy('nftables');
      await pollUntil('the iptables rules cleaned up', async () =>
        /KUBE-SVC-/.test((await c().topology.node1.ns.exec('iptables-save', ['-t', 'nat'])).stdout)
          ? undefined
          : true,
      );
    }
    const since = Date.now();
    await c().stopProxy(signal);
    await pollUntil('twenty connections while the proxy is away', () =>
      w().startedSince(since) >= 20 ? true : undefined,
    );
    await c().restartProxy('nftables');
    await w().throughout(t, `${signal} and restart in nftables mode`, since);
  });
}
