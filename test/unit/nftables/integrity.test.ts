// The nftables proxier's rule-integrity check (integrity.ts): a cheap listing of the table's
// chains at every check, and a deep one (a chain's rules and a sample of dispatch elements)
// whenever its own cost allows. When either fails, the record is dropped and the next sync is
// full (issue 15: nftables mode used to trust its record forever after `nft flush ruleset`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cheapIntact,
  cheapListing,
  chainsOfTable,
  DeepCheckSchedule,
  deepListing,
  elementCheckScript,
  REQUIRED_CHAINS,
  sampleElements,
} from '../../../src/dataplane/nftables/integrity.ts';
import { newLedger, setOf } from '../../../src/dataplane/nftables/ledger.ts';
import { createNftablesProxier } from '../../../src/dataplane/nftables/proxier.ts';
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

const NAT_PREROUTING = [
  'table ip kube-proxy {',
  '\tchain nat-prerouting {',
  '\t\ttype nat hook prerouting priority dstnat; policy accept;',
  '\t\tjump services',
  '\t}',
  '}',
].join('\n');
const SERVICES = [
  'table ip kube-proxy {',
  '\tchain services {',
  '\t\tip daddr . meta l4proto . th dport vmap @service-ips',
  '\t}',
  '}',
].join('\n');

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

test('deep look: one chain listing, chains in turn; the element check deletes in check mode', () => {
  const first = deepListing('IPv4', 0);
  assert.deepEqual(first.args, ['list', 'chain', 'ip', 'kube-proxy', 'nat-prerouting']);
  assert.equal(first.mustContain.test(NAT_PREROUTING), true);
  assert.equal(
    first.mustContain.test(NAT_PREROUTING.replace('\t\tjump services\n', '')),
    false,
    'jump removed',
  );
  const second = deepListing('IPv6', 1);
  assert.deepEqual(second.args, ['list', 'chain', 'ip6', 'kube-proxy', 'services']);
  assert.equal(second.mustContain.test(SERVICES), true);
  assert.equal(second.mustContain.test(SERVICES.replace(/\t\tip daddr.*\n/, '')), false, 'services flushed');
  assert.deepEqual(deepListing('IPv4', 2).args, first.args);
  assert.equal(
    elementCheckScript('IPv4', [
      { set: 'service-ips', key: '10.96.0.10 . tcp . 80' },
      { set: 'service-nodeports', key: 'tcp . 30080' },
    ]),
    'delete element ip kube-proxy service-ips { 10.96.0.10 . tcp . 80 }\n' +
      'delete element ip kube-proxy service-nodeports { tcp . 30080 }\n',
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

/** A runner that answers the proxier's nft commands from a few switches. */
function scriptedNft(state: { table: boolean; chainRules: boolean; elements: boolean }) {
  const calls: { args: readonly string[]; input: string }[] = [];
  const ok = (stdout = ''): Promise<ExecResult> => Promise.resolve({ stdout, stderr: '', code: 0 });
  const missing = (file: string) =>
    Promise.reject(new ExecError(file, 1, '', 'Error: No such file or directory', 'exit status 1'));
  const run = (file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> => {
    const input = typeof options?.input === 'string' ? options.input : [...(options?.input ?? [])].join('');
    calls.push({ args, input });
    if (args[0] === '--version') return ok('nftables v1.0.6 (Lester Gooch #5)');
    if (args[0] === 'list' && args[1] === 'chains')
      return ok(state.table ? chainsListing('ip', REQUIRED_CHAINS) : chainsListing('ip6', REQUIRED_CHAINS));
    if (args[0] === '-c') {
      if (!state.table || !state.elements) return missing(file);
      return ok();
    }
    if (args[0] === 'list' && args[1] === 'chain') {
      if (!state.table) return missing(file);
      const listing = args.includes('nat-prerouting') ? NAT_PREROUTING : SERVICES;
      return ok(state.chainRules ? listing : listing.replace(/\t\t(jump|ip daddr).*\n/, ''));
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
    assert.equal(await proxier.rulesIntact?.(), true, 'no record yet: nothing to distrust');
    assert.equal((await proxier.sync({ snapshot: snapshot([WEB]), full: false })).full, true);
    assert.equal((await proxier.sync({ snapshot: snapshot([WEB]), full: false })).full, false);
    assert.equal(await proxier.rulesIntact?.(), true);
    const deep = calls.filter((c) => c.args[0] === 'list' && c.args[1] === 'chain');
    assert.equal(deep.length, 1, 'a cheap deep look ran at the first check');
    const elementChecks = calls.filter((c) => c.args[0] === '-c');
    assert.deepEqual(
      elementChecks.map((c) => c.args),
      [['-c', '-f', '-']],
      'the element check runs at every check',
    );
    assert.match(
      elementChecks.map((c) => c.input).join(''),
      /^delete element ip kube-proxy service-ips \{ 10\.96\.0\.10 \. tcp \. 80 \}\n$/,
    );
    // The deep look "took" 2.5 s: due again 125 s after it ended; until then only the cheap
    // listing and the element check.
    assert.equal(await proxier.rulesIntact?.(), true);
    assert.equal(calls.filter((c) => c.args[0] === 'list' && c.args[1] === 'chain').length, 1, 'not due');
    assert.equal(calls.filter((c) => c.args[0] === '-c').length, 2);
    state[broken] = false;
    if (broken === 'chainRules') {
      assert.equal(await proxier.rulesIntact?.(), true, 'only the deep look sees rules');
      clock += 125_000;
    }
    assert.equal(await proxier.rulesIntact?.(), false);
    assert.equal(
      (await proxier.sync({ snapshot: snapshot([WEB]), full: false })).full,
      true,
      'the record was dropped',
    );
  });
}

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
