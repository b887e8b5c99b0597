// Start-up time and memory of the two ways to run kube-proxy-ts: bin/kube-proxy (the pinned node
// running dist/, needs the checkout) and release/kube-proxy (the single executable from
// `make release`). As root (the daemon runs in the namespace test cluster):
//   node bench/startup.ts [--runs 10]
// Prints a Markdown table for bench/README.md.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Cluster, KUBE_PROXY_BIN } from '../test/support/cluster.ts';
import { cleanupNetns } from '../test/support/netns.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RELEASE = join(ROOT, 'release', 'kube-proxy');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const RUNS = Number(values.runs);

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Wall time (ms) and peak RSS (MiB, GNU time's %M) of one short command, medians of RUNS runs. */
function shortRun(program: string, args: readonly string[]): { ms: number; peakMiB: number } {
  const times: number[] = [];
  const peaks: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    const run = spawnSync('/usr/bin/time', ['-f', '%M', program, ...args], { cwd: '/', encoding: 'utf8' });
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (run.status !== 0) throw new Error(`${program} ${args.join(' ')}: ${run.stderr}`);
    peaks.push(Number(run.stderr.trim().split('\n').at(-1)) / 1024);
  }
  return { ms: median(times), peakMiB: median(peaks) };
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.split(' ').at(-1));
}

/** The daemon in nftables mode against the in-repo API server: time to the first sync, idle RSS. */
async function daemon(
  command: readonly [string, ...string[]],
): Promise<{ firstSyncMs: number; rssMiB: number }> {
  const cluster = await Cluster.start({
    mode: 'nftables',
    tag: 'kbs',
    pods: [{ name: 'a', node: 'node1' }],
    proxyCommand: command,
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, 3000)); // idle after the first sync
    const text = (await cluster.httpGet('http://127.0.0.1:10249/metrics')).body;
    const start = metric(text, 'process_start_time_seconds');
    const synced = metric(text, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds');
    return {
      firstSyncMs: (synced - start) * 1000,
      rssMiB: metric(text, 'process_resident_memory_bytes') / 2 ** 20,
    };
  } finally {
    await cluster.destroy();
    await cleanupNetns();
  }
}

const rows: string[] = [
  '| | `--version` (start to exit) | peak RSS of `--version` | `--write-config-to` | daemon: process start to first sync | daemon RSS, idle |',
  '|---|---|---|---|---|---|',
];
for (const [name, program] of [
  ['`bin/kube-proxy` (node + dist/)', KUBE_PROXY_BIN],
  ['`release/kube-proxy` (single executable)', RELEASE],
] as const) {
  const version = shortRun(program, ['--version']);
  const write = shortRun(program, ['--write-config-to=/dev/null']);
  const d = await daemon([program]);
  rows.push(
    `| ${name} | ${version.ms.toFixed(0)} ms | ${version.peakMiB.toFixed(0)} MiB | ${write.ms.toFixed(0)} ms | ${d.firstSyncMs.toFixed(0)} ms | ${d.rssMiB.toFixed(0)} MiB |`,
  );
}
process.stdout.write(`${rows.join('\n')}\n`);
