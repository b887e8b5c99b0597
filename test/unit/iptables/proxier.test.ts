// The proxier's decisions (full vs partial, what it runs, in which order), against a fake runner
// that imitates the iptables tools. The real tools are exercised by test/e2e/iptables-apply.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExecError, type ExecOptions, type ExecResult, inputText } from '../../../src/util/exec.ts';
import {
  createIptablesProxier,
  type IptablesProxierOptions,
} from '../../../src/dataplane/iptables/proxier.ts';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import {
  RestoreError,
  chooseIptablesBackend,
  cleanupTableText,
  parseSave,
  supportsRandomFully,
} from '../../../src/dataplane/xtables/index.ts';
import { IPTABLES_OWNER } from '../../../src/dataplane/iptables/owner.ts';
import { configureLogging } from '../../../src/log/log.ts';
import { servicePortState, snapshot } from './fixture.ts';
import { BASE_OPTIONS } from './scenarios.ts';

configureLogging({ write: () => undefined });

interface Call {
  readonly file: string;
  readonly args: readonly string[];
  readonly input?: string | undefined;
}

/** A tiny model of the tools: chains per table, inserted rules, restore inputs. */
class FakeTools {
  readonly calls: Call[] = [];
  readonly chains = new Map<string, Set<string>>([
    ['mangle', new Set()],
    ['nat', new Set()],
    ['filter', new Set()],
  ]);
  readonly rules = new Set<string>();
  failRestore = false;
  failSave = false;
  /** Awaited by every restore before it applies anything (to interleave a canary check). */
  restoreGate: Promise<void> | undefined;
  liberal = '0';
  addrs: unknown[] = [];

  run = (file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> => {
    // An iterable input can be read once: the whole text, once.
    const input = inputText(options?.input);
    this.calls.push({
      file,
      args,
      input: options?.input === undefined ? undefined : input,
    });
    const fail = (code: number, stderr: string): Promise<ExecResult> =>
      Promise.reject(new ExecError([file, ...args].join(' '), code, '', stderr, `exit status ${code}`));
    const ok = (stdout = ''): Promise<ExecResult> => Promise.resolve({ stdout, stderr: '', code: 0 });
    if (file === 'sysctl') return args[0] === '-n' ? ok(`${this.liberal}\n`) : ok();
    if (file === 'ip') return ok(JSON.stringify(this.addrs));
    if (file.endsWith('-restore')) {
      if (this.restoreGate) return this.restoreGate.then(() => this.restoreNow(file, input));
      return this.restoreNow(file, input);
    }
    if (file.endsWith('-save')) {
      if (this.failSave) return fail(4, 'iptables-save: timed out');
      // `-t TABLE` dumps one table; no -t dumps every table, with the rules we inserted.
      const tables = args.includes('-t') ? [args[args.indexOf('-t') + 1] ?? ''] : [...this.chains.keys()];
      const dump = tables.flatMap((table) => [
        `*${table}`,
        ...[...(this.chains.get(table) ?? [])].map((c) => `:${c} - [0:0]`),
        ...[...this.rules]
          .filter((r) => r.startsWith(`${table} `))
          .map((r) => `-A ${r.slice(table.length + 1)}`),
        'COMMIT',
      ]);
      return ok([...dump, ''].join('\n'));
    }
    if (args.includes('--version')) return ok('iptables v1.8.9 (legacy)\n');
    const table = args[args.indexOf('-t') + 1] ?? '';
    const chains = this.chains.get(table)!;
    const op = args.find((a) => ['-N', '-C', '-I', '-S'].includes(a));
    const chain = args[args.indexOf(op ?? '') + 1] ?? '';
    const rule = `${table} ${args.slice(args.indexOf(op ?? '') + 1).join(' ')}`;
    switch (op) {
      case '-N':
        if (chains.has(chain)) return fail(1, 'Chain already exists.');
        chains.add(chain);
        return ok();
      case '-S':
        return chains.has(chain) ? ok() : fail(1, 'No chain/target/match by that name.');
      case '-C':
        return this.rules.has(rule) ? ok() : fail(1, 'Bad rule');
      case '-I':
        this.rules.add(rule);
        return ok();
      default:
        return fail(2, `unexpected ${args.join(' ')}`);
    }
  };

  private restoreNow(file: string, input: string): Promise<ExecResult> {
    if (this.failRestore) {
      return Promise.reject(new ExecError(file, 1, '', `${file}: line 3 failed\n`, 'exit status 1'));
    }
    // Apply chain declarations and deletions (enough for stale detection) and inserted rules.
    let table = '';
    for (const line of input.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1);
      else if (line.startsWith(':')) this.chains.get(table)?.add(line.slice(1, line.indexOf(' ')));
      else if (line.startsWith('-X ')) this.chains.get(table)?.delete(line.slice(3));
      else if (line.startsWith('-I ')) this.rules.add(`${table} ${line.slice(3).replaceAll('"', '')}`);
    }
    return Promise.resolve({ stdout: '', stderr: '', code: 0 });
  }

  /** Tools run since call number `from`, as `file` or `file all` / `file table` for saves. */
  since(from: number): string[] {
    return this.calls
      .slice(from)
      .map((c) =>
        c.file.endsWith('-save') ? `${c.file} ${c.args.includes('-t') ? 'table' : 'all'}` : c.file,
      );
  }

  restores(): Call[] {
    return this.calls.filter((c) => c.file.endsWith('-restore'));
  }
}

function options(extra: Partial<IptablesProxierOptions> = {}): IptablesProxierOptions {
  const { randomFully: _r, nfacct: _n, conntrackInvalidDrop: _c, ...base } = BASE_OPTIONS;
  return { ...base, backend: 'legacy', ...extra };
}

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
const other = servicePortState({
  name: 'other',
  clusterIP: '10.96.0.11',
  port: 80,
  endpoints: [{ ip: '10.244.1.6', port: 80 }],
});

test('first sync is full: one read, one restore of what is missing, one restore of the rules', async () => {
  const tools = new FakeTools();
  const proxier = createIptablesProxier(options(), { run: tools.run });
  // Before the first sync there is no canary to ask about; the first sync is full regardless.
  assert.equal(await proxier.rulesIntact(), true);
  const result = await proxier.sync({ snapshot: snapshot([web]), full: false });
  assert.equal(result.full, true);
  assert.equal(proxier.mode, 'iptables');
  assert.deepEqual(proxier.info(), {
    backend: 'legacy',
    randomFully: true,
    conntrackInvalidDrop: true,
    localhostNodePorts: true,
  });
  // route_localnet is set (it read 0) before anything else is written.
  assert.ok(
    tools.calls.some((c) => c.file === 'sysctl' && c.args.includes('net.ipv4.conf.all.route_localnet=1')),
  );
  for (const table of ['mangle', 'nat', 'filter'])
    assert.ok(tools.chains.get(table)!.has('KUBE-PROXY-CANARY'));
  assert.ok(tools.calls.every((c) => !c.file.startsWith('iptables') || c.file.startsWith('iptables-legacy')));
  // One read of every table, then what is missing in one small restore (no -N/-C/-I calls),
  // in upstream's order: each jump is prepended, so INPUT ends up holding them reversed.
  assert.deepEqual(
    tools.since(0).filter((c) => c.startsWith('iptables')),
    [
      'iptables-legacy', // --version
      'iptables-legacy-save all',
      'iptables-legacy-restore',
      'iptables-legacy-restore',
    ],
  );
  const [base, restore] = tools.restores() as [Call, Call];
  assert.deepEqual(base.args, ['-w', '5', '-W', '100000', '--noflush', '--counters']);
  assert.equal(
    base.input,
    [
      '*mangle',
      ':KUBE-PROXY-CANARY - [0:0]',
      'COMMIT',
      '*nat',
      ':KUBE-PROXY-CANARY - [0:0]',
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-POSTROUTING - [0:0]',
      '-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
      'COMMIT',
      '*filter',
      ':KUBE-PROXY-CANARY - [0:0]',
      ':KUBE-EXTERNAL-SERVICES - [0:0]',
      ':KUBE-NODEPORTS - [0:0]',
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-FORWARD - [0:0]',
      ':KUBE-PROXY-FIREWALL - [0:0]',
      ':KUBE-FIREWALL - [0:0]',
      '-I INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
      '-I FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
      '-I INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
      '-I FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-I OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-I FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
      '-I INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      '-I OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      '-I FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      '-I INPUT -j KUBE-FIREWALL',
      '-I OUTPUT -j KUBE-FIREWALL',
      'COMMIT',
      '',
    ].join('\n'),
  );
  assert.equal(restore.file, 'iptables-legacy-restore');
  assert.deepEqual(restore.args, ['-w', '5', '-W', '100000', '--noflush', '--counters']);
  const expected = renderIptables({ snapshot: snapshot([web]), full: true, options: BASE_OPTIONS });
  assert.equal(restore.input, expected.text);
  assert.equal(await proxier.rulesIntact(), true);
});

test('later syncs are partial, read nothing and delete stale chains from the record', async () => {
  const tools = new FakeTools();
  const proxier = createIptablesProxier(options(), { run: tools.run });
  await proxier.sync({ snapshot: snapshot([web, other]), full: true });
  const before = tools.calls.length;
  const result = await proxier.sync({
    snapshot: snapshot([web], { changed: ['default/other'] }),
    full: false,
  });
  assert.equal(result.full, false);
  assert.deepEqual(tools.since(before), ['iptables-legacy-restore']);
  const text = tools.calls.at(-1)!.input!;
  assert.doesNotMatch(text, /^:KUBE-SVC-CDGGSHYLG3RE2FKL/m, 'web is unchanged: not rewritten');
  assert.equal(text.match(/^-X KUBE-S(VC|EP)-/gm)?.length, 2);
  assert.equal(result.details?.['natChainsDeleted'], 2);
  assert.ok(![...tools.chains.get('nat')!].some((c) => c.startsWith('KUBE-SVC-') && !text.includes(c)));
  // A full request is honoured even when nothing failed.
  assert.equal((await proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: true })).full, true);
});

test('a failed restore throws with the tool output and input context; the next sync is full', async () => {
  const tools = new FakeTools();
  const proxier = createIptablesProxier(options(), { run: tools.run });
  await proxier.sync({ snapshot: snapshot([web]), full: true });
  tools.failRestore = true;
  await assert.rejects(proxier.sync({ snapshot: snapshot([web, other]), full: false }), (error: unknown) => {
    assert.ok(error instanceof RestoreError);
    assert.equal(error.line, 3);
    assert.match(
      error.message,
      /^iptables-legacy-restore failed: iptables-legacy-restore: line 3 failed\ninput around line 3:\n/,
    );
    assert.match(
      error.message,
      /\n {6}2: :KUBE-SERVICES - \[0:0\]\n> {5}3: :KUBE-EXTERNAL-SERVICES - \[0:0\]\n {6}4: /,
    );
    return true;
  });
  // Our own failure is not a flushed canary; the proxier escalates the retry to full itself.
  assert.equal(await proxier.rulesIntact(), true);
  tools.failRestore = false;
  const calls = tools.calls.length;
  const retry = await proxier.sync({ snapshot: snapshot([web, other], { changed: [] }), full: false });
  assert.equal(retry.full, true);
  assert.ok(
    tools.calls.slice(calls).some((c) => c.file.endsWith('-save') && !c.args.includes('-t')),
    'jumps re-checked (one dump of every table)',
  );
});

test('a full sync after a successful one trusts the record: one restore, nothing read', async () => {
  const tools = new FakeTools();
  const proxier = createIptablesProxier(options(), { run: tools.run });
  await proxier.sync({ snapshot: snapshot([web, other]), full: true });
  const webOnly = renderIptables({ snapshot: snapshot([web]), full: true, options: BASE_OPTIONS });
  const otherChains = [...tools.chains.get('nat')!].filter(
    (c) => /^KUBE-(SVC|SEP)-/.test(c) && !webOnly.activeNatChains.has(c),
  );
  assert.equal(otherChains.length, 2);
  const calls = tools.calls.length;
  // `other` left the model and is not in changedServices (a full sync does not need it): its
  // chains are deleted although the kernel was not read.
  const result = await proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: true });
  assert.equal(result.full, true);
  assert.deepEqual(tools.since(calls), ['iptables-legacy-restore']);
  assert.equal(result.details?.['natChainsDeleted'], 2);
  for (const chain of otherChains) assert.ok(!tools.chains.get('nat')!.has(chain), chain);
  for (const chain of webOnly.activeNatChains) assert.ok(tools.chains.get('nat')!.has(chain), chain);
});

test('the first sync reads the kernel and removes stale chains an earlier run left', async () => {
  const tools = new FakeTools();
  tools.chains.get('nat')!.add('KUBE-SVC-LEFTOVER0000000').add('KUBE-SEP-LEFTOVER0000000').add('CNI-FOREIGN');
  const proxier = createIptablesProxier(options(), { run: tools.run });
  const result = await proxier.sync({ snapshot: snapshot([web]), full: false });
  assert.equal(result.full, true);
  assert.ok(tools.since(0).includes('iptables-legacy-save all'));
  assert.equal(result.details?.['natChainsDeleted'], 2);
  const nat = tools.chains.get('nat')!;
  assert.ok(!nat.has('KUBE-SVC-LEFTOVER0000000') && !nat.has('KUBE-SEP-LEFTOVER0000000'));
  assert.ok(nat.has('CNI-FOREIGN'), 'chains that are not ours stay');
});

test('the periodic full sync reads the kernel once and puts back what was changed by hand', async () => {
  const tools = new FakeTools();
  const proxier = createIptablesProxier(options(), { run: tools.run });
  await proxier.sync({ snapshot: snapshot([web]), full: true });
  const removed = [...tools.rules].find((r) => r.includes('KUBE-SERVICES') && r.startsWith('nat PREROUTING'));
  assert.ok(removed);
  tools.rules.delete(removed);
  tools.chains.get('nat')!.add('KUBE-SEP-BYHAND0000000000');
  // A full sync that trusts the record does not notice...
  let calls = tools.calls.length;
  await proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: true });
  assert.deepEqual(tools.since(calls), ['iptables-legacy-restore']);
  assert.ok(!tools.rules.has(removed));
  // ...the periodic one does, with one read of every table.
  calls = tools.calls.length;
  const result = await proxier.sync({
    snapshot: snapshot([web], { changed: [] }),
    full: true,
    periodic: true,
  });
  assert.equal(tools.since(calls).filter((c) => c.endsWith('-save all')).length, 1);
  assert.equal(tools.since(calls).filter((c) => c.includes('-save')).length, 1);
  assert.ok(tools.rules.has(removed), 'jump rule put back');
  assert.equal(
    tools.restores().at(-2)?.input,
    '*nat\n-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\nCOMMIT\n',
  );
  assert.equal(result.details?.['natChainsDeleted'], 1);
  assert.ok(!tools.chains.get('nat')!.has('KUBE-SEP-BYHAND0000000000'));
  // `periodic` on a partial request means nothing: partial syncs never check the jumps.
  calls = tools.calls.length;
  await proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: false, periodic: true });
  assert.deepEqual(tools.since(calls), ['iptables-legacy-restore']);
});

test('a vanished canary forces a full sync', async () => {
  const tools = new FakeTools();
  const proxier = createIptablesProxier(options(), { run: tools.run });
  await proxier.sync({ snapshot: snapshot([web]), full: true });
  assert.equal(await proxier.rulesIntact(), true);
  for (const chains of tools.chains.values()) chains.clear();
  tools.rules.clear();
  assert.equal(await proxier.rulesIntact(), false);
  const calls = tools.calls.length;
  const result = await proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: false });
  assert.equal(result.full, true);
  assert.ok(tools.since(calls).includes('iptables-legacy-save all'), 'the kernel is read, not the record');
  assert.ok(tools.chains.get('mangle')!.has('KUBE-PROXY-CANARY'));
  assert.equal([...tools.rules].length, 14, 'every jump rule put back');
});

test('a flush noticed while a sync runs: the next sync is full and reads the kernel', async () => {
  const tools = new FakeTools();
  const proxier = createIptablesProxier(options(), { run: tools.run });
  await proxier.sync({ snapshot: snapshot([web]), full: true });
  let open = (): void => undefined;
  tools.restoreGate = new Promise((resolve) => (open = resolve));
  const running = proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: false });
  // The flush happens while the partial sync's restore waits for the lock; the canary check
  // sees it before that restore (which writes no canary) completes.
  for (const chains of tools.chains.values()) chains.clear();
  tools.rules.clear();
  assert.equal(await proxier.rulesIntact(), false);
  open();
  tools.restoreGate = undefined;
  assert.equal((await running).full, false);
  const calls = tools.calls.length;
  const next = await proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: false });
  assert.equal(next.full, true);
  assert.ok(tools.since(calls).includes('iptables-legacy-save all'));
  assert.ok(tools.chains.get('nat')!.has('KUBE-PROXY-CANARY'));
});

test('nodePortAddresses CIDRs: local addresses from `ip -j addr`; IPv6 uses ip6tables', async () => {
  const tools = new FakeTools();
  tools.addrs = [
    {
      ifname: 'lo',
      addr_info: [
        { family: 'inet', local: '127.0.0.1' },
        { family: 'inet6', local: '::1' },
      ],
    },
    {
      ifname: 'eth0',
      addr_info: [
        { family: 'inet', local: '192.168.0.10' },
        { family: 'inet6', local: 'fd00:1::10' },
      ],
    },
    { ifname: 'eth1', addr_info: [{ family: 'inet', local: '10.0.0.1' }] },
  ];
  const v4 = createIptablesProxier(
    options({ nodePortAddresses: { kind: 'cidrs', cidrs: ['192.168.0.0/16', 'fd00::/8'] } }),
    {
      run: tools.run,
    },
  );
  await v4.sync({ snapshot: snapshot([web]), full: true });
  const text = tools.restores().at(-1)!.input!;
  assert.deepEqual(
    text.split('\n').filter((l) => l.includes('NOTE: this must be the last rule')),
    [
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.10 -j KUBE-NODEPORTS',
    ],
  );
  assert.equal(v4.info()?.localhostNodePorts, false, '127.0.0.0/8 not covered');
  assert.ok(!tools.calls.some((c) => c.file === 'sysctl' && c.args.includes('-w')));

  const v6tools = new FakeTools();
  v6tools.addrs = tools.addrs;
  const v6 = createIptablesProxier(
    options({
      family: 'IPv6',
      localDetector: { kind: 'none' },
      nodePortAddresses: { kind: 'cidrs', cidrs: ['fd00::/8', '::1/128'] },
    }),
    { run: v6tools.run },
  );
  const v6web = servicePortState({
    name: 'w',
    clusterIP: 'fd00:96::1',
    port: 80,
    endpoints: [{ ip: 'fd00:10::1', port: 80 }],
  });
  await v6.sync({ snapshot: snapshot([v6web], { family: 'IPv6' }), full: true });
  assert.ok(
    v6tools.calls
      .filter((c) => c.file.includes('tables'))
      .every((c) => c.file.startsWith('ip6tables-legacy')),
  );
  assert.match(v6tools.restores().at(-1)!.input!, /-d fd00:1::10 -j KUBE-NODEPORTS\nCOMMIT/);
  await assert.rejects(v6.sync({ snapshot: snapshot([web]), full: true }), /got a IPv4 snapshot/);
});

test('tcp_be_liberal set: no INVALID drop', async () => {
  const tools = new FakeTools();
  tools.liberal = '1';
  const proxier = createIptablesProxier(options(), { run: tools.run });
  await proxier.sync({ snapshot: snapshot([web]), full: true });
  assert.equal(proxier.info()?.conntrackInvalidDrop, false);
  assert.doesNotMatch(tools.restores().at(-1)!.input!, /INVALID/);
});

test('without a record (the kernel read failed), large clusters retry the scan once per syncPeriod', async () => {
  const tools = new FakeTools();
  let now = 0;
  const proxier = createIptablesProxier(options({ largeClusterThreshold: 1, syncPeriodMs: 30_000 }), {
    run: tools.run,
    now: () => now,
  });
  const saves = (): number => tools.calls.filter((c) => c.file.endsWith('-save')).length;
  tools.failSave = true;
  // The dump of every table fails (jumps then checked one by one), and so does the nat scan.
  await proxier.sync({ snapshot: snapshot([web]), full: true });
  assert.equal(saves(), 2);
  assert.ok(tools.chains.get('nat')!.has('KUBE-PROXY-CANARY'));
  // Without the dump every piece is checked and created one by one, as upstream does.
  assert.equal(tools.calls.filter((c) => c.args.includes('-C')).length, 14);
  assert.equal(tools.rules.size, 14);
  tools.failSave = false;
  now = 10_000;
  await proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: false });
  assert.equal(saves(), 2);
  now = 40_001;
  await proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: false });
  assert.equal(saves(), 3);
  // That scan gave a record: no more reads.
  now = 80_000;
  await proxier.sync({ snapshot: snapshot([web], { changed: [] }), full: false });
  assert.equal(saves(), 3);
});

test('invalid options are refused up front, naming the field', () => {
  assert.throws(
    () => createIptablesProxier(options({ localDetector: { kind: 'bridge', iface: 'br0 -j ACCEPT' } })),
    /localDetector.iface: "br0 -j ACCEPT" is not an interface name/,
  );
  assert.throws(() => createIptablesProxier(options({ masqueradeBit: 40 })), /masqueradeBit: 40/);
  assert.throws(
    () => createIptablesProxier(options({ nodePortAddresses: { kind: 'cidrs', cidrs: ['10.0.0.0/33'] } })),
    /nodePortAddresses.cidrs/,
  );
});

test('backend choice: override, hints, rule counts (fake saves)', async () => {
  const saves: Record<string, string> = {};
  const run = (file: string, args: readonly string[]): Promise<ExecResult> => {
    const key = `${file} ${args.join(' ')}`.trim();
    const out = saves[key];
    return out === undefined
      ? Promise.reject(new Error('no such tool'))
      : Promise.resolve({ stdout: out, stderr: '', code: 0 });
  };
  assert.deepEqual(await chooseIptablesBackend(run, {}), {
    backend: 'nft',
    reason: 'no rules in either backend',
  });
  saves['iptables-legacy-save'] = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n';
  assert.equal((await chooseIptablesBackend(run, {})).backend, 'legacy');
  saves['ip6tables-nft-save -t mangle'] = '*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n';
  assert.equal((await chooseIptablesBackend(run, {})).backend, 'nft');
  assert.equal(
    (await chooseIptablesBackend(run, { KUBE_PROXY_IPTABLES_BACKEND: 'legacy' })).backend,
    'legacy',
  );
  assert.equal(supportsRandomFully('iptables v1.8.9 (nf_tables)'), true);
  assert.equal(supportsRandomFully('iptables v1.6.2'), true);
  assert.equal(supportsRandomFully('iptables v1.6.1'), false);
  assert.equal(supportsRandomFully('iptables v1.4.21'), false);
});

test('cleanup text: flush and delete ours, unhook every jump into them, keep the rest', () => {
  const saved = parseSave(
    [
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-MARK-MASQ - [0:0]',
      ':KUBE-SVC-AAAA - [0:0]',
      ':CNI-X - [0:0]',
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A PREROUTING -m comment --comment "says -j KUBE-SVC-AAAA" -j ACCEPT',
      '-A CNI-X -j KUBE-MARK-MASQ',
      '-A KUBE-SERVICES -j KUBE-SVC-AAAA',
      'COMMIT',
      '',
    ].join('\n'),
  ).get('nat')!;
  assert.equal(
    cleanupTableText(IPTABLES_OWNER, 'nat', saved, []),
    [
      '*nat',
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-SVC-AAAA - [0:0]',
      '-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-X KUBE-SERVICES',
      '-X KUBE-SVC-AAAA',
      'COMMIT',
      '',
    ].join('\n'),
  );
  assert.equal(
    cleanupTableText(
      IPTABLES_OWNER,
      'mangle',
      parseSave('*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n').get('mangle')!,
      [],
    ),
    undefined,
  );
});
