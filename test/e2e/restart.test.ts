// Issue 15, restart and upgrade: while kube-proxy is SIGKILLed and restarted, stopped with
// SIGTERM and restarted, and switched between the iptables and nftables modes, an established
// connection keeps working and new connections (one every 50 ms from a pod) are served
// throughout. The rules stay in the kernel while the process is away (upstream never flushes on
// exit), and a new mode removes the old mode's rules only once its own are in.
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { Cluster, STANDARD_PODS } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil, stopProcess } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';

const skip = kernelSkipReason();
const VIP = '10.96.6.10';
const HOLD_VIP = '10.96.6.11';
let cluster: Cluster | undefined;
let prober: ChildProcess | undefined;
let held: ChildProcess | undefined;
let heldOutput = '';
const results: { t: number; ok: boolean }[] = [];
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
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
  // A new connection every 50 ms, one JSON line each.
  const script = [
    "const net = require('node:net');",
    'setInterval(() => { const t = Date.now();',
    `const s = net.connect(80, '${VIP}'); let ok = false;`,
    "s.on('data', () => (ok = true)); s.setTimeout(1000, () => s.destroy());",
    "s.on('close', () => console.log(JSON.stringify({ t, ok }))); s.on('error', () => {}); }, 50);",
  ].join('');
  await pollUntil('web to answer', async () => {
    const [o] = await c().topology.probe(client, { host: VIP, port: 80, timeoutMs: 300 });
    return o?.ok ? true : undefined;
  });
  prober = client.spawn(process.execPath, ['-e', script]);
  createInterface({ input: prober.stdout ?? process.stdin }).on('line', (line) =>
    results.push(JSON.parse(line) as { t: number; ok: boolean }),
  );
  // The long-lived connection: echoes each line written to it.
  held = client.spawn(process.execPath, [
    '-e',
    [
      `const s = require('node:net').connect(80, '${HOLD_VIP}');`,
      "s.on('data', (d) => process.stdout.write(d));",
      "s.on('close', () => { console.log('CLOSED'); process.exit(0); });",
      // A line every 100 ms, echoed back by the endpoint (namespaced processes get no stdin).
      "setInterval(() => s.write('ping-' + Date.now() + '\\n'), 100);",
    ].join(''),
  ]);
  held.stdout?.on('data', (d: Buffer) => (heldOutput += d.toString()));
  await pollUntil('the held connection', () => (heldOutput.includes('a-hold') ? true : undefined));
});

after(async () => {
  if (prober) await stopProcess(prober, 'SIGKILL');
  if (held) await stopProcess(held, 'SIGKILL');
  await cluster?.destroy();
  await cleanupNetns();
});

/** Checks the held connection still echoes, and returns the prober's failures since `since`. */
async function throughout(t: TestContext, what: string, since: number): Promise<void> {
  const now = Date.now();
  await pollUntil(`the held connection to echo after ${what}`, () =>
    [...heldOutput.matchAll(/ping-(\d+)/g)].some((m) => Number(m[1]) > now) ? true : undefined,
  );
  assert.ok(!heldOutput.includes('CLOSED'), `the established connection survived ${what}`);
  // Let the prober run on a little after the event, then count.
  const end = Date.now();
  await pollUntil('prober results past the event', () => (results.some((r) => r.t > end) ? true : undefined));
  const window = results.filter((r) => r.t >= since && r.t <= end);
  const failed = window.filter((r) => !r.ok);
  t.diagnostic(`${what}: ${String(window.length)} new connections, ${String(failed.length)} failed`);
  assert.ok(window.length > 10, 'the prober ran throughout');
  assert.deepEqual(failed, [], `new connections failed during ${what}`);
}

test('SIGKILL and restart: traffic never stops', { skip }, async (t) => {
  const since = Date.now();
  await c().stopProxy('SIGKILL');
  // Away for a while: the kernel keeps serving.
  await pollUntil('twenty connections while the proxy is away', () =>
    results.filter((r) => r.t > since).length >= 20 ? true : undefined,
  );
  await c().restartProxy('iptables');
  await throughout(t, 'SIGKILL and restart', since);
});

test('SIGTERM and restart: traffic never stops', { skip }, async (t) => {
  const since = Date.now();
  await c().stopProxy('SIGTERM');
  await pollUntil('twenty connections while the proxy is away', () =>
    results.filter((r) => r.t > since).length >= 20 ? true : undefined,
  );
  await c().restartProxy('iptables');
  await throughout(t, 'SIGTERM and restart', since);
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
    await throughout(t, `the switch to ${mode}`, since);
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
      results.filter((r) => r.t > since).length >= 20 ? true : undefined,
    );
    await c().restartProxy('nftables');
    await throughout(t, `${signal} and restart in nftables mode`, since);
  });
}
