import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppliedRecord } from '../../../src/sync/applied.ts';
import type { ProxySnapshot, ServicePortState } from '../../../src/model/types.ts';

/** Only what AppliedRecord reads matters; the states are opaque objects compared by identity. */
function state(key: string): ServicePortState {
  return { servicePort: { id: { key } } } as unknown as ServicePortState;
}

function snapshot(
  servicePorts: Map<string, ServicePortState>,
  generation: number | undefined,
  changed: string[] | undefined,
): ProxySnapshot {
  return {
    family: 'IPv4',
    node: { name: 'n1', zone: '', labels: {}, podCIDRs: [], nodeIPs: [] },
    servicePorts,
    serviceCIDRs: [],
    changedServices: new Set(),
    udpEndpointsChanged: false,
    triggerTimes: new Map(),
    serviceChanges: 0,
    endpointChanges: 0,
    generation,
    changedServicePorts: changed && new Set(changed),
  };
}

test('the applied view follows the change keys of consecutive snapshots, by identity', () => {
  const a = state('a');
  const b = state('b');
  const b2 = state('b');
  const c = state('c');
  // One map, mutated in place between snapshots as the model does.
  const model = new Map([
    ['a', a],
    ['b', b],
  ]);
  const record = new AppliedRecord();
  assert.equal(record.servicePorts.size, 0);
  record.applied(snapshot(model, 1, undefined));
  model.set('b', b2);
  model.delete('a');
  model.set('c', c);
  // The copy of the first sync is not the model's map: mutating the model did not change it.
  assert.equal(record.servicePorts.get('a'), a);
  assert.equal(record.servicePorts.get('b'), b);
  record.applied(snapshot(model, 2, ['a', 'b', 'c']));
  assert.deepEqual([...record.servicePorts.keys()].sort(), ['b', 'c']);
  assert.equal(record.servicePorts.get('b'), b2);
  assert.equal(record.servicePorts.get('c'), c);
  assert.equal(record.generation, 2);
});

test('a gap in the generations (a failed sync, a carried snapshot) makes a full copy', () => {
  const model = new Map([['a', state('a')]]);
  const record = new AppliedRecord();
  record.applied(snapshot(model, 1, undefined));
  // Generation 2 was taken but its sync failed; generation 3's keys do not cover it.
  record.skipped();
  const b = state('b');
  model.set('b', b);
  record.applied(snapshot(model, 3, []));
  assert.equal(record.servicePorts.get('b'), b);
  // A snapshot without a generation (carried over a failure) is copied too.
  const c = state('c');
  model.set('c', c);
  record.applied(snapshot(model, undefined, undefined));
  assert.equal(record.servicePorts.get('c'), c);
  assert.equal(record.generation, undefined);
  // After a copy without a generation, the next numbered snapshot is copied as well.
  model.delete('a');
  record.applied(snapshot(model, 5, ['x']));
  assert.deepEqual([...record.servicePorts.keys()].sort(), ['b', 'c']);
});
