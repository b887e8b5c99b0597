// The soak run's readings and what they mean (issue 15, goal 7): the per-window table, the goals
// (RSS growth after the warm-up, nothing leaked, latency flat) and the chart page that
// bench/soak-plot.ts screenshots to PNG. Pure: no clock, no /proc, no processes.
import { median, percentile } from './results.ts';

/** One reading of the kube-proxy process, every --sample-seconds. */
export interface Sample {
  /** Seconds since the churn started. */
  readonly t: number;
  readonly rssMiB: number;
  /** V8 heap in use (nodejs_heap_size_used_bytes); undefined when the scrape failed. */
  readonly heapUsedMiB: number | undefined;
  /** Open descriptors: entries of /proc/<pid>/fd. */
  readonly fds: number;
  /** Child processes: /proc/<pid>/task/<tid>/children. */
  readonly children: number;
  /** Pending timers (nodejs_active_resources{type="Timeout"}). */
  readonly timers: number | undefined;
  /** Everything keeping the event loop alive (nodejs_active_resources_total). */
  readonly resources: number | undefined;
  /** One endpoint change of a measured Service, API write to the kernel; undefined when lost. */
  readonly changeMs: number | undefined;
  /** kube-proxy's own sync durations (its "Synced proxy rules" log lines) since the last sample. */
  readonly syncMs: readonly number[];
  /** Churn writes so far. */
  readonly writes: number;
}

export const FAULT_KINDS = ['close-watches', 'reset-watches', 'compact-410', 'http-500', 'http-429'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultEvent {
  readonly t: number;
  readonly kind: FaultKind;
}

/** What the leak check compares: the idle process before the churn and after it settled. */
export interface Quiet {
  readonly fds: number;
  readonly children: number;
  readonly timers: number | undefined;
  /** Descriptors by kind (socket, pipe, anon_inode:[eventpoll], a path …), for the report. */
  readonly fdKinds: Readonly<Record<string, number>>;
  /** The children's command lines. */
  readonly childCommands: readonly string[];
  /** kube-proxy's TCP sockets (ss: state, queues, local and peer address). */
  readonly sockets: readonly string[];
}

export interface Goals {
  /** The warm-up excluded from the RSS and latency goals, seconds from the churn's start. */
  readonly warmupS: number;
  /** Largest allowed RSS growth after the warm-up (0.05: 5 %). */
  readonly maxRssGrowth: number;
  /** "Flat": the second half's median at most this factor of the first half's, plus slackMs. */
  readonly latencyFactor: number;
  readonly latencySlackMs: number;
  /** Timers may end this many above the idle count (a timer per leak shows as hundreds). */
  readonly timerSlack: number;
}

export const DEFAULT_GOALS: Omit<Goals, 'warmupS'> = {
  maxRssGrowth: 0.05,
  latencyFactor: 1.5,
  latencySlackMs: 50,
  timerSlack: 2,
};

export interface Verdict {
  readonly goal: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface SoakOutcome {
  readonly samples: readonly Sample[];
  readonly faults: readonly FaultEvent[];
  readonly before: Quiet;
  readonly after: Quiet;
  /** Probe changes that never reached the kernel within the deadline. */
  readonly lostChanges: number;
  /** Endpoints the churn left that the kernel does not have at the end (undefined: not checked). */
  readonly missingAtEnd: number | undefined;
}

const defined = (values: readonly (number | undefined)[]): number[] =>
  values.filter((v): v is number => v !== undefined && Number.isFinite(v));

/** The samples after the warm-up, split into two halves by time. */
function halves(samples: readonly Sample[], warmupS: number): [Sample[], Sample[]] {
  const after = samples.filter((s) => s.t >= warmupS);
  const mid = Math.floor(after.length / 2);
  return [after.slice(0, mid), after.slice(mid)];
}

/**
 * RSS growth after the warm-up: the median RSS of the last window against the median of the
 * window right after the warm-up (a window: a quarter of the time after the warm-up, at most a
 * minute), so one reading taken just before a garbage collection does not decide it.
 */
export function rssGrowth(
  samples: readonly Sample[],
  warmupS: number,
): { from: number; to: number; growth: number } {
  const end = samples.at(-1)?.t ?? 0;
  const window = Math.min(60, Math.max(1, (end - warmupS) / 4));
  const first = samples.filter((s) => s.t >= warmupS && s.t < warmupS + window).map((s) => s.rssMiB);
  const last = samples.filter((s) => s.t > end - window).map((s) => s.rssMiB);
  const from = median(first);
  const to = median(last);
  return { from, to, growth: to / from - 1 };
}

function flat(what: string, first: number[], second: number[], goals: Goals): Verdict {
  const a = median(first);
  const b = median(second);
  if (first.length === 0 || second.length === 0)
    return { goal: `${what} flat`, ok: false, detail: 'too few readings after the warm-up to compare' };
  const limit = a * goals.latencyFactor + goals.latencySlackMs;
  return {
    goal: `${what} flat`,
    ok: b <= limit,
    detail: `median ${a.toFixed(1)} ms in the first half after the warm-up, ${b.toFixed(1)} ms in the second (limit ${limit.toFixed(1)} ms)`,
  };
}

/** The goals of `make soak`, each with the figures it was judged on. */
export function evaluate(outcome: SoakOutcome, goals: Goals): Verdict[] {
  const { samples, before, after } = outcome;
  const verdicts: Verdict[] = [];
  const rss = rssGrowth(samples, goals.warmupS);
  verdicts.push({
    goal: `RSS growth <= ${(goals.maxRssGrowth * 100).toFixed(0)} % after the warm-up`,
    ok: Number.isFinite(rss.growth) && rss.growth <= goals.maxRssGrowth,
    detail: `${rss.from.toFixed(1)} MiB at ${(goals.warmupS / 60).toFixed(1)} min, ${rss.to.toFixed(1)} MiB at the end: ${(rss.growth * 100).toFixed(1)} %`,
  });
  verdicts.push(...leakVerdicts(before, after, goals.timerSlack));
  const [first, second] = halves(samples, goals.warmupS);
  verdicts.push(
    flat(
      'change latency',
      defined(first.map((s) => s.changeMs)),
      defined(second.map((s) => s.changeMs)),
      goals,
    ),
  );
  verdicts.push(
    flat(
      'sync duration',
      first.flatMap((s) => s.syncMs),
      second.flatMap((s) => s.syncMs),
      goals,
    ),
  );
  verdicts.push({
    goal: 'every change reaches the kernel',
    ok: outcome.lostChanges === 0 && (outcome.missingAtEnd ?? 0) === 0,
    detail:
      `${outcome.lostChanges} measured changes lost` +
      (outcome.missingAtEnd === undefined
        ? ' (the final check of every endpoint reads nftables maps: not done in this mode)'
        : `, ${outcome.missingAtEnd} endpoints missing from the kernel at the end`),
  });
  return verdicts;
}

/** Descriptors, child processes and timers: after the run no more than before it. */
export function leakVerdicts(before: Quiet, after: Quiet, timerSlack: number): Verdict[] {
  const kinds = (q: Quiet) =>
    Object.entries(q.fdKinds)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  const verdicts: Verdict[] = [
    {
      goal: 'no descriptor leaked',
      ok: after.fds <= before.fds,
      detail:
        `${before.fds} open before the churn (${kinds(before)}), ${after.fds} after it settled (${kinds(after)})` +
        (after.fds > before.fds
          ? `; TCP sockets before: ${before.sockets.join(' | ') || 'none'}; after: ${after.sockets.join(' | ') || 'none'}`
          : ''),
    },
    {
      goal: 'no child process leaked',
      ok: after.children <= before.children,
      detail: `${before.children} before, ${after.children} after${after.children > before.children ? `: ${after.childCommands.join('; ')}` : ''}`,
    },
  ];
  if (before.timers !== undefined && after.timers !== undefined)
    verdicts.push({
      goal: 'no timer leaked',
      ok: after.timers <= before.timers + timerSlack,
      detail: `${before.timers} pending timers before, ${after.timers} after (allowed: +${timerSlack})`,
    });
  else
    verdicts.push({ goal: 'no timer leaked', ok: false, detail: 'the metrics endpoint gave no timer count' });
  return verdicts;
}

export interface TableRow {
  readonly fromMin: number;
  readonly toMin: number;
  readonly rssMiB: number;
  readonly heapMiB: number;
  readonly fdsMax: number;
  readonly childrenMax: number;
  readonly timersMax: number;
  readonly changeP50: number;
  readonly changeMax: number;
  readonly syncP50: number;
  readonly syncP99: number;
  readonly faults: number;
}

/** The run cut into `rows` windows: medians of memory, maxima of counts, latency percentiles. */
export function tableRows(samples: readonly Sample[], faults: readonly FaultEvent[], rows = 12): TableRow[] {
  const end = samples.at(-1)?.t ?? 0;
  if (end <= 0) return [];
  const width = end / rows;
  const out: TableRow[] = [];
  for (let i = 0; i < rows; i++) {
    const from = i * width;
    const to = i === rows - 1 ? end + 1 : (i + 1) * width;
    const window = samples.filter((s) => s.t >= from && s.t < to);
    if (window.length === 0) continue;
    const changes = defined(window.map((s) => s.changeMs));
    const syncs = window.flatMap((s) => s.syncMs);
    out.push({
      fromMin: from / 60,
      toMin: Math.min(to, end) / 60,
      rssMiB: median(window.map((s) => s.rssMiB)),
      heapMiB: median(defined(window.map((s) => s.heapUsedMiB))),
      fdsMax: Math.max(...window.map((s) => s.fds)),
      childrenMax: Math.max(...window.map((s) => s.children)),
      timersMax: Math.max(...defined(window.map((s) => s.timers))),
      changeP50: median(changes),
      changeMax: changes.length > 0 ? Math.max(...changes) : Number.NaN,
      syncP50: median(syncs),
      syncP99: percentile(syncs, 0.99),
      faults: faults.filter((f) => f.t >= from && f.t < to).length,
    });
  }
  return out;
}

const fixed = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
/** An axis label: at most two decimals, no trailing zeros. */
const label = (n: number): string => String(Number(n.toFixed(2)));

/** The table as Markdown (printed and written to soak.md). */
export function formatTableRows(rows: readonly TableRow[]): string {
  const head =
    '| minutes | RSS MiB | heap MiB | fds (max) | children (max) | timers (max) | change p50 ms | change max ms | sync p50 ms | sync p99 ms | API faults |\n' +
    '|---|---|---|---|---|---|---|---|---|---|---|\n';
  return (
    head +
    rows
      .map(
        (r) =>
          `| ${fixed(r.fromMin, 1)}-${fixed(r.toMin, 1)} | ${fixed(r.rssMiB, 1)} | ${fixed(r.heapMiB, 1)} | ${fixed(r.fdsMax)} | ${fixed(r.childrenMax)} | ${fixed(r.timersMax)} | ${fixed(r.changeP50)} | ${fixed(r.changeMax)} | ${fixed(r.syncP50, 1)} | ${fixed(r.syncP99, 1)} | ${r.faults} |`,
      )
      .join('\n') +
    '\n'
  );
}

export function formatVerdicts(verdicts: readonly Verdict[]): string {
  return verdicts.map((v) => `${v.ok ? 'ok  ' : 'MISS'} ${v.goal}: ${v.detail}`).join('\n') + '\n';
}

// ---- the chart page ----

interface Series {
  readonly title: string;
  readonly unit: string;
  readonly lines: readonly {
    readonly label: string;
    readonly color: string;
    readonly points: readonly [number, number][];
  }[];
}

const W = 560;
const H = 220;
const PAD = { left: 56, right: 12, top: 28, bottom: 30 };

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten. */
export function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function chart(series: Series, endS: number, faults: readonly FaultEvent[], warmupS: number): string {
  // endS: where the x axis ends.
  const all = series.lines.flatMap((l) => l.points.map(([, y]) => y));
  const yMax = niceMax(Math.max(0, ...all) * 1.1);
  const xMax = Math.max(endS, 1);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + (t / xMax) * plotW;
  const y = (v: number) => PAD.top + plotH - (v / yMax) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`);
  parts.push(
    `<text x="${PAD.left}" y="16" class="title">${escapeXml(series.title)} (${escapeXml(series.unit)})</text>`,
  );
  // The warm-up, shaded: the goals ignore it.
  parts.push(
    `<rect x="${x(0)}" y="${PAD.top}" width="${Math.max(0, x(Math.min(warmupS, xMax)) - x(0))}" height="${plotH}" class="warmup"/>`,
  );
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`);
    parts.push(
      `<text x="${PAD.left - 4}" y="${y(v) + 4}" class="axis" text-anchor="end">${escapeXml(label(v))}</text>`,
    );
  }
  // Minute ticks at a round step (1, 2 or 5 times a power of ten), about six of them.
  const stepMin = niceMax(xMax / 60 / 6);
  for (let m = 0; m * 60 <= xMax + 1e-9; m += stepMin) {
    const t = m * 60;
    parts.push(
      `<text x="${x(t)}" y="${H - 10}" class="axis" text-anchor="middle">${escapeXml(label(t / 60))}</text>`,
    );
  }
  for (const f of faults)
    parts.push(
      `<line x1="${x(f.t)}" x2="${x(f.t)}" y1="${PAD.top}" y2="${PAD.top + plotH}" class="fault"><title>${f.kind}</title></line>`,
    );
  for (const line of series.lines) {
    if (line.points.length === 0) continue;
    const d = line.points
      .map(([t, v], i) => `${i === 0 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`)
      .join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${line.color}" stroke-width="1.5"/>`);
  }
  let legendX = W - PAD.right;
  for (const line of [...series.lines].reverse()) {
    const width = 18 + line.label.length * 6.5;
    legendX -= width;
    parts.push(`<rect x="${legendX}" y="8" width="10" height="10" fill="${line.color}"/>`);
    parts.push(`<text x="${legendX + 13}" y="17" class="axis">${escapeXml(line.label)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

export interface PageMeta {
  readonly title: string;
  readonly subtitle: string;
  readonly warmupS: number;
  /** The planned length of the run: the x axis ends there (or at the last reading, if later). */
  readonly durationS: number;
}

/** The chart page: one SVG per quantity over time, API faults as dashed lines, the warm-up shaded. */
export function renderPage(outcome: SoakOutcome, verdicts: readonly Verdict[], meta: PageMeta): string {
  const { samples, faults } = outcome;
  const pts = (pick: (s: Sample) => number | undefined): [number, number][] =>
    samples.flatMap((s): [number, number][] => {
      const v = pick(s);
      return v === undefined || !Number.isFinite(v) ? [] : [[s.t, v]];
    });
  const endS = Math.max(samples.at(-1)?.t ?? 0, meta.durationS);
  const series: Series[] = [
    {
      title: 'Memory',
      unit: 'MiB',
      lines: [
        { label: 'RSS', color: '#1f77b4', points: pts((s) => s.rssMiB) },
        { label: 'V8 heap used', color: '#ff7f0e', points: pts((s) => s.heapUsedMiB) },
      ],
    },
    {
      title: 'Open file descriptors',
      unit: 'count',
      lines: [{ label: 'fds', color: '#2ca02c', points: pts((s) => s.fds) }],
    },
    {
      title: 'Child processes',
      unit: 'count',
      lines: [{ label: 'children', color: '#d62728', points: pts((s) => s.children) }],
    },
    {
      title: 'Event loop',
      unit: 'count',
      lines: [
        { label: 'timers', color: '#9467bd', points: pts((s) => s.timers) },
        { label: 'all resources', color: '#8c564b', points: pts((s) => s.resources) },
      ],
    },
    {
      title: 'Change to kernel',
      unit: 'ms',
      lines: [{ label: 'one change', color: '#e377c2', points: pts((s) => s.changeMs) }],
    },
    {
      title: 'Sync duration',
      unit: 'ms',
      lines: [
        {
          label: 'p50',
          color: '#17becf',
          points: pts((s) => (s.syncMs.length > 0 ? median(s.syncMs) : undefined)),
        },
        {
          label: 'max',
          color: '#7f7f7f',
          points: pts((s) => (s.syncMs.length > 0 ? Math.max(...s.syncMs) : undefined)),
        },
      ],
    },
  ];
  const charts = series.map((s) => chart(s, endS, faults, meta.warmupS)).join('\n');
  const list = verdicts
    .map(
      (v) =>
        `<li class="${v.ok ? 'ok' : 'miss'}">${v.ok ? 'ok' : 'MISSED'}: ${escapeXml(v.goal)}: ${escapeXml(v.detail)}</li>`,
    )
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeXml(meta.title)}</title>
<style>
body { font: 13px sans-serif; margin: 16px; width: ${2 * W + 24}px; background: #fff; color: #222; }
h1 { font-size: 17px; margin: 0 0 4px; } p { margin: 0 0 8px; color: #555; }
.grid-2 { display: grid; grid-template-columns: ${W}px ${W}px; gap: 8px 24px; }
svg .title { font-size: 13px; font-weight: bold; } svg .axis { font-size: 10px; fill: #555; }
svg .grid { stroke: #ddd; } svg .fault { stroke: #c00; stroke-dasharray: 3 3; stroke-width: 1; opacity: .5; }
svg .warmup { fill: #eee; }
li.ok { color: #161; } li.miss { color: #b00; font-weight: bold; } ul { padding-left: 18px; margin: 6px 0; }
</style></head><body>
<h1>${escapeXml(meta.title)}</h1>
<p>${escapeXml(meta.subtitle)} Minutes on the x axis; grey: the warm-up the goals ignore; red dashes: API faults.</p>
<div class="grid-2">
${charts}
</div>
<ul>
${list}
</ul>
</body></html>
`;
}

/** The Prometheus text format: the value of one sample line (name and, optionally, exact labels). */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  const wanted = labels === '' ? name : `${name}{${labels}}`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(wanted)) continue;
    const rest = line.slice(wanted.length);
    if (!rest.startsWith(' ')) continue;
    const value = Number(rest.trim().split(' ')[0]);
    return Number.isFinite(value) ? value : undefined;
  }
  return undefined;
}
