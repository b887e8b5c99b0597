// The soak run's short version (issue 15, goal 7): two minutes of endpoint churn (20 changes/s
// over 1000 Services) with an API fault every 15 s against the real kube-proxy (nftables mode),
// then the leak checks of `make soak`: no more open descriptors, child processes or pending
// timers than before the churn (after a settle period, polled with a deadline), every change in
// the kernel, and no namespace of the run left behind. RSS growth is reported, not asserted: two
// minutes say nothing about a slow leak (`make soak` runs an hour and asserts it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execTool } from '../../src/util/exec.ts';
import { cleanupNetns, kernelSkipReason } from '../support/netns.ts';
import { parseSoakOptions, runSoak } from '../../bench/soak.ts';
import { rssGrowth } from '../../bench/soak-report.ts';

const skip = kernelSkipReason();

test(
  'soak, 2 minutes: churn and API faults leak no descriptor, child process, timer or namespace',
  { skip, timeout: 15 * 60_000 },
  async (t) => {
    const out = mkdtempSync(join(tmpdir(), 'kube-proxy-soak-test-'));
    try {
      const options = parseSoakOptions([
        '--minutes',
        '2',
        '--mode',
        'nftables',
        '--sample-seconds',
        '5',
        '--fault-seconds',
        '15',
        '--warmup-minutes',
        '0.5',
        '--out',
        out,
      ]);
      const result = await runSoak(options);
      t.diagnostic(`\n${result.table}`);
      for (const v of result.verdicts) t.diagnostic(`${v.ok ? 'ok' : 'MISSED'}: ${v.goal}: ${v.detail}`);
      const growth = rssGrowth(result.outcome.samples, 30);
      t.diagnostic(
        `RSS ${growth.from.toFixed(1)} -> ${growth.to.toFixed(1)} MiB (${(growth.growth * 100).toFixed(1)} %)`,
      );

      const verdict = (goal: string) => {
        const found = result.verdicts.find((v) => v.goal === goal);
        assert.ok(found, `no verdict "${goal}"`);
        return found;
      };
      for (const goal of [
        'no descriptor leaked',
        'no child process leaked',
        'no timer leaked',
        'every change reaches the kernel',
      ]) {
        const v = verdict(goal);
        assert.ok(v.ok, `${goal}: ${v.detail}`);
      }
      // The run did what it says: the churn rate (loosely: the machine is shared), the faults, readings.
      const { samples, faults } = result.outcome;
      const writes = samples.at(-1)?.writes ?? 0;
      assert.ok(writes >= 20 * 120 * 0.5, `only ${writes} churn writes in 2 minutes`);
      assert.ok(faults.length >= 6, `only ${faults.length} API faults`);
      assert.ok(samples.length >= 10, `only ${samples.length} readings`);
      assert.ok(samples.every((s) => s.heapUsedMiB !== undefined || s.timers !== undefined || s.fds > 0));
      // The chart came out as a PNG.
      const png = result.files.png;
      assert.ok(png, 'no PNG');
      assert.deepEqual(
        [...readFileSync(png).subarray(0, 8)],
        [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      );
      // No namespace of this run remains.
      const { stdout } = await execTool('ip', ['netns', 'list']);
      const left = stdout.split('\n').filter((line) => result.prefixes.some((p) => line.startsWith(p)));
      assert.deepEqual(left, [], `namespaces left behind: ${left.join(', ')}`);
    } finally {
      await cleanupNetns();
      rmSync(out, { recursive: true, force: true });
    }
  },
);
