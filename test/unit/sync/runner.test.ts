import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedFrequencyRunner, realClock } from '../../../src/sync/runner.ts';
import { FakeClock, settle } from '../../support/fake-clock.ts';

function harness(
  options: {
    minIntervalMs?: number;
    retryIntervalMs?: number;
    maxIntervalMs?: number;
    retryBackoff?: { initialMs: number; capMs: number };
  } = {},
) {
  const clock = new FakeClock();
  const runs: number[] = [];
  let failNext = 0;
  let durationMs = 0;
  let waiting = false;
  const errors: unknown[] = [];
  const retryIns: number[] = [];
  const runner = new BoundedFrequencyRunner({
    ...(options.retryBackoff ? { retryBackoff: options.retryBackoff } : {}),
    name: 'test',
    minIntervalMs: options.minIntervalMs ?? 1000,
    retryIntervalMs: options.retryIntervalMs ?? 30_000,
    maxIntervalMs: options.maxIntervalMs ?? 3_600_000,
    clock,
    // Runs are busy (CPU) for their whole duration, unless a test says they only wait.
    cpuTimeMs: () => (waiting ? 0 : clock.now()),
    onError: (error, retryIn) => {
      errors.push(error);
      retryIns.push(retryIn);
    },
    fn: async () => {
      runs.push(clock.now());
      if (durationMs > 0) await new Promise<void>((resolve) => clock.setTimeout(resolve, durationMs));
      if (failNext > 0) {
        failNext--;
        throw new Error('sync failed');
      }
    },
  });
  return {
    clock,
    runs,
    errors,
    retryIns,
    runner,
    failTimes: (n: number) => (failNext = n),
    setDuration: (ms: number) => (durationMs = ms),
    setWaiting: (on: boolean) => (waiting = on),
  };
}

test('requests before start are dropped; start runs at once', async () => {
  const h = harness();
  h.runner.run();
  await h.clock.advance(5000);
  assert.equal(h.runs.length, 0);
  h.runner.start();
  await h.clock.advance(0);
  assert.deepEqual(h.runs, [1_005_000]);
  h.runner.stop();
});

test('a burst of requests coalesces into one run after minInterval', async () => {
  const h = harness({ minIntervalMs: 1000 });
  h.runner.start();
  await h.clock.advance(0);
  for (let i = 0; i < 10; i++) {
    h.runner.run();
    await h.clock.advance(50);
  }
  // 500 ms into the minimum interval: nothing yet.
  assert.equal(h.runs.length, 1);
  await h.clock.advance(500);
  assert.equal(h.runs.length, 2);
  assert.equal(h.runs[1]! - h.runs[0]!, 1000);
  await h.clock.advance(10_000);
  assert.equal(h.runs.length, 2, 'no further runs without requests');
  h.runner.stop();
});

test('a request after the minimum interval runs immediately', async () => {
  const h = harness({ minIntervalMs: 1000 });
  h.runner.start();
  await h.clock.advance(5000);
  h.runner.run();
  await h.clock.advance(0);
  assert.deepEqual(h.runs, [1_000_000, 1_005_000]);
  h.runner.stop();
});

test('a failed run is retried within retryInterval; success cancels the retry', async () => {
  const h = harness({ minIntervalMs: 1000, retryIntervalMs: 30_000 });
  h.failTimes(1);
  h.runner.start();
  await h.clock.advance(0);
  assert.equal(h.errors.length, 1);
  await h.clock.advance(29_999);
  assert.equal(h.runs.length, 1);
  await h.clock.advance(1);
  assert.equal(h.runs.length, 2, 'retried at retryInterval');
  await h.clock.advance(60_000);
  assert.equal(h.runs.length, 2, 'no retry after success');
  h.runner.stop();
});

test('with retryBackoff, failures are retried after 100 ms doubling to the cap; success resets', async () => {
  const h = harness({
    minIntervalMs: 0,
    retryIntervalMs: 30_000,
    retryBackoff: { initialMs: 100, capMs: 1000 },
  });
  h.failTimes(6);
  h.runner.start();
  await h.clock.advance(10_000);
  const gaps = h.runs.slice(1).map((t, i) => t - (h.runs[i] ?? 0));
  assert.deepEqual(gaps, [100, 200, 400, 800, 1000, 1000], 'back-off, capped at 1 s');
  assert.deepEqual(h.retryIns, [100, 200, 400, 800, 1000, 1000], 'each failure says when it retries');
  h.failTimes(1);
  h.runner.run();
  await h.clock.advance(0);
  await h.clock.advance(100);
  assert.equal(h.runs.length, 9, 'after a success the back-off starts again at 100 ms');
  h.runner.stop();
});

test('with retryBackoff, a failing run that was busy waits at least its CPU time, at most retryInterval', async () => {
  const h = harness({
    minIntervalMs: 0,
    retryIntervalMs: 5000,
    retryBackoff: { initialMs: 100, capMs: 1000 },
  });
  h.setDuration(3000);
  h.failTimes(2);
  h.runner.start();
  await h.clock.advance(3000);
  assert.deepEqual(h.retryIns, [3000], 'a run busy for 3 s is retried 3 s after it ended, not 100 ms');
  h.runner.stop();
  const waited = harness({
    minIntervalMs: 0,
    retryIntervalMs: 5000,
    retryBackoff: { initialMs: 100, capMs: 1000 },
  });
  waited.setDuration(3000);
  waited.setWaiting(true);
  waited.failTimes(1);
  waited.runner.start();
  await waited.clock.advance(3000);
  assert.deepEqual(waited.retryIns, [100], 'a run that only waited 3 s (a lock) is retried at once');
  waited.runner.stop();
  const capped = harness({
    minIntervalMs: 0,
    retryIntervalMs: 2000,
    retryBackoff: { initialMs: 100, capMs: 1000 },
  });
  capped.setDuration(3000);
  capped.failTimes(1);
  capped.runner.start();
  await capped.clock.advance(3000);
  assert.deepEqual(capped.retryIns, [2000], 'never later than retryInterval');
  capped.runner.stop();
});

test('runs at least every maxInterval', async () => {
  const h = harness({ minIntervalMs: 1000, maxIntervalMs: 3_600_000 });
  h.runner.start();
  await h.clock.advance(2 * 3_600_000);
  assert.deepEqual(h.runs, [1_000_000, 1_000_000 + 3_600_000, 1_000_000 + 7_200_000]);
  h.runner.stop();
});

test('a request during a run is served once after it, respecting minInterval', async () => {
  const clock = new FakeClock();
  const runs: number[] = [];
  let release: (() => void) | undefined;
  const runner = new BoundedFrequencyRunner({
    name: 'slow',
    minIntervalMs: 1000,
    retryIntervalMs: 30_000,
    maxIntervalMs: 3_600_000,
    clock,
    fn: async () => {
      runs.push(clock.now());
      await new Promise<void>((resolve) => (release = resolve));
    },
  });
  runner.start();
  await clock.advance(0);
  runner.run();
  runner.run();
  await clock.advance(5000);
  assert.equal(runs.length, 1, 'no overlapping runs');
  release!();
  await settle();
  await clock.advance(999);
  assert.equal(runs.length, 1);
  await clock.advance(1);
  assert.equal(runs.length, 2);
  release!();
  await settle();
  runner.stop();
  assert.equal(clock.pendingTimers(), 0, 'stop clears timers');
});

test('the real clock runs a due-now callback on the next turn, and can cancel it', async () => {
  const order: string[] = [];
  const cancelled = realClock.setTimeout(() => order.push('cancelled'), 0);
  realClock.clearTimeout(cancelled);
  realClock.setTimeout(() => order.push('now'), 0);
  // Far enough apart that a loaded machine (a turn of the loop taking milliseconds) cannot run
  // the 'later' timer in the same turn as the due-now one.
  const later = realClock.setTimeout(() => order.push('later'), 100);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(order, ['now', 'later']);
  realClock.clearTimeout(later);
});
