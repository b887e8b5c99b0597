// The nftables renderer against the real kernel: transactions load into a fresh namespace and
// the table read back with `nft -j` holds exactly the elements we meant, after full and after
// partial syncs; a failing transaction changes nothing; cleanup removes the tables.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanupNftables } from '../../src/dataplane/nftables/cleanup.ts';
import { nodePortIPs, type NftablesOptions } from '../../src/dataplane/nftables/options.ts';
import { createNftablesProxier } from '../../src/dataplane/nftables/proxier.ts';
import { firstSyncPieces } from '../../src/dataplane/nftables/pieces.ts';
import { describeState, render, type NftState } from '../../src/dataplane/nftables/render.ts';
import type { ProxySnapshot, ServicePortState } from '../../src/model/types.ts';
import { cleanupNetns, createNetns, kernelSkipReason, uniquePrefix, type Netns } from '../support/netns.ts';
import { OPTIONS_V4, OPTIONS_V6, port, snapshot } from '../unit/nftables/fixtures.ts';

type Json = null | string | number | boolean | Json[] | { [key: string]: Json };

function text(value: Json): string {
  if (typeof value === 'string' || typeof value === 'number') return String(value);
  if (Array.isArray(value) || value === null || typeof value !== 'object')
    throw new Error(`unexpected ${JSON.stringify(value)}`);
  const concat = value['concat'];
  if (Array.isArray(concat)) return concat.map(text).join(' . ');
  const prefix = value['prefix'];
  if (prefix && typeof prefix === 'object' && !Array.isArray(prefix))
    return `${text(prefix['addr'] ?? null)}/${text(prefix['len'] ?? null)}`;
  const jump = value['goto'];
  if (jump && typeof jump === 'object' && !Array.isArray(jump)) return `goto ${text(jump['target'] ?? null)}`;
  if ('drop' in value) return 'drop';
  if ('accept' in value) return 'accept';
  const elem = value['elem'];
  if (elem && typeof elem === 'object' && !Array.isArray(elem)) {
    const comment = elem['comment'];
    return `${text(elem['val'] ?? null)}${typeof comment === 'string' ? ` comment "${comment}"` : ''}`;
  }
  throw new Error(`unexpected ${JSON.stringify(value)}`);
}

/** Our table as `nft -j` lists it. */
async function listTable(ns: Netns, family: 'ip' | 'ip6'): Promise<Record<string, Json>[]> {
  const listing = JSON.parse(
    (await ns.exec('nft', ['-j', 'list', 'table', family, 'kube-proxy'])).stdout,
  ) as {
    nftables: Record<string, Json>[];
  };
  return listing.nftables;
}

const byName = (out: Record<string, string[]>): Record<string, string[]> =>
  Object.fromEntries(Object.entries(out).sort((a, b) => (a[0] < b[0] ? -1 : 1)));

/** Elements of every non-empty set and map of our table, in render.ts's text form, sorted. */
async function readElements(ns: Netns, family: 'ip' | 'ip6'): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const item of await listTable(ns, family)) {
    const set = (item['set'] ?? item['map']) as { name: string; elem?: Json[]; flags?: Json } | undefined;
    if (!set?.elem || set.name.startsWith('affinity-')) continue;
    out[set.name] = set.elem
      .map((element) =>
        Array.isArray(element) ? `${text(element[0] as Json)} : ${text(element[1] as Json)}` : text(element),
      )
      .sort();
  }
  return byName(out);
}

/** Every chain's rules (nft's JSON of each rule, handles left out), chains sorted by name. */
async function readRules(ns: Netns, family: 'ip' | 'ip6'): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const item of await listTable(ns, family)) {
    const chain = item['chain'] as { name: string } | undefined;
    if (chain) out[chain.name] ??= [];
    const rule = item['rule'] as { chain: string; expr: Json } | undefined;
    if (rule) (out[rule.chain] ??= []).push(JSON.stringify(rule.expr));
  }
  return byName(out);
}

function intended(state: NftState, options: NftablesOptions): Record<string, string[]> {
  const elements = { ...describeState(state).elements };
  const fixed = nodePortIPs(options);
  if (fixed.length > 0) elements['nodeport-ips'] = fixed;
  return byName(elements);
}

async function load(ns: Netns, script: string): Promise<void> {
  await ns.exec('nft', ['-f', '-'], { input: script });
}

const services = (generation: number): ProxySnapshot =>
  snapshot([
    port({
      name: 'web',
      portName: 'http',
      clusterIP: '10.96.0.10',
      port: 80,
      endpoints: [{ ip: '10.244.1.5' }, { ip: '10.244.2.7', local: true }].slice(0, generation === 2 ? 1 : 2),
    }),
    port({
      name: 'np',
      clusterIP: '10.96.0.20',
      port: 80,
      nodePort: 30080,
      externalLocal: true,
      loadBalancerVIPs: ['203.0.113.7'],
      sourceRanges: ['198.51.100.0/24', '192.168.0.0/16'],
      endpoints: [
        { ip: '10.244.1.5', local: true },
        { ip: '10.244.2.7' },
        ...(generation >= 1 ? [{ ip: '10.244.3.9' }] : []),
      ],
    }),
    port({
      name: 'dns',
      portName: 'dns',
      protocol: 'UDP',
      clusterIP: '10.96.0.53',
      port: 53,
      targetPort: 53,
      affinitySeconds: 600,
      endpoints: [{ ip: '10.244.1.9' }],
    }),
    ...(generation < 2
      ? [
          port({
            name: 'none',
            clusterIP: '10.96.0.40',
            port: 80,
            nodePort: 30040,
            externalIPs: ['198.51.100.9'],
          }),
        ]
      : []),
    port({
      name: 'sctp',
      protocol: 'SCTP',
      clusterIP: '10.96.0.60',
      port: 9000,
      endpoints: [{ ip: '10.244.1.5' }],
    }),
  ]);

describe('nftables transactions in a real kernel', { skip: kernelSkipReason() }, () => {
  const prefix = uniquePrefix('kpnft');
  let ns: Netns;
  before(async () => {
    ns = await createNetns(`${prefix}apply`);
  });
  after(cleanupNetns);

  test('full then partial syncs: the kernel holds exactly the intended elements', async () => {
    let state: NftState | undefined;
    for (const [generation, full] of [
      [0, true],
      [1, false],
      [2, false],
      [0, false],
      [2, true],
    ] as const) {
      const result = render(state, services(generation), OPTIONS_V4, full);
      await load(ns, result.script);
      state = result.next;
      assert.deepEqual(
        await readElements(ns, 'ip'),
        intended(state, OPTIONS_V4),
        `generation ${generation}, full ${full}`,
      );
    }
    const chains = (await ns.exec('nft', ['list', 'chains', 'ip'])).stdout;
    assert.match(
      chains,
      /chain filter-prerouting-pre-dnat \{\n\s+type filter hook prerouting priority dstnat - 10; policy accept;/,
    );
    const classChains = [...chains.matchAll(/chain ((?:ip|nodeport)(?:-shortcut)?-class-\d+) /g)]
      .map((m) => m[1])
      .sort();
    assert.deepEqual(
      classChains,
      describeState(state as NftState).classChains,
      'class chains exist exactly while used',
    );
    assert.ok(classChains.length > 0);
  });

  test('IPv6 table', async () => {
    const ns6 = await createNetns(`${prefix}apply6`);
    const snap = snapshot(
      [
        port({
          name: 'web6',
          clusterIP: 'fd00:96::10',
          port: 80,
          nodePort: 30080,
          externalLocal: true,
          endpoints: [{ ip: 'fd00:244::5', local: true }, { ip: 'fd00:244::7' }],
        }),
        port({
          name: 'aff6',
          clusterIP: 'fd00:96::11',
          port: 80,
          affinitySeconds: 30,
          endpoints: [{ ip: 'fd00:244::8' }],
        }),
      ],
      { family: 'IPv6' },
    );
    const result = render(undefined, snap, OPTIONS_V6, true);
    await load(ns6, result.script);
    assert.deepEqual(await readElements(ns6, 'ip6'), intended(result.next, OPTIONS_V6));
  });

  test('a failing transaction changes nothing, names the line, and the next sync is full', async () => {
    const run = (file: string, args: readonly string[], options?: Parameters<Netns['exec']>[2]) =>
      ns.exec(file, args, options);
    const proxier = await createNftablesProxier(OPTIONS_V4, { run });
    const first = await proxier.sync({ snapshot: services(0), full: true });
    assert.equal(first.full, true);
    const before = await readElements(ns, 'ip');
    // Drift: someone removes an element the next partial transaction will delete.
    await ns.exec('nft', [
      'delete',
      'element',
      'ip',
      'kube-proxy',
      'no-endpoint-services',
      '{ 10.96.0.40 . tcp . 80 }',
    ]);
    const drifted = await readElements(ns, 'ip');
    await assert.rejects(proxier.sync({ snapshot: services(2), full: false }), (error: Error) => {
      assert.match(error.message, /nft -f - failed: .*No such file or directory/s);
      assert.match(error.message, /line \d+: \t10\.96\.0\.40 \. tcp \. 80,/);
      return true;
    });
    assert.deepEqual(await readElements(ns, 'ip'), drifted, 'nothing of the failed transaction was applied');
    assert.notDeepEqual(drifted, before);
    const repaired = await proxier.sync({ snapshot: services(2), full: false });
    assert.equal(repaired.full, true, 'a partial sync after a failure is escalated to full');
    const expected = render(undefined, services(2), OPTIONS_V4, true).next;
    assert.deepEqual(await readElements(ns, 'ip'), intended(expected, OPTIONS_V4));
  });

  test('the integrity check passes on our table and fails once it is flushed or deleted', async () => {
    const nsi = await createNetns(`${prefix}integ`);
    const run = (file: string, args: readonly string[], options?: Parameters<Netns['exec']>[2]) =>
      nsi.exec(file, args, options);
    // The daemon checks every 5 s; the deep look (rules, elements) is due again after 50 times
    // its own cost, well within that on a small table. This clock reads 5 s later at each check's
    // start and 10 ms later at its end.
    let reads = 0;
    let clock = 0;
    const now = () => (clock += reads++ % 2 === 0 ? 5_000 : 10);
    const proxier = await createNftablesProxier(OPTIONS_V4, { run, now });
    await proxier.sync({ snapshot: services(2), full: true });
    assert.equal(await proxier.rulesIntact?.(), true, 'a healthy table is intact (no false alarm)');
    assert.equal((await proxier.sync({ snapshot: services(2), full: false })).full, false);
    await nsi.exec('nft', ['flush', 'table', 'ip', 'kube-proxy']);
    assert.equal(await proxier.rulesIntact?.(), false, 'flushed');
    assert.equal((await proxier.sync({ snapshot: services(2), full: false })).full, true, 'repaired in full');
    assert.equal(await proxier.rulesIntact?.(), true);
    await nsi.exec('nft', ['flush', 'ruleset']);
    assert.equal(await proxier.rulesIntact?.(), false, 'table gone');
  });

  test('the check finds a removed jump by its handle without listing rules again', async () => {
    const nsj = await createNetns(`${prefix}jump`);
    const calls: string[][] = [];
    const run = (file: string, args: readonly string[], options?: Parameters<Netns['exec']>[2]) => {
      calls.push([...args]);
      return nsj.exec(file, args, options);
    };
    // Every deep look "takes" 100 s here, as at a very large table: due again only 5000 s later.
    let reads = 0;
    let clock = 0;
    const now = () => (clock += reads++ % 2 === 0 ? 5_000 : 100_000);
    const proxier = await createNftablesProxier(OPTIONS_V4, { run, now });
    await proxier.sync({ snapshot: services(2), full: true });
    assert.equal(await proxier.rulesIntact?.(), true, 'the first check learns the handles');
    assert.equal(await proxier.rulesIntact?.(), true, 'the real kernel knows every handle (no false alarm)');
    const deepLooks = () => calls.filter((args) => args[0] === '-a').length;
    assert.equal(deepLooks(), 1);
    const listing = (await nsj.exec('nft', ['-a', 'list', 'chain', 'ip', 'kube-proxy', 'nat-prerouting']))
      .stdout;
    const handle = /jump services # handle (\d+)/.exec(listing)?.[1];
    assert.ok(handle, listing);
    await nsj.exec('nft', ['delete', 'rule', 'ip', 'kube-proxy', 'nat-prerouting', 'handle', handle]);
    assert.equal(await proxier.rulesIntact?.(), false, 'the jump is gone');
    assert.equal(deepLooks(), 1, 'found without the deep look');
    assert.equal((await proxier.sync({ snapshot: services(2), full: false })).full, true, 'repaired in full');
    assert.match(
      (await nsj.exec('nft', ['list', 'chain', 'ip', 'kube-proxy', 'nat-prerouting'])).stdout,
      /jump services/,
    );
    assert.equal(await proxier.rulesIntact?.(), true);
    assert.equal(deepLooks(), 2, 'the new handles are learned at once');
  });

  test('a first sync into an empty kernel goes in pieces, each holding whole Services only', async () => {
    const nsp = await createNetns(`${prefix}piece`);
    // Eight copies of the mixed Services above (node ports, source ranges, affinity, eTP=Local,
    // no endpoints, SCTP), plus Services of two and three ports.
    const copyOf = (state: ServicePortState, copy: number): ServicePortState => {
      const sp = state.servicePort;
      const name = `${sp.id.name}-${String(copy)}`;
      const service = `${sp.id.namespace}/${name}`;
      const printable = sp.id.portName ? `${service}:${sp.id.portName}` : service;
      const shift = (ip: string) => ip.replace(/^(\d+\.\d+)\.\d+\./, `$1.${String(10 + copy)}.`);
      return {
        ...state,
        servicePort: {
          ...sp,
          id: { ...sp.id, name, service, printable, key: `${printable}/${sp.id.protocol}` },
          clusterIP: shift(sp.clusterIP),
          nodePort: sp.nodePort > 0 ? sp.nodePort + copy : 0,
          externalIPs: sp.externalIPs.map(shift),
          loadBalancerVIPs: sp.loadBalancerVIPs.map(shift),
        },
      };
    };
    const states = Array.from({ length: 8 }, (_, copy) =>
      [...services(0).servicePorts.values()].map((state) => copyOf(state, copy)),
    ).flat();
    for (const ports of [2, 3])
      for (let p = 0; p < ports; p++)
        states.push(
          port({
            name: `multi-${String(ports)}`,
            portName: `p${String(p)}`,
            clusterIP: `10.96.30.${String(ports)}`,
            port: 8000 + p,
            endpoints: [{ ip: '10.244.4.4' }],
          }),
        );
    const whole = snapshot(states);
    const pieces = firstSyncPieces(whole, 7);
    assert.ok(pieces.length >= 5, `${String(pieces.length)} pieces`);
    const seen: Record<string, string[]>[] = [];
    const seenRules: Record<string, string[]>[] = [];
    const calls: string[][] = [];
    const run = async (file: string, args: readonly string[], options?: Parameters<Netns['exec']>[2]) => {
      calls.push([...args]);
      const result = await nsp.exec(file, args, options);
      if (args.includes('-f') && !args.includes('-c')) {
        seen.push(await readElements(nsp, 'ip'));
        seenRules.push(await readRules(nsp, 'ip'));
      }
      return result;
    };
    const proxier = await createNftablesProxier(OPTIONS_V4, { run, firstSyncPiece: 7 });
    const result = await proxier.sync({ snapshot: whole, full: true });
    assert.equal(result.full, true);
    assert.equal(seen.length, pieces.length, 'one transaction per piece');
    // After each piece the kernel holds exactly what one transaction of those whole Services
    // writes: no Service is there in part.
    const reference = await createNetns(`${prefix}pieceref`);
    for (const [i, piece] of pieces.entries()) {
      await load(reference, render(undefined, piece, OPTIONS_V4, true).script);
      assert.deepEqual(seenRules[i], await readRules(reference, 'ip'), `rules after piece ${String(i)}`);
      assert.deepEqual(
        seen[i],
        intended(render(undefined, piece, OPTIONS_V4, true).next, OPTIONS_V4),
        `piece ${String(i)}`,
      );
    }
    // The first piece echoed the handles of the fixed rules: the check uses them at once,
    // without listing the table.
    assert.equal(await proxier.rulesIntact?.(), true);
    assert.equal(calls.filter((args) => args[0] === '-a').length, 0, 'no deep look');
    assert.ok(calls.some((args) => args[0] === '--echo'));
    // The record is the whole snapshot's: the next change is a small partial sync.
    const next = await proxier.sync({ snapshot: services(0), full: false });
    assert.equal(next.full, false);
    assert.deepEqual(
      await readElements(nsp, 'ip'),
      intended(render(undefined, services(0), OPTIONS_V4, true).next, OPTIONS_V4),
    );
    // A table that is there (a restart) is replaced in one transaction.
    seen.length = 0;
    const restarted = await createNftablesProxier(OPTIONS_V4, { run, firstSyncPiece: 7 });
    await restarted.sync({ snapshot: whole, full: true });
    assert.equal(seen.length, 1, 'one transaction over an existing table');
    assert.deepEqual(seen[0], intended(render(undefined, whole, OPTIONS_V4, true).next, OPTIONS_V4));
  });

  test('cleanup deletes both tables and tolerates their absence', async () => {
    const nsc = await createNetns(`${prefix}clean`);
    const run = (file: string, args: readonly string[], options?: Parameters<Netns['exec']>[2]) =>
      nsc.exec(file, args, options);
    await (await createNftablesProxier(OPTIONS_V4, { run })).sync({ snapshot: services(0), full: true });
    await (
      await createNftablesProxier(OPTIONS_V6, { run })
    ).sync({ snapshot: snapshot([], { family: 'IPv6' }), full: true });
    assert.match(
      (await nsc.exec('nft', ['list', 'tables'])).stdout,
      /table ip kube-proxy\ntable ip6 kube-proxy/,
    );
    await cleanupNftables(run);
    assert.equal((await nsc.exec('nft', ['list', 'tables'])).stdout.trim(), '');
    await cleanupNftables(run);
  });
});
