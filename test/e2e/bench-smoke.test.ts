// The benchmark suite at a tiny size, so it cannot rot: the generator and figure helpers (pure,
// always), then one real run of bench/run.ts (root) checking that every figure of every mode
// comes out with a sane shape. Timings are never asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execTool } from '../../src/util/exec.ts';
import { kernelSkipReason } from '../support/netns.ts';
import { ALL_MODES, parseSyncLine } from '../../bench/harness.ts';
import { FIGURES, formatTable, percentile, type Figure } from '../../bench/results.ts';
import {
  endpointChange,
  generateWorkload,
  PROBE_CLUSTER_IP,
  PROBE_NAMESPACE,
  serviceName,
} from '../../bench/workload.ts';

const RUN = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));

test('workload: deterministic from the seed, the requested size, probe Service last', () => {
  const probe = { endpoints: [{ ip: '10.244.2.11', node: 'node2' }], targetPort: 8080 };
  const a = generateWorkload({ services: 300, endpointsPerService: 4, seed: 7, probe });
  const b = generateWorkload({ services: 300, endpointsPerService: 4, seed: 7, probe });
  const c = generateWorkload({ services: 300, endpointsPerService: 4, seed: 8, probe });
  assert.equal(JSON.stringify(a.objects), JSON.stringify(b.objects));
  assert.notEqual(JSON.stringify(a.objects), JSON.stringify(c.objects));
  // One Service and one EndpointSlice each, plus the probe pair.
  assert.equal(a.objects.length, 2 * 300 + 2);
  const kinds = a.objects.map((o) => o.kind);
  assert.equal(kinds.filter((k) => k === 'Service').length, 301);
  const counts = a.counts;
  assert.equal((counts['ClusterIP'] ?? 0) + (counts['NodePort'] ?? 0) + (counts['LoadBalancer'] ?? 0), 300);
  for (const kind of ['ClusterIP', 'NodePort', 'LoadBalancer', 'affinity'])
    assert.ok((counts[kind] ?? 0) > 0, kind);
  const last = a.objects.at(-2);
  assert.equal(last?.metadata?.namespace, PROBE_NAMESPACE);
  assert.equal((last as { spec?: { clusterIP?: string } }).spec?.clusterIP, PROBE_CLUSTER_IP);
  assert.equal(a.services[12]?.name, serviceName(12));
});

test('workload: node ports stay within 30000-32767 and are unique at 30k Services', () => {
  const w = generateWorkload({ services: 30_000, endpointsPerService: 1 });
  const ports: number[] = [];
  for (const obj of w.objects) {
    const spec = (obj as { spec?: { ports?: { nodePort?: number }[]; healthCheckNodePort?: number } }).spec;
    for (const p of spec?.ports ?? []) if (p.nodePort !== undefined) ports.push(p.nodePort);
    if (spec?.healthCheckNodePort !== undefined) ports.push(spec.healthCheckNodePort);
  }
  assert.ok(ports.length > 2000);
  assert.equal(new Set(ports).size, ports.length);
  assert.ok(ports.every((p) => p >= 30000 && p <= 32767));
});

test('endpointChange: replaces one endpoint with a new address, other Services untouched', () => {
  const w = generateWorkload({ services: 50, endpointsPerService: 3 });
  const state = new Map<number, { ip: string; node: string }[]>();
  const first = endpointChange(w, 0, state);
  const second = endpointChange(w, 1, state);
  assert.notEqual(first.service, second.service);
  assert.notEqual(first.added.ip, second.added.ip);
  const addresses = first.slice.endpoints.flatMap((e) => e.addresses);
  assert.equal(addresses.length, 3);
  assert.ok(addresses.includes(first.added.ip));
  assert.ok(!addresses.includes(first.removed.ip));
  assert.equal(first.slice.metadata?.labels?.['kubernetes.io/service-name'], first.service);
});

test('figures: percentiles, sync log parsing and the table', () => {
  assert.equal(percentile([5, 1, 3, 2, 4], 0.5), 3);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99), 10);
  assert.ok(Number.isNaN(percentile([], 0.5)));
  const line = JSON.stringify({
    ts: 1,
    msg: 'Synced proxy rules',
    ipFamily: 'IPv4',
    full: true,
    elapsed: '120ms',
    render: '12.5ms',
    apply: '100.1ms',
  });
  const sync = parseSyncLine(line, 42);
  assert.deepEqual(
    sync && { family: sync.family, full: sync.full, e: sync.elapsedMs, r: sync.renderMs, a: sync.applyMs },
    { family: 'IPv4', full: true, e: 120, r: 12.5, a: 100.1 },
  );
  assert.equal(parseSyncLine('{"msg":"other"}', 0), undefined);
  const table = formatTable(
    [{ figure: 'cold-start', mode: 'nftables', services: 10, endpointsPerService: 2, value: 5, unit: 'ms' }],
    ['iptables-legacy', 'nftables'],
  );
  assert.match(table, /cold-start\s+10x2\s+-\s+5\s+ms/);
});

test('every figure name is documented in bench/README.md', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../bench/README.md', import.meta.url)), 'utf8');
  for (const name of Object.keys(FIGURES)) {
    const base = name.replace(/-(p50|p99|render|apply)$/, '');
    assert.ok(readme.includes(`\`${name}\``) || readme.includes(`\`${base}-`), `${name} in bench/README.md`);
  }
});

test(
  'bench suite at 20 Services x 3 endpoints: every figure for every mode',
  { skip: kernelSkipReason(), timeout: 240_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-bench-smoke-'));
    try {
      const out = join(dir, 'results.json');
      await execTool(
        process.execPath,
        [
          RUN,
          ...['--size', '20', '--endpoints', '3', '--baseline', '10', '--changes', '5'],
          ...['--churn-changes', '4', '--full-syncs', '1', '--connects', '20', '--out', out],
        ],
        { timeoutMs: 230_000 },
      );
      const figures = JSON.parse(readFileSync(out, 'utf8')) as Figure[];
      for (const mode of ALL_MODES) {
        for (const [name, [unit]] of Object.entries(FIGURES)) {
          const found = figures.filter((f) => f.mode === mode && f.figure === name);
          const sizes = name.startsWith('connect-') ? [10, 20] : [20];
          assert.deepEqual(
            found.map((f) => f.services).sort((a, b) => a - b),
            sizes,
            `${mode} ${name}: one figure per size`,
          );
          for (const f of found) {
            assert.equal(f.unit, unit, `${mode} ${name} unit`);
            assert.equal(f.endpointsPerService, 3);
            assert.ok(Number.isFinite(f.value) && f.value > 0, `${mode} ${name} = ${f.value}`);
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
