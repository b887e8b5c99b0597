// Issue 15 in IPVS mode, on the VM lane's kernel: the tool faults every mode passes
// (test/e2e/tool-faults-suite.ts) with `ipvsadm -R` failing and hanging, and SIGKILL and SIGTERM
// restarts that keep an established connection and serve new ones throughout (what
// test/e2e/restart.test.ts checks for iptables and nftables). The IPVS table, the sets and the
// rules stay in the kernel while the process is away; its first sync after the restart finds
// them as it left them and changes nothing traffic depends on.
import { after, before, describe, test } from 'node:test';
import { Cluster, STANDARD_PODS } from '../../support/cluster.ts';
import { cleanupNetns, pollUntil } from '../../support/netns.ts';
import { endpointSlice, service } from '../../support/objects.ts';
import { TrafficWatch } from '../../support/traffic-watch.ts';
import { defineToolFaults } from '../../e2e/tool-faults-suite.ts';
import { ipvsSkipReason } from './kernel.ts';

const skip = ipvsSkipReason();
/** The lane's share of a core for the integrity checks (see ipvs-traffic.ts). */
const ENV = { KUBE_PROXY_CHECK_COST_FACTOR: '5' };

defineToolFaults(
  {
    mode: 'ipvs',
    label: 'ipvs',
    tag: 'kpvf',
    tools: ['ipvsadm'],
    // Only the batches that change the IPVS table fail or hang; listings pass.
    onlyWhen: { ipvsadm: '[ "$1" = -R ]' },
    syncPeriodFlag: '--ipvs-sync-period',
    env: ENV,
  },
  skip,
);

describe('ipvs: restarts', { skip }, () => {
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
    cluster = await Cluster.start({
      mode: 'ipvs',
      tag: 'kpvr',
      pods: STANDARD_PODS,
      tcpPorts: [8080],
      env: ENV,
    });
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
      service({
        name: 'hold',
        clusterIPs: [HOLD_VIP],
        ports: [{ name: 'http', port: 80, targetPort: 9090 }],
      }),
    );
    await c().api.create(
      endpointSlice({ service: 'hold', ports: [{ name: 'http', port: 9090 }], endpoints: ep }),
    );
    const client = c().topology.pod('client').ns;
    await pollUntil('web to answer', async () => {
      const [o] = await c().topology.probe(client, { host: VIP, port: 80, timeoutMs: 500 });
      return o?.ok ? true : undefined;
    });
    // Emulation is slow: fewer, more patient connections than on this machine's own kernel.
    traffic = await TrafficWatch.start(client, {
      vip: VIP,
      holdVip: HOLD_VIP,
      intervalMs: 200,
      connectTimeoutMs: 3000,
    });
  });

  after(async () => {
    await traffic?.stop();
    await cluster?.destroy();
    await cleanupNetns();
  });

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    test(`ipvs: ${signal} and restart: traffic never stops`, async (t) => {
      const since = Date.now();
      await c().stopProxy(signal);
      await pollUntil('twenty connections while the proxy is away', () =>
        w().startedSince(since) >= 20 ? true : undefined,
      );
      await c().restartProxy('ipvs');
      await w().throughout(t, `${signal} and restart in IPVS mode`, since);
    });
  }
});
