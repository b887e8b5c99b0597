// The VM lane's guest command (test/vm/lane-command.ts), run here with a stand-in for Node: a
// file whose Node dies by a signal is run again, up to three times in all; a failing test is not.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { laneCommand } from '../../vm/lane-command.ts';

/**
 * Runs the lane command for `files` with a fake node that, for each file, takes its outcomes in
 * turn from `plan` (`segv`: killed by SIGSEGV; a number: that exit status); returns the
 * command's status, its output and how often each file ran.
 */
function runLane(plan: Readonly<Record<string, readonly (number | 'segv')[]>>) {
  const dir = mkdtempSync(join(tmpdir(), 'kplc-'));
  try {
    const fakeNode = join(dir, 'node');
    const lines = ['#!/bin/bash', 'f=$(basename "${@: -1}")', 'n=$(cat "$f.count" 2>/dev/null || echo 0)'];
    lines.push('n=$((n + 1)); echo $n > "$f.count"', 'echo "ran $f attempt $n"', 'case "$f:$n" in');
    for (const [file, outcomes] of Object.entries(plan))
      outcomes.forEach((outcome, i) => {
        lines.push(
          `  ${file}:${String(i + 1)}) ${outcome === 'segv' ? 'kill -SEGV $$' : `exit ${String(outcome)}`} ;;`,
        );
      });
    lines.push('esac', 'exit 0', '');
    writeFileSync(fakeNode, lines.join('\n'));
    chmodSync(fakeNode, 0o755);
    const result = spawnSync('bash', ['-c', laneCommand(dir, Object.keys(plan), fakeNode, 4)], {
      encoding: 'utf8',
    });
    const runs = Object.fromEntries(
      Object.keys(plan).map((file) => [
        file,
        (result.stdout.match(new RegExp(`ran ${file} attempt`, 'g')) ?? []).length,
      ]),
    );
    return { status: result.status, output: result.stdout, runs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a file whose Node is killed by a signal runs again, up to three times in all', () => {
  const twice = runLane({ 'a.ts': ['segv', 'segv', 0], 'b.ts': [0] });
  assert.equal(twice.status, 0);
  assert.deepEqual(twice.runs, { 'a.ts': 3, 'b.ts': 1 });
  assert.match(twice.output, /a\.ts: node was killed by signal 11 before its tests ended \(attempt 1 of 3\)/);
  assert.match(twice.output, /\(attempt 2 of 3\)/);

  const always = runLane({ 'a.ts': ['segv', 'segv', 'segv'], 'b.ts': [0] });
  assert.equal(always.status, 1, 'three crashes fail the lane');
  assert.deepEqual(always.runs, { 'a.ts': 3, 'b.ts': 1 }, 'the next file still runs');
});

test('a failing test is not run again, and fails the lane', () => {
  const failing = runLane({ 'a.ts': [1], 'b.ts': [0] });
  assert.equal(failing.status, 1);
  assert.deepEqual(failing.runs, { 'a.ts': 1, 'b.ts': 1 });
});
