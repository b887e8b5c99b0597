import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryRelease } from '../../../src/util/memory.ts';
import { pollUntil } from '../../support/netns.ts';

test('a requested collection runs soon, requests coalesce, and garbage is gone afterwards', async () => {
  const release = memoryRelease({ minIntervalMs: 60_000 });
  // 64 MiB of garbage that a collection must free.
  const garbage = { strings: Array.from({ length: 1 << 16 }, (_, i) => `${i}`.padEnd(1024, 'x')) };
  const before = process.memoryUsage().heapUsed;
  assert.equal(garbage.strings.length, 1 << 16);
  garbage.strings = [];
  release.request();
  release.request();
  await pollUntil('the collection', () => (release.runs === 1 ? true : undefined), 5000);
  assert.ok(process.memoryUsage().heapUsed < before - 32 * 2 ** 20, 'the garbage was collected');
  // Within the interval a new request waits instead of collecting again.
  release.request();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(release.runs, 1);
});
