import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flat, flatten } from '../../../src/util/flat.ts';

test('flat and flatten give the same text as concatenation', () => {
  assert.equal(flat('10.96.0.10', ' . ', 'tcp', ' . ', 80), '10.96.0.10 . tcp . 80');
  assert.equal(flat(), '');
  const long = `${'a'.repeat(20)}${String(7)}`;
  assert.equal(flatten(long), long);
  assert.equal(flatten('short'), 'short');
  assert.equal(flatten(''), '');
});
