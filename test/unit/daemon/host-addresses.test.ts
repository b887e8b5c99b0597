// The host address watch: a change of the set of addresses (not of their order) calls back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKey, watchHostAddresses } from '../../../src/daemon/host-addresses.ts';
import { pollUntil } from '../../support/netns.ts';

test('the set of addresses, not their order, is what counts', () => {
  assert.equal(addressKey(['10.0.0.2', '10.0.0.1', '10.0.0.2']), addressKey(['10.0.0.1', '10.0.0.2']));
  assert.notEqual(addressKey(['10.0.0.1']), addressKey(['10.0.0.1', '10.0.0.3']));
});

test('an added or removed address calls back once; a failing read is skipped', async () => {
  let addresses = ['192.168.0.10', '127.0.0.1'];
  let fail = false;
  let changes = 0;
  let reads = 0;
  const watch = watchHostAddresses(
    () => {
      reads++;
      if (fail) throw new Error('getifaddrs failed');
      return addresses;
    },
    10,
    () => changes++,
  );
  try {
    addresses = ['127.0.0.1', '192.168.0.10'];
    fail = true;
    const seen = reads;
    await pollUntil(
      'reads that fail and reads of the reordered list',
      () => (reads >= seen + 3 ? true : undefined),
      2_000,
      5,
    );
    fail = false;
    const after = reads;
    await pollUntil('a read that works', () => (reads >= after + 2 ? true : undefined), 2_000, 5);
    assert.equal(changes, 0, 'reordered or unreadable is no change');
    addresses = [...addresses, '192.168.0.11'];
    await pollUntil('a change', () => (changes === 1 ? true : undefined), 2_000, 5);
    addresses = ['127.0.0.1'];
    await pollUntil('another', () => (changes === 2 ? true : undefined), 2_000, 5);
  } finally {
    watch.stop();
  }
});
