import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { alignSlots } from '../../../src/dataplane/nftables/slots.ts';

describe('nftables endpoint slots', () => {
  test('a replaced endpoint takes the slot of the one it replaces', () => {
    assert.deepEqual(alignSlots(['a', 'b', 'c'], ['b', 'c', 'd']), ['d', 'b', 'c']);
  });
  test('a new endpoint takes a new slot; nothing else moves', () => {
    assert.deepEqual(alignSlots(['b', 'c'], ['a', 'b', 'c']), ['b', 'c', 'a']);
  });
  test('when the count shrinks, the endpoint from a slot that is gone fills the hole', () => {
    assert.deepEqual(alignSlots(['a', 'b', 'c', 'd'], ['a', 'c', 'd']), ['a', 'd', 'c']);
    assert.deepEqual(alignSlots(['a', 'b', 'c', 'd'], ['b', 'd']), ['d', 'b']);
  });
  test('undefined when the new order is already right', () => {
    assert.equal(alignSlots(['a', 'b'], ['a', 'b', 'c']), undefined);
    assert.equal(alignSlots([], ['a']), undefined);
  });
  test('property: same values, survivors keep their slot when it exists', () => {
    const values = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { maxLength: 6 });
    fc.assert(
      fc.property(values, values, (before, next) => {
        const aligned = alignSlots(before, next) ?? next;
        assert.deepEqual([...aligned].sort(), [...next].sort());
        before.forEach((value, i) => {
          if (i < next.length && next.includes(value)) assert.equal(aligned[i], value);
        });
      }),
    );
  });
});
