// The nftables proxier's rule-integrity check (integrity.ts): a cheap listing of the table's
// chains and a check-mode deletion of sampled dispatch elements and of the fixed chains' rules
// (by handle) at every check, and a deep one (the table's rules with their handles) after every
// full sync and whenever its own cost allows. When either fails, the record is dropped and the next sync is
// full (issue 15: nftables mode used to trust its record forever after `nft flush ruleset`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cheapIntact,
  cheapListing,
  chainsOfTable,
  checkModeScript,
  DeepCheckSchedule,
  deepListing,
  handlesFromEcho,
  judgeDeepListing,
  REQUIRED_CHAINS,
  ruleHandlesOf,
  sampleElements,
  staticRuleCounts,
} from '../../../src/dataplane/nftables/integrity.ts';
import { buildSkeleton, CLUSTER_IPS_CHECK } from '../../../src/dataplane/nftables/skeleton.ts';
import { newLedger, setOf } from '../../../src/dataplane/nftables/ledger.ts';
import { createNftablesProxier } from '../../../src/dataplane/nftables/proxier.ts';
import { render } from '../../../src/dataplane/nftables/render.ts';
import { ExecError, type ExecOptions, type ExecResult } from '../../../src/util/exec.ts';
import { OPTIONS_V4, port, snapshot } from './fixtures.ts';

const chainsListing = (family: string, chains: readonly string[]): string =>
  [
    'table ip nat {',
    '\tchain PREROUTING {',
    '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    '\t}',
    '}',
    `table ${family} kube-proxy {`,
    ...chains.flatMap((chain) => [`\tchain ${chain} {`, '\t}']),
    '}',
  ].join('\n');

const EXPECTED = staticRuleCounts(buildSkeleton(OPTIONS_V4));

/**
 * `nft -a -t list table ip kube-proxy` as nft prints it, with `expected` rules in each chain
 * (handles counted from `first`), a service chain and a map between them.
 */
function tableListing(expected: ReadonlyMap<string, number>, first = 100): string {
  let handle = first;
  const lines = ['table ip kube-proxy { # handle 7', '\tcomment "rules for kube-proxy"'];
  lines.push(
    '\tmap service-ips { # handle 3',
    '\t\ttype ipv4_addr . inet_proto . inet_service : verdict',
    '\t}',
  );
  for (const [chain, count] of expected) {
    lines.push(`\tchain ${chain} { # handle ${handle++}`);
    if (chain === 'nat-prerouting')
      lines.push('\t\ttype nat hook prerouting priority dstnat; policy accept;');
    for (let i = 0; i < count; i++) lines.push(`\t\tjump services # handle ${handle++}`);
    lines.push('\t}');
  }
  lines.push('\tcounter hits { # handle 88', '\t\tpackets 0 bytes 0', '\t}');
  lines.push('\tchain service-X-default/web/tcp/http { # handle 90', '\t\tcounter # handle 91', '\t}', '}');
  return lines.join('\n');
}

test('cheap check: our table with every hook chain and the dispatch chain, in its family only', () => {
  assert.deepEqual(cheapListing('IPv6'), ['list', 'chains', 'ip6']);
  const all = chainsListing('ip', [...REQUIRED_CHAINS, 'service-ABC-default/web/tcp/http']);
  assert.equal(cheapIntact(all, 'IPv4'), true);
  assert.deepEqual(chainsOfTable(all, 'IPv4')?.has('service-ABC-default/web/tcp/http'), true);
  assert.equal(cheapIntact(all, 'IPv6'), false, 'the ip6 table is another table');
  assert.equal(
    cheapIntact(chainsListing('ip', REQUIRED_CHAINS.slice(1)), 'IPv4'),
    false,
    'a hook chain deleted',
  );
  assert.equal(cheapIntact('', 'IPv4'), false, 'table gone (nft flush ruleset)');
  assert.equal(chainsOfTable('table ip kube-proxy {\n}', 'IPv4')?.size, 0, 'an empty table is still there');
});

test('deep look: the whole table, terse; every fixed chain must hold exactly what a full sync wrote', () => {
  assert.deepEqual(deepListing('IPv6'), ['-a', '-t', 'list', 'table', 'ip6', 'kube-proxy']);
  assert.equal(EXPECTED.get('nat-prerouting'), 1);
  assert.equal(EXPECTED.get('services'), 2);
  assert.equal(EXPECTED.has(CLUSTER_IPS_CHECK), false, 'a partial sync rewrites it when the CIDRs change');
  const listing = tableListing(EXPECTED);
  const found = ruleHandlesOf(listing);
  assert.deepEqual(found.get('service-X-default/web/tcp/http'), [91]);
  assert.equal(found.has('service-ips'), false, 'a map is no chain');
  const verdict = judgeDeepListing(listing, EXPECTED);
  assert.ok(verdict.intact);
  const total = [...EXPECTED.values()].reduce((a, b) => a + b, 0);
  assert.equal(verdict.handles.length, total);
  const jumpGone = listing.replace(/\n\t\tjump services # handle \d+(?=\n\t\}\n\tchain nat-output)/, '');
  assert.notEqual(jumpGone, listing);
  assert.deepEqual(judgeDeepListing(jumpGone, EXPECTED), {
    intact: false,
    problem: 'chain nat-prerouting holds 0 rules, kube-proxy wrote 1',
  });
  assert.deepEqual(judgeDeepListing(listing.replace('chain services {', 'chain other {'), EXPECTED), {
    intact: false,
    problem: 'chain services is gone',
  });
  assert.equal(
    checkModeScript(
      'IPv4',
      [
        { set: 'service-ips', key: '10.96.0.10 . tcp . 80' },
        { set: 'service-nodeports', key: 'tcp . 30080' },
      ],
      [{ chain: 'nat-prerouting', handle: 12 }],
    ),
    'delete element ip kube-proxy service-ips { 10.96.0.10 . tcp . 80 }\n' +
      'delete element ip kube-proxy service-nodeports { tcp . 30080 }\n' +
      'delete rule ip kube-proxy nat-prerouting handle 12\n',
  );
});

test('element samples come from the dispatch maps, without repeats, and are empty for an empty table', () => {
  const ledger = newLedger();
  assert.deepEqual(
    sampleElements(ledger, 4, () => 0.5),
    [],
  );
  const element = (set: string, key: string) => ({ owner: 'o', set, key, value: 'goto x', comment: '' });
  for (const key of ['a', 'b', 'c']) setOf(ledger, 'service-ips').set(key, element('service-ips', key));
  setOf(ledger, 'no-endpoint-services').set('z', element('no-endpoint-services', 'z'));
  let n = 0;
  const sequence = [0, 0, 0, 0.4, 0, 0.9, 0, 0.9];
  const picked = sampleElements(ledger, 4, () => sequence[n++ % sequence.length] ?? 0);
  assert.deepEqual(picked, [
    { set: 'service-ips', key: 'a' },
    { set: 'service-ips', key: 'b' },
    { set: 'service-ips', key: 'c' },
  ]);
});

test('the deep check runs at every check while cheap, else after 50 times its cost', () => {
  const schedule = new DeepCheckSchedule(50);
  assert.equal(schedule.due(0), true);
  schedule.ran(0, 20); // 20 ms: due again 1 s later, i.e. at the next 5-s check
  assert.equal(schedule.due(1_019), false);
  assert.equal(schedule.due(1_020), true);
  schedule.ran(5_000, 8_000); // 3 s (10k Services): next one 150 s later
  assert.equal(schedule.nextDueAt, 158_000);
  assert.equal(schedule.due(100_000), false);
  assert.equal(schedule.turn, 2);
  schedule.reset();
  assert.equal(schedule.due(100_000), true, 'after a repair the next check looks deep at once');
});

const JUMP_OF_NAT_PREROUTING =
  /(chain nat-prerouting \{ # handle \d+\n\t\ttype[^\n]*\n)\t\tjump services # handle \d+\n/;

/** A runner that answers the proxier's nft commands from a few switches. */
function scriptedNft(state: { table: boolean; chainRules: boolean; elements: boolean }) {
  const calls: { args: readonly string[]; input: string }[] = [];
  const ok = (stdout = ''): Promise<ExecResult> => Promise.resolve({ stdout, stderr: '', code: 0 });
  const missing = (file: string, line = 1) =>
    Promise.reject(
      new ExecError(file, 1, '', `/dev/stdin:${line}:1-5: Error: No such file or directory`, 'exit status 1'),
    );
  const listing = tableListing(EXPECTED);
  const run = (file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> => {
    const input = typeof options?.input === 'string' ? options.input : [...(options?.input ?? [])].join('');
    calls.push({ args, input });
    if (args[0] === '--version') return ok('nftables v1.0.6 (Lester Gooch #5)');
    if (args[0] === 'list' && args[1] === 'chains')
      return ok(state.table ? chainsListing('ip', REQUIRED_CHAINS) : chainsListing('ip6', REQUIRED_CHAINS));
    if (args[0] === '-c') {
      if (!state.table) return missing(file);
      const lines = input.split('\n');
      const jump = lines.findIndex((line) => line.startsWith('delete rule ip kube-proxy nat-prerouting '));
      if (!state.chainRules && jump >= 0) return missing(file, jump + 1);
      if (!state.elements) return missing(file, 1);
      return ok();
    }
    if (args[0] === '-a') {
      if (!state.table) return missing(file);
      return ok(state.chainRules ? listing : listing.replace(JUMP_OF_NAT_PREROUTING, '$1'));
    }
    return ok();
  };
  return { run, calls };
}

const WEB = port({ name: 'web', clusterIP: '10.96.0.10', port: 80, endpoints: [{ ip: '10.244.1.5' }] });

for (const broken of ['table', 'chainRules', 'elements'] as const) {
  test(`rulesIntact: ${broken} gone drops the record, so the next sync is full`, async () => {
    const state = { table: true, chainRules: true, elements: true };
    const { run, calls } = scriptedNft(state);
    let clock = 0;
    const proxier = await createNftablesProxier(OPTIONS_V4, {
      run,
      skipKernelCheck: true,
      random: () => 0,
      now: () => (clock += 2_500), // each check's start and end: 5 s apart, as the daemon runs them
    });
    const deepLooks = () => calls.filter((c) => c.args[0] === '-a').length;
    const checks = () => calls.filter((c) => c.args[0] === '-c');
    assert.equal(await proxier.rulesIntact?.(), true, 'no record yet: nothing to distrust');
    assert.equal((await proxier.sync({ snapshot: snapshot([WEB]), full: false })).full, true);
    assert.equal((await proxier.sync({ snapshot: snapshot([WEB]), full: false })).full, false);
    assert.equal(await proxier.rulesIntact?.(), true);
    assert.equal(deepLooks(), 1, 'the first check after a full sync learns the handles');
    assert.deepEqual(
      checks().map((c) => c.args),
      [['-c', '-f', '-']],
      'the element check runs at every check',
    );
    assert.match(
      checks()[0]?.input ?? '',
      /^delete element ip kube-proxy service-ips \{ 10\.96\.0\.10 \. tcp \. 80 \}\n$/,
      'no handles known yet',
    );
    // The deep look "took" 2.5 s: due again 125 s after it ended; until then the cheap listing
    // and the check-mode deletion of the sampled elements and of every fixed rule.
    assert.equal(await proxier.rulesIntact?.(), true);
    assert.equal(deepLooks(), 1, 'not due');
    assert.equal(checks().length, 2);
    const rules = (checks()[1]?.input ?? '').split('\n').filter((line) => line.startsWith('delete rule '));
    assert.equal(
      rules.length,
      [...EXPECTED.values()].reduce((a, b) => a + b, 0),
    );
    assert.ok(
      rules.some((rule) => /^delete rule ip kube-proxy nat-prerouting handle \d+$/.test(rule)),
      rules.join('\n'),
    );
    // A partial sync leaves the fixed chains alone: the handles stay known.
    await proxier.sync({ snapshot: snapshot([]), full: false });
    await proxier.sync({ snapshot: snapshot([WEB]), full: false });
    state[broken] = false;
    assert.equal(await proxier.rulesIntact?.(), false, 'found by the cheap check, the deep look not due');
    assert.equal(deepLooks(), 1);
    assert.equal(
      (await proxier.sync({ snapshot: snapshot([WEB]), full: false })).full,
      true,
      'the record was dropped',
    );
    state[broken] = true;
    assert.equal(await proxier.rulesIntact?.(), true);
    assert.equal(deepLooks(), 2, 'after the repair the handles are learned again');
  });
}

test('rulesIntact: the deep look finds a rule removed before it learned the handles', async () => {
  const state = { table: true, chainRules: false, elements: true };
  const { run } = scriptedNft(state);
  const proxier = await createNftablesProxier(OPTIONS_V4, { run, skipKernelCheck: true, random: () => 0 });
  await proxier.sync({ snapshot: snapshot([WEB]), full: true });
  assert.equal(await proxier.rulesIntact?.(), false);
});

test('rulesIntact: a partial sync during the check hides a missing element, never a missing rule', async () => {
  for (const broken of ['elements', 'chainRules'] as const) {
    const state = { table: true, chainRules: true, elements: true };
    const { run } = scriptedNft(state);
    const held: { proxier?: Awaited<ReturnType<typeof createNftablesProxier>> } = {};
    let racing = false;
    const racer = async (
      file: string,
      args: readonly string[],
      options?: ExecOptions,
    ): Promise<ExecResult> => {
      // The check-mode run takes long enough for a partial sync to land meanwhile.
      if (racing && args[0] === '-c') await held.proxier?.sync({ snapshot: snapshot([WEB]), full: false });
      return run(file, args, options);
    };
    const proxier = await createNftablesProxier(OPTIONS_V4, {
      run: racer,
      skipKernelCheck: true,
      random: () => 0,
    });
    held.proxier = proxier;
    await proxier.sync({ snapshot: snapshot([WEB]), full: true });
    assert.equal(await proxier.rulesIntact?.(), true);
    state[broken] = false;
    racing = true;
    assert.equal(await proxier.rulesIntact?.(), broken === 'elements', broken);
  }
});

test('rulesIntact: nft failing for another reason is an error of the check, not a repair', async () => {
  const state = { table: true, chainRules: true, elements: true };
  const { run } = scriptedNft(state);
  let broken = false;
  const failing = (file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> =>
    broken && args[0] !== '--version'
      ? Promise.reject(new ExecError(file, 1, '', 'netlink: Error: Operation not permitted', 'exit status 1'))
      : run(file, args, options);
  const proxier = await createNftablesProxier(OPTIONS_V4, { run: failing, skipKernelCheck: true });
  await proxier.sync({ snapshot: snapshot([WEB]), full: true });
  broken = true;
  await assert.rejects(proxier.rulesIntact?.() ?? Promise.resolve(), /nft list chains ip failed/);
  broken = false;
  assert.equal(
    (await proxier.sync({ snapshot: snapshot([WEB]), full: false })).full,
    false,
    'the record stays',
  );
});

test('no partial sync touches the fixed chains, so their handles outlive it', () => {
  // A sequence of partial syncs that create and delete every kind of Service (class chains,
  // affinity, source ranges, node ports, eTP=Local) and change the service CIDRs.
  const kinds = [
    port({ name: 'a', port: 80, clusterIP: '10.96.0.1', endpoints: [{ ip: '10.244.1.1' }] }),
    port({ name: 'b', port: 80, clusterIP: '10.96.0.2', nodePort: 30002, endpoints: [] }),
    port({
      port: 80,
      name: 'c',
      clusterIP: '10.96.0.3',
      nodePort: 30003,
      loadBalancerVIPs: ['192.0.2.3'],
      sourceRanges: ['198.51.100.0/24'],
      externalLocal: true,
      endpoints: [{ ip: '10.244.1.3', local: true }],
    }),
    port({
      port: 80,
      name: 'd',
      clusterIP: '10.96.0.4',
      externalIPs: ['192.0.2.4'],
      affinitySeconds: 60,
      endpoints: [{ ip: '10.244.1.4' }],
    }),
  ];
  const steps = [
    snapshot([]),
    snapshot(kinds),
    snapshot(kinds.slice(2), { serviceCIDRs: ['10.96.0.0/16'] }),
    snapshot(kinds.slice(0, 1)),
    snapshot([]),
  ];
  let state = render(undefined, snapshot([]), OPTIONS_V4, true).next;
  const fixed = [...EXPECTED.keys()];
  for (const [i, step] of steps.entries()) {
    const result = render(state, step, OPTIONS_V4, false);
    const touching = result.script
      .split('\n')
      .filter((line) =>
        fixed.some((chain) =>
          new RegExp(`^(flush|add|delete|insert|replace) (chain|rule) ip kube-proxy ${chain}( |$)`).test(
            line,
          ),
        ),
      );
    assert.deepEqual(touching, [], `step ${i}`);
    assert.ok(result.script.length > 0 || i === 0, `step ${i} wrote something`);
    state = result.next;
  }
});

test('the handles of the fixed rules come from the echo of the transaction that wrote them', () => {
  const expected = new Map([
    ['nat-prerouting', 1],
    ['services', 2],
  ]);
  const echo = [
    'add table ip kube-proxy { comment "rules for kube-proxy" ; } # handle 4',
    'add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority dstnat; policy accept; } # handle 1',
    'add rule ip kube-proxy nat-prerouting jump services # handle 9',
    'add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips # handle 10',
    'add rule ip kube-proxy services meta l4proto . th dport vmap @service-nodeports # handle 11',
    'add rule ip kube-proxy cluster-ips-check ip daddr 10.96.0.0/12 drop # handle 12',
    'add rule ip6 kube-proxy services counter # handle 13',
    '# new generation 5 by process 77 (nft)',
  ].join('\n');
  assert.deepEqual(handlesFromEcho(echo, 'IPv4', expected), [
    { chain: 'nat-prerouting', handle: 9 },
    { chain: 'services', handle: 10 },
    { chain: 'services', handle: 11 },
  ]);
  assert.equal(
    handlesFromEcho(echo.replace(/.*handle 11\n/, ''), 'IPv4', expected),
    undefined,
    'a rule missing from the echo: the deep look learns them instead',
  );
});
