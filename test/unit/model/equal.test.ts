import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sameValue } from '../../../src/model/equal.ts';

describe('sameValue (model change detection)', () => {
  it('compares primitives, arrays and plain objects by value, at any depth', () => {
    assert.ok(sameValue(1, 1));
    assert.ok(!sameValue(1, '1'));
    assert.ok(!sameValue(0, false));
    assert.ok(sameValue(null, null));
    assert.ok(!sameValue(null, undefined));
    assert.ok(sameValue({ a: [1, { b: 'x' }] }, { a: [1, { b: 'x' }] }));
    assert.ok(!sameValue({ a: [1, { b: 'x' }] }, { a: [1, { b: 'y' }] }));
    assert.ok(!sameValue([1, 2], [1, 2, 3]));
    assert.ok(!sameValue([2, 1], [1, 2]), 'order matters in lists');
    assert.ok(!sameValue([], {}), 'a list is not an object');
    assert.ok(!sameValue({}, []));
    assert.ok(!sameValue({ a: 1 }, { a: 1, b: 2 }));
    assert.ok(!sameValue({ a: 1, b: 2 }, { a: 1 }));
  });

  it('treats an undefined property as absent, as JSON would', () => {
    assert.ok(sameValue({ a: 1, hints: undefined }, { a: 1 }));
    assert.ok(sameValue({ a: 1 }, { a: 1, hints: undefined }));
    assert.ok(!sameValue({ a: 1, hints: [] }, { a: 1 }));
  });
});
