// The first sync into an empty kernel in pieces (pieces.ts): the first piece holds no Service,
// each later one adds whole Services to the one before, and the last holds every service port.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstSyncPieces } from '../../../src/dataplane/nftables/pieces.ts';
import { port, snapshot } from './fixtures.ts';

const ports = (service: string, count: number, octet: number) =>
  Array.from({ length: count }, (_, i) =>
    port({ name: service, portName: `p${String(i)}`, clusterIP: `10.96.0.${String(octet)}`, port: 80 + i }),
  );

test('pieces add whole Services, in order, up to the size unless one Service is larger', () => {
  const whole = snapshot([
    ...ports('a', 2, 1),
    ...ports('b', 3, 2),
    ...ports('c', 1, 3),
    ...ports('d', 6, 4),
    ...ports('e', 1, 5),
  ]);
  const pieces = firstSyncPieces(whole, 4);
  const keys = pieces.map((piece) => [...piece.servicePorts.keys()]);
  const services = (list: readonly string[]) => [...new Set(list.map((key) => key.split(':')[0]))];
  assert.deepEqual(
    keys.map(services),
    [
      [],
      ['ns/a'],
      ['ns/a', 'ns/b', 'ns/c'],
      ['ns/a', 'ns/b', 'ns/c', 'ns/d'],
      ['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e'],
    ],
    'the fixed part alone; b and c together fill a piece of 4; d (6 ports) is a piece of its own',
  );
  assert.deepEqual(keys.at(-1), [...whole.servicePorts.keys()], 'the last piece is everything');
  for (const [i, list] of keys.entries()) {
    const before = keys[i - 1] ?? [];
    assert.deepEqual(list.slice(0, before.length), before, 'each piece extends the one before');
    for (const service of services(list.slice(before.length)))
      assert.equal(
        list.filter((key) => key.startsWith(`${service}:`)).length,
        [...whole.servicePorts.keys()].filter((key) => key.startsWith(`${service}:`)).length,
        `${service} whole in piece ${String(i)}`,
      );
  }
  for (const piece of pieces) {
    assert.equal(piece.generation, undefined, 'no change hint: the renderer compares every port');
    assert.equal(piece.changedServicePorts, undefined);
    assert.equal(piece.serviceCIDRs, whole.serviceCIDRs);
  }
});

test('a snapshot within one piece is the fixed part, then that piece', () => {
  const whole = snapshot(ports('a', 3, 1));
  const pieces = firstSyncPieces(whole, 3);
  assert.equal(pieces.length, 2);
  assert.equal(pieces[0]?.servicePorts.size, 0);
  assert.deepEqual([...(pieces[1]?.servicePorts.keys() ?? [])], [...whole.servicePorts.keys()]);
  assert.equal(firstSyncPieces(snapshot([]), 3).length, 1, 'nothing but the fixed part');
});
