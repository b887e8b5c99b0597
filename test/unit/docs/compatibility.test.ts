// docs/compatibility.md lists every flag, config field, feature gate, metric and endpoint, and
// nothing else: checked against the code both ways so the page cannot drift (issue 14).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { knownFeatureGates } from '../../../src/config/featuregates.ts';
import { defaultConfiguration } from '../../../src/config/defaults.ts';
import { FLAGS } from '../../../src/config/flags/table.ts';
import { DEBUG_PATHS, METRICS_SERVER_PATHS } from '../../../src/daemon/servers.ts';
import { HEALTHZ_SERVER_PATHS } from '../../../src/server/http.ts';
import { PROFILING_PATHS } from '../../../src/server/profiling.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const DOC = readFileSync(join(ROOT, 'docs/compatibility.md'), 'utf8');

/** The first-column names of the table under `## heading`. */
function tableNames(heading: string): string[] {
  const start = DOC.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `section ${heading}`);
  const end = DOC.indexOf('\n## ', start + 1);
  const section = DOC.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? '');
}

function sameSet(doc: readonly string[], code: readonly string[], what: string): void {
  const missing = code.filter((name) => !doc.includes(name));
  const extra = doc.filter((name) => !code.includes(name));
  assert.deepEqual(
    { missing, extra },
    { missing: [], extra: [] },
    `${what}: docs/compatibility.md vs the code`,
  );
  assert.equal(new Set(doc).size, doc.length, `${what}: listed twice`);
}

function leaves(value: unknown, prefix: string): string[] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    return Object.entries(value).flatMap(([key, v]) => leaves(v, prefix === '' ? key : `${prefix}.${key}`));
  }
  return [prefix];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every metric name quoted in src/ (registrations name them as string literals). */
function metricNamesInSource(): string[] {
  const names = new Set<string>();
  const pattern = /'((?:kubeproxy|kubernetes)_[a-z0-9_]+|(?:registered|disabled|hidden)_metrics_total)'/g;
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(pattern)) names.add(match[1] ?? '');
  }
  return [...names].sort();
}

describe('docs/compatibility.md', () => {
  it('lists every flag, and only flags that exist', () => {
    sameSet(
      tableNames('Flags'),
      FLAGS.map((f) => `--${f.name}`),
      'flags',
    );
  });

  it('lists every configuration field', () => {
    sameSet(tableNames('Configuration fields'), leaves(defaultConfiguration(), ''), 'config fields');
  });

  it('lists every feature gate', () => {
    sameSet(
      tableNames('Feature gates'),
      knownFeatureGates().map(([name]) => name),
      'feature gates',
    );
  });

  it('lists every metric', () => {
    sameSet(tableNames('Metrics'), metricNamesInSource(), 'metrics');
  });

  it('lists every HTTP path of both servers', () => {
    sameSet(
      tableNames('HTTP endpoints'),
      [...new Set([...HEALTHZ_SERVER_PATHS, ...METRICS_SERVER_PATHS, ...PROFILING_PATHS, ...DEBUG_PATHS])],
      'paths',
    );
  });
});
