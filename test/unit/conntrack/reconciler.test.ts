import { test, before, after } from 'node:test';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { ConntrackReconciler, type Runner } from '../../../src/conntrack/reconciler.ts';
import { configureLogging } from '../../../src/log/log.ts';
import { createProxyMetrics } from '../../../src/metrics/proxy.ts';
import { ExecError, type ExecOptions } from '../../../src/util/exec.ts';
import { endpointSlice, service } from '../../support/objects.ts';
import { modelWith, NODE } from './snapshot.ts';

const logged: string[] = [];
before(() => configureLogging({ write: (line) => logged.push(line) }));
after(() => configureLogging({ write: (line) => process.stderr.write(line) }));

const DNS = service({
  name: 'dns',
  clusterIPs: ['10.96.0.53'],
  ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }],
});
const slice = (...ips: string[]) =>
  endpointSlice({
    service: 'dns',
    ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
    endpoints: ips.map((ip) => ({ ip, node: NODE })),
  });
const line = (replySrc: string, replySport: number, sport: number) =>
  `udp      17 29 src=10.244.1.20 dst=10.96.0.53 sport=${String(sport)} dport=53 src=${replySrc} dst=10.244.1.20 sport=${String(replySport)} dport=${String(sport)} [ASSURED] mark=0 use=1`;

interface Call {
  readonly args: readonly string[];
  readonly input: string | undefined;
}

/** A fake `conntrack`: -L prints `table`, -R "deletes" every listed line a command matches. */
function fakeConntrack(table: string[], failDelete = false): { runner: Runner; calls: Call[] } {
  const calls: Call[] = [];
  const runner: Runner = (file: string, args: readonly string[], options?: ExecOptions) => {
    assert.equal(file, 'conntrack');
    assert.equal(options?.input, undefined, 'conntrack cannot read a script from a socket stdin');
    if (args[0] === '-L') {
      calls.push({ args, input: undefined });
      return Promise.resolve({ stdout: `${table.join('\n')}\n`, stderr: '', code: 0 });
    }
    assert.equal(args[0], '-R');
    const script = readFileSync(args[1] ?? '', 'utf8');
    calls.push({ args: ['-R', '<file>'], input: script });
    const deleted: string[] = [];
    for (const command of script.split('\n').filter(Boolean)) {
      const reply = /-r (\S+) --reply-port-src (\d+)/.exec(command);
      for (const entry of [...table]) {
        if (reply && entry.includes(`src=${reply[1] ?? ''} dst=10.244.1.20 sport=${reply[2] ?? ''} `)) {
          deleted.push(entry);
          table.splice(table.indexOf(entry), 1);
        }
      }
    }
    const stdout = deleted.map((entry) => `${entry}\n`).join('');
    if (failDelete) return Promise.reject(new ExecError('conntrack -R', 1, stdout, 'boom', 'exit status 1'));
    return Promise.resolve({ stdout, stderr: '', code: 0 });
  };
  return { runner, calls };
}

test('after an endpoint change: lists UDP of the family, deletes stale flows in one batch, counts them', async () => {
  const metrics = createProxyMetrics({ defaultMetrics: false });
  const table = [
    line('10.244.1.11', 5353, 40001),
    line('10.244.1.11', 5353, 40002),
    line('10.244.1.12', 5353, 40003),
  ];
  const { runner, calls } = fakeConntrack(table);
  const reconciler = new ConntrackReconciler({ runner, metrics });
  const model = modelWith('IPv4', [DNS, slice('10.244.1.11', '10.244.1.12')]);
  assert.deepEqual(await reconciler.afterSync(model.snapshot()), { filters: 0, deleted: 0 });
  model.upsertSlice(slice('10.244.1.12'));
  const result = await reconciler.afterSync(model.snapshot());
  assert.deepEqual(result, { filters: 1, deleted: 2 });
  assert.deepEqual(
    calls.map((c) => c.args.join(' ')),
    ['-L -f ipv4 -p udp', '-L -f ipv4 -p udp', '-R <file>'],
  );
  assert.equal(calls[2]?.input, '-D -p udp -d 10.96.0.53 --dport 53 -r 10.244.1.11 --reply-port-src 5353\n');
  assert.deepEqual(table, [line('10.244.1.12', 5353, 40003)]);
  const deleted = await metrics.conntrackReconcilerDeletedEntries.get();
  assert.deepEqual(
    deleted.values.map((v) => [v.labels, v.value]),
    [[{ ip_family: 'IPv4' }, 2]],
  );
  const duration = await metrics.conntrackReconcilerSyncDuration.get();
  const count = duration.values.find((v) => v.metricName?.endsWith('_count'));
  assert.equal(count?.value, 2, 'one duration sample per run');
});

test('does nothing unless some UDP service changed endpoints', async () => {
  const { runner, calls } = fakeConntrack([line('10.96.0.53', 53, 40001)]);
  const reconciler = new ConntrackReconciler({ runner });
  const model = modelWith('IPv4', [
    service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80 }] }),
    endpointSlice({
      service: 'web',
      ports: [{ name: 'http', port: 80 }],
      endpoints: [{ ip: '10.244.1.11', node: NODE }],
    }),
    DNS,
  ]);
  assert.equal(
    await reconciler.afterSync(model.snapshot()),
    undefined,
    'TCP endpoints and a UDP service without endpoints',
  );
  assert.equal(await reconciler.afterSync(model.snapshot()), undefined, 'no change at all');
  assert.deepEqual(calls, []);
});

test('a never-DNATed flow is cleared when the service gets its first endpoint; IPv6 lists ipv6', async () => {
  const table = [line('10.96.0.53', 53, 40001)];
  const { runner, calls } = fakeConntrack(table);
  const reconciler = new ConntrackReconciler({ runner });
  const model = modelWith('IPv4', [DNS]);
  model.snapshot();
  model.upsertSlice(slice('10.244.1.11'));
  assert.deepEqual(await reconciler.afterSync(model.snapshot()), { filters: 1, deleted: 1 });
  assert.deepEqual(table, []);

  const v6 = modelWith('IPv6', [
    service({
      name: 'dns6',
      clusterIPs: ['fd00:10:96::35'],
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
    }),
    endpointSlice({
      service: 'dns6',
      family: 'IPv6',
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
      endpoints: [{ ip: 'fd00:10:244:1::b', node: NODE }],
    }),
  ]);
  await reconciler.afterSync(v6.snapshot());
  assert.equal(calls.at(-1)?.args.join(' '), '-L -f ipv6 -p udp');
});

test('batches of at most batchSize commands; a failing batch is logged and the rest still run', async () => {
  const table = Array.from({ length: 5 }, (_, i) => line(`10.244.9.${String(i + 1)}`, 5353, 40000 + i));
  const { runner, calls } = fakeConntrack(table, true);
  const metrics = createProxyMetrics({ defaultMetrics: false });
  const reconciler = new ConntrackReconciler({ runner, metrics, batchSize: 2 });
  const model = modelWith('IPv4', [DNS]);
  model.snapshot();
  model.upsertSlice(slice('10.244.1.11'));
  logged.length = 0;
  assert.deepEqual(await reconciler.afterSync(model.snapshot()), { filters: 5, deleted: 5 });
  assert.equal(calls.filter((c) => c.args[0] === '-R').length, 3);
  assert.equal(logged.filter((l) => l.includes('Failed to delete stale conntrack entries')).length, 3);
  const deleted = await metrics.conntrackReconcilerDeletedEntries.get();
  assert.equal(deleted.values[0]?.value, 5, 'deletions the tool reported before failing still count');
});

test('a listing failure rejects (the daemon logs it) and still records the duration', async () => {
  const metrics = createProxyMetrics({ defaultMetrics: false });
  const runner: Runner = () =>
    Promise.reject(new ExecError('conntrack -L', null, '', '', 'spawn conntrack ENOENT'));
  const reconciler = new ConntrackReconciler({ runner, metrics });
  const model = modelWith('IPv4', [DNS, slice('10.244.1.11')]);
  await assert.rejects(reconciler.afterSync(model.snapshot()), /ENOENT/);
  const duration = await metrics.conntrackReconcilerSyncDuration.get();
  assert.equal(duration.values.find((v) => v.metricName?.endsWith('_count'))?.value, 1);
});
