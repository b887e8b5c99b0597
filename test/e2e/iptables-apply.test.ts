// Apply tests for the iptables mode (root): render -> iptables-restore into a fresh network
// namespace -> read back with iptables-save, with both backends. Traffic is the lead's e2e;
// here we prove what the kernel holds after each kind of sync.
import assert from 'node:assert/strict';
import { inputText } from '../../src/util/exec.ts';
import { after, describe, test } from 'node:test';
import { performance } from 'node:perf_hooks';
import type { Runner, IptablesBackend } from '../../src/dataplane/xtables/index.ts';
import { chooseIptablesBackend } from '../../src/dataplane/xtables/index.ts';
import { cleanupIptables } from '../../src/dataplane/iptables/cleanup.ts';
import { createIptablesProxier, type IptablesProxierOptions } from '../../src/dataplane/iptables/proxier.ts';
import { RestoreError } from '../../src/dataplane/xtables/index.ts';
import { renderIptables } from '../../src/dataplane/iptables/render.ts';
import { serviceChainNames } from '../../src/dataplane/iptables/chains.ts';
import type { ServicePortState } from '../../src/model/types.ts';
import { cleanupNetns, createNetns, kernelSkipReason, uniquePrefix, type Netns } from '../support/netns.ts';
import { servicePortState, snapshot, type ServiceSpec } from '../unit/iptables/fixture.ts';
import { BASE_OPTIONS, SCENARIOS } from '../unit/iptables/scenarios.ts';

const skip = kernelSkipReason();
const prefix = uniquePrefix('kptipt');
let counter = 0;
after(cleanupNetns);

async function newNs(): Promise<{ ns: Netns; run: Runner }> {
  const ns = await createNetns(`${prefix}${counter++}`);
  return { ns, run: (file, args, options) => ns.exec(file, args, options) };
}

function proxierOptions(
  backend: IptablesBackend,
  extra: Partial<IptablesProxierOptions> = {},
): IptablesProxierOptions {
  const { randomFully: _r, nfacct: _n, conntrackInvalidDrop: _c, ...base } = BASE_OPTIONS;
  return { ...base, backend, ...extra };
}

async function save(run: Runner, backend: IptablesBackend, table: string, family = 'IPv4'): Promise<string> {
  const tool = `${family === 'IPv6' ? 'ip6tables' : 'iptables'}-${backend}-save`;
  return (await run(tool, ['-t', table])).stdout;
}

/** `-A` rules per chain in iptables-save output or restore input. */
function rulesPerChain(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('-A ')) continue;
    const chain = line.split(' ')[1]!;
    counts.set(chain, (counts.get(chain) ?? 0) + 1);
  }
  return counts;
}

function chainsOf(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .filter((l) => l.startsWith(':'))
      .map((l) => l.slice(1, l.indexOf(' '))),
  );
}

function section(text: string, table: string): string {
  const start = text.indexOf(`*${table}\n`);
  return text.slice(start, text.indexOf('COMMIT\n', start));
}

const svc = (name: string, ip: string, endpoints: number, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({
  name,
  portName: 'http',
  clusterIP: ip,
  port: 80,
  endpoints: Array.from({ length: endpoints }, (_, i) => ({
    ip: `10.244.${ip.split('.')[3]}.${i + 1}`,
    port: 8080,
  })),
  ...extra,
});

/** Every scenario's service ports together (they use distinct names or keys). */
function scenarioStates(): ServicePortState[] {
  const byKey = new Map<string, ServicePortState>();
  for (const s of SCENARIOS) {
    if (s.options.family !== 'IPv4' || s.name.startsWith('local-detector')) continue;
    for (const state of s.snapshot.servicePorts.values()) byKey.set(state.servicePort.id.key, state);
  }
  return [...byKey.values()];
}

for (const backend of ['legacy', 'nft'] as const) {
  describe(`iptables apply (${backend})`, { skip }, () => {
    test('full sync: chains, rules, jumps and canaries are in the kernel as rendered', async () => {
      const { run } = await newNs();
      const proxier = createIptablesProxier(proxierOptions(backend), { run });
      const states = scenarioStates();
      const snap = snapshot(states);
      const result = await proxier.sync({ snapshot: snap, full: false });
      assert.equal(result.full, true, 'the first sync is always full');
      assert.equal(proxier.info()?.backend, backend);

      const expected = renderIptables({ snapshot: snap, full: true, options: { ...BASE_OPTIONS } }).text;
      for (const table of ['nat', 'filter']) {
        const saved = await save(run, backend, table);
        const want = rulesPerChain(section(expected, table));
        const got = rulesPerChain(saved);
        for (const [chain, count] of want) assert.equal(got.get(chain), count, `${table} ${chain}`);
        for (const chain of chainsOf(section(expected, table))) assert.ok(chainsOf(saved).has(chain), chain);
        assert.ok(chainsOf(saved).has('KUBE-PROXY-CANARY'), `${table} canary`);
      }
      assert.ok(chainsOf(await save(run, backend, 'mangle')).has('KUBE-PROXY-CANARY'));

      const nat = await save(run, backend, 'nat');
      const web = serviceChainNames('default/web:http', 'TCP').cluster;
      assert.match(
        nat,
        /^-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES$/m,
      );
      assert.match(nat, /^-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES$/m);
      assert.match(
        nat,
        /^-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING$/m,
      );
      assert.match(nat, /^-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000\/0x4000$/m);
      assert.match(nat, /-A KUBE-POSTROUTING .*-j MASQUERADE --random-fully/);
      assert.match(nat, new RegExp(`^-A KUBE-SERVICES -d 10\\.96\\.0\\.10/32 -p tcp .*-j ${web}$`, 'm'));
      // Spec 3.2: each missing jump is prepended, so INPUT holds them in reverse list order.
      const filter = await save(run, backend, 'filter');
      const input = filter.split('\n').filter((l) => l.startsWith('-A INPUT '));
      assert.deepEqual(
        input.map((l) => /-j (\S+)$/.exec(l)?.[1]),
        ['KUBE-FIREWALL', 'KUBE-PROXY-FIREWALL', 'KUBE-NODEPORTS', 'KUBE-EXTERNAL-SERVICES'],
      );
      assert.match(
        filter,
        /-A KUBE-SERVICES .*"default\/empty:http has no endpoints".* -j REJECT --reject-with icmp-port-unreachable/,
      );

      // A second full sync ensures the jumps again without duplicating them.
      await proxier.sync({ snapshot: snap, full: true });
      const filterAgain = await save(run, backend, 'filter');
      assert.equal(filterAgain.split('\n').filter((l) => l.startsWith('-A INPUT ')).length, 4);
      assert.deepEqual(rulesPerChain(filterAgain), rulesPerChain(filter));
    });

    test('partial sync keeps untouched chains and removes stale ones', async () => {
      const { run } = await newNs();
      const proxier = createIptablesProxier(proxierOptions(backend), { run });
      const a = servicePortState(svc('a', '10.96.0.1', 3));
      const b = servicePortState(svc('b', '10.96.0.2', 3, { nodePort: 30002 }));
      const c = servicePortState(svc('c', '10.96.0.3', 2));
      await proxier.sync({ snapshot: snapshot([a, b, c]), full: true });
      const before = await save(run, backend, 'nat');
      const aChain = serviceChainNames('default/a:http', 'TCP').cluster;
      const cChain = serviceChainNames('default/c:http', 'TCP').cluster;
      assert.ok(chainsOf(before).has(cChain));

      // b loses an endpoint, c is deleted, a is untouched.
      const b2 = servicePortState(svc('b', '10.96.0.2', 2, { nodePort: 30002 }));
      const result = await proxier.sync({
        snapshot: snapshot([a, b2], { changed: ['default/b', 'default/c'] }),
        full: false,
      });
      assert.equal(result.full, false);
      assert.equal(result.details?.['natChainsDeleted'], 1 + 3);
      const afterText = await save(run, backend, 'nat');
      const chains = chainsOf(afterText);
      assert.ok(!chains.has(cChain), 'deleted service chain removed');
      assert.equal([...chains].filter((ch) => ch.startsWith('KUBE-SEP-')).length, 3 + 2);
      const beforeCounts = rulesPerChain(before);
      const afterCounts = rulesPerChain(afterText);
      assert.equal(afterCounts.get(aChain), beforeCounts.get(aChain));
      assert.equal(afterCounts.get(aChain), 1 + 3, 'masquerade + 3 endpoints');
      assert.equal(afterCounts.get(serviceChainNames('default/b:http', 'TCP').cluster), 1 + 2);
    });

    test('stale chains: leftovers go at the first sync, later ones without reading the kernel', async () => {
      const { run } = await newNs();
      const tool = `iptables-${backend}`;
      // What an earlier run left: a service chain jumping to an endpoint chain.
      const leftovers: (readonly string[])[] = [
        ['-N', 'KUBE-SEP-LEFTOVER2222222222'],
        ['-A', 'KUBE-SEP-LEFTOVER2222222222', '-p', 'tcp', '-j', 'DNAT', '--to-destination', '10.1.2.3:80'],
        ['-N', 'KUBE-SVC-LEFTOVER1111111111'],
        ['-A', 'KUBE-SVC-LEFTOVER1111111111', '-j', 'KUBE-SEP-LEFTOVER2222222222'],
      ];
      for (const args of leftovers) await run(tool, ['-t', 'nat', ...args]);
      const calls: string[] = [];
      const recording: Runner = (file, args, options) => {
        calls.push(file);
        return run(file, args, options);
      };
      const proxier = createIptablesProxier(proxierOptions(backend), { run: recording });
      const a = servicePortState(svc('a', '10.96.0.1', 2));
      const b = servicePortState(svc('b', '10.96.0.2', 2));
      const first = await proxier.sync({ snapshot: snapshot([a, b]), full: false });
      assert.equal(first.details?.['natChainsDeleted'], 2);
      let chains = chainsOf(await save(run, backend, 'nat'));
      assert.ok(!chains.has('KUBE-SVC-LEFTOVER1111111111') && !chains.has('KUBE-SEP-LEFTOVER2222222222'));
      const aOnly = renderIptables({ snapshot: snapshot([a]), full: true, options: { ...BASE_OPTIONS } });
      const bChains = [...chains].filter((c) => /^KUBE-(SVC|SEP)-/.test(c) && !aOnly.activeNatChains.has(c));
      assert.equal(bChains.length, 1 + 2);

      // b leaves the model; a forced full sync (as for a node topology change) deletes its
      // chains from the record: one restore, no read of the kernel.
      calls.length = 0;
      const second = await proxier.sync({ snapshot: snapshot([a], { changed: [] }), full: true });
      assert.deepEqual(calls, [`iptables-${backend}-restore`]);
      assert.equal(second.details?.['natChainsDeleted'], 3);
      chains = chainsOf(await save(run, backend, 'nat'));
      for (const chain of bChains) assert.ok(!chains.has(chain), chain);
      assert.ok(chains.has(serviceChainNames('default/a:http', 'TCP').cluster));
    });

    test('a jump rule deleted by hand comes back with the periodic full sync, once', async () => {
      const { run } = await newNs();
      const proxier = createIptablesProxier(proxierOptions(backend), { run });
      const a = servicePortState(svc('a', '10.96.0.1', 2));
      await proxier.sync({ snapshot: snapshot([a]), full: true });
      const jump = ['-m', 'comment', '--comment', 'kubernetes service portals', '-j', 'KUBE-SERVICES'];
      await run(`iptables-${backend}`, ['-t', 'nat', '-D', 'PREROUTING', ...jump]);
      assert.doesNotMatch(await save(run, backend, 'nat'), /^-A PREROUTING .*-j KUBE-SERVICES$/m);
      await proxier.sync({ snapshot: snapshot([a], { changed: [] }), full: true, periodic: true });
      const nat = await save(run, backend, 'nat');
      assert.equal(nat.match(/^-A PREROUTING .*-j KUBE-SERVICES$/gm)?.length, 1);
      assert.equal(nat.match(/^-A OUTPUT .*-j KUBE-SERVICES$/gm)?.length, 1);
    });

    test('a failed restore leaves the previous rules and forces a full sync', async () => {
      const { run } = await newNs();
      let corrupt = false;
      const flaky: Runner = (file, args, options) => {
        if (corrupt && file.endsWith('-restore') && options?.input) {
          // A jump to a chain that does not exist: the kernel (not the parser) refuses it.
          const input = inputText(options.input).replace(
            /-j KUBE-MARK-MASQ\n(?![\s\S]*-j KUBE-MARK-MASQ\n)/,
            '-j KUBE-NO-SUCH-CHAIN\n',
          );
          return run(file, args, { ...options, input });
        }
        return run(file, args, options);
      };
      const proxier = createIptablesProxier(proxierOptions(backend), { run: flaky });
      const a = servicePortState(svc('a', '10.96.0.1', 2));
      await proxier.sync({ snapshot: snapshot([a]), full: true });
      const before = await save(run, backend, 'nat');
      const filterBefore = await save(run, backend, 'filter');

      corrupt = true;
      const a2 = servicePortState(svc('a', '10.96.0.1', 1));
      const b = servicePortState(svc('b', '10.96.0.2', 2));
      await assert.rejects(
        proxier.sync({ snapshot: snapshot([a2, b], { changed: ['default/a', 'default/b'] }), full: false }),
        (error: unknown) => {
          assert.ok(error instanceof RestoreError);
          assert.match(
            error.message,
            new RegExp(`${backend === 'nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore'} failed`),
          );
          assert.ok(error.line !== undefined, `line number parsed from: ${error.stderr}`);
          assert.match(error.message, /input around line \d+:\n.*\n>\s+\d+: /);
          // The legacy parser names the rule; nf_tables complains when the batch commits.
          if (backend === 'legacy')
            assert.match(error.message, />\s+\d+: -A KUBE-SEP-\S+ .*-j KUBE-MARK-MASQ\n/);
          else assert.match(error.message, />\s+\d+: COMMIT/);
          return true;
        },
      );
      // Byte for byte the same tables (save's timestamp comments aside).
      const strip = (text: string): string => text.replace(/^#.*\n/gm, '');
      assert.equal(strip(await save(run, backend, 'nat')), strip(before));
      assert.equal(strip(await save(run, backend, 'filter')), strip(filterBefore));
      // Our own failure is no flushed canary: the proxier escalates the retry to full itself.
      assert.equal(await proxier.rulesIntact(), true);

      corrupt = false;
      const retry = await proxier.sync({ snapshot: snapshot([a2, b], { changed: [] }), full: false });
      assert.equal(retry.full, true, 'the sync after a failure is full');
      const nat = await save(run, backend, 'nat');
      assert.ok(chainsOf(nat).has(serviceChainNames('default/b:http', 'TCP').cluster));
      assert.equal(await proxier.rulesIntact(), true);
    });

    test('canary removal is detected and the next sync restores everything', async () => {
      const { run } = await newNs();
      const proxier = createIptablesProxier(proxierOptions(backend), { run });
      const a = servicePortState(svc('a', '10.96.0.1', 2));
      await proxier.sync({ snapshot: snapshot([a]), full: true });
      assert.equal(await proxier.rulesIntact(), true);
      const tool = `iptables-${backend}`;
      for (const table of ['mangle', 'nat', 'filter']) {
        await run(tool, ['-t', table, '-F']);
        await run(tool, ['-t', table, '-X']);
      }
      assert.equal(await proxier.rulesIntact(), false);
      const result = await proxier.sync({ snapshot: snapshot([a], { changed: [] }), full: false });
      assert.equal(result.full, true);
      const nat = await save(run, backend, 'nat');
      assert.ok(chainsOf(nat).has(serviceChainNames('default/a:http', 'TCP').cluster));
      assert.match(nat, /-A PREROUTING .*-j KUBE-SERVICES/);
      assert.equal(await proxier.rulesIntact(), true);
    });

    test('hostile names cannot add rules of their own', async () => {
      const { run } = await newNs();
      const proxier = createIptablesProxier(proxierOptions(backend), { run });
      const hostile = servicePortState(
        svc('x" -j ACCEPT\n-A INPUT -j ACCEPT\n#', '10.96.0.9', 2, {
          namespace: 'evil\\"\n*filter\n-I INPUT 1 -j ACCEPT\nCOMMIT',
          portName: 'p\' -j DROP "',
          nodePort: 30009,
        }),
      );
      const good = servicePortState(svc('good', '10.96.0.8', 1));
      const snap = snapshot([hostile, good]);
      await proxier.sync({ snapshot: snap, full: true });
      const expected = renderIptables({ snapshot: snap, full: true, options: { ...BASE_OPTIONS } }).text;
      for (const table of ['filter', 'nat']) {
        const saved = await save(run, backend, table);
        const got = rulesPerChain(saved);
        for (const [chain, count] of rulesPerChain(section(expected, table)))
          assert.equal(got.get(chain), count, chain);
        assert.doesNotMatch(saved, /^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) .*-j (ACCEPT|DROP)$/m);
      }
      const filter = await save(run, backend, 'filter');
      assert.equal(filter.split('\n').filter((l) => l.startsWith('-A INPUT ')).length, 4);
      const nat = await save(run, backend, 'nat');
      assert.match(nat, /-A KUBE-SERVICES .*-j KUBE-SVC-/);
      assert.ok(
        chainsOf(nat).has(serviceChainNames('default/good:http', 'TCP').cluster),
        'other services programmed',
      );
    });

    test('cleanup removes everything we created', async () => {
      const { run } = await newNs();
      const proxier = createIptablesProxier(proxierOptions(backend), { run });
      await proxier.sync({ snapshot: snapshot(scenarioStates()), full: true });
      // A foreign rule jumping into KUBE-MARK-MASQ and a foreign chain stay.
      await run(`iptables-${backend}`, ['-t', 'nat', '-N', 'CNI-OTHER']);
      await run(`iptables-${backend}`, ['-t', 'nat', '-A', 'CNI-OTHER', '-j', 'KUBE-MARK-MASQ']);
      const report = await cleanupIptables(run, {});
      assert.deepEqual(report.errors, []);
      for (const table of ['nat', 'filter', 'mangle']) {
        const saved = await save(run, backend, table);
        const left = [...chainsOf(saved)].filter((c) => c.startsWith('KUBE-'));
        assert.deepEqual(
          left.sort(),
          table === 'nat' ? ['KUBE-MARK-MASQ'] : table === 'filter' ? ['KUBE-FIREWALL'] : [],
          table,
        );
        assert.doesNotMatch(
          saved,
          /-j KUBE-(SERVICES|NODEPORTS|POSTROUTING|EXTERNAL-SERVICES|FORWARD|PROXY-FIREWALL|SVC|SEP)/,
        );
      }
      assert.match(await save(run, backend, 'nat'), /-A CNI-OTHER -j KUBE-MARK-MASQ/);
      // Idempotent.
      assert.deepEqual((await cleanupIptables(run, {})).errors, []);
    });

    test(`timing: full render + restore of 1000 services x 10 endpoints (${backend})`, async () => {
      const { run } = await newNs();
      const proxier = createIptablesProxier(proxierOptions(backend), { run });
      const states = Array.from({ length: 1000 }, (_, i) =>
        servicePortState({
          name: `svc${i}`,
          portName: 'http',
          clusterIP: `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`,
          port: 80,
          nodePort: i % 4 === 0 ? 30000 + i : 0,
          endpoints: Array.from({ length: 10 }, (_, j) => ({
            ip: `10.${100 + (i % 100)}.${Math.floor(i / 100)}.${j + 1}`,
            port: 8080,
          })),
        }),
      );
      const started = performance.now();
      const result = await proxier.sync({ snapshot: snapshot(states), full: true });
      const total = (performance.now() - started) / 1000;
      const nat = await save(run, backend, 'nat');
      assert.equal([...chainsOf(nat)].filter((c) => c.startsWith('KUBE-SEP-')).length, 10_000);
      // A partial sync of one changed service, for comparison.
      const changed = [...states];
      changed[0] = servicePortState({
        ...{ name: 'svc0', portName: 'http', clusterIP: '10.96.0.1', port: 80 },
        endpoints: [{ ip: '10.100.0.1', port: 8080 }],
      });
      const partialStart = performance.now();
      const partial = await proxier.sync({
        snapshot: snapshot(changed, { changed: ['default/svc0'] }),
        full: false,
      });
      const partialTotal = (performance.now() - partialStart) / 1000;
      console.log(
        `iptables ${backend}: 1000 services x 10 endpoints full sync ${total.toFixed(2)} s ` +
          `(render ${result.renderSeconds.toFixed(3)} s, apply ${result.applySeconds.toFixed(2)} s, ` +
          `${String(result.details?.['restoreBytes'])} bytes); partial sync of 1 service ${partialTotal.toFixed(2)} s ` +
          `(render ${partial.renderSeconds.toFixed(3)} s)`,
      );
    });
  });
}

describe('iptables backend detection', { skip }, () => {
  test('kubelet hint chains, rule counts, default and override', async () => {
    const { run: empty } = await newNs();
    assert.equal((await chooseIptablesBackend(empty, {})).backend, 'nft');
    assert.equal(
      (await chooseIptablesBackend(empty, { KUBE_PROXY_IPTABLES_BACKEND: 'legacy' })).backend,
      'legacy',
    );
    await assert.rejects(
      chooseIptablesBackend(empty, { KUBE_PROXY_IPTABLES_BACKEND: 'both' }),
      /expected "legacy" or "nft"/,
    );

    const { run: legacyHint } = await newNs();
    await legacyHint('iptables-legacy', ['-t', 'mangle', '-N', 'KUBE-IPTABLES-HINT']);
    assert.equal((await chooseIptablesBackend(legacyHint, {})).backend, 'legacy');

    const { run: nftHint } = await newNs();
    await nftHint('iptables-nft', ['-t', 'mangle', '-N', 'KUBE-KUBELET-CANARY']);
    await nftHint('iptables-legacy', ['-A', 'INPUT', '-j', 'ACCEPT']);
    assert.equal((await chooseIptablesBackend(nftHint, {})).backend, 'nft');

    const { run: legacyRules } = await newNs();
    await legacyRules('iptables-legacy', ['-A', 'INPUT', '-j', 'ACCEPT']);
    assert.equal((await chooseIptablesBackend(legacyRules, {})).backend, 'legacy');
  });
});

describe('iptables apply (IPv6)', { skip }, () => {
  test('ip6tables-restore takes the IPv6 rules', async () => {
    const { run } = await newNs();
    const scenario = SCENARIOS.find((s) => s.name === 'ipv6')!;
    const { randomFully: _r, nfacct: _n, conntrackInvalidDrop: _c, ...base } = scenario.options;
    const proxier = createIptablesProxier({ ...base, backend: 'nft' }, { run });
    await proxier.sync({ snapshot: scenario.snapshot, full: true });
    const nat = await save(run, 'nft', 'nat', 'IPv6');
    assert.match(nat, /-A KUBE-SERVICES -d fd00:96::10\/128 -p tcp .*-j KUBE-SVC-/);
    assert.match(nat, /--to-destination \[fd00:10:244:1::5\]:8080/);
    assert.match(nat, /! -d ::1\/128 .*-j KUBE-NODEPORTS/);
    assert.doesNotMatch(await save(run, 'nft', 'filter', 'IPv6'), /KUBE-FIREWALL -m comment/);
  });
});

describe('iptables traffic smoke test', { skip }, () => {
  const support = new URL('../support/', import.meta.url).pathname;

  async function probe(
    ns: Netns,
    host: string,
    port: number,
    count: number,
  ): Promise<{ ok: boolean; name?: string; error?: string }[]> {
    const out = await ns.exec(process.execPath, [
      `${support}probe.ts`,
      '--proto',
      'tcp',
      '--host',
      host,
      '--port',
      String(port),
      '--count',
      String(count),
      '--timeout',
      '2000',
    ]);
    return out.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { ok: boolean; name?: string; error?: string });
  }

  for (const backend of ['legacy', 'nft'] as const) {
    test(`a ClusterIP reaches every endpoint; no endpoints is refused at once (${backend})`, async () => {
      const { ns: node, run } = await newNs();
      const pods: Netns[] = [];
      for (const [i, ip] of [
        ['a', '10.244.1.5'],
        ['b', '10.244.2.7'],
      ] as const) {
        const { ns: pod } = await newNs();
        await node.ip('link', 'add', `n${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
        const gw = ip.replace(/\.\d+$/, '.1');
        await node.ip('addr', 'add', `${gw}/24`, 'dev', `n${i}`);
        await node.ip('link', 'set', `n${i}`, 'up');
        await pod.ip('addr', 'add', `${ip}/24`, 'dev', 'eth0');
        await pod.ip('link', 'set', 'eth0', 'up');
        await pod.ip('route', 'add', 'default', 'via', gw);
        const server = pod.spawn(process.execPath, [
          `${support}echo-server.ts`,
          '--name',
          `pod-${i}`,
          '--tcp',
          '8080',
        ]);
        await new Promise<void>((resolve, reject) => {
          server.stdout?.on('data', (chunk: Buffer) => {
            if (chunk.toString().includes('ready')) resolve();
          });
          server.once('exit', () => reject(new Error('echo server exited')));
        });
        pods.push(pod);
      }
      // Locally generated traffic needs a route for the service range before NAT runs.
      await node.ip('route', 'add', '10.96.0.0/16', 'dev', 'na');
      const web = servicePortState({
        name: 'web',
        portName: 'http',
        clusterIP: '10.96.0.10',
        port: 80,
        endpoints: [
          { ip: '10.244.1.5', port: 8080 },
          { ip: '10.244.2.7', port: 8080 },
        ],
      });
      const empty = servicePortState({ name: 'empty', clusterIP: '10.96.0.11', port: 80 });
      const proxier = createIptablesProxier(proxierOptions(backend), { run });
      await proxier.sync({ snapshot: snapshot([web, empty]), full: true });

      const answers = await probe(node, '10.96.0.10', 80, 20);
      assert.ok(
        answers.every((a) => a.ok),
        JSON.stringify(answers),
      );
      assert.deepEqual(new Set(answers.map((a) => a.name)), new Set(['pod-a', 'pod-b']));
      const refused = await probe(node, '10.96.0.11', 80, 1);
      assert.equal(refused[0]?.error, 'ECONNREFUSED');
    });
  }
});
