// Property: any sequence of snapshots applied as partial transactions leaves the same table
// (in the fake kernel) and the same record as one full render of the last snapshot; every
// transaction on the way is acceptable to the fake kernel; output is deterministic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { describeState, render, type NftState } from '../../../src/dataplane/nftables/render.ts';
import type { ServicePortState } from '../../../src/model/types.ts';
import { applyScript, dump, emptyTable } from '../../../src/dataplane/nftables/fake.ts';
import { OPTIONS_V4, port, snapshot, type PortSpec } from './fixtures.ts';

const POD_IPS = ['10.244.1.1', '10.244.1.2', '10.244.2.1', '10.244.2.2', '10.244.3.1'];

// Five possible services; each snapshot picks which exist and how. External IPs and node ports
// come from tiny pools so that services collide on them now and then.
const serviceArb = (index: number): fc.Arbitrary<PortSpec> =>
  fc.record({
    name: fc.constant(`svc${index}`),
    clusterIP: fc.constant(`10.96.0.${index + 1}`),
    port: fc.constantFrom(80, 443),
    protocol: fc.constantFrom('TCP' as const, 'UDP' as const),
    nodePort: fc.constantFrom(0, 0, 30000 + index, 30099),
    externalIPs: fc.subarray(['198.51.100.1', '198.51.100.2']),
    loadBalancerVIPs: fc.subarray(['203.0.113.1']),
    sourceRanges: fc.subarray(['198.51.100.0/24', '192.168.0.0/16']),
    affinitySeconds: fc.constantFrom(0, 0, 0, 60),
    externalLocal: fc.boolean(),
    internalLocal: fc.boolean(),
    endpoints: fc
      .subarray(POD_IPS)
      .map((ips) =>
        ips.map((ip, i) => ({ ip, local: i % 2 === 0, terminating: ip.endsWith('.2') && i > 2 })),
      ),
  });

/**
 * Endpoint maps with the slot numbers taken out: partial syncs keep an endpoint in its slot
 * (slots.ts) while a fresh render numbers them in endpoint order, and both pick uniformly.
 * `key . slot : endpoint` becomes `key : endpoint`, sorted.
 */
function withoutSlots(lines: readonly string[]): string[] {
  return lines.map((line) => line.replace(/ \. \d+ : /, ' : ')).sort();
}
function slotFree<T extends { sets: Record<string, string[]> }>(table: T): T {
  const sets: Record<string, string[]> = {};
  for (const [name, lines] of Object.entries(table.sets)) {
    sets[name] = /-endpoints-/.test(name) ? withoutSlots(lines) : lines;
  }
  return { ...table, sets };
}
function stateSlotFree(state: NftState): ReturnType<typeof describeState> {
  const described = describeState(state);
  const elements: Record<string, string[]> = {};
  for (const [name, lines] of Object.entries(described.elements)) {
    elements[name] = /-endpoints-/.test(name) ? withoutSlots(lines) : lines;
  }
  return { ...described, elements };
}

/** Every endpoint selection in the table fills slots 0..M-1, each once. */
function assertSlotsDense(sets: Record<string, string[]>): void {
  for (const [name, lines] of Object.entries(sets)) {
    if (!/-endpoints-/.test(name)) continue;
    const slots = new Map<string, number[]>();
    for (const line of lines) {
      const match = / \. (\d+) : /.exec(line);
      assert.ok(match, `${name}: ${line}`);
      const prefix = line.slice(0, match.index);
      slots.set(prefix, [...(slots.get(prefix) ?? []), Number(match[1])]);
    }
    for (const [prefix, numbers] of slots) {
      assert.deepEqual(
        numbers.sort((a, b) => a - b),
        numbers.map((_, i) => i),
        `${name} ${prefix}`,
      );
    }
  }
}

const snapshotArb = fc.tuple(...[0, 1, 2, 3, 4].map((i) => fc.option(serviceArb(i), { nil: undefined })));

test('partial syncs converge to the full render of the last snapshot', () => {
  fc.assert(
    fc.property(fc.array(snapshotArb, { minLength: 1, maxLength: 6 }), (sequence) => {
      // Reuse ServicePortState objects for unchanged specs, as the model does.
      const memo = new Map<string, ServicePortState>();
      const build = (specs: readonly (PortSpec | undefined)[]) =>
        snapshot(
          specs
            .filter((spec): spec is PortSpec => spec !== undefined)
            .map((spec) => {
              const key = JSON.stringify(spec);
              let state = memo.get(key);
              if (!state) {
                state = port(spec);
                memo.set(key, state);
              }
              return state;
            }),
        );
      let state: NftState | undefined;
      let hintedState: NftState | undefined;
      let table = emptyTable();
      let last = build([]);
      sequence.forEach((specs, i) => {
        const before = last;
        last = build(specs);
        const result = render(state, last, OPTIONS_V4, i === 0);
        table = applyScript(table, result.script);
        assertSlotsDense(dump(table).sets);
        state = result.next;
        // The same sequence with the model's hint (which keys changed since the last snapshot)
        // writes exactly the same transactions.
        const changed = new Set<string>();
        for (const key of new Set([...before.servicePorts.keys(), ...last.servicePorts.keys()])) {
          if (before.servicePorts.get(key) !== last.servicePorts.get(key)) changed.add(key);
        }
        const hinted = render(
          hintedState,
          { ...last, generation: i, changedServicePorts: changed },
          OPTIONS_V4,
          i === 0,
        );
        assert.equal(hinted.script, result.script);
        hintedState = hinted.next;
      });
      const fresh = render(undefined, last, OPTIONS_V4, true);
      assert.deepEqual(slotFree(dump(table)), slotFree(dump(applyScript(emptyTable(), fresh.script))));
      assert.deepEqual(stateSlotFree(state as NftState), stateSlotFree(fresh.next));
      // Deterministic bytes, and a full render on top of the record converges too.
      assert.equal(render(undefined, last, OPTIONS_V4, true).script, fresh.script);
      const periodic = render(state, last, OPTIONS_V4, true);
      assert.deepEqual(
        slotFree(dump(applyScript(table, periodic.script))),
        slotFree(dump(applyScript(emptyTable(), fresh.script))),
      );
    }),
    { numRuns: 150 },
  );
});
