// The IPVS mode's integrity check (integrity.ts): cheap looks at what a flush or a clear by
// someone else would break, compared with the record of the last sync.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  findTampering,
  listServerArgs,
  parseSetCounts,
  sampleServers,
  setCountProblem,
} from '../../../src/dataplane/ipvs/integrity.ts';
import type { KernelVirtualServer } from '../../../src/dataplane/ipvs/ipvsadm.ts';
import { iptablesTools } from '../../../src/dataplane/xtables/index.ts';
import { ExecError, type ExecResult } from '../../../src/util/exec.ts';

const IPSET_TERSE = [
  'Name: KUBE-CLUSTER-IP',
  'Type: hash:ip,port',
  'Revision: 6',
  'Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x8a5ba8ec',
  'Size in memory: 456',
  'References: 2',
  'Number of entries: 2',
  '',
  'Name: KUBE-LOOP-BACK',
  'Type: hash:ip,port,ip',
  'Revision: 6',
  'Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1c0ffee0',
  'Size in memory: 256',
  'References: 1',
  'Number of entries: 0',
  '',
].join('\n');

const vs = (
  ip: string,
  port: number,
  protocol: KernelVirtualServer['protocol'] = 'TCP',
): KernelVirtualServer => ({
  family: ip.includes(':') ? 'IPv6' : 'IPv4',
  ip,
  port,
  protocol,
  scheduler: 'rr',
  persistentSeconds: 0,
  flags: [],
  realServers: [],
});

const SETS = new Map([
  ['KUBE-CLUSTER-IP', new Set(['10.96.0.10,tcp:80', '10.96.0.11,udp:53'])],
  ['KUBE-LOOP-BACK', new Set<string>()],
]);
const SERVERS = new Map([
  ['10.96.0.10:80/TCP', vs('10.96.0.10', 80)],
  ['10.96.0.11:53/UDP', vs('10.96.0.11', 53, 'UDP')],
]);

test('ipset headers give each set its member count; a missing or resized set is named', () => {
  const counts = parseSetCounts(IPSET_TERSE);
  assert.deepEqual(
    [...counts],
    [
      ['KUBE-CLUSTER-IP', 2],
      ['KUBE-LOOP-BACK', 0],
    ],
  );
  assert.equal(setCountProblem(SETS, counts), undefined);
  assert.equal(
    setCountProblem(SETS, new Map([...counts, ['KUBE-CLUSTER-IP', 0]])),
    'ipset KUBE-CLUSTER-IP holds 0 members, our last sync left 2',
  );
  assert.equal(setCountProblem(SETS, new Map([['KUBE-CLUSTER-IP', 2]])), 'ipset KUBE-LOOP-BACK is gone');
});

test('one virtual server is listed by protocol and address, IPv6 in brackets', () => {
  assert.deepEqual(listServerArgs(vs('10.96.0.10', 80)), ['-L', '-n', '-t', '10.96.0.10:80']);
  assert.deepEqual(listServerArgs(vs('fd00::10', 53, 'UDP')), ['-L', '-n', '-u', '[fd00::10]:53']);
  assert.deepEqual(listServerArgs(vs('10.96.0.90', 99, 'SCTP')), [
    '-L',
    '-n',
    '--sctp-service',
    '10.96.0.90:99',
  ]);
});

test('samples are distinct recorded virtual servers, none from an empty record', () => {
  assert.deepEqual(
    sampleServers(new Map(), 2, () => 0),
    [],
  );
  assert.deepEqual(
    sampleServers(SERVERS, 2, () => 0),
    [vs('10.96.0.10', 80)],
  );
  let n = 0;
  assert.equal(sampleServers(SERVERS, 2, () => [0, 0.9][n++] ?? 0).length, 2);
});

/** A host whose pieces can each be broken. */
function host(broken: 'link' | 'address' | 'jump' | 'set' | 'server' | undefined) {
  const calls: string[] = [];
  const ok = (stdout = ''): Promise<ExecResult> => Promise.resolve({ stdout, stderr: '', code: 0 });
  const fail = (file: string) => Promise.reject(new ExecError(file, 1, '', 'no', 'exit status 1'));
  const run = (file: string, args: readonly string[]): Promise<ExecResult> => {
    calls.push([file, ...args].join(' '));
    if (file === 'ip') {
      if (broken === 'link') return fail(file);
      // `ip -o addr show dev kube-ipvs0 to ADDRESS/32` prints the address's line, nothing when unbound.
      return ok(
        args.includes('to') && broken !== 'address' ? '5: kube-ipvs0    inet 10.96.0.10/32 ...\n' : '',
      );
    }
    if (file === 'iptables-nft') return broken === 'jump' && args.includes('PREROUTING') ? fail(file) : ok();
    if (file === 'ipset')
      return ok(broken === 'set' ? IPSET_TERSE.replace('entries: 2', 'entries: 0') : IPSET_TERSE);
    if (file === 'ipvsadm') return broken === 'server' ? fail(file) : ok();
    return fail(file);
  };
  return { run, calls };
}

test('findTampering: nothing changed, then each piece broken in turn is named', async () => {
  const tools = iptablesTools('nft', 'IPv4');
  const record = { servers: SERVERS, sets: SETS, bound: ['10.96.0.10', '10.96.0.11'] };
  const intact = host(undefined);
  assert.equal(await findTampering(intact.run, tools, 'IPv4', record, () => 0), undefined);
  assert.deepEqual(intact.calls, [
    'ip -o addr show dev kube-ipvs0 to 10.96.0.10/32',
    'iptables-nft -w 5 -t nat -C OUTPUT -m comment --comment kubernetes service portals -j KUBE-SERVICES',
    'iptables-nft -w 5 -t nat -C PREROUTING -m comment --comment kubernetes service portals -j KUBE-SERVICES',
    'ipset list -t',
    'ipvsadm -L -n -t 10.96.0.10:80',
  ]);
  const expected = {
    link: 'kube-ipvs0 is gone',
    address: '10.96.0.10 is no longer bound to kube-ipvs0',
    jump: 'the jump from nat PREROUTING to KUBE-SERVICES is gone',
    set: 'ipset KUBE-CLUSTER-IP holds 0 members, our last sync left 2',
    server: 'virtual server TCP 10.96.0.10:80 is gone from the IPVS table',
  } as const;
  for (const [broken, message] of Object.entries(expected) as [keyof typeof expected, string][])
    assert.equal(await findTampering(host(broken).run, tools, 'IPv4', record, () => 0), message);
});

test('findTampering: with no address bound, the link itself is looked at', async () => {
  const tools = iptablesTools('nft', 'IPv4');
  const record = { servers: new Map(), sets: new Map(), bound: [] };
  const intact = host(undefined);
  assert.equal(await findTampering(intact.run, tools, 'IPv4', record, () => 0), undefined);
  assert.equal(intact.calls[0], 'ip link show kube-ipvs0');
  assert.equal(await findTampering(host('link').run, tools, 'IPv4', record, () => 0), 'kube-ipvs0 is gone');
});
