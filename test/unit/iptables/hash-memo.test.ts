// The chain-name memo (chains.ts) keeps what the last full render of each family asked for, and
// nothing that partial syncs ask for: endpoint churn must not grow it (issue 15, the soak).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpointChainName, keptHashes } from '../../../src/dataplane/iptables/chains.ts';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import { manyServicePorts, snapshot } from './fixture.ts';
import { BASE_OPTIONS } from './scenarios.ts';

test('partial renders of new endpoints add no chain names; a full render keeps only its own', () => {
  const base = manyServicePorts(20, 3);
  renderIptables({ snapshot: snapshot(base), full: true, options: BASE_OPTIONS });
  const afterFull = keptHashes();
  assert.ok(afterFull >= 20 * (1 + 3), `the full render's names are kept (${String(afterFull)})`);
  // Churn: 200 partial renders, each with a state object never seen (new endpoint names).
  for (let i = 0; i < 200; i++) {
    endpointChainName(`default/churn-${String(i)}:http`, 'TCP', `10.250.${String(i % 250)}.1:8080`);
    renderIptables({ snapshot: snapshot(manyServicePorts(20, 3)), full: false, options: BASE_OPTIONS });
  }
  assert.equal(keptHashes(), afterFull, 'partial renders and lookups outside a full render add nothing');
  // A full render of a smaller cluster keeps only that render's names.
  renderIptables({ snapshot: snapshot(manyServicePorts(5, 3)), full: true, options: BASE_OPTIONS });
  assert.ok(keptHashes() < afterFull, `the names of Services gone are dropped (${String(keptHashes())})`);
});
