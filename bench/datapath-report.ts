// Figures of the data-path benchmark (bench/datapath.ts) as bench/results-datapath.json stores
// them, the ratios, the goals of issue 12 and the printed table. Pure.

/** The columns, in the order they run and print. */
export const COLUMNS = ['direct', 'nftables', 'haproxy', 'userspace'] as const;
export type Column = (typeof COLUMNS)[number];
/** The columns that are a proxy (everything but the direct client -> backend baseline). */
export type ProxyColumn = Exclude<Column, 'direct'>;

/** Every figure: unit, meaning. bench/README.md documents the same list. */
export const DATAPATH_FIGURES = {
  'conn-rate': ['1/s', 'new TCP connections per second (short connections, parallel loops)'],
  'bulk-1': ['MB/s', 'one stream to a sink, 10^6 bytes per second'],
  'bulk-n': ['MB/s', '--streams (50) parallel streams to a sink, total'],
  'latency-p50': ['ms', 'request-response at --rate (1000/s) over persistent connections, median'],
  'latency-p99': ['ms', 'same, 99th percentile'],
  'direct-p50': ['ms', "the direct path's latency-p50, measured just before this column's"],
  'direct-p99': ['ms', "the direct path's latency-p99, measured just before this column's"],
  'added-p50': ['ms', 'latency-p50 minus direct-p50 of the same column (what the proxy adds)'],
  'added-p99': ['ms', 'latency-p99 minus direct-p99 of the same column'],
  'rss-base': ['MiB', 'VmRSS of the proxy process after the load tests, before the idle connections'],
  'rss-idle': ['MiB', 'VmRSS of the proxy process holding --idle (10000) idle connections'],
  'rss-per-conn': ['KiB', '(rss-idle - rss-base) / idle connections (proxies that hold them)'],
} as const satisfies Record<string, readonly [string, string]>;
export type DatapathFigureName = keyof typeof DATAPATH_FIGURES;

/**
 * Figures that are a difference of two measurements: they may come out at or below zero when the
 * proxy adds less than the noise (nftables' DNAT; a garbage collection between two RSS reads at a
 * few idle connections), so the smoke test only asks them to be finite.
 */
export const DIFFERENCE_FIGURES: readonly DatapathFigureName[] = ['added-p50', 'added-p99', 'rss-per-conn'];

export interface DatapathFigure {
  readonly figure: DatapathFigureName;
  readonly column: Column;
  readonly value: number;
  readonly unit: string;
}

export type RatioName = 'userspace/haproxy' | 'userspace/nftables';
export const RATIOS: readonly { readonly name: RatioName; readonly of: ProxyColumn }[] = [
  { name: 'userspace/haproxy', of: 'haproxy' },
  { name: 'userspace/nftables', of: 'nftables' },
];

export interface DatapathRatio {
  readonly figure: DatapathFigureName;
  readonly ratio: RatioName;
  readonly value: number;
}

export interface Goal {
  readonly goal: string;
  readonly status: 'met' | 'not met' | 'n/a';
  readonly detail: string;
}

export interface SkippedColumn {
  readonly column: Column;
  readonly reason: string;
}

export interface DatapathResults {
  readonly date: string;
  readonly options: Readonly<Record<string, number | string>>;
  readonly idleConnections: number;
  readonly columns: readonly Column[];
  readonly skipped: readonly SkippedColumn[];
  readonly figures: readonly DatapathFigure[];
  readonly ratios: readonly DatapathRatio[];
  readonly goals: readonly Goal[];
}

function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
  return Number(value.toFixed(digits));
}

export function datapathFigure(name: DatapathFigureName, column: Column, value: number): DatapathFigure {
  return { figure: name, column, value: round(value), unit: DATAPATH_FIGURES[name][0] };
}

function valueOf(
  figures: readonly DatapathFigure[],
  name: DatapathFigureName,
  column: Column,
): number | undefined {
  return figures.find((f) => f.figure === name && f.column === column)?.value;
}

/**
 * The added-latency figures of every proxy column: its percentile minus the direct path's,
 * measured right before it (paired in time, so a change of the machine's load between columns
 * does not land in the difference).
 */
export function addedLatency(figures: readonly DatapathFigure[]): DatapathFigure[] {
  const added: DatapathFigure[] = [];
  for (const [name, measured, base] of [
    ['added-p50', 'latency-p50', 'direct-p50'],
    ['added-p99', 'latency-p99', 'direct-p99'],
  ] as const) {
    for (const f of figures) {
      if (f.figure !== measured || f.column === 'direct') continue;
      const direct = valueOf(figures, base, f.column);
      if (direct !== undefined) added.push(datapathFigure(name, f.column, f.value - direct));
    }
  }
  return added;
}

/** userspace / X for every figure both columns have, when both are positive (else meaningless). */
export function ratios(figures: readonly DatapathFigure[]): DatapathRatio[] {
  const out: DatapathRatio[] = [];
  for (const name of Object.keys(DATAPATH_FIGURES) as DatapathFigureName[]) {
    const mine = valueOf(figures, name, 'userspace');
    if (mine === undefined || !(mine > 0)) continue;
    for (const { name: ratio, of } of RATIOS) {
      const other = valueOf(figures, name, of);
      if (other !== undefined && other > 0) out.push({ figure: name, ratio, value: round(mine / other) });
    }
  }
  return out;
}

/** Issue 12's goals: half of HAProxy's connection rate and throughput; added p99 under 1 ms. */
export function goals(figures: readonly DatapathFigure[]): Goal[] {
  const half = (name: DatapathFigureName, what: string): Goal => {
    const mine = valueOf(figures, name, 'userspace');
    const theirs = valueOf(figures, name, 'haproxy');
    const goal = `${what} >= 0.5 x HAProxy`;
    if (mine === undefined || theirs === undefined)
      return { goal, status: 'n/a', detail: 'needs the userspace and haproxy columns' };
    const ratio = mine / theirs;
    return { goal, status: ratio >= 0.5 ? 'met' : 'not met', detail: `${round(ratio)} x` };
  };
  const p99 = valueOf(figures, 'added-p99', 'userspace');
  return [
    half('conn-rate', 'new connections per second'),
    half('bulk-1', 'throughput, one stream'),
    half('bulk-n', 'throughput, many streams'),
    p99 === undefined
      ? { goal: 'added p99 < 1 ms at the fixed rate', status: 'n/a', detail: 'needs the userspace column' }
      : {
          goal: 'added p99 < 1 ms at the fixed rate',
          status: p99 < 1 ? 'met' : 'not met',
          detail: `${p99} ms`,
        },
  ];
}

/** The printed table: one row per figure, one column per measured column, then the ratios. */
export function formatDatapathTable(
  figures: readonly DatapathFigure[],
  ratioList: readonly DatapathRatio[],
  columns: readonly Column[],
): string {
  const header = ['figure', ...columns, ...RATIOS.map((r) => r.name), 'unit'];
  const lines: string[][] = [];
  for (const [name, [unit]] of Object.entries(DATAPATH_FIGURES) as [DatapathFigureName, [string, string]][]) {
    const row = figures.filter((f) => f.figure === name);
    if (row.length === 0) continue;
    lines.push([
      name,
      ...columns.map((c) => String(row.find((f) => f.column === c)?.value ?? '-')),
      ...RATIOS.map((r) =>
        String(ratioList.find((x) => x.figure === name && x.ratio === r.name)?.value ?? '-'),
      ),
      unit,
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}
