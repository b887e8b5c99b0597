// The soak report's arithmetic (bench/soak-report.ts): the goals must fail on what they are for
// (a growing RSS, a leaked descriptor, child or timer, a latency that climbs) and pass on a
// steady run; the chart page and the table carry every reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_GOALS,
  evaluate,
  formatTableRows,
  metricValue,
  niceMax,
  renderPage,
  rssGrowth,
  tableRows,
  type Quiet,
  type Sample,
  type SoakOutcome,
} from '../../../bench/soak-report.ts';

const quiet = (over: Partial<Quiet> = {}): Quiet => ({
  fds: 57,
  children: 1,
  timers: 7,
  fdKinds: { socket: 39, pipe: 9 },
  childCommands: ['nft -i'],
  sockets: [],
  ...over,
});

/** A steady hour: a reading every 10 s, RSS flat after 10 minutes. */
function steady(over: (s: Sample, i: number) => Partial<Sample> = () => ({})): Sample[] {
  return Array.from({ length: 361 }, (_, i) => {
    const base: Sample = {
      t: i * 10,
      rssMiB: i < 60 ? 90 + i / 6 : 100 + (i % 3),
      heapUsedMiB: 30,
      fds: 57,
      children: 1,
      timers: 7,
      resources: 60,
      changeMs: 500 + (i % 5) * 100,
      syncMs: [20, 25, 30],
      writes: i * 200,
    };
    return { ...base, ...over(base, i) };
  });
}

const outcome = (samples: Sample[], over: Partial<SoakOutcome> = {}): SoakOutcome => ({
  samples,
  faults: [{ t: 60, kind: 'compact-410' }],
  before: quiet(),
  after: quiet(),
  lostChanges: 0,
  missingAtEnd: 0,
  ...over,
});

const goals = { ...DEFAULT_GOALS, warmupS: 600 };
const failed = (o: SoakOutcome) =>
  evaluate(o, goals)
    .filter((v) => !v.ok)
    .map((v) => v.goal);

test('a steady run meets every goal; the warm-up growth does not count', () => {
  assert.deepEqual(failed(outcome(steady())), []);
  const growth = rssGrowth(steady(), 600);
  assert.ok(Math.abs(growth.growth) < 0.02, String(growth.growth));
});

test('RSS growing 10 % after the warm-up misses the goal', () => {
  const samples = steady((s, i) => (i >= 60 ? { rssMiB: 100 + ((i - 60) / 300) * 10 } : {}));
  assert.deepEqual(failed(outcome(samples)), ['RSS growth <= 5 % after the warm-up']);
});

test('one descriptor, child or timer more than before is a leak, and the report names it', () => {
  const verdicts = evaluate(
    outcome(steady(), {
      after: quiet({ fds: 58, children: 2, timers: 10, childCommands: ['nft -i', 'nft -f -'] }),
    }),
    goals,
  );
  const missed = verdicts.filter((v) => !v.ok);
  assert.deepEqual(
    missed.map((v) => v.goal),
    ['no descriptor leaked', 'no child process leaked', 'no timer leaked'],
  );
  assert.match(missed[1]?.detail ?? '', /nft -f -/);
  // Fewer than before is fine (a session that ended while idle).
  assert.deepEqual(failed(outcome(steady(), { after: quiet({ fds: 50, children: 0, timers: 5 }) })), []);
});

test('a climbing change latency or sync duration is not flat', () => {
  const climbing = steady((s, i) => ({ changeMs: 500 + i * 10, syncMs: [20 + i] }));
  assert.deepEqual(failed(outcome(climbing)), ['change latency flat', 'sync duration flat']);
});

test('a lost change or an endpoint missing at the end misses the goal', () => {
  assert.deepEqual(failed(outcome(steady(), { lostChanges: 1 })), ['every change reaches the kernel']);
  assert.deepEqual(failed(outcome(steady(), { missingAtEnd: 3 })), ['every change reaches the kernel']);
});

test('the table has a row per window with the faults counted, the page a chart per quantity', () => {
  const samples = steady();
  const rows = tableRows(samples, [
    { t: 60, kind: 'compact-410' },
    { t: 3500, kind: 'http-500' },
  ]);
  assert.equal(rows.length, 12);
  assert.equal(rows[0]?.faults, 1);
  const last = rows[11];
  assert.ok(last);
  assert.equal(last.faults, 1);
  assert.equal(last.fdsMax, 57);
  const text = formatTableRows(rows);
  assert.equal(text.trim().split('\n').length, 14);
  const page = renderPage(outcome(samples), evaluate(outcome(samples), goals), {
    title: 'soak <test>',
    subtitle: 's',
    warmupS: 600,
    durationS: 3600,
  });
  assert.equal(page.match(/<svg /g)?.length, 6);
  assert.match(page, /soak &#60;test&#62;/);
  assert.ok(!page.includes('NaN'), 'NaN in the chart');
});

test('metricValue reads one sample line of the Prometheus text format', () => {
  const text = [
    '# HELP nodejs_heap_size_used_bytes x',
    'nodejs_heap_size_used_bytes 31457280',
    'nodejs_active_resources{type="Timeout"} 7',
    'nodejs_active_resources{type="TCPSocketWrap"} 3',
    'nodejs_active_resources_total 12',
  ].join('\n');
  assert.equal(metricValue(text, 'nodejs_heap_size_used_bytes'), 31457280);
  assert.equal(metricValue(text, 'nodejs_active_resources', 'type="Timeout"'), 7);
  assert.equal(metricValue(text, 'nodejs_active_resources_total'), 12);
  assert.equal(metricValue(text, 'nodejs_active_resources'), undefined);
  assert.equal(niceMax(73), 100);
  assert.equal(niceMax(0.3), 0.5);
});
