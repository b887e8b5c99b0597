// The fake nft kernel: it must refuse what nft refuses, or the renderer tests built on it prove
// nothing, and it must read its own listing back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  applyScript,
  dump,
  emptyTable,
  FakeNftError,
  listTable,
} from '../../../src/dataplane/nftables/fake.ts';
import { render } from '../../../src/dataplane/nftables/render.ts';
import { OPTIONS_V4, port, snapshot } from './fixtures.ts';

const P = 'ip kube-proxy';

function rendered() {
  const snap = snapshot([
    port({
      name: 'lb',
      clusterIP: '10.96.0.50',
      port: 443,
      nodePort: 30443,
      loadBalancerVIPs: ['203.0.113.7'],
      sourceRanges: ['198.51.100.0/24'],
      affinitySeconds: 60,
      endpoints: [{ ip: '10.244.1.5', local: true }, { ip: '10.244.2.7' }],
    }),
  ]);
  return applyScript(emptyTable(), render(undefined, snap, OPTIONS_V4, true).script);
}

const elements = (verb: string, set: string, ...items: string[]): string =>
  [`${verb} element ${P} ${set} {`, ...items.map((item) => `\t${item},`), '}', ''].join('\n');

describe('nftables fake', () => {
  test('reads its own listing back', () => {
    const table = rendered();
    const listed = listTable(table);
    assert.match(
      listed,
      /^add chain ip kube-proxy nat-prerouting \{ type nat hook prerouting priority -100 ; \}$/m,
    );
    assert.deepEqual(dump(applyScript(emptyTable(), listed)), dump(table));
    assert.equal(table.chains.get('filter-input')?.base?.hook, 'input');
  });

  test('refuses what nft refuses, and leaves the table as it was', () => {
    const table = rendered();
    const before = dump(table);
    const refusals: [string, RegExp][] = [
      [elements('delete', 'cluster-ips', '10.96.0.99'), /no such element/],
      [elements('add', 'cluster-ips', '10.96.0.9 . tcp'), /key has 2 parts, set cluster-ips 1/],
      [elements('add', 'firewall-ips', '203.0.113.0/24 . tcp . 443'), /no interval flag/],
      [elements('add', 'firewall-allow', '203.0.113.7 . tcp . 443 . 198.51.100.128/25'), /interval overlaps/],
      [elements('add', 'service-ips', '10.96.0.9 . tcp . 80 : goto nowhere'), /no such chain nowhere/],
      [elements('add', 'service-ips', '10.96.0.9 . tcp . 80 : 10.0.0.1'), /not a verdict/],
      [
        elements('add', 'ip-endpoints-tcp', '10.96.0.9 . 80 . 0 : 10.0.0.1'),
        /data has 1 parts, map ip-endpoints-tcp 2/,
      ],
      [`delete chain ${P} to-cluster-ip\n`, /chain in use/],
      [`delete set ${P} cluster-ips\n`, /set in use/],
      [`add set ${P} cluster-ips { type ipv6_addr ; }\n`, /another declaration/],
      [`add chain ${P} nat-output { type nat hook output priority 0 ; }\n`, /other hook properties/],
      [`add rule ${P} services jump nowhere\n`, /no such chain nowhere/],
      [`insert rule ${P} services drop\n`, /unknown rule command/],
      [`add rule ${P} nowhere drop\n`, /no such chain/],
    ];
    for (const [script, why] of refusals) {
      assert.throws(
        () => applyScript(table, `add table ${P}\n${script}`),
        (error: unknown) => {
          assert.ok(error instanceof FakeNftError, String(error));
          assert.match(error.message, why);
          return true;
        },
      );
      assert.deepEqual(dump(table), before);
    }
  });
});
