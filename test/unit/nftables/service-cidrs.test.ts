// The nftables mode's ServiceCIDR and node-port-address handling: the cluster-ips-check drop
// rule follows the snapshot's service CIDRs, and @nodeport-ips follows the host's addresses,
// both through partial syncs that leave the rest of the table alone.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { render, type NftState } from '../../../src/dataplane/nftables/render.ts';
import type { NftablesOptions } from '../../../src/dataplane/nftables/options.ts';
import { createNftablesProxier, type Runner } from '../../../src/dataplane/nftables/proxier.ts';
import { applyScript, dump, emptyTable, type FakeTable } from '../../../src/dataplane/nftables/fake.ts';
import { traceNftables } from '../../../src/dataplane/nftables/tracer.ts';
import type { ProxySnapshot } from '../../../src/model/types.ts';
import { inputText, type ExecOptions } from '../../../src/util/exec.ts';
import { OPTIONS_V4, OPTIONS_V6, port, snapshot } from './fixtures.ts';

const web = port({ name: 'web', clusterIP: '10.96.0.10', port: 80, endpoints: [{ ip: '10.244.1.5' }] });
const withCIDRs = (cidrs: readonly string[]): ProxySnapshot => snapshot([web], { serviceCIDRs: cidrs });

class Session {
  state: NftState | undefined;
  table: FakeTable = emptyTable('ip kube-proxy');
  sync(snap: ProxySnapshot, options: NftablesOptions = OPTIONS_V4, full = false): string {
    const result = render(this.state, snap, options, full);
    this.state = result.next;
    this.table = applyScript(this.table, result.script);
    return result.script;
  }
  chain(name: string): string[] {
    return dump(this.table).chains[name] ?? [];
  }
  /** Where a new TCP connection from a pod on this node to dst:port ends up. */
  outcome(dst: string, port: number): string {
    const traced = traceNftables(
      this.table,
      {
        family: 'IPv4',
        protocol: 'TCP',
        sourceIP: '10.244.1.9',
        destIP: dst,
        destPort: port,
        origin: { kind: 'arriving', iif: 'veth0' },
      },
      { localAddresses: ['192.168.0.10'] },
    ).outcome;
    return traced.kind === 'endpoints' ? traced.endpoints.join(',') : traced.kind;
  }
}

describe('nftables: cluster-ips-check and the service CIDRs', () => {
  test('without service CIDRs only unused ports of cluster IPs are rejected; unallocated IPs pass', () => {
    const session = new Session();
    session.sync(withCIDRs([]), OPTIONS_V4, true);
    assert.deepEqual(session.chain('cluster-ips-check'), [
      'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
    ]);
    assert.equal(session.outcome('10.96.0.10', 80), '10.244.1.5:8080');
    assert.equal(session.outcome('10.96.0.10', 81), 'reject');
    assert.equal(session.outcome('10.96.5.5', 80), 'pass');
  });

  test('a full render drops traffic to unallocated addresses of every service CIDR, as upstream writes it', () => {
    const session = new Session();
    const script = session.sync(withCIDRs(['10.96.0.0/16', '10.100.0.0/24']), OPTIONS_V4, true);
    assert.match(
      script,
      /add rule ip kube-proxy cluster-ips-check ip daddr \{ 10\.96\.0\.0\/16, 10\.100\.0\.0\/24 \} drop comment "Drop traffic to unallocated ClusterIPs"\n/,
    );
    assert.equal(session.outcome('10.96.5.5', 80), 'drop');
    assert.equal(session.outcome('10.100.0.7', 443), 'drop');
    assert.equal(
      session.outcome('10.96.0.10', 81),
      'reject',
      'an allocated IP on a wrong port is still rejected',
    );
    assert.equal(session.outcome('10.96.0.10', 80), '10.244.1.5:8080', 'a served port is DNATed first');
    assert.equal(session.outcome('10.101.0.1', 80), 'pass', 'outside every service CIDR');
  });

  test('a partial sync rewrites only cluster-ips-check when the service CIDRs change', () => {
    const session = new Session();
    session.sync(withCIDRs(['10.96.0.0/16']), OPTIONS_V4, true);
    const added = session.sync(withCIDRs(['10.96.0.0/16', '10.100.0.0/24']));
    assert.equal(
      added,
      [
        'flush chain ip kube-proxy cluster-ips-check',
        'add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
        'add rule ip kube-proxy cluster-ips-check ip daddr { 10.96.0.0/16, 10.100.0.0/24 } drop comment "Drop traffic to unallocated ClusterIPs"',
        '',
      ].join('\n'),
    );
    assert.equal(session.outcome('10.100.0.7', 80), 'drop');
    assert.equal(session.sync(withCIDRs(['10.96.0.0/16', '10.100.0.0/24'])), '', 'unchanged: nothing to do');
    session.sync(withCIDRs([]));
    assert.equal(session.chain('cluster-ips-check').length, 1, 'all gone: only the reject rule is left');
    assert.equal(session.outcome('10.96.5.5', 80), 'pass');
    assert.equal(session.outcome('10.96.0.10', 80), '10.244.1.5:8080');
  });

  test('IPv6 uses ip6 daddr', () => {
    const session = new Session();
    session.table = emptyTable('ip6 kube-proxy');
    const v6 = port({
      name: 'web6',
      clusterIP: 'fd00:10:96::10',
      port: 80,
      endpoints: [{ ip: 'fd00:244::5' }],
    });
    const script = session.sync(
      snapshot([v6], { family: 'IPv6', serviceCIDRs: ['fd00:10:96::/112'] }),
      OPTIONS_V6,
      true,
    );
    assert.match(script, /cluster-ips-check ip6 daddr \{ fd00:10:96::\/112 \} drop comment/);
  });
});

describe('nftables: @nodeport-ips follows the host', () => {
  const withIPs = (ips: string[]): NftablesOptions => ({
    ...OPTIONS_V4,
    nodePortAddresses: { kind: 'ips', ips },
  });

  test('new node port addresses are a partial sync of @nodeport-ips, not a rebuilt table', () => {
    const session = new Session();
    session.sync(withCIDRs([]), withIPs(['192.168.0.10']), true);
    const changed = session.sync(withCIDRs([]), withIPs(['192.168.0.10', '192.168.0.11']));
    assert.equal(changed, 'add element ip kube-proxy nodeport-ips {\n\t192.168.0.11,\n}\n');
    assert.deepEqual(dump(session.table).sets['nodeport-ips'], ['192.168.0.10', '192.168.0.11']);
    const removed = session.sync(withCIDRs([]), withIPs(['192.168.0.11']));
    assert.equal(removed, 'delete element ip kube-proxy nodeport-ips {\n\t192.168.0.10,\n}\n');
    assert.deepEqual(dump(session.table).sets['nodeport-ips'], ['192.168.0.11']);
  });

  test('the proxier re-reads the addresses at every sync and logs nothing when they stay', async () => {
    let table = emptyTable('ip kube-proxy');
    const scripts: string[] = [];
    const run: Runner = (_file: string, args: readonly string[], options?: ExecOptions) => {
      if (args[0] === '--version')
        return Promise.resolve({ stdout: 'nftables v1.0.6\n', stderr: '', code: 0 });
      const text = inputText(options?.input);
      scripts.push(text);
      table = applyScript(table, text);
      return Promise.resolve({ stdout: '', stderr: '', code: 0 });
    };
    let current = ['192.168.0.10'];
    let reads = 0;
    const proxier = await createNftablesProxier(withIPs(['192.168.0.10']), {
      run,
      skipKernelCheck: true,
      nodePortIPs: () => {
        reads++;
        return current;
      },
    });
    assert.equal(proxier.followsHostAddresses, true);
    await proxier.sync({ snapshot: withCIDRs([]), full: false });
    current = ['192.168.0.10', '192.168.0.20'];
    const result = await proxier.sync({ snapshot: withCIDRs([]), full: false });
    assert.equal(result.full, false, 'an address change is a partial sync');
    assert.equal(scripts.at(-1), 'add element ip kube-proxy nodeport-ips {\n\t192.168.0.20,\n}\n');
    assert.deepEqual(dump(table).sets['nodeport-ips'], ['192.168.0.10', '192.168.0.20']);
    assert.equal(reads, 2);
    // A full sync keeps them too.
    await proxier.sync({ snapshot: withCIDRs([]), full: true });
    assert.deepEqual(dump(table).sets['nodeport-ips'], ['192.168.0.10', '192.168.0.20']);
  });

  test('match-all node ports do not follow addresses (fib daddr type local does)', async () => {
    const run: Runner = (_file: string, args: readonly string[]) =>
      Promise.resolve({ stdout: args[0] === '--version' ? 'nftables v1.0.6\n' : '', stderr: '', code: 0 });
    const proxier = await createNftablesProxier(
      { ...OPTIONS_V4, nodePortAddresses: { kind: 'all' } },
      { run, skipKernelCheck: true, nodePortIPs: () => [] },
    );
    assert.equal(proxier.followsHostAddresses, false);
  });
});
