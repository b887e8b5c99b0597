// Property: any sequence of snapshots applied as partial transactions leaves the same table
// (in the fake kernel) and the same record as one full render of the last snapshot; every
// transaction on the way is acceptable to the fake kernel; output is deterministic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { describeState, render, type NftState } from '../../../src/dataplane/nftables/render.ts';
import type { ServicePortState } from '../../../src/model/types.ts';
import { applyScript, dump, emptyTable } from './fake-nft.ts';
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
      let table = emptyTable();
      let last = build([]);
      sequence.forEach((specs, i) => {
        last = build(specs);
        const result = render(state, last, OPTIONS_V4, i === 0);
        table = applyScript(table, result.script);
        state = result.next;
      });
      const fresh = render(undefined, last, OPTIONS_V4, true);
      assert.deepEqual(dump(table), dump(applyScript(emptyTable(), fresh.script)));
      assert.deepEqual(describeState(state as NftState), describeState(fresh.next));
      // Deterministic bytes, and a full render on top of the record converges too.
      assert.equal(render(undefined, last, OPTIONS_V4, true).script, fresh.script);
      const periodic = render(state, last, OPTIONS_V4, true);
      assert.deepEqual(
        dump(applyScript(table, periodic.script)),
        dump(applyScript(emptyTable(), fresh.script)),
      );
    }),
    { numRuns: 150 },
  );
});
