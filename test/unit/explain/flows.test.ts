// explain answers every row of the packet-flow table (test/unit/flows/table.ts) as the table
// does for the mode: the verdict, the endpoints, masquerade, and a rule path that ends in it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { explain } from '../../../src/explain/engine.ts';
import type { Explanation } from '../../../src/explain/types.ts';
import { CLUSTERS } from '../flows/clusters.ts';
import { NORMALISE_EXPECTATION } from '../flows/runners.ts';
import { FLOWS, type Expectation } from '../flows/table.ts';
import { stateOfCluster } from './fixtures.ts';

/** The explanation in the table's notation. */
function expectationOf(explanation: Explanation): Expectation {
  const verdict = explanation.verdict;
  switch (verdict.action) {
    case 'DNAT':
      return { output: (verdict.to ?? []).join(', '), masq: verdict.snat };
    case 'REJECT':
    case 'DROP':
      return { output: verdict.action, masq: false };
    case 'ACCEPT':
    case 'NOT_HANDLED':
      return { output: '', masq: false };
  }
}

for (const mode of ['iptables', 'nftables', 'ipvs', 'userspace'] as const) {
  describe(`explain on the packet-flow table: ${mode}`, () => {
    const states = { v4: stateOfCluster(CLUSTERS.v4, mode), v6: stateOfCluster(CLUSTERS.v6, mode) };
    for (const row of FLOWS) {
      const normalise = NORMALISE_EXPECTATION[mode] ?? ((e: Expectation) => e);
      const expected = normalise(row.modes?.[mode] ?? row);
      test(`${row.cluster} ${row.from}: ${row.name}`, () => {
        const explanation = explain(states[row.cluster], {
          src: row.sourceIP,
          dst: row.destIP,
          dport: row.destPort,
          proto: row.protocol ?? 'TCP',
          from: row.from === 'outside' ? 'external' : row.from,
        });
        assert.deepEqual(expectationOf(explanation), { output: expected.output, masq: expected.masq });
        // The eligible endpoints are the verdict's, each with its chance.
        const eligible = explanation.endpoints.filter((ep) => ep.eligible);
        if (explanation.verdict.action === 'DNAT') {
          assert.deepEqual(eligible.map((ep) => ep.endpoint).sort(), explanation.verdict.to);
          for (const ep of eligible) assert.equal(ep.chance, 1 / eligible.length);
          assert.ok(explanation.match.servicePort, 'a DNAT names its service port');
        } else {
          assert.deepEqual(eligible, []);
        }
        // The rules agree with the plan (the engine says so in a caveat when they do not).
        assert.ok(
          !explanation.caveats.some((c) => c.includes('a bug') || c.includes('could not be traced')),
          explanation.caveats.join('\n'),
        );
        if (expected.output !== '')
          assert.ok(explanation.path.length > 0, 'a handled packet has a rule path');
      });
    }
  });
}
