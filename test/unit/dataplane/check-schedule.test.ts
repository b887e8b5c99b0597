// The integrity checks' spacing: their share of a core is 1/factor, 2 % unless the operator (or
// the VM lane, whose tools run slowly) sets KUBE_PROXY_CHECK_COST_FACTOR.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CHECK_COST_FACTOR,
  CheckSchedule,
  checkCostFactor,
} from '../../../src/dataplane/common/check-schedule.ts';

test('the cost factor: 50 by default, the environment may set another, nonsense is ignored', () => {
  assert.equal(CHECK_COST_FACTOR, 50);
  assert.equal(checkCostFactor({}), 50);
  assert.equal(checkCostFactor({ KUBE_PROXY_CHECK_COST_FACTOR: '5' }), 5);
  assert.equal(checkCostFactor({ KUBE_PROXY_CHECK_COST_FACTOR: 'fast' }), 50);
  assert.equal(checkCostFactor({ KUBE_PROXY_CHECK_COST_FACTOR: '-1' }), 50);
});

test('a check that took 2 s waits 10 s with factor 5 and 100 s with the default', () => {
  const fast = new CheckSchedule(5);
  fast.ran(0, 2_000);
  assert.equal(fast.nextDueAt, 12_000);
  const polite = new CheckSchedule(CHECK_COST_FACTOR);
  polite.ran(0, 2_000);
  assert.equal(polite.nextDueAt, 102_000);
});
