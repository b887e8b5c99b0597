// Golden tests of the IPVS mode's pure parts against the example of modes-ipvs-userspace.md 1.14
// (upstream's output for one NodePort Service), and the pieces' edge cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desiredState, type VirtualServer } from '../../../src/dataplane/ipvs/desired.ts';
import { renderIpsetRestore, parseIpsetSave } from '../../../src/dataplane/ipvs/ipset.ts';
import { diffIpvs, parseIpvsList, parseIpvsSave, serviceLine } from '../../../src/dataplane/ipvs/ipvsadm.ts';
import { MAX_SET_NAME, SET_KEYS, setName } from '../../../src/dataplane/ipvs/names.ts';
import { parseScheduler, type IpvsOptions } from '../../../src/dataplane/ipvs/options.ts';
import { renderIpvsRules } from '../../../src/dataplane/ipvs/rules.ts';
import { endpointSlice, service } from '../../support/objects.ts';
import { modelWith, NODE } from '../conntrack/snapshot.ts';
import { node } from '../../support/objects.ts';

function exampleSnapshot() {
  const model = modelWith('IPv4', [
    service({
      name: 'web',
      type: 'NodePort',
      clusterIPs: ['10.96.0.10'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
    }),
    endpointSlice({
      service: 'web',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [
        { ip: '10.244.1.5', node: NODE },
        { ip: '10.244.2.7', node: 'node2' },
      ],
    }),
  ]);
  model.setNode(node({ name: NODE, ips: ['192.168.1.10'], podCIDRs: ['10.244.1.0/24'] }));
  return model.snapshot();
}

const OPTIONS: IpvsOptions = {
  family: 'IPv4',
  scheduler: 'rr',
  masqueradeBit: 14,
  masqueradeAll: false,
  localDetector: { kind: 'cidr', cidr: '10.244.0.0/16' },
  randomFully: true,
};

const HOST = {
  nodePortIPs: ['10.244.1.1', '192.168.1.10'],
  otherInterfaceAddresses: ['10.244.1.1', '192.168.1.10'],
};

test('the example of 1.14: virtual servers in ipvsadm -R form, always with scheduler and masquerade', () => {
  const desired = desiredState(exampleSnapshot(), OPTIONS, HOST);
  const diff = diffIpvs(new Map(), desired.virtualServers, { resetWeights: true, draining: new Set() });
  assert.equal(
    diff.text,
    [
      '-A -t 10.96.0.10:80 -s rr',
      '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 10.96.0.10:80 -r 10.244.2.7:8080 -m -w 1',
      '-A -t 10.244.1.1:30080 -s rr',
      '-a -t 10.244.1.1:30080 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 10.244.1.1:30080 -r 10.244.2.7:8080 -m -w 1',
      '-A -t 192.168.1.10:30080 -s rr',
      '-a -t 192.168.1.10:30080 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 192.168.1.10:30080 -r 10.244.2.7:8080 -m -w 1',
      '',
    ].join('\n'),
  );
  assert.deepEqual([...desired.bind], ['10.96.0.10']);
  assert.deepEqual([...desired.sets.loopBack], ['10.244.1.5,tcp:8080,10.244.1.5']);
  assert.deepEqual([...desired.sets.clusterIP], ['10.96.0.10,tcp:80']);
  assert.deepEqual([...desired.sets.nodePortTCP], ['30080']);
  assert.deepEqual([...desired.sets.ipvsIPs], ['10.96.0.10']);
});

test('the example of 1.14: the iptables-restore input, rule for rule', () => {
  const desired = desiredState(exampleSnapshot(), OPTIONS, HOST);
  assert.equal(
    renderIpvsRules({ options: OPTIONS, desired }),
    `*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000
COMMIT
*filter
:KUBE-FORWARD - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SOURCE-RANGES-FIREWALL - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-IPVS-OUT-FILTER - [0:0]
-A KUBE-SOURCE-RANGES-FIREWALL -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN
-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT
COMMIT
`,
  );
});

test('IPv6 set names: KUBE-6- prefix, cut to the 31 characters ipset allows', () => {
  const names = SET_KEYS.map((key) => setName(key, 'IPv6'));
  assert.ok(names.every((name) => name.startsWith('KUBE-6-') && name.length <= MAX_SET_NAME));
  assert.ok(names.includes('KUBE-6-LOAD-BALANCER-SOURCE-CID'));
  assert.ok(names.includes('KUBE-6-NODE-PORT-LOCAL-SCTP-HAS'));
  assert.ok(names.includes('KUBE-6-CLUSTER-IP'));
  assert.ok(names.includes('KUBE-6-IPVS-IPS'));
  assert.equal(new Set(names).size, names.length);
});

test('ipset restore: every set created (-exist input), only the difference added and deleted', () => {
  const desired = desiredState(exampleSnapshot(), OPTIONS, HOST);
  const current = parseIpsetSave(
    [
      'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536',
      'add KUBE-CLUSTER-IP 10.96.0.10,tcp:80',
      'add KUBE-CLUSTER-IP 10.96.0.99,tcp:80',
      'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535',
    ].join('\n'),
  );
  const { text, counts } = renderIpsetRestore('IPv4', desired.sets, current, false);
  assert.equal(
    text,
    [
      'add KUBE-LOOP-BACK 10.244.1.5,tcp:8080,10.244.1.5',
      'del KUBE-CLUSTER-IP 10.96.0.99,tcp:80',
      'add KUBE-NODE-PORT-TCP 30080',
      'add KUBE-IPVS-IPS 10.96.0.10',
      '',
    ].join('\n'),
  );
  assert.deepEqual(counts, { added: 3, deleted: 1 });
  const created = renderIpsetRestore('IPv6', desired.sets, undefined, true).text;
  assert.match(
    created,
    /^create KUBE-6-LOOP-BACK hash:ip,port,ip family inet6 hashsize 1024 maxelem 65536$/m,
  );
  assert.match(created, /^create KUBE-6-NODE-PORT-TCP bitmap:port range 0-65535$/m);
});

test('ipvsadm diff: only what changed; removed real servers left to graceful termination; stale services listed', () => {
  const desired = desiredState(exampleSnapshot(), OPTIONS, HOST);
  const current = parseIpvsSave(
    [
      '-A -t 10.96.0.10:80 -s wlc',
      '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 0',
      '-a -t 10.96.0.10:80 -r 10.244.9.9:8080 -m -w 1',
      '-A -t 10.244.1.1:30080 -s rr',
      '-a -t 10.244.1.1:30080 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 10.244.1.1:30080 -r 10.244.2.7:8080 -m -w 1',
      '-A -u 10.96.0.99:53 -s rr',
      '',
    ].join('\n'),
  );
  const diff = diffIpvs(current, desired.virtualServers, { resetWeights: true, draining: new Set() });
  assert.equal(
    diff.text,
    [
      '-E -t 10.96.0.10:80 -s rr',
      '-e -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 10.96.0.10:80 -r 10.244.2.7:8080 -m -w 1',
      '-A -t 192.168.1.10:30080 -s rr',
      '-a -t 192.168.1.10:30080 -r 10.244.1.5:8080 -m -w 1',
      '-a -t 192.168.1.10:30080 -r 10.244.2.7:8080 -m -w 1',
      '',
    ].join('\n'),
  );
  assert.deepEqual(
    diff.removedRealServers.map(({ vs, rs }) => `${vs.ip}:${vs.port} ${rs.ip}`),
    ['10.96.0.10:80 10.244.9.9'],
  );
  assert.deepEqual(
    diff.staleServices.map((vs) => `${vs.protocol} ${vs.ip}:${vs.port}`),
    ['UDP 10.96.0.99:53'],
  );
  // The kernel already holds the desired table: nothing to write, nothing removed.
  const fresh = diffIpvs(new Map(), desired.virtualServers, { resetWeights: false, draining: new Set() });
  const again = diffIpvs(parseIpvsSave(fresh.text), desired.virtualServers, {
    resetWeights: true,
    draining: new Set(),
  });
  assert.equal(again.text, '');
  assert.equal(again.removedRealServers.length + again.staleServices.length, 0);
});

test('virtual server variants: affinity, mh, UDP, SCTP, IPv6', () => {
  const vs = (extra: Partial<VirtualServer>): VirtualServer => ({
    family: 'IPv4',
    ip: '10.96.0.10',
    port: 80,
    protocol: 'TCP',
    scheduler: 'rr',
    persistentSeconds: 0,
    realServers: [],
    ...extra,
  });
  assert.equal(serviceLine('-A', vs({ persistentSeconds: 10800 })), '-A -t 10.96.0.10:80 -s rr -p 10800\n');
  assert.equal(serviceLine('-A', vs({ scheduler: 'mh' })), '-A -t 10.96.0.10:80 -s mh -b mh-port\n');
  assert.equal(serviceLine('-A', vs({ protocol: 'UDP' })), '-A -u 10.96.0.10:80 -s rr\n');
  assert.equal(serviceLine('-A', vs({ protocol: 'SCTP' })), '-A --sctp-service 10.96.0.10:80 -s rr\n');
  assert.equal(
    serviceLine('-A', vs({ family: 'IPv6', ip: 'fd00:10:96::a' })),
    '-A -t [fd00:10:96::a]:80 -s rr\n',
  );
  const parsed = parseIpvsSave(
    '-A -t [fd00:10:96::a]:80 -s mh -b mh-port -p 60\n-a -t [fd00:10:96::a]:80 -r [fd00::5]:8080 -m -w 1\n',
  );
  assert.deepEqual([...parsed.keys()], ['[fd00:10:96::a]:80/TCP']);
  assert.deepEqual(parsed.get('[fd00:10:96::a]:80/TCP')?.flags, ['mh-port']);
  assert.equal(parsed.get('[fd00:10:96::a]:80/TCP')?.persistentSeconds, 60);
  assert.throws(() => parseIpvsSave('-X nonsense\n'), /cannot parse "-X nonsense"/);
});

test('ipvsadm -L -n: connection counts per real server', () => {
  const listed = parseIpvsList(
    [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  10.96.0.10:80 rr persistent 10800',
      '  -> 10.244.1.5:8080              Masq    0      2          5',
      'UDP  [fd00::a]:53 rr',
      '  -> [fd00::5]:5353               Masq    1      0          0',
      '',
    ].join('\n'),
  );
  const tcp = listed.get('10.96.0.10:80/TCP');
  assert.ok(tcp);
  assert.equal(tcp.persistentSeconds, 10800);
  assert.deepEqual(tcp.realServers, [
    { ip: '10.244.1.5', port: 8080, weight: 0, activeConnections: 2, inactiveConnections: 5 },
  ]);
  assert.equal(listed.get('[fd00::a]:53/UDP')?.realServers.length, 1);
});

test('--ipvs-scheduler: empty means rr; a name that is no module name is an error naming the flag', () => {
  assert.deepEqual(parseScheduler(''), { scheduler: 'rr' });
  assert.deepEqual(parseScheduler('mh'), { scheduler: 'mh' });
  // Any name the kernel may load (probed at start), nothing that is not a module name.
  assert.deepEqual(parseScheduler('twos'), { scheduler: 'twos' });
  const bad = parseScheduler('rr -b sh-port');
  assert.ok('error' in bad && bad.error.includes('--ipvs-scheduler') && bad.error.includes('rr, wrr'));
});

test('externalTrafficPolicy Local without local endpoints falls back to every endpoint, counted', () => {
  const model = modelWith('IPv4', [
    service({
      name: 'np',
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      clusterIPs: ['10.96.0.11'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }],
    }),
    endpointSlice({
      service: 'np',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ ip: '10.244.2.7', node: 'node2' }],
    }),
  ]);
  model.setNode(node({ name: NODE, ips: ['192.168.1.10'], podCIDRs: ['10.244.1.0/24'] }));
  const desired = desiredState(model.snapshot(), OPTIONS, HOST);
  assert.deepEqual(desired.virtualServers.get('192.168.1.10:30081/TCP')?.realServers, [
    { ip: '10.244.2.7', port: 8080 },
  ]);
  assert.deepEqual(desired.localFallbacks, { internal: 0, external: 1 });
  assert.deepEqual([...desired.sets.nodePortLocalTCP], ['30081']);
});
