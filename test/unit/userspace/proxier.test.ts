// The userspace proxier against a fake data path (ListenerPool) and a fake tool runner: which
// listeners open, update and close, what one sync restores, and what happens when a port cannot
// be opened.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createUserspaceProxier,
  softOpenFilesLimit,
  type UserspaceProxierOptions,
} from '../../../src/dataplane/userspace/proxier.ts';
import { ExecError, inputText, type ExecOptions, type ExecResult } from '../../../src/util/exec.ts';
import { servicePortState, snapshot, type ServiceSpec } from '../iptables/fixture.ts';
import { FakePool } from './fake-pool.ts';

class FakeTools {
  readonly restores: string[] = [];
  readonly commands: string[] = [];
  events: string[] | undefined;
  failRestore = false;
  canary = true;
  run = (file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> => {
    const ok = (stdout = ''): Promise<ExecResult> => Promise.resolve({ stdout, stderr: '', code: 0 });
    if (file.endsWith('-restore')) {
      if (this.failRestore) {
        return Promise.reject(new ExecError(file, 1, '', 'iptables-restore: line 3 failed', 'exit status 1'));
      }
      const text = inputText(options?.input);
      this.restores.push(text);
      this.events?.push(`restore`);
      return ok();
    }
    if (file.endsWith('-save'))
      return ok('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n');
    this.commands.push([file, ...args].join(' '));
    if (file === 'conntrack') {
      return Promise.reject(
        new ExecError('conntrack', 1, '', '0 flow entries have been deleted.', 'exit status 1'),
      );
    }
    if (args.includes('-S'))
      return this.canary ? ok() : Promise.reject(new ExecError(file, 1, '', '', 'no chain'));
    return ok();
  };
}

const OPTIONS: UserspaceProxierOptions = {
  family: 'IPv4',
  listenIP: '0.0.0.0',
  hostIP: '192.168.0.10',
  localDetector: { kind: 'cidr', cidr: '10.244.0.0/16' },
  isNodeAddress: (ip) => ip === '192.168.0.10' || ip.startsWith('127.'),
  portRange: undefined,
  backend: 'nft',
};

const web = (extra: Partial<ServiceSpec> = {}) =>
  servicePortState({
    name: 'web',
    portName: 'http',
    clusterIP: '10.96.0.10',
    port: 80,
    nodePort: 30080,
    endpoints: [{ ip: '10.244.1.2', port: 8080, local: true }],
    ...extra,
  });
const dns = (extra: Partial<ServiceSpec> = {}) =>
  servicePortState({
    name: 'dns',
    portName: 'dns',
    protocol: 'UDP',
    clusterIP: '10.96.0.53',
    port: 53,
    ...extra,
  });

function setUp(options: Partial<UserspaceProxierOptions> = {}, limits?: string) {
  const pool = new FakePool();
  const tools = new FakeTools();
  const proxier = createUserspaceProxier({ ...OPTIONS, ...options }, pool, {
    run: tools.run,
    readLimits: () => limits,
    random: () => 0,
  });
  return { pool, tools, proxier };
}

describe('userspace proxier', () => {
  test('start ensures the jumps and flushes the five chains', async () => {
    const { tools, proxier } = setUp();
    await proxier.start();
    assert.equal(tools.restores.length, 2);
    assert.match(
      tools.restores[0]!,
      /^-I PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER$/m,
    );
    assert.match(
      tools.restores[0]!,
      /^-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-HOST$/m,
    );
    assert.match(
      tools.restores[0]!,
      /^-I INPUT -m comment --comment "Ensure that non-local NodePort traffic can flow" -j KUBE-NODEPORT-NON-LOCAL$/m,
    );
    assert.match(tools.restores[0]!, /^:KUBE-PROXY-USERSPACE-CANARY - \[0:0\]$/m);
    assert.doesNotMatch(tools.restores[1]!, /^-A /m);
    assert.match(tools.restores[1]!, /^:KUBE-PORTALS-CONTAINER - \[0:0\]$/m);
  });

  test('one listener per frontend kind, rules pointing at each, routers from the plan', async () => {
    const { pool, tools, proxier } = setUp();
    await proxier.start();
    const result = await proxier.sync({ snapshot: snapshot([web(), dns()]), full: true });
    assert.deepEqual(pool.events, [
      'open IPv4|default/dns:dns/UDP|cluster IP UDP 0.0.0.0:41000',
      'open IPv4|default/web:http/TCP|cluster IP TCP 0.0.0.0:41001',
      'open IPv4|default/web:http/TCP|node port TCP 0.0.0.0:41002',
    ]);
    const text = tools.restores.at(-1)!;
    assert.match(
      text,
      /^-A KUBE-PORTALS-CONTAINER -d 10\.96\.0\.53\/32 -p udp .* -j REDIRECT --to-ports 41000$/m,
    );
    assert.match(
      text,
      /^-A KUBE-PORTALS-HOST -d 10\.96\.0\.10\/32 -p tcp .* -j DNAT --to-destination 192\.168\.0\.10:41001$/m,
    );
    assert.match(text, /^-A KUBE-NODEPORT-CONTAINER -p tcp .* --dport 30080 -j REDIRECT --to-ports 41002$/m);
    assert.match(
      text,
      /^-A KUBE-NODEPORT-NON-LOCAL -p tcp .* --dport 41002 -m state --state NEW -j ACCEPT$/m,
    );
    assert.deepEqual(result.counts, { listeners: 3, natRules: 6, filterRules: 1, openFailures: 0 });
    // No endpoints: every client is refused; with endpoints, the plan's.
    assert.deepEqual(pool.route('IPv4|default/dns:dns/UDP|cluster IP', '10.244.1.9'), { kind: 'reject' });
    const route = pool.route('IPv4|default/web:http/TCP|node port', '192.0.2.1');
    assert.equal(route.kind === 'endpoints' ? route.endpoints[0]?.endpoint : route.kind, '10.244.1.2:8080');
    assert.deepEqual(pool.listeners.get('IPv4|default/web:http/TCP|cluster IP')?.balancer, {
      policy: 'round-robin',
      affinitySeconds: 0,
    });
  });

  test('changes keep the listener and update its router; removed ones close after the rules are gone', async () => {
    const { pool, tools, proxier } = setUp();
    await proxier.sync({ snapshot: snapshot([web(), dns()]), full: true });
    const ports = proxier.listeners();
    pool.events.length = 0;
    // New endpoints and affinity, a changed service port number: same listener.
    const changed = web({ port: 8080, affinitySeconds: 60, endpoints: [{ ip: '10.244.2.2', port: 8080 }] });
    tools.events = pool.events;
    await proxier.sync({ snapshot: snapshot([changed]), full: false });
    assert.deepEqual(pool.events, [
      'update IPv4|default/web:http/TCP|cluster IP',
      'update IPv4|default/web:http/TCP|node port',
      'restore',
      'close IPv4|default/dns:dns/UDP|cluster IP',
    ]);
    assert.equal(
      proxier.listeners().get('IPv4|default/web:http/TCP|cluster IP'),
      ports.get('IPv4|default/web:http/TCP|cluster IP'),
    );
    assert.equal(pool.listeners.get('IPv4|default/web:http/TCP|node port')?.balancer.affinitySeconds, 60);
    // A partial write: only the changed and removed listeners' rules, no chain flushed.
    const delta = tools.restores.at(-1)!;
    assert.match(
      delta,
      /^-A KUBE-PORTALS-CONTAINER -d 10\.96\.0\.10\/32 -p tcp .* --dport 8080 -j REDIRECT/m,
    );
    assert.match(delta, /^-D KUBE-PORTALS-CONTAINER -d 10\.96\.0\.10\/32 -p tcp .* --dport 80 -j REDIRECT/m);
    assert.match(delta, /^-D KUBE-PORTALS-CONTAINER -d 10\.96\.0\.53\/32/m);
    assert.doesNotMatch(delta, /^-A .*10\.96\.0\.53/m);
    assert.doesNotMatch(delta, /^:/m, 'no chain is declared (that would flush it)');
    assert.doesNotMatch(delta, /30080/, 'the unchanged node port rules are not touched');
    // The closed UDP listener's redirected flows are forgotten.
    assert.deepEqual(
      tools.commands.filter((c) => c.startsWith('conntrack')),
      [`conntrack -D -f ipv4 -p udp --reply-port-src ${ports.get('IPv4|default/dns:dns/UDP|cluster IP')}`],
    );
    // Unchanged state objects: nothing to update.
    pool.events.length = 0;
    const same = snapshot([changed]);
    await proxier.sync({ snapshot: same, full: false });
    assert.deepEqual(pool.events, [], 'nothing changed: no restore at all');
  });

  test('a frontend that cannot be opened is logged and skipped; every other one is proxied', async () => {
    const { pool, tools, proxier } = setUp();
    pool.failKeys.add('IPv4|default/web:http/TCP|node port');
    const result = await proxier.sync({ snapshot: snapshot([web(), dns()]), full: true });
    assert.equal(result.counts.openFailures, 1);
    assert.equal(result.counts.listeners, 2);
    assert.doesNotMatch(tools.restores.at(-1)!, /30080/);
    // Tried again next sync.
    pool.failKeys.clear();
    const again = await proxier.sync({ snapshot: snapshot([web(), dns()]), full: false });
    assert.equal(again.counts.openFailures, 0);
    assert.match(tools.restores.at(-1)!, /--dport 30080/);
  });

  test('--proxy-port-range: ports from the range, busy ones skipped, exhaustion fails only that frontend', async () => {
    const { pool, proxier } = setUp({ portRange: { base: 45000, size: 3 } });
    pool.busy.add(45000);
    const result = await proxier.sync({
      snapshot: snapshot([web(), dns()]),
      full: true,
    });
    assert.deepEqual([...proxier.listeners().values()].sort(), [45001, 45002]);
    assert.equal(result.counts.openFailures, 1);
    // A port comes back when its listener closes.
    await proxier.sync({ snapshot: snapshot([web({ nodePort: 0 })]), full: false });
    await proxier.sync({ snapshot: snapshot([web()]), full: false });
    assert.equal(proxier.listeners().size, 2);
  });

  test('SCTP service ports are not proxied', async () => {
    const { pool, proxier } = setUp();
    const sctp = servicePortState({ name: 's', protocol: 'SCTP', clusterIP: '10.96.0.90', port: 9999 });
    const result = await proxier.sync({ snapshot: snapshot([sctp]), full: true });
    assert.equal(result.counts.listeners, 0);
    assert.equal(pool.listeners.size, 0);
  });

  test('a failed restore throws, keeps listeners, and the next sync is full', async () => {
    const { tools, proxier } = setUp();
    await proxier.start();
    tools.failRestore = true;
    await assert.rejects(proxier.sync({ snapshot: snapshot([web()]), full: false }), /iptables-restore/);
    assert.equal(proxier.listeners().size, 2);
    tools.failRestore = false;
    const result = await proxier.sync({ snapshot: snapshot([web()]), full: false });
    assert.equal(result.full, true);
  });

  test('a vanished canary forces a full sync; close closes every listener and keeps the rules', async () => {
    const { pool, tools, proxier } = setUp();
    await proxier.start();
    await proxier.sync({ snapshot: snapshot([web()]), full: true });
    assert.equal(await proxier.rulesIntact(), true);
    tools.canary = false;
    assert.equal(await proxier.rulesIntact(), false);
    const restores = tools.restores.length;
    await proxier.close();
    assert.deepEqual(pool.events.slice(-2).sort(), [
      'close IPv4|default/web:http/TCP|cluster IP',
      'close IPv4|default/web:http/TCP|node port',
    ]);
    assert.equal(proxier.listeners().size, 0);
    assert.equal(tools.restores.length, restores, 'no rule is touched');
  });

  test('a specific bind address: DNAT to it instead of REDIRECT', async () => {
    const { pool, tools, proxier } = setUp({ listenIP: '192.168.0.10' });
    await proxier.sync({ snapshot: snapshot([web()]), full: true });
    assert.match(pool.events[0]!, / 192\.168\.0\.10:41000$/);
    assert.match(
      tools.restores.at(-1)!,
      /^-A KUBE-PORTALS-CONTAINER .* -j DNAT --to-destination 192\.168\.0\.10:41000$/m,
    );
  });

  test('the open-files limit is read from /proc/self/limits', () => {
    const limits =
      'Limit                     Soft Limit           Hard Limit           Units     \n' +
      'Max open files            1024                 524288               files     \n';
    assert.equal(softOpenFilesLimit(limits), 1024);
    assert.equal(
      softOpenFilesLimit('Max open files            unlimited            unlimited            files\n'),
      undefined,
    );
  });
});
