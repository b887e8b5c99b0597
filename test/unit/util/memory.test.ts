import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryRelease } from '../../../src/util/memory.ts';
import { pollUntil } from '../../support/netns.ts';

const quiet = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('after a full sync, one real collection runs once the loop is quiet, and frees the garbage', async () => {
  const release = memoryRelease({ idleMs: 20 });
  // 64 MiB of garbage that only a major collection frees.
  const garbage = { strings: Array.from({ length: 1 << 16 }, (_, i) => `${i}`.padEnd(1024, 'x')) };
  const before = process.memoryUsage().heapUsed;
  assert.equal(garbage.strings.length, 1 << 16);
  garbage.strings = [];
  release.synced(true);
  await pollUntil('the collection', () => (release.runs === 1 ? true : undefined), 5000);
  assert.ok(process.memoryUsage().heapUsed < before - 32 * 2 ** 20, 'the garbage was collected');
});

test('nothing runs while syncs keep coming; partial syncs need the resident set to have grown', async () => {
  let heap = 100;
  let collected = 0;
  const release = memoryRelease({
    // Idle long against the 10 ms between syncs: a loaded machine stretches timers.
    idleMs: 400,
    growthBytes: 10,
    minIntervalMs: 0,
    resident: () => heap,
    collect: () => collected++,
  });
  release.synced(false);
  await quiet(800);
  assert.equal(collected, 0, 'partial syncs without growth: no collection');
  heap = 150;
  for (let i = 0; i < 5; i++) {
    release.synced(false);
    await quiet(10);
  }
  assert.equal(collected, 0, 'not while busy');
  await pollUntil('the collection', () => (collected === 1 ? true : undefined), 2000);
  // The resident set after the collection is the new base.
  release.synced(false);
  await quiet(800);
  assert.equal(collected, 1);
  assert.equal(release.runs, 1);
});

test('collections are at least minIntervalMs apart', async () => {
  let collected = 0;
  const release = memoryRelease({ idleMs: 5, minIntervalMs: 150, collect: () => collected++ });
  release.synced(true);
  await pollUntil('the first collection', () => (collected === 1 ? true : undefined), 2000);
  release.synced(true);
  await quiet(60);
  assert.equal(collected, 1, 'the second waits for the interval');
  await pollUntil('the second collection', () => (collected === 2 ? true : undefined), 2000);
});
