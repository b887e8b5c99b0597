// The xtables toolkit with two owners side by side: the iptables mode and a test-only owner
// shaped like the IPVS mode's chains (modes-ipvs-userspace.md 1.10). Each owner's ensure, canary
// check and cleanup must touch only what its description names, and the shared chains (nat
// KUBE-SERVICES, KUBE-POSTROUTING, filter KUBE-FORWARD, KUBE-PROXY-FIREWALL) only when asked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IPTABLES_OWNER } from '../../../src/dataplane/iptables/owner.ts';
import {
  awaitCanaryFlush,
  canaryPresent,
  cleanupOwner,
  cleanupTableText,
  ensureBase,
  iptablesTools,
  isJumpRuleLine,
  parseSave,
  restore,
  type JumpSpec,
  type Table,
  type XtablesOwner,
} from '../../../src/dataplane/xtables/index.ts';
import { configureLogging } from '../../../src/log/log.ts';
import { FakeXtables } from './fake-xtables.ts';

configureLogging({ write: () => undefined });

function jump(
  table: Table,
  chain: string,
  target: string,
  comment: string | undefined,
  position: JumpSpec['position'] = 'prepend',
  matches: readonly string[] = [],
): JumpSpec {
  return { table, chain, target, comment, matches, position };
}

/** IPVS mode's jump rules and chains (spec 1.10.1, 1.10.2), with a canary for the test's sake. */
const IPVS_LIKE: XtablesOwner = {
  name: 'ipvs-like',
  jumps: [
    jump('nat', 'OUTPUT', 'KUBE-SERVICES', 'kubernetes service portals'),
    jump('nat', 'PREROUTING', 'KUBE-SERVICES', 'kubernetes service portals'),
    jump('nat', 'POSTROUTING', 'KUBE-POSTROUTING', 'kubernetes postrouting rules'),
    jump('filter', 'FORWARD', 'KUBE-FORWARD', 'kubernetes forwarding rules'),
    jump('filter', 'INPUT', 'KUBE-NODE-PORT', 'kubernetes health check rules'),
    jump('filter', 'INPUT', 'KUBE-PROXY-FIREWALL', 'kube-proxy firewall rules'),
    jump('filter', 'FORWARD', 'KUBE-PROXY-FIREWALL', 'kube-proxy firewall rules'),
    jump('filter', 'INPUT', 'KUBE-IPVS-FILTER', 'kubernetes ipvs access filter'),
    jump('filter', 'OUTPUT', 'KUBE-IPVS-OUT-FILTER', 'kubernetes ipvs access filter'),
  ],
  canary: { chain: 'KUBE-IPVS-TEST-CANARY', tables: ['nat', 'filter'] },
  fixedChains: {
    nat: ['KUBE-SERVICES', 'KUBE-POSTROUTING', 'KUBE-NODE-PORT', 'KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ'],
    filter: [
      'KUBE-FORWARD',
      'KUBE-NODE-PORT',
      'KUBE-PROXY-FIREWALL',
      'KUBE-SOURCE-RANGES-FIREWALL',
      'KUBE-IPVS-FILTER',
      'KUBE-IPVS-OUT-FILTER',
    ],
  },
  borrowedChains: {},
  ownsChain: () => false,
};

/** Shaped like the userspace mode's capture jumps: two appended after everything else. */
const NODEPORT_NOTE = 'handle service NodePorts; NOTE: this must be the last rule in the chain';
const LOCAL = ['-m', 'addrtype', '--dst-type', 'LOCAL'];
const USERSPACE_LIKE: XtablesOwner = {
  name: 'userspace-like',
  jumps: [
    jump('nat', 'PREROUTING', 'KUBE-PORTALS-CONTAINER', 'handle ClusterIPs'),
    jump('nat', 'OUTPUT', 'KUBE-PORTALS-HOST', 'handle ClusterIPs'),
    jump('nat', 'PREROUTING', 'KUBE-NODEPORT-CONTAINER', NODEPORT_NOTE, 'append', LOCAL),
    jump('nat', 'OUTPUT', 'KUBE-NODEPORT-HOST', NODEPORT_NOTE, 'append', LOCAL),
  ],
  canary: undefined,
  fixedChains: {},
  borrowedChains: {},
  ownsChain: () => false,
};

const LEGACY_V4 = iptablesTools('legacy', 'IPv4');
const ENV = { KUBE_PROXY_IPTABLES_BACKEND: 'legacy' };

/** Appends rules, declaring only the chains that are missing (declaring flushes). */
async function write(
  fake: FakeXtables,
  table: Table,
  chains: readonly string[],
  rules: readonly string[],
): Promise<void> {
  const missing = chains.filter((chain) => !fake.tables.get(table)?.has(chain));
  const text = [`*${table}`, ...missing.map((c) => `:${c} - [0:0]`), ...rules, 'COMMIT', ''].join('\n');
  await restore(fake.run, LEGACY_V4, text);
}

/** What kubelet and a CNI plugin leave on a node: not any owner's. */
async function foreign(fake: FakeXtables): Promise<void> {
  await write(
    fake,
    'nat',
    ['KUBE-MARK-MASQ', 'CNI-HOSTPORT-DNAT'],
    [
      '-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000',
      '-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
      '-A CNI-HOSTPORT-DNAT -p tcp --dport 8443 -j KUBE-MARK-MASQ',
    ],
  );
  await write(
    fake,
    'filter',
    ['KUBE-FIREWALL'],
    [
      '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -j DROP',
      '-I INPUT -j KUBE-FIREWALL',
      '-I OUTPUT -j KUBE-FIREWALL',
    ],
  );
}

/**
 * A stand-in for each owner's sync. In chains both owners use, each writes only rules into its
 * own chains: nothing tells two owners' rules apart inside one chain, so the toolkit removes
 * such rules only through their targets.
 */
async function syncIptables(fake: FakeXtables): Promise<void> {
  await write(
    fake,
    'nat',
    [...(IPTABLES_OWNER.fixedChains.nat ?? []), 'KUBE-SVC-AAAA', 'KUBE-SEP-BBBB'],
    [
      '-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" --dport 80 -j KUBE-SVC-AAAA',
      '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
      '-A KUBE-SVC-AAAA -j KUBE-SEP-BBBB',
      '-A KUBE-SEP-BBBB -s 10.244.1.5/32 -j KUBE-MARK-MASQ',
      '-A KUBE-SEP-BBBB -p tcp -j DNAT --to-destination 10.244.1.5:8080',
    ],
  );
  await write(fake, 'filter', IPTABLES_OWNER.fixedChains.filter ?? [], [
    '-A KUBE-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment "default/none:http has no endpoints" -j REJECT',
    '-A KUBE-NODEPORTS -p tcp --dport 30000 -j ACCEPT',
  ]);
}

async function syncIpvs(fake: FakeXtables): Promise<void> {
  await write(fake, 'nat', IPVS_LIKE.fixedChains.nat ?? [], [
    '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT',
    '-A KUBE-SERVICES -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER',
    '-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ',
    '-A KUBE-NODE-PORT -p tcp -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ',
  ]);
  await write(fake, 'filter', IPVS_LIKE.fixedChains.filter ?? [], [
    '-A KUBE-SOURCE-RANGES-FIREWALL -j DROP',
    '-A KUBE-PROXY-FIREWALL -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL',
    '-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT',
    '-A KUBE-NODE-PORT -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT',
  ]);
}

type Step = 'iptables' | 'ipvs';

/** A node after the foreign setup and each step's ensure + sync, in order. */
async function node(...steps: readonly Step[]): Promise<FakeXtables> {
  const fake = new FakeXtables(LEGACY_V4);
  await foreign(fake);
  for (const step of steps) {
    switch (step) {
      case 'iptables':
        await ensureBase(fake.run, LEGACY_V4, IPTABLES_OWNER);
        await syncIptables(fake);
        break;
      case 'ipvs':
        await ensureBase(fake.run, LEGACY_V4, IPVS_LIKE);
        await syncIpvs(fake);
        break;
      default: {
        const unknown: never = step;
        throw new Error(`unknown step ${String(unknown)}`);
      }
    }
  }
  return fake;
}

test('ensure: each owner adds only its canary, jump targets and jumps; a shared jump once', async () => {
  const fake = new FakeXtables(LEGACY_V4);
  await ensureBase(fake.run, LEGACY_V4, IPTABLES_OWNER);
  const iptablesOnly = fake.dumpAll();
  assert.deepEqual(fake.chains('mangle'), ['KUBE-PROXY-CANARY']);
  assert.deepEqual(fake.chains('nat'), ['KUBE-POSTROUTING', 'KUBE-PROXY-CANARY', 'KUBE-SERVICES']);

  await ensureBase(fake.run, LEGACY_V4, IPVS_LIKE);
  assert.deepEqual(fake.chains('mangle'), ['KUBE-PROXY-CANARY']);
  assert.deepEqual(fake.chains('nat'), [
    'KUBE-IPVS-TEST-CANARY',
    'KUBE-POSTROUTING',
    'KUBE-PROXY-CANARY',
    'KUBE-SERVICES',
  ]);
  // The nat jumps and FORWARD -> KUBE-FORWARD are the same rules in both modes: not doubled.
  assert.deepEqual(fake.rules('nat', 'PREROUTING'), [
    '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  ]);
  assert.deepEqual(fake.rules('filter', 'FORWARD'), [
    '-m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
    '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
    '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
  ]);
  assert.deepEqual(fake.rules('filter', 'OUTPUT').slice(0, 1), [
    '-m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER',
  ]);
  // Everything of the iptables owner is still there, in its order.
  for (const line of iptablesOnly.split('\n').filter((l) => l.startsWith('-A ')))
    assert.ok(fake.dumpAll().includes(`${line}\n`), line);

  // Ensuring again is one read and nothing written, for either owner.
  for (const owner of [IPTABLES_OWNER, IPVS_LIKE]) {
    const calls = fake.calls.length;
    await ensureBase(fake.run, LEGACY_V4, owner);
    assert.deepEqual(
      fake.calls.slice(calls).map((c) => c.file),
      ['iptables-legacy-save'],
      owner.name,
    );
  }
});

test('ensure without a dump (save failed): one command per piece, the same result', async () => {
  for (const owners of [[IPTABLES_OWNER], [IPVS_LIKE], [IPTABLES_OWNER, IPVS_LIKE, USERSPACE_LIKE]]) {
    const viaRestore = new FakeXtables(LEGACY_V4);
    const oneByOne = new FakeXtables(LEGACY_V4);
    oneByOne.failSave = true;
    for (const owner of owners) {
      assert.ok(await ensureBase(viaRestore.run, LEGACY_V4, owner));
      assert.equal(await ensureBase(oneByOne.run, LEGACY_V4, owner), undefined);
    }
    assert.equal(oneByOne.dumpAll(), viaRestore.dumpAll(), owners.map((o) => o.name).join('+'));
    assert.ok(!oneByOne.calls.some((c) => c.file.endsWith('-restore')));
    const checks = oneByOne.calls.filter((c) => c.args.includes('-C')).length;
    assert.equal(
      checks,
      owners.reduce((n, o) => n + o.jumps.length, 0),
    );
  }
});

test('ensure: appended jumps go last and are recognised by their matches', async () => {
  for (const failSave of [false, true]) {
    const fake = new FakeXtables(LEGACY_V4);
    await foreign(fake);
    fake.failSave = failSave;
    await ensureBase(fake.run, LEGACY_V4, USERSPACE_LIKE);
    await ensureBase(fake.run, LEGACY_V4, USERSPACE_LIKE);
    assert.deepEqual(fake.rules('nat', 'PREROUTING'), [
      '-m comment --comment "handle ClusterIPs" -j KUBE-PORTALS-CONTAINER',
      '-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
      `-m addrtype --dst-type LOCAL -m comment --comment "${NODEPORT_NOTE}" -j KUBE-NODEPORT-CONTAINER`,
    ]);
  }
  const nodePort = USERSPACE_LIKE.jumps[2]!;
  const line = `-A PREROUTING -m comment --comment "${NODEPORT_NOTE}" -m addrtype --dst-type LOCAL -j KUBE-NODEPORT-CONTAINER`;
  assert.ok(isJumpRuleLine(line, nodePort), 'iptables-save may reorder the matches');
  assert.ok(!isJumpRuleLine(line.replace('--dst-type', '! --dst-type'), nodePort), 'a negated match differs');
  assert.ok(!isJumpRuleLine(line.replace('LOCAL', 'LOCALX'), nodePort));
});

test("canary: each owner probes its own; a flush of one owner's tables is not the other's", async () => {
  const fake = await node('iptables', 'ipvs');
  const iptablesCanary = IPTABLES_OWNER.canary!;
  const ipvsCanary = IPVS_LIKE.canary!;
  assert.equal(await canaryPresent(fake.run, LEGACY_V4, iptablesCanary), true);
  assert.equal(await canaryPresent(fake.run, LEGACY_V4, ipvsCanary), true);
  // The probe reads nothing but the first table's canary.
  const calls = fake.calls.length;
  await canaryPresent(fake.run, LEGACY_V4, ipvsCanary);
  assert.deepEqual(
    fake.calls.slice(calls).map((c) => c.args.slice(4).join(' ')),
    ['-t nat -S KUBE-IPVS-TEST-CANARY'],
  );

  // mangle flushed (only the iptables owner has anything there).
  fake.tables.get('mangle')!.clear();
  assert.equal(await canaryPresent(fake.run, LEGACY_V4, iptablesCanary), false);
  assert.equal(await canaryPresent(fake.run, LEGACY_V4, ipvsCanary), true);
  // The flush has not reached nat and filter: the wait gives up at its deadline.
  let clock = 0;
  const now = (): number => (clock += 1000);
  assert.equal(await awaitCanaryFlush(fake.run, LEGACY_V4, iptablesCanary, { now, pollMs: 0 }), false);
  for (const table of ['nat', 'filter'] as const) fake.tables.get(table)!.delete('KUBE-PROXY-CANARY');
  assert.equal(await awaitCanaryFlush(fake.run, LEGACY_V4, iptablesCanary, { now, pollMs: 0 }), true);
  assert.equal(await canaryPresent(fake.run, LEGACY_V4, ipvsCanary), true, 'the other canary stays');
  // An owner without a canary table has nothing to lose.
  assert.equal(await canaryPresent(fake.run, LEGACY_V4, { chain: 'X', tables: [] }), true);
});

test("cleanup keeping the other owner: what is left is exactly the other owner's node", async () => {
  const both = await node('iptables', 'ipvs');
  const report = await cleanupOwner(both.run, IPVS_LIKE, { keep: [IPTABLES_OWNER], env: ENV });
  assert.deepEqual(report.errors, []);
  assert.deepEqual(report.removed, { 'legacy/IPv4/filter': 5, 'legacy/IPv4/nat': 3 });
  assert.equal(both.dumpAll(), (await node('iptables')).dumpAll());

  const again = await node('iptables', 'ipvs');
  assert.deepEqual(
    (await cleanupOwner(again.run, IPTABLES_OWNER, { keep: [IPVS_LIKE], env: ENV })).errors,
    [],
  );
  // kubelet's KUBE-FIREWALL (and its jumps) and KUBE-MARK-MASQ were never the iptables owner's.
  assert.equal(again.dumpAll(), (await node('ipvs')).dumpAll());
});

test("cleanup keeping nothing (--cleanup, mode switch): shared chains go too, the other owner's own stay", async () => {
  const fake = await node('iptables', 'ipvs');
  const report = await cleanupOwner(fake.run, IPTABLES_OWNER, { keep: [], env: ENV });
  assert.deepEqual(report.errors, []);
  // Today's list: nat KUBE-SERVICES, KUBE-NODEPORTS, KUBE-POSTROUTING, the service chains and
  // the canaries; filter's five fixed chains; never KUBE-MARK-MASQ nor KUBE-FIREWALL.
  assert.deepEqual(fake.chains('mangle'), []);
  assert.deepEqual(fake.chains('nat'), [
    'CNI-HOSTPORT-DNAT',
    'KUBE-IPVS-TEST-CANARY',
    'KUBE-LOAD-BALANCER',
    'KUBE-MARK-MASQ',
    'KUBE-NODE-PORT',
  ]);
  assert.deepEqual(fake.chains('filter'), [
    'KUBE-FIREWALL',
    'KUBE-IPVS-FILTER',
    'KUBE-IPVS-OUT-FILTER',
    'KUBE-IPVS-TEST-CANARY',
    'KUBE-NODE-PORT',
    'KUBE-SOURCE-RANGES-FIREWALL',
  ]);
  // Every jump into a removed chain went with it, the IPVS owner's too; its other jumps stay.
  assert.deepEqual(fake.rules('nat', 'PREROUTING'), ['-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT']);
  assert.deepEqual(fake.rules('filter', 'INPUT'), [
    '-m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER',
    '-m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT',
    '-j KUBE-FIREWALL',
  ]);

  // Then the other owner, keeping nothing: only the foreign chains are left, minus what jumped
  // into KUBE-MARK-MASQ, which the IPVS mode owns (its cleanup removes it, as upstream's does).
  assert.deepEqual((await cleanupOwner(fake.run, IPVS_LIKE, { keep: [], env: ENV })).errors, []);
  assert.deepEqual(fake.chains('nat'), ['CNI-HOSTPORT-DNAT']);
  assert.deepEqual(fake.rules('nat', 'CNI-HOSTPORT-DNAT'), []);
  assert.deepEqual(fake.chains('filter'), ['KUBE-FIREWALL']);
  assert.deepEqual(fake.rules('filter', 'INPUT'), ['-j KUBE-FIREWALL']);
  // Nothing left of either: cleaning again writes nothing.
  const calls = fake.calls.length;
  for (const owner of [IPTABLES_OWNER, IPVS_LIKE])
    assert.deepEqual(await cleanupOwner(fake.run, owner, { keep: [], env: ENV }), {
      removed: {},
      errors: [],
    });
  assert.ok(!fake.calls.slice(calls).some((c) => c.file.endsWith('-restore')));
});

test("cleanup keeping another owner: a loosely described jump never takes the other owner's rule", () => {
  const owner = (name: string, comment: string | undefined): XtablesOwner => ({
    name,
    jumps: [jump('filter', 'INPUT', 'KUBE-SHARED', comment)],
    canary: undefined,
    fixedChains: { filter: ['KUBE-SHARED'] },
    borrowedChains: {},
    ownsChain: () => false,
  });
  // No comment: "any INPUT rule jumping to KUBE-SHARED" fits both rules.
  const loose = owner('loose', undefined);
  const precise = owner('precise', 'precise portals');
  const saved = parseSave(
    [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':KUBE-SHARED - [0:0]',
      '-A INPUT -m comment --comment "precise portals" -j KUBE-SHARED',
      '-A INPUT -j KUBE-SHARED',
      'COMMIT',
      '',
    ].join('\n'),
  ).get('filter')!;
  assert.equal(
    cleanupTableText(loose, 'filter', saved, [precise]),
    '*filter\n-D INPUT -j KUBE-SHARED\nCOMMIT\n',
  );
  // The other way round the precise rule stays: it fits the loose owner's description too, and
  // that owner's ensure takes it for its own jump, so deleting it would leave the loose owner
  // without one.
  assert.equal(cleanupTableText(precise, 'filter', saved, [loose]), undefined);
});
