// Issue 15, API outages: after the API server comes back (from being down, from answering 500,
// from throttling with 429 and Retry-After), a change is programmed within seconds. The time from
// the API server's recovery to the new Service answering is measured and printed; the goal is 3 s,
// the test fails above 8 s (it was 13-21 s with client-go's 30-s back-off cap).
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { blackholeApiServer, everyWatchServedSince, requestCount } from '../support/blackhole.ts';
import { Cluster } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';

const skip = kernelSkipReason();
const OUTAGE_MS = 8_000;
const LIMIT_MS = 8_000;
const BLACK_HOLE_MS = 30_000;
let cluster: Cluster | undefined;
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};
/** The outage itself: its length is what is being survived, nothing to poll for. */
const outage = () => new Promise<void>((resolve) => setTimeout(resolve, OUTAGE_MS));

const answers = async (ip: string) => {
  const [outcome] = await c().topology.probe(c().topology.pod('client').ns, {
    host: ip,
    port: 80,
    timeoutMs: 300,
  });
  return outcome?.ok === true && outcome.name === 'a' ? true : undefined;
};

function web(name: string, ip: string): unknown[] {
  return [
    service({ name, clusterIPs: [ip], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    endpointSlice({
      service: name,
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ ip: c().topology.pod('a').ipv4, node: 'node1' }],
    }),
  ];
}

async function create(objects: readonly unknown[]): Promise<void> {
  for (const object of objects) await c().api.create(object as Parameters<Cluster['api']['create']>[0]);
}

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({
    mode: 'nftables',
    tag: 'kpapi',
    pods: [
      { name: 'a', node: 'node1' },
      { name: 'client', node: 'node1' },
    ],
  });
  await create(web('web', '10.96.0.10'));
  await pollUntil('web to answer', () => answers('10.96.0.10'), 20_000);
});

after(async () => {
  await cluster?.destroy();
  await cleanupNetns();
});

test(
  'API server down, then back with a new Service: programmed within seconds of its return',
  { skip },
  async (t: TestContext) => {
    await c().restartApiServer({ whileDown: outage, add: web('down', '10.96.0.11') });
    const back = Date.now();
    await pollUntil('the new Service to answer', () => answers('10.96.0.11'), 20_000, 50);
    const ms = Date.now() - back;
    t.diagnostic(`programmed ${ms} ms after the API server came back from ${OUTAGE_MS} ms down`);
    assert.ok(ms < LIMIT_MS, `${ms} ms`);
    assert.ok(await answers('10.96.0.10'), 'the old Service kept working');
  },
);

for (const [status, what] of [
  [500, 'every request answered 500'],
  [429, 'every request throttled with 429 and Retry-After: 1'],
] as const) {
  test(
    `${what} for a while: a change after recovery is programmed within seconds`,
    { skip },
    async (t: TestContext) => {
      const api = c().api;
      // Only the proxy's reads fail: the test's own writes go through.
      await api.faults.failNext(status, 1_000_000, 'GET /api');
      await api.faults.failNext(status, 1_000_000, 'GET /apis');
      await api.faults.closeWatches();
      await outage();
      await api.faults.clear();
      const recovered = Date.now();
      const ip = status === 500 ? '10.96.0.12' : '10.96.0.13';
      await create(web(`after-${status}`, ip));
      await pollUntil(`the Service created after the ${status}s to answer`, () => answers(ip), 20_000, 50);
      const ms = Date.now() - recovered;
      t.diagnostic(`${status}: programmed ${ms} ms after the API server recovered`);
      assert.ok(ms < LIMIT_MS, `${ms} ms`);
    },
  );
}

test(
  'a silent black hole to the API server (packets dropped, no reset): watches back within seconds of the path returning',
  { skip },
  async (t: TestContext) => {
    // Dropped on arrival, so nothing tells either side: no reset, no error (test/support/blackhole.ts).
    // A longer black hole, where TCP's own retransmission interval reaches its 2-minute maximum, is
    // measured by `node bench/blackhole.ts` (minutes: not in make test).
    const restore = await blackholeApiServer(c().topology.node1.ns);
    try {
      // Longer than a watch's silence on a quiet cluster; the proxy must not wait for the idle
      // limit or for TCP's retransmission back-off once the path returns.
      await new Promise<void>((resolve) => setTimeout(resolve, BLACK_HOLE_MS));
      await create(web('blackhole', '10.96.0.14'));
      await new Promise<void>((resolve) => setTimeout(resolve, 2000));
      assert.equal(await answers('10.96.0.14'), undefined, 'nothing reaches the proxy during the black hole');
      // Counted before the path returns: a watch sent again in the moment between the restore and
      // a count after it would be served, healthy, and yet not counted, and the test would wait
      // for its natural end (minutes). Nothing reaches the API server while the hole is there.
      const from = await requestCount(c().api);
      await restore();
      const returned = Date.now();
      await pollUntil(
        'the Service created during the black hole to answer',
        () => answers('10.96.0.14'),
        90_000,
        100,
      );
      const ms = Date.now() - returned;
      // Every watch (Services, EndpointSlices, the Node, ServiceCIDRs), not only the two that
      // carried the change.
      await pollUntil(
        'every watch to be served again',
        async () => ((await everyWatchServedSince(c().api, from)) ? true : undefined),
        90_000,
        100,
      );
      const watchesMs = Date.now() - returned;
      t.diagnostic(
        `programmed ${ms} ms, every watch back ${watchesMs} ms after the path returned (black hole ${BLACK_HOLE_MS + 2000} ms)`,
      );
      assert.ok(ms < 60_000, `${ms} ms (goal: 60 s)`);
      assert.ok(watchesMs < 60_000, `every watch back after ${watchesMs} ms (goal: 60 s)`);
    } finally {
      await restore().catch(() => undefined);
    }
  },
);
