// Every mode runs every row of the packet-flow table (table.ts) over the cluster states
// (clusters.ts): the rules each renderer writes are traced packet by packet, without root.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatOutcome, type FlowOutcome, type Packet } from '../../../src/dataplane/common/trace.ts';
import { CLUSTERS } from './clusters.ts';
import { FLOW_RUNNERS, NORMALISE_EXPECTATION, type RunnerName } from './runners.ts';
import { FLOWS, INTERFACES, type Expectation, type FlowRow } from './table.ts';

export function packetOf(row: FlowRow): Packet {
  return {
    family: CLUSTERS[row.cluster].family,
    protocol: row.protocol ?? 'TCP',
    sourceIP: row.sourceIP,
    destIP: row.destIP,
    destPort: row.destPort,
    origin: row.from === 'node' ? { kind: 'local' } : { kind: 'arriving', iif: INTERFACES[row.from] },
  };
}

/** The outcome in the table's notation (upstream's): output text and masquerade. */
export function expectationOf(outcome: FlowOutcome): Expectation {
  switch (outcome.kind) {
    case 'endpoints':
      return { output: outcome.endpoints.join(', '), masq: outcome.masquerade };
    case 'pass':
      return { output: '', masq: outcome.masquerade };
    case 'reject':
    case 'drop':
      return { output: formatOutcome(outcome), masq: false };
    default: {
      const unknown: never = outcome;
      throw new Error(`unknown outcome ${JSON.stringify(unknown)}`);
    }
  }
}

const runners = Object.entries(FLOW_RUNNERS) as [RunnerName, (typeof FLOW_RUNNERS)[RunnerName]][];

for (const [mode, run] of runners) {
  describe(`packet flows: ${mode}`, () => {
    for (const row of FLOWS) {
      const normalise = NORMALISE_EXPECTATION[mode] ?? ((e: Expectation) => e);
      const expected = row.modes?.[mode] ?? normalise(row);
      test(`${row.cluster} ${row.from}: ${row.name}`, () => {
        const actual = expectationOf(run(CLUSTERS[row.cluster], packetOf(row)));
        assert.deepEqual(
          actual,
          { output: expected.output, masq: expected.masq },
          `${row.sourceIP} -> ${row.destIP}:${row.destPort}/${row.protocol ?? 'TCP'} from ${row.from}`,
        );
      });
    }
  });
}

describe('packet flow table', () => {
  test('every row names a cluster state that exists and a different expectation only with a reason', () => {
    for (const row of FLOWS) {
      assert.ok(CLUSTERS[row.cluster], row.name);
      for (const [mode, deviation] of Object.entries(row.modes ?? {})) {
        assert.ok(mode in FLOW_RUNNERS, `${row.name}: unknown mode ${mode}`);
        assert.ok(deviation.reason.length > 20, `${row.name}: ${mode} deviates without a reason`);
        assert.notDeepEqual(
          { output: deviation.output, masq: deviation.masq },
          { output: row.output, masq: row.masq },
          `${row.name}: ${mode} "deviates" with the row's own expectation`,
        );
      }
    }
  });

  test('row names are unique', () => {
    const names = FLOWS.map((row) => `${row.cluster} ${row.name}`);
    assert.equal(new Set(names).size, names.length);
  });
});
