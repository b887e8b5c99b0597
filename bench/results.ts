// Figures as bench/results.json stores them, percentiles, and the printed table. Pure.
import type { BenchMode } from './harness.ts';

export interface Figure {
  readonly figure: string;
  readonly mode: BenchMode;
  readonly services: number;
  readonly endpointsPerService: number;
  readonly value: number;
  readonly unit: string;
}

/**
 * Every figure name, its unit and meaning; bench/README.md documents the same list. The smoke
 * test checks that a run produces each of these for each mode.
 */
export const FIGURES = {
  'full-sync-total': ['ms', 'forced full resync (table already loaded): sync loop time, median'],
  'full-sync-render': ['ms', 'render part of full-sync-total, median'],
  'full-sync-apply': ['ms', 'apply part of full-sync-total (tool process included), median'],
  'full-sync-floor': ['ms', 'the same rule text through the bare tool in the same state, median'],
  'full-sync-ratio': ['x', 'full-sync-total / full-sync-floor'],
  'first-sync-total': ['ms', 'first sync after start (kernel without these rules)'],
  'first-sync-render': ['ms', 'render part of first-sync-total'],
  'first-sync-apply': ['ms', 'apply part of first-sync-total'],
  'first-sync-floor': ['ms', 'the same text through the bare tool into an empty namespace'],
  'first-sync-ratio': ['x', 'first-sync-total / first-sync-floor'],
  'change-p50': ['ms', 'one endpoint change, API write to rule read back from the kernel, idle'],
  'change-p99': ['ms', 'same, 99th percentile'],
  'change-sync': ['ms', "kube-proxy's own partial sync time during the idle changes (its log), median"],
  'change-poll': ['ms', 'median time of one kernel read-back (resolution of the change figures)'],
  'churn-change-p50': ['ms', 'one endpoint change under steady churn of other Services'],
  'churn-change-p99': ['ms', 'same, 99th percentile'],
  'churn-rate': ['1/s', 'churn writes per second actually achieved'],
  'rss-peak': ['MiB', 'VmHWM of kube-proxy at the end of the run'],
  'rss-steady': ['MiB', 'VmRSS of kube-proxy when idle after the churn'],
  'tree-rss-peak-start': [
    'MiB',
    'tree-rss-peak from the start to the end of the first syncs of both families',
  ],
  'tree-rss-peak': ['MiB', 'highest VmRSS of kube-proxy plus its tool children, sampled every 50 ms'],
  'cold-start': ['ms', 'kube-proxy process start to its first full sync done'],
  'connect-p50': ['ms', 'TCP connect through the rules to the Service whose rules come last, median'],
  'connect-p99': ['ms', 'same, 99th percentile'],
} as const satisfies Record<string, readonly [string, string]>;

export type FigureName = keyof typeof FIGURES;

/** Nearest-rank percentile (q in [0, 1]) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  return percentile(values, 0.5);
}

function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return Number(value.toFixed(digits));
}

export function figure(
  name: FigureName,
  mode: BenchMode,
  services: number,
  endpointsPerService: number,
  value: number,
): Figure {
  return { figure: name, mode, services, endpointsPerService, value: round(value), unit: FIGURES[name][0] };
}

/** The table printed at the end: one row per figure and size, one column per mode. */
export function formatTable(figures: readonly Figure[], modes: readonly BenchMode[]): string {
  const rows = new Map<string, Map<BenchMode, Figure>>();
  for (const f of figures) {
    const key = `${f.figure}\t${f.services}x${f.endpointsPerService}`;
    let row = rows.get(key);
    if (!row) rows.set(key, (row = new Map()));
    row.set(f.mode, f);
  }
  const header = ['figure', 'size', ...modes, 'unit'];
  const lines = [...rows].map(([key, row]) => {
    const [name = '', size = ''] = key.split('\t');
    const unit = [...row.values()][0]?.unit ?? '';
    return [name, size, ...modes.map((m) => (row.has(m) ? String(row.get(m)?.value) : '-')), unit];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: readonly string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}
