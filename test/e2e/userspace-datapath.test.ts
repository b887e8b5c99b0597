// What only the userspace mode does, through the real process in a namespace cluster: a refusing
// endpoint costs no client connection and is skipped (passive health) until it answers again; UDP
// flows keep their endpoint and end after --udp-timeout; ClientIP affinity holds for the Service's
// timeout and then lets go; connections to a removed endpoint drain within
// --userspace-drain-timeout; and a restart of the proxy interrupts new connections only briefly
// (the gap is measured and printed).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, test, type TestContext } from 'node:test';
import { Cluster, STANDARD_PODS } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';
import { endpointSlice, service, type EndpointSpec } from '../support/objects.ts';

const skip = kernelSkipReason();
const UDP_CLIENT = fileURLToPath(new URL('../support/udp-client.ts', import.meta.url));
const UDP_TIMEOUT_MS = 1_000;
const DRAIN_MS = 1_500;
let cluster: Cluster | undefined;
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};
const ep = (pod: string): EndpointSpec => {
  const p = c().topology.pod(pod);
  return { ip: p.ipv4, node: p.node, pod };
};
/**
 * Waits out a duration that is itself under test (an affinity timeout): nothing to poll for, the
 * point is that the client stays away.
 */
const idle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const clientNs = () => c().topology.pod('client').ns;
const probeNames = async (host: string, count: number): Promise<(string | undefined)[]> =>
  (await c().topology.probe(clientNs(), { host, port: 80, count, timeoutMs: 3_000 })).map((o) =>
    o.ok ? o.name : `!${o.error ?? ''}`,
  );

/** The sum of a metric's samples whose labels include `labels`. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await c().httpGet('http://127.0.0.1:10249/metrics')).body;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

async function clusterIPService(
  name: string,
  ip: string,
  slices: { port: number; eps: EndpointSpec[] }[],
  extra = {},
) {
  const api = c().api;
  await api.create(
    service({ name, clusterIPs: [ip], ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...extra }),
  );
  for (const [i, slice] of slices.entries()) {
    await api.create(
      endpointSlice({
        service: name,
        name: `${name}-${i}`,
        ports: [{ name: 'http', port: slice.port }],
        endpoints: slice.eps,
      }),
    );
  }
}

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({
    mode: 'userspace',
    tag: 'kpud',
    pods: STANDARD_PODS,
    tcpPorts: [8080],
    udpPorts: [5353],
    args: [`--udp-timeout=${UDP_TIMEOUT_MS}ms`, `--userspace-drain-timeout=${DRAIN_MS}ms`],
  });
  // b listens on 8080 only: its endpoint at 8081 refuses.
  await clusterIPService('retry', '10.96.5.1', [
    { port: 8080, eps: [ep('a')] },
    { port: 8081, eps: [ep('b')] },
  ]);
  await clusterIPService('sticky', '10.96.5.2', [{ port: 8080, eps: [ep('a'), ep('b'), ep('c')] }], {
    sessionAffinityTimeoutSeconds: 2,
  });
  await c().api.create(
    service({
      name: 'dns',
      clusterIPs: ['10.96.5.53'],
      ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }],
    }),
  );
  await c().api.create(
    endpointSlice({
      service: 'dns',
      ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
      endpoints: [ep('a'), ep('b')],
    }),
  );
  await clusterIPService('web', '10.96.5.10', [{ port: 8080, eps: [ep('a'), ep('b'), ep('c')] }]);
  await pollUntil('the last Service answers', async () =>
    (await probeNames('10.96.5.10', 1))[0]?.startsWith('!') ? undefined : true,
  );
});

after(async () => {
  await cluster?.destroy();
  await cleanupNetns();
});

test(
  'a refusing endpoint costs no client connection; it is skipped, then used again once it answers',
  { skip },
  async (t: TestContext) => {
    const names = await probeNames('10.96.5.1', 30);
    assert.deepEqual([...new Set(names)], ['a'], `every connection answered by a: ${names.join(' ')}`);
    const b = `${c().topology.pod('b').ipv4}:8081`;
    const refusals = await metric('kubeproxy_userspace_connect_failures_total', {
      endpoint: b,
      reason: 'refused',
    });
    assert.ok(refusals >= 1, 'the refusal is counted');
    // Ejected: far fewer refusals than the connections that would have gone to b round robin.
    assert.ok(refusals < 15, `b was skipped after refusing (${refusals} refusals for 30 connections)`);
    assert.ok((await metric('kubeproxy_userspace_endpoint_ejections_total', { endpoint: b })) >= 1);
    // b starts answering on 8081: after its back-off it takes connections again.
    const stop = await c().topology.startEchoServer('b', 'b-8081', { tcp: [8081] });
    const started = Date.now();
    try {
      await pollUntil(
        'b to take connections again',
        async () => ((await probeNames('10.96.5.1', 4)).includes('b-8081') ? true : undefined),
        40_000,
        200,
      );
      t.diagnostic(`b took connections again ${Date.now() - started} ms after it started answering`);
      await c().waitForLog(/userspace endpoint answers again/);
    } finally {
      await stop();
    }
  },
);

test(
  'UDP: a client keeps its endpoint while it talks; its flow ends after --udp-timeout',
  { skip },
  async () => {
    const client = clientNs().spawn(process.execPath, [
      UDP_CLIENT,
      '--host',
      '10.96.5.53',
      '--port',
      '53',
      '--interval',
      '100',
    ]);
    const lines = createInterface({ input: client.stdout ?? process.stdin });
    const answers: string[] = [];
    lines.on('line', (line) => {
      const parsed = JSON.parse(line) as { name?: string };
      if (parsed.name) answers.push(parsed.name);
    });
    try {
      await pollUntil('ten answers', () => (answers.length >= 10 ? true : undefined), 15_000);
      assert.equal(new Set(answers).size, 1, `one flow, one endpoint: ${answers.join(' ')}`);
      assert.equal(await metric('kubeproxy_userspace_active_connections', { protocol: 'UDP' }), 1);
    } finally {
      client.kill('SIGKILL');
    }
    const stopped = Date.now();
    await pollUntil(
      'the idle flow to end',
      async () =>
        (await metric('kubeproxy_userspace_active_connections', { protocol: 'UDP' })) === 0
          ? true
          : undefined,
      10_000,
      50,
    );
    const ms = Date.now() - stopped;
    assert.ok(ms >= UDP_TIMEOUT_MS - 200, `not before the timeout (${ms} ms)`);
  },
);

test(
  'ClientIP affinity holds while the client comes back within the timeout, and lets go after it',
  { skip },
  async (t: TestContext) => {
    const first = await probeNames('10.96.5.2', 10);
    assert.equal(new Set(first).size, 1, `sticky: ${first.join(' ')}`);
    // The window slides: coming back after 1.5 s (less than the 2 s timeout), twice, still sticks.
    for (let i = 0; i < 2; i++) {
      await idle(1_500);
      assert.deepEqual(await probeNames('10.96.5.2', 1), [first[0]], 'within the timeout');
    }
    // Away for longer than the timeout: the record has expired, and round robin (which other
    // picks did not move while the client was pinned) gives the next endpoint.
    await idle(2_500);
    const [after] = await probeNames('10.96.5.2', 1);
    assert.notEqual(after, first[0], 'released after the timeout');
    t.diagnostic(`sticky to ${String(first[0])} across 1.5 s absences; ${String(after)} after 2.5 s away`);
  },
);

test(
  'a connection to a removed endpoint runs on, then is closed at --userspace-drain-timeout',
  { skip },
  async () => {
    const stop = await c().topology.startEchoServer('c', 'c-hold', { hold: [9090] });
    let conn: ReturnType<typeof spawn> | undefined;
    let output = '';
    try {
      await c().api.create(
        service({
          name: 'hold',
          clusterIPs: ['10.96.5.90'],
          ports: [{ name: 'http', port: 80, targetPort: 9090 }],
        }),
      );
      await c().api.create(
        endpointSlice({ service: 'hold', ports: [{ name: 'http', port: 9090 }], endpoints: [ep('c')] }),
      );
      const script = [
        "const s = require('node:net').connect(80, '10.96.5.90');",
        "s.on('data', (d) => process.stdout.write(d));",
        "s.on('close', () => { console.log('CLOSED'); process.exit(0); });",
        "s.on('error', () => {});",
      ].join('');
      await pollUntil(
        'a long-lived connection through the proxy',
        () => {
          // A connection made before the Service was synced fails: make another.
          if (conn === undefined || output.includes('CLOSED')) {
            output = '';
            conn = clientNs().spawn(process.execPath, ['-e', script]);
            conn.stdout?.on('data', (d: Buffer) => (output += d.toString()));
            return undefined;
          }
          return output.includes('c-hold') && !output.includes('CLOSED') ? true : undefined;
        },
        15_000,
        100,
      );
      await c().api.update(
        endpointSlice({ service: 'hold', ports: [{ name: 'http', port: 9090 }], endpoints: [] }),
      );
      const removed = Date.now();
      await pollUntil(
        'the drained connection to close',
        () => (output.includes('CLOSED') ? true : undefined),
        15_000,
        50,
      );
      const ms = Date.now() - removed;
      assert.ok(ms >= DRAIN_MS - 300, `it ran on after the removal (${ms} ms)`);
    } finally {
      await stop();
    }
  },
);

test('a restart of the proxy interrupts new connections only briefly', { skip }, async (t: TestContext) => {
  // A prober in the client pod: a connection every 20 ms, one JSON line each.
  const script = [
    "const net = require('node:net');",
    'setInterval(() => { const t = Date.now();',
    "const s = net.connect(80, '10.96.5.10'); let ok = false;",
    "s.on('data', () => (ok = true)); s.setTimeout(1000, () => s.destroy());",
    "s.on('close', () => console.log(JSON.stringify({ t, ok }))); s.on('error', () => {}); }, 20);",
  ].join('');
  const prober = clientNs().spawn(process.execPath, ['-e', script]);
  const results: { t: number; ok: boolean }[] = [];
  createInterface({ input: prober.stdout ?? process.stdin }).on('line', (line) =>
    results.push(JSON.parse(line) as { t: number; ok: boolean }),
  );
  try {
    await pollUntil(
      'the prober to run',
      () => (results.filter((r) => r.ok).length > 10 ? true : undefined),
      10_000,
    );
    const stopAt = Date.now();
    await c().stopProxy();
    await c().restartProxy('userspace', [
      `--udp-timeout=${UDP_TIMEOUT_MS}ms`,
      `--userspace-drain-timeout=${DRAIN_MS}ms`,
    ]);
    const backAt = await pollUntil(
      'connections after the restart',
      () => results.find((r) => r.t > stopAt && r.ok)?.t,
      30_000,
    );
    // Ten connections started after the first success again, every one answered.
    const after = await pollUntil(
      'ten connections after the restart',
      () => {
        const later = results.filter((r) => r.t > backAt);
        return later.length >= 10 ? later : undefined;
      },
      10_000,
    );
    assert.ok(
      after.every((r) => r.ok),
      `every connection succeeds again: ${JSON.stringify(after.filter((r) => !r.ok))}`,
    );
    const failed = results.filter((r) => r.t >= stopAt && r.t < backAt && !r.ok);
    const gap = backAt - stopAt;
    t.diagnostic(`restart gap: new connections failed for ${gap} ms after SIGTERM (${failed.length} failed)`);
    assert.ok(gap < 15_000, `the gap stays short (${gap} ms)`);
  } finally {
    prober.kill('SIGKILL');
  }
});
