// The traffic scenarios every kernel mode passes (test/e2e/traffic-scenarios.ts), with real
// connections through the kernel's IPVS, plus what only IPVS does on the same cluster: graceful
// termination of a removed real server (weight 0 while a connection lives on it) and a UDP client
// following its endpoint once the old one leaves (IPVS and conntrack entries cleaned up). Runs in
// the VM lane (make test-vm).
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Cluster } from '../../support/cluster.ts';
import { pollUntil, stopProcess } from '../../support/netns.ts';
import { endpointSlice, service, type EndpointSpec } from '../../support/objects.ts';
import { TrafficWatch } from '../../support/traffic-watch.ts';
import { UdpClient } from '../../support/udp-client-process.ts';
import { defineTrafficSuite } from '../../e2e/traffic-scenarios.ts';
import { ipvsSkipReason } from './kernel.ts';

const DRAIN_VIP = '10.96.9.80';
const HOLD_PORT = 9090;
const QUICK_PORT = 9091;

/** One `ipvsadm -L -n` row of a real server: its weight and connection counts. */
interface RealServerRow {
  readonly weight: number;
  readonly active: number;
}

/** The real servers of one TCP virtual server, by `ip:port`, as node1's kernel lists them. */
async function realServers(cluster: Cluster, vip: string, port: number): Promise<Map<string, RealServerRow>> {
  const out = await cluster.topology.node1.ns.exec('ipvsadm', ['-L', '-n', '-t', `${vip}:${String(port)}`]);
  const rows = new Map<string, RealServerRow>();
  for (const line of out.stdout.split('\n')) {
    const m = /^\s+->\s+(\S+)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (m?.[1]) rows.set(m[1], { weight: Number(m[2]), active: Number(m[3]) });
  }
  return rows;
}

/** The restart tests' Services: new connections to one, a long-lived one to the other. */
const RESTART_VIP = '10.96.9.100';
const RESTART_HOLD_VIP = '10.96.9.101';
const RESTART_HOLD_PORT = 9092;

/** A Service of the tampering test's own (the traffic suite deletes its `web` on the way). */
const TAMPER_VIP = '10.96.9.90';

/** Someone else's change to what the IPVS mode keeps in the kernel, and how to see it undone. */
const TAMPERING: readonly {
  readonly what: string;
  readonly command: readonly string[];
  readonly repaired: readonly string[];
}[] = [
  {
    what: 'the IPVS table cleared',
    command: ['ipvsadm', '-C'],
    repaired: ['ipvsadm', '-L', '-n', '-t', `${TAMPER_VIP}:80`],
  },
  {
    what: 'KUBE-CLUSTER-IP flushed',
    command: ['ipset', 'flush', 'KUBE-CLUSTER-IP'],
    repaired: ['ipset', 'test', 'KUBE-CLUSTER-IP', `${TAMPER_VIP},tcp:80`],
  },
  {
    what: 'the nat table flushed',
    command: ['iptables', '-t', 'nat', '-F'],
    repaired: [
      'iptables',
      '-t',
      'nat',
      '-C',
      'PREROUTING',
      '-m',
      'comment',
      '--comment',
      'kubernetes service portals',
      '-j',
      'KUBE-SERVICES',
    ],
  },
  {
    what: 'kube-ipvs0 deleted',
    command: ['ip', 'link', 'del', 'kube-ipvs0'],
    repaired: ['ip', 'link', 'show', 'kube-ipvs0'],
  },
];

function ipvsExtras(c: () => Cluster, skip: string | false): void {
  const ep = (pod: string): EndpointSpec => {
    const p = c().topology.pod(pod);
    return { ip: p.ipv4, node: p.node, pod };
  };

  test('ipvs: state changed by someone else is repaired within seconds', { skip }, async (t: TestContext) => {
    const cl = c();
    const node1 = cl.topology.node1.ns;
    await cl.api.create(
      service({
        name: 'tamper',
        clusterIPs: [TAMPER_VIP],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    await cl.api.create(
      endpointSlice({ service: 'tamper', ports: [{ name: 'http', port: 8080 }], endpoints: [ep('a')] }),
    );
    const answers = async () => {
      const [outcome] = await cl.topology.probe(cl.topology.pod('client').ns, {
        host: TAMPER_VIP,
        port: 80,
        timeoutMs: 1_000,
      });
      return outcome?.ok === true ? true : undefined;
    };
    const repairs = () => cl.logs().filter((line) => /IPVS state changed by someone else/.test(line)).length;
    for (const { what, command, repaired } of TAMPERING) {
      await pollUntil(`${TAMPER_VIP}:80 to answer`, answers);
      const before = repairs();
      const [file = '', ...args] = command;
      const started = Date.now();
      await node1.exec(file, args);
      const [check = '', ...checkArgs] = repaired;
      await pollUntil(`${what}: repaired`, () =>
        node1.exec(check, checkArgs).then(
          () => true,
          () => undefined,
        ),
      );
      await pollUntil(`${what}: ${TAMPER_VIP}:80 to answer again`, answers);
      t.diagnostic(`${what}: repaired and answering ${String(Date.now() - started)} ms after`);
      // The check logs what it found before the full sync that repairs it.
      await pollUntil(`${what}: the repair logged with what changed`, () =>
        repairs() > before ? true : undefined,
      );
    }
  });

  test(
    'ipvs: a removed endpoint drains at weight 0: its established connection lives on, new ones avoid it',
    { skip },
    async (t: TestContext) => {
      const cl = c();
      const stops = await Promise.all(
        ['a', 'c'].map((pod) =>
          cl.topology.startEchoServer(pod, `${pod}-drain`, { hold: [HOLD_PORT], tcp: [QUICK_PORT] }),
        ),
      );
      const slice = (pods: readonly string[]) =>
        endpointSlice({
          service: 'drain',
          ports: [
            { name: 'hold', port: HOLD_PORT },
            { name: 'quick', port: QUICK_PORT },
          ],
          endpoints: pods.map(ep),
        });
      let conn: ReturnType<Cluster['topology']['node1']['ns']['spawn']> | undefined;
      let output = '';
      try {
        await cl.api.create(
          service({
            name: 'drain',
            clusterIPs: [DRAIN_VIP],
            ports: [
              { name: 'hold', port: 80, targetPort: HOLD_PORT },
              { name: 'quick', port: 81, targetPort: QUICK_PORT },
            ],
          }),
        );
        await cl.api.create(slice(['a', 'c']));
        // A long-lived connection: the endpoint echoes what it is sent.
        const script = [
          "const s = require('node:net').connect(80, process.argv[1]);",
          "s.on('data', (d) => process.stdout.write(d));",
          "s.on('close', () => { console.log('CLOSED'); process.exit(0); });",
          "s.on('error', () => {});",
          // A line every 200 ms, echoed back by the endpoint (namespaced processes get no stdin).
          "setInterval(() => s.write('ping-' + Date.now() + '\\n'), 200);",
        ].join('');
        const held = await pollUntil(
          'a long-lived connection to the Service',
          () => {
            // A connection made before the Service was programmed fails: make another.
            if (conn === undefined || output.includes('CLOSED')) {
              output = '';
              conn = cl.topology.pod('client').ns.spawn(process.execPath, ['-e', script, DRAIN_VIP]);
              conn.stdout?.on('data', (d: Buffer) => (output += d.toString()));
              return undefined;
            }
            const first = /"name":"([ac])-drain"/.exec(output);
            return first && !output.includes('CLOSED') ? first[1] : undefined;
          },
          30_000,
          100,
        );
        const kept = held === 'a' ? 'c' : 'a';
        const heldRs = `${ep(held).ip}:${String(HOLD_PORT)}`;
        const quickRs = `${ep(held).ip}:${String(QUICK_PORT)}`;
        t.diagnostic(`connection held on ${held}; removing it from the EndpointSlice`);

        await cl.api.update(slice([kept]));
        const removed = Date.now();
        const draining = await pollUntil(
          `${heldRs} at weight 0 in IPVS`,
          async () => {
            const row = (await realServers(cl, DRAIN_VIP, 80)).get(heldRs);
            return row?.weight === 0 ? row : undefined;
          },
          10_000,
          50,
        );
        t.diagnostic(`weight 0 ${String(Date.now() - removed)} ms after the API write`);
        assert.equal(draining.active, 1, 'the established connection is counted as active');
        // The same endpoint's other port had no connection: deleted at once, not drained.
        assert.equal((await realServers(cl, DRAIN_VIP, 81)).has(quickRs), false, `${quickRs} deleted`);

        // The established connection still carries data both ways.
        const now = Date.now();
        await pollUntil('an echo on the held connection after the removal', () =>
          [...output.matchAll(/ping-(\d+)/g)].some((m) => Number(m[1]) > now) ? true : undefined,
        );
        // New connections only reach the endpoint that stays.
        const outcomes = await cl.topology.probe(cl.topology.pod('client').ns, {
          host: DRAIN_VIP,
          port: 81,
          count: 12,
        });
        assert.deepEqual(
          [...new Set(outcomes.map((o) => o.name ?? `!${o.error ?? ''}`))],
          [`${kept}-drain`],
          JSON.stringify(outcomes),
        );
        // The kernel still lists the draining server while its connection lives.
        assert.equal((await realServers(cl, DRAIN_VIP, 80)).get(heldRs)?.weight, 0);
      } finally {
        if (conn) await stopProcess(conn, 'SIGKILL');
        await Promise.all(stops.map((stop) => stop()));
        await cl.api.delete('Service', 'default', 'drain').catch(() => undefined);
      }
    },
  );

  test('ipvs: a DNS-like UDP client follows its endpoint within a sync', { skip }, async (t: TestContext) => {
    const cl = c();
    const dns = (pods: readonly string[]) =>
      endpointSlice({
        service: 'u-dns',
        ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
        endpoints: pods.map(ep),
      });
    await cl.api.create(
      service({
        name: 'u-dns',
        clusterIPs: ['10.96.9.53'],
        ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }],
      }),
    );
    await cl.api.create(dns(['a']));
    const client = await UdpClient.start(cl.topology.pod('client').ns, '10.96.9.53', 53);
    try {
      await client.firstFrom('a', 0, 30_000);
      // Pod a stays up and keeps answering: only a stale IPVS or conntrack entry could still send
      // traffic there.
      const switched = Date.now();
      await cl.api.update(dns(['b']));
      const arrived = await client.firstFrom('b', switched, 15_000);
      t.diagnostic(`UDP failover (API write to first answer from b): ${String(arrived - switched)} ms`);
      await pollUntil('a run of answers', () =>
        client.replies.filter((r) => r.t > arrived).length >= 10 ? true : undefined,
      );
      assert.deepEqual(
        [...new Set(client.replies.filter((r) => r.t > arrived).map((r) => r.name))],
        ['b'],
        'every later answer comes from the new endpoint',
      );
    } finally {
      await client.stop();
      await cl.api.delete('Service', 'default', 'u-dns').catch(() => undefined);
    }
  });
}

/**
 * SIGKILL and SIGTERM restarts keep an established connection and serve new ones throughout (what
 * test/e2e/restart.test.ts checks for iptables and nftables). The IPVS table, the sets and the
 * rules stay in the kernel while the process is away; its first sync after the restart finds them
 * as it left them. Last on this cluster: a restart starts a new log.
 */
function ipvsRestarts(c: () => Cluster, skip: string | false): void {
  test('ipvs: SIGKILL and SIGTERM restarts: traffic never stops', { skip }, async (t: TestContext) => {
    const cl = c();
    const stopHold = await cl.topology.startEchoServer('a', 'a-restart', { hold: [RESTART_HOLD_PORT] });
    const a = cl.topology.pod('a');
    const ep = [{ ip: a.ipv4, node: a.node, pod: 'a' }];
    const create = async (name: string, ip: string, port: number) => {
      await cl.api.create(
        service({ name, clusterIPs: [ip], ports: [{ name: 'http', port: 80, targetPort: port }] }),
      );
      await cl.api.create(endpointSlice({ service: name, ports: [{ name: 'http', port }], endpoints: ep }));
    };
    await create('restart', RESTART_VIP, 8080);
    await create('restart-hold', RESTART_HOLD_VIP, RESTART_HOLD_PORT);
    const client = cl.topology.pod('client').ns;
    await pollUntil('the restart Service to answer', async () => {
      const [o] = await cl.topology.probe(client, { host: RESTART_VIP, port: 80, timeoutMs: 500 });
      return o?.ok ? true : undefined;
    });
    // Emulation is slow: fewer, more patient connections than on this machine's own kernel.
    const traffic = await TrafficWatch.start(client, {
      vip: RESTART_VIP,
      holdVip: RESTART_HOLD_VIP,
      intervalMs: 200,
      connectTimeoutMs: 3000,
    });
    try {
      for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
        const since = Date.now();
        await cl.stopProxy(signal);
        await pollUntil('twenty connections while the proxy is away', () =>
          traffic.startedSince(since) >= 20 ? true : undefined,
        );
        await cl.restartProxy('ipvs');
        await traffic.throughout(t, `${signal} and restart in IPVS mode`, since);
      }
    } finally {
      await traffic.stop();
      await stopHold();
    }
  });
}

// Emulation runs every tool tens of times slower, and the integrity check spaces itself by its
// own cost (at most 2 % of a core): a fifth of a core here keeps it at about every 5 s.
defineTrafficSuite(
  'ipvs',
  {
    tag: 'kpv',
    args: [],
    env: { KUBE_PROXY_CHECK_COST_FACTOR: '5' },
    extra: (c, skip) => {
      ipvsExtras(c, skip);
      ipvsRestarts(c, skip);
    },
  },
  ipvsSkipReason(),
);
