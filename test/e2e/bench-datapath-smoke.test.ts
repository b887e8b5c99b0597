// The data-path benchmark at tiny numbers, so it cannot rot: the pure report helpers (always),
// then one real run of bench/datapath.ts (root) checking that every figure of every column that
// ran comes out finite, and positive except the differences of two measurements (added latency,
// RSS per connection: at or below zero when a proxy adds less than the noise). Timings are never
// asserted. A column may be skipped only with a reason (the userspace mode until it lands).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execTool } from '../../src/util/exec.ts';
import { kernelSkipReason } from '../support/netns.ts';
import {
  addedLatency,
  DATAPATH_FIGURES,
  datapathFigure,
  DIFFERENCE_FIGURES,
  formatDatapathTable,
  goals,
  ratios,
  type DatapathFigureName,
  type DatapathResults,
} from '../../bench/datapath-report.ts';
import { haproxyConfig, refusal } from '../../bench/datapath-proxies.ts';

const RUN = fileURLToPath(new URL('../../bench/datapath.ts', import.meta.url));

test('datapath report: added latency, ratios, goals and the table', () => {
  const figures = [
    datapathFigure('conn-rate', 'haproxy', 1000),
    datapathFigure('conn-rate', 'userspace', 600),
    datapathFigure('conn-rate', 'nftables', 2000),
    datapathFigure('bulk-1', 'haproxy', 100),
    datapathFigure('bulk-1', 'userspace', 40),
    datapathFigure('latency-p99', 'direct', 9),
    datapathFigure('direct-p99', 'userspace', 0.5),
    datapathFigure('latency-p99', 'userspace', 1.2),
    datapathFigure('direct-p99', 'nftables', 0.5),
    datapathFigure('latency-p99', 'nftables', 0.4),
  ];
  const added = addedLatency(figures);
  assert.deepEqual(
    added.map((f) => [f.figure, f.column, f.value]),
    [
      ['added-p99', 'userspace', 0.7],
      ['added-p99', 'nftables', -0.1],
    ],
  );
  const all = [...figures, ...added];
  const list = ratios(all);
  assert.deepEqual(
    list.filter((r) => r.figure === 'conn-rate').map((r) => [r.ratio, r.value]),
    [
      ['userspace/haproxy', 0.6],
      ['userspace/nftables', 0.3],
    ],
  );
  // A negative denominator gives no ratio.
  assert.equal(
    list.find((r) => r.figure === 'added-p99' && r.ratio === 'userspace/nftables'),
    undefined,
  );
  const byGoal = Object.fromEntries(goals(all).map((g) => [g.goal, g.status]));
  assert.equal(byGoal['new connections per second >= 0.5 x HAProxy'], 'met');
  assert.equal(byGoal['throughput, one stream >= 0.5 x HAProxy'], 'not met');
  assert.equal(byGoal['throughput, many streams >= 0.5 x HAProxy'], 'n/a');
  assert.equal(byGoal['added p99 < 1 ms at the fixed rate'], 'met');
  const table = formatDatapathTable(all, list, ['direct', 'nftables', 'haproxy', 'userspace']);
  assert.match(table, /conn-rate\s+-\s+2000\s+1000\s+600\s+0\.6\s+0\.3\s+1\/s/);
});

test('datapath: HAProxy config and the refusal of a mode that is not there', () => {
  const config = haproxyConfig({
    bind: '192.0.2.11',
    ports: { short: 9000, sink: 9001, echo: 9002 },
    backends: ['10.244.2.11', '10.244.2.12'],
    maxconn: 300,
  });
  assert.match(config, /maxconn 300/);
  assert.match(config, /mode tcp/);
  assert.match(config, /balance roundrobin/);
  assert.match(
    config,
    /listen echo\n {2}bind 192\.0\.2\.11:9002\n {2}server b1 10\.244\.2\.11:9002\n {2}server b2 10\.244\.2\.12:9002/,
  );
  assert.equal(
    refusal('{"msg":"x"}\nError: proxy mode "userspace" is not implemented yet; use nftables'),
    'Error: proxy mode "userspace" is not implemented yet; use nftables',
  );
  assert.equal(refusal('EADDRINUSE 10256'), undefined);
});

test('every data-path figure is documented in bench/README.md', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../bench/README.md', import.meta.url)), 'utf8');
  const section = readme.slice(readme.indexOf('## Data path: userspace vs HAProxy vs nftables'));
  assert.ok(section.length > 100, 'bench/README.md has the data-path section');
  for (const name of Object.keys(DATAPATH_FIGURES)) assert.ok(section.includes(`\`${name}\``), name);
});

test(
  'data-path bench at tiny numbers: every figure of every column that ran',
  { skip: kernelSkipReason(), timeout: 180_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-datapath-smoke-'));
    try {
      const out = join(dir, 'results.json');
      await execTool(
        process.execPath,
        [
          RUN,
          ...['--seconds', '0.5', '--warmup', '0.2', '--streams', '3', '--rate', '200'],
          ...['--latency-connections', '2', '--concurrency', '4', '--idle', '200', '--out', out],
        ],
        { timeoutMs: 170_000 },
      );
      const results = JSON.parse(readFileSync(out, 'utf8')) as DatapathResults;
      for (const skipped of results.skipped) assert.ok(skipped.reason.length > 0, skipped.column);
      // Today the userspace column is skipped (the mode refuses to start); nothing else may be.
      assert.deepEqual(
        results.skipped.map((s) => s.column).filter((c) => c !== 'userspace'),
        [],
        'only the userspace column may be skipped',
      );
      assert.ok(results.columns.includes('direct') && results.columns.includes('nftables'));
      assert.equal(results.idleConnections, 200);
      for (const column of results.columns) {
        const expected = (Object.keys(DATAPATH_FIGURES) as DatapathFigureName[]).filter((name) => {
          if (column === 'direct') return /^(conn-rate|bulk-|latency-)/.test(name);
          return column !== 'nftables' || name !== 'rss-per-conn';
        });
        for (const name of expected) {
          const found = results.figures.filter((f) => f.column === column && f.figure === name);
          assert.equal(found.length, 1, `${column} ${name}: one figure`);
          const value = found[0]?.value ?? Number.NaN;
          assert.ok(Number.isFinite(value), `${column} ${name} = ${value}`);
          if (!DIFFERENCE_FIGURES.includes(name)) assert.ok(value > 0, `${column} ${name} = ${value}`);
        }
      }
      if (results.columns.includes('userspace'))
        assert.ok(results.ratios.some((r) => r.figure === 'conn-rate' && r.value > 0));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
