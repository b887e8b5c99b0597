// The conntrack reconciler against the real `conntrack` tool and a real kernel table, in a
// namespace of our own: entries are inserted with `conntrack -I`, then one reconcile must remove
// exactly the stale ones (IPv4 and IPv6, service IPs and node ports), nothing else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ConntrackReconciler, type Runner } from '../../src/conntrack/reconciler.ts';
import { parseConntrackList } from '../../src/conntrack/entries.ts';
import { createProxyMetrics } from '../../src/metrics/proxy.ts';
import { cleanupNetns, createNetns, kernelSkipReason, uniquePrefix, type Netns } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';
import { modelWith, NODE } from '../unit/conntrack/snapshot.ts';

const skip = kernelSkipReason();
let ns: Netns | undefined;
const netns = () => {
  if (!ns) throw new Error('no namespace');
  return ns;
};

before(async () => {
  if (skip) return;
  ns = await createNetns(`${uniquePrefix('kpct')}ct`);
});
after(async () => {
  await cleanupNetns();
});

/** Inserts a UDP flow: client -> dst:dport, answered by replySrc:replySport. */
async function insert(
  client: string,
  sport: number,
  dst: string,
  dport: number,
  replySrc: string,
  replySport: number,
) {
  await netns().exec('conntrack', [
    '-I',
    '-p',
    'udp',
    '-t',
    '120',
    '-s',
    client,
    '-d',
    dst,
    '--sport',
    String(sport),
    '--dport',
    String(dport),
    '-r',
    replySrc,
    '-q',
    client,
    '--reply-port-src',
    String(replySport),
    '--reply-port-dst',
    String(sport),
  ]);
}

async function flows(family: 'ipv4' | 'ipv6'): Promise<string[]> {
  const listed = await netns().exec('conntrack', ['-L', '-f', family, '-p', 'udp']);
  return parseConntrackList(listed.stdout)
    .map((e) => `${e.original.dst}:${String(e.original.dport)} <- ${e.reply.src}:${String(e.reply.sport)}`)
    .sort();
}

test('one reconcile removes exactly the stale UDP flows of its family', { skip }, async () => {
  const runner: Runner = (file, args, options) => netns().exec(file, args, options);
  const metrics = createProxyMetrics({ defaultMetrics: false });
  const reconciler = new ConntrackReconciler({ runner, metrics, batchSize: 2 });

  const v4 = modelWith('IPv4', [
    service({
      name: 'dns',
      type: 'NodePort',
      clusterIPs: ['10.96.0.53', 'fd00:10:96::35'],
      ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP', nodePort: 30053 }],
    }),
    endpointSlice({
      service: 'dns',
      ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
      endpoints: [{ ip: '10.244.1.11', node: NODE }],
    }),
  ]);
  const v6 = modelWith('IPv6', [
    service({
      name: 'dns',
      type: 'NodePort',
      clusterIPs: ['10.96.0.53', 'fd00:10:96::35'],
      ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP', nodePort: 30053 }],
    }),
    endpointSlice({
      service: 'dns',
      family: 'IPv6',
      ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
      endpoints: [{ ip: 'fd00:10:244:1::11', node: NODE }],
    }),
  ]);

  await insert('10.244.1.20', 40001, '10.96.0.53', 53, '10.244.1.11', 5353); // current endpoint
  await insert('10.244.1.20', 40002, '10.96.0.53', 53, '10.244.1.99', 5353); // gone endpoint
  await insert('10.244.1.21', 40002, '10.96.0.53', 53, '10.244.1.99', 5353); // same, other client
  await insert('10.244.1.20', 40003, '10.96.0.53', 53, '10.96.0.53', 53); // never DNATed
  await insert('192.0.2.100', 40004, '192.0.2.11', 30053, '10.244.1.99', 5353); // node port, gone
  await insert('192.0.2.100', 40005, '192.0.2.11', 30053, '10.244.1.11', 5353); // node port, current
  await insert('10.244.1.20', 40006, '8.8.8.8', 53, '8.8.8.8', 53); // not a service
  await insert('fd00:10:244:1::20', 40007, 'fd00:10:96::35', 53, 'fd00:10:244:1::99', 5353); // v6 gone
  await insert('fd00:10:244:1::20', 40008, 'fd00:10:96::35', 53, 'fd00:10:244:1::11', 5353); // v6 current

  const v4Result = await reconciler.reconcile(v4.snapshot());
  assert.deepEqual(v4Result, { filters: 3, deleted: 4 });
  assert.deepEqual(
    await flows('ipv4'),
    [
      '192.0.2.11:30053 <- 10.244.1.11:5353',
      '10.96.0.53:53 <- 10.244.1.11:5353',
      '8.8.8.8:53 <- 8.8.8.8:53',
    ].sort(),
  );
  assert.equal((await flows('ipv6')).length, 2, 'the IPv4 pass leaves IPv6 alone');

  assert.deepEqual(await reconciler.reconcile(v6.snapshot()), { filters: 1, deleted: 1 });
  assert.deepEqual(await flows('ipv6'), ['fd00:10:96::35:53 <- fd00:10:244:1::11:5353']);

  const deleted = await metrics.conntrackReconcilerDeletedEntries.get();
  assert.deepEqual(deleted.values.map((v) => [v.labels.ip_family, v.value]).sort(), [
    ['IPv4', 4],
    ['IPv6', 1],
  ]);
});
