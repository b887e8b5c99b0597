// Apply tests for the userspace mode's capture rules (root): the rendered text loads with
// iptables-restore into a fresh network namespace, with both backends, and iptables-save prints
// it back line for line; the proxier (with a fake data path) ensures upstream's jumps in
// upstream's places, and cleanup removes everything. Traffic through the real data path is the
// traffic e2e's.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { cleanupUserspace } from '../../src/dataplane/userspace/cleanup.ts';
import { createUserspaceProxier } from '../../src/dataplane/userspace/proxier.ts';
import { listenerRules, renderCapture, renderCaptureDelta } from '../../src/dataplane/userspace/render.ts';
import {
  restore,
  iptablesTools,
  type IptablesBackend,
  type Runner,
} from '../../src/dataplane/xtables/index.ts';
import { cleanupNetns, createNetns, kernelSkipReason, uniquePrefix } from '../support/netns.ts';
import { servicePortState, snapshot } from '../unit/iptables/fixture.ts';
import { FakePool } from '../unit/userspace/fake-pool.ts';
import { SCENARIOS, SPEC_EXAMPLE, WILDCARD_V4 } from '../unit/userspace/scenarios.ts';

const skip = kernelSkipReason();
const prefix = uniquePrefix('kptus');
let counter = 0;
after(cleanupNetns);

async function newRun(): Promise<Runner> {
  const ns = await createNetns(`${prefix}${counter++}`);
  return (file, args, options) => ns.exec(file, args, options);
}

async function save(run: Runner, backend: IptablesBackend, table: string, family = 'IPv4'): Promise<string> {
  return (await run(iptablesTools(backend, family === 'IPv6' ? 'IPv6' : 'IPv4').save, ['-t', table])).stdout;
}

const ruleLines = (text: string): string[] => text.split('\n').filter((line) => line.startsWith('-A '));

/** Rule lines grouped by chain (iptables-save lists chains in its own order), order kept within. */
const byChain = (lines: readonly string[]): string[] =>
  [...lines].sort((a, b) => {
    const [x, y] = [a.split(' ')[1] ?? '', b.split(' ')[1] ?? ''];
    return x < y ? -1 : x > y ? 1 : 0;
  });

for (const backend of ['legacy', 'nft'] as const) {
  describe(`userspace capture apply (${backend})`, { skip }, () => {
    test('every golden loads and iptables-save prints its rules back byte for byte', async () => {
      const run = await newRun();
      const cases = [{ name: 'spec', listeners: SPEC_EXAMPLE, options: WILDCARD_V4 }, ...SCENARIOS];
      for (const scenario of cases) {
        const { text } = renderCapture(scenario.listeners, scenario.options);
        const tools = iptablesTools(backend, scenario.options.family);
        await restore(run, tools, text);
        const saved = [
          ...ruleLines(await save(run, backend, 'nat', scenario.options.family)),
          ...ruleLines(await save(run, backend, 'filter', scenario.options.family)),
        ];
        assert.deepEqual(byChain(saved), byChain(ruleLines(text)), scenario.name);
      }
    });

    test("a partial write deletes and appends exactly the changed listeners' rules", async () => {
      const run = await newRun();
      const tools = iptablesTools(backend, 'IPv4');
      const all = [...SPEC_EXAMPLE];
      await restore(run, tools, renderCapture(all, WILDCARD_V4).text);
      // The last listener goes away, the first moves to another proxy port.
      const [first, ...rest] = all;
      assert.ok(first && rest.length > 0);
      const kept = rest.slice(0, -1);
      const gone = rest.at(-1);
      assert.ok(gone);
      const moved = { ...first, proxyPort: first.proxyPort + 1000 };
      const delta = renderCaptureDelta(
        [...listenerRules(first, WILDCARD_V4), ...listenerRules(gone, WILDCARD_V4)],
        listenerRules(moved, WILDCARD_V4),
      );
      await restore(run, tools, delta);
      const saved = [
        ...ruleLines(await save(run, backend, 'nat')),
        ...ruleLines(await save(run, backend, 'filter')),
      ];
      const expected = ruleLines(renderCapture([...kept, moved], WILDCARD_V4).text);
      assert.deepEqual(byChain(saved).sort(), byChain(expected).sort());
    });

    test('the proxier ensures upstream jumps in upstream places, syncs, and cleanup removes it all', async () => {
      const run = await newRun();
      // Someone else's rules in the hooked chains: ours go first (portals) and last (node ports).
      const tool = `iptables-${backend}`;
      await run(tool, ['-t', 'nat', '-A', 'PREROUTING', '-d', '192.0.2.1/32', '-j', 'RETURN']);
      await run(tool, ['-t', 'nat', '-A', 'OUTPUT', '-d', '192.0.2.1/32', '-j', 'RETURN']);
      const pool = new FakePool();
      const proxier = createUserspaceProxier(
        {
          family: 'IPv4',
          listenIP: '0.0.0.0',
          hostIP: '192.168.0.10',
          localDetector: { kind: 'cidr', cidr: '10.244.0.0/16' },
          isNodeAddress: () => false,
          portRange: undefined,
          backend,
        },
        pool,
        { run, readLimits: () => undefined },
      );
      await proxier.start();
      const web = servicePortState({
        name: 'web',
        portName: 'http',
        clusterIP: '10.96.0.10',
        port: 80,
        nodePort: 30080,
        externalIPs: ['203.0.113.7'],
        endpoints: [{ ip: '10.244.1.2', port: 8080 }],
      });
      await proxier.sync({ snapshot: snapshot([web]), full: true });
      await proxier.sync({ snapshot: snapshot([web]), full: true }); // no duplicate jumps
      const nat = await save(run, backend, 'nat');
      const targets = (chain: string): (string | undefined)[] =>
        ruleLines(nat)
          .filter((line) => line.startsWith(`-A ${chain} `))
          .map((line) => /-j (\S+)/.exec(line)?.[1]);
      assert.deepEqual(targets('PREROUTING'), [
        'KUBE-PORTALS-CONTAINER',
        'RETURN',
        'KUBE-NODEPORT-CONTAINER',
      ]);
      assert.deepEqual(targets('OUTPUT'), ['KUBE-PORTALS-HOST', 'RETURN', 'KUBE-NODEPORT-HOST']);
      assert.match(
        nat,
        /^-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-CONTAINER$/m,
      );
      assert.equal(targets('KUBE-PORTALS-CONTAINER').length, 3);
      const filter = await save(run, backend, 'filter');
      assert.match(
        filter,
        /^-A INPUT -m comment --comment "Ensure that non-local NodePort traffic can flow" -j KUBE-NODEPORT-NON-LOCAL$/m,
      );
      assert.match(filter, /^:KUBE-PROXY-USERSPACE-CANARY /m);
      assert.equal(await proxier.rulesIntact(), true);

      await proxier.close();
      assert.equal(
        ruleLines(await save(run, backend, 'nat')).length,
        ruleLines(nat).length,
        'close keeps the rules',
      );

      const report = await cleanupUserspace(run, { KUBE_PROXY_IPTABLES_BACKEND: backend });
      assert.deepEqual(report.errors, []);
      const natAfter = await save(run, backend, 'nat');
      const filterAfter = await save(run, backend, 'filter');
      assert.doesNotMatch(natAfter + filterAfter, /KUBE-/);
      assert.equal(ruleLines(natAfter).length, 2, 'the foreign rules stay');
      // After a cleanup the canary is gone: a running proxier would resync in full.
      assert.equal(await proxier.rulesIntact(), false);
    });
  });
}
