// Golden transactions of the nftables renderer. Full transactions live in golden/*.nft
// (regenerate with UPDATE_GOLDEN=1 and review the diff); partial ones are spelled out here,
// since their whole point is to be short.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { render, type NftState } from '../../../src/dataplane/nftables/render.ts';
import type { NftablesOptions } from '../../../src/dataplane/nftables/options.ts';
import type { ProxySnapshot, ServicePortState } from '../../../src/model/types.ts';
import { applyScript, dump, emptyTable, type FakeTable } from '../../../src/dataplane/nftables/fake.ts';
import { OPTIONS_V4, OPTIONS_V6, port, snapshot, type PortSpec } from './fixtures.ts';

function golden(name: string, text: string): void {
  const path = new URL(`./golden/${name}`, import.meta.url);
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(path, text);
  assert.equal(text, readFileSync(path, 'utf8'), `golden file ${name} differs (UPDATE_GOLDEN=1 rewrites it)`);
}

/** The element part of a full transaction (everything after the fixed skeleton). */
function elementsOf(script: string): string {
  return script.slice(
    script.indexOf('add element ip kube-proxy cluster-ips') >= 0
      ? script.indexOf('add element ip kube-proxy cluster-ips')
      : script.indexOf('add element'),
  );
}

const web = (endpoints: string[], extra: Partial<PortSpec> = {}): PortSpec => ({
  name: 'web',
  portName: 'http',
  clusterIP: '10.96.0.10',
  port: 80,
  endpoints: endpoints.map((ip) => ({ ip })),
  ...extra,
});

/** Renders a sequence, checking each transaction against the fake kernel; returns scripts. */
class Session {
  state: NftState | undefined;
  table: FakeTable;
  readonly options: NftablesOptions;
  constructor(options: NftablesOptions = OPTIONS_V4) {
    this.options = options;
    this.table = emptyTable(`${options.family === 'IPv4' ? 'ip' : 'ip6'} kube-proxy`);
  }
  sync(snap: ProxySnapshot, full = false): string {
    const result = render(this.state, snap, this.options, full);
    this.state = result.next;
    this.table = applyScript(this.table, result.script);
    return result.script;
  }
}

describe('nftables render: full transactions', () => {
  test('one ClusterIP service with two endpoints', () => {
    const session = new Session();
    const script = session.sync(snapshot([port(web(['10.244.1.5', '10.244.2.7']))]), true);
    golden('full-clusterip.nft', script);
    // The fixed skeleton: upstream's table, base chains and priorities.
    assert.match(
      script,
      /^add table ip kube-proxy \{ comment "rules for kube-proxy" ; \}\ndelete table ip kube-proxy\n/,
    );
    assert.match(
      script,
      /add chain ip kube-proxy filter-prerouting-pre-dnat \{ type filter hook prerouting priority -110 ; \}/,
    );
    assert.match(
      script,
      /add chain ip kube-proxy nat-postrouting \{ type nat hook postrouting priority 100 ; \}/,
    );
  });

  test('IPv6 service', () => {
    const session = new Session(OPTIONS_V6);
    const script = session.sync(
      snapshot(
        [
          port({
            name: 'web6',
            clusterIP: 'fd00:96::10',
            port: 80,
            nodePort: 30080,
            affinitySeconds: 300,
            endpoints: [{ ip: 'fd00:244:1::5', local: true }, { ip: 'fd00:244:2::7' }],
          }),
          port({ name: 'plain6', clusterIP: 'fd00:96::11', port: 443, endpoints: [{ ip: 'fd00:244:2::8' }] }),
        ],
        { family: 'IPv6' },
      ),
      true,
    );
    golden('full-ipv6.nft', script);
    // Every address expression of every rule the table holds is an ip6 one.
    const rules = Object.values(dump(session.table).chains).flat();
    const addressing = rules.filter((rule) => /\bip6? (saddr|daddr)\b/.test(rule));
    assert.ok(addressing.length > 10, `${addressing.length} rules match addresses`);
    assert.deepEqual(
      addressing.filter((rule) => /\bip (saddr|daddr)\b/.test(rule)),
      [],
      'no IPv4 expressions in the ip6 table',
    );
  });

  test('a full render with a previous record keeps the table and removes what is stale', () => {
    const session = new Session();
    const first = session.sync(
      snapshot([port(web(['10.244.1.5', '10.244.2.7'], { affinitySeconds: 60 }))]),
      true,
    );
    assert.match(first, /^delete table ip kube-proxy$/m, 'without a record the table is rebuilt');
    // A client the packet path remembered (nft adds it to the dynamic set, not the renderer).
    const remembered = '10.0.0.5 . 10.96.0.10 . 80 . 10.244.1.5 . 8080';
    session.table.sets.get('affinity-tcp')?.elements.set(remembered, { value: '', comment: '' });
    const script = session.sync(snapshot([port(web(['10.244.1.5']))]), true);
    assert.doesNotMatch(script, /^delete table/m, 'the table is not deleted when we know what is in it');
    assert.deepEqual(dump(session.table).sets['affinity-tcp'], [remembered], 'remembered clients are kept');
    assert.match(script, /^flush chain ip kube-proxy services$/m);
    assert.match(script, /^flush map ip kube-proxy ip-endpoints-tcp$/m);
    assert.match(script, /^delete chain ip kube-proxy affinity-[A-Z2-7]{10}-cluster$/m);
    const fresh = applyScript(
      emptyTable(),
      render(undefined, snapshot([port(web(['10.244.1.5']))]), OPTIONS_V4, true).script,
    );
    assert.deepEqual(
      { ...dump(session.table), sets: { ...dump(session.table).sets, 'affinity-tcp': [] } },
      dump(fresh),
    );
  });
});

describe('nftables render: streamed text', () => {
  test('a large full render comes in pieces of whole lines that make up the script', () => {
    const ports = Array.from({ length: 1500 }, (_, i) =>
      port({
        name: `s${i}`,
        clusterIP: `10.96.${i >> 8}.${i & 255}`,
        port: 80,
        endpoints: [{ ip: `10.244.${i >> 8}.${i & 255}` }, { ip: `10.245.${i >> 8}.${i & 255}` }],
      }),
    );
    const result = render(undefined, snapshot(ports), OPTIONS_V4, true);
    const pieces = [...result.chunks()];
    assert.ok(pieces.length > 1, `${pieces.length} piece(s)`);
    for (const piece of pieces.slice(0, -1)) assert.ok(piece.endsWith('\n'));
    assert.equal(pieces.join(''), result.script);
    assert.ok(result.script.endsWith('}\n'));
    assert.equal((result.script.match(/^\t10\.96\.\d+\.\d+ \. 80 \. [01] : /gm) ?? []).length, 3000);
    assert.equal(result.empty, false);
  });
});

describe('nftables render: partial transactions', () => {
  const two = port(web(['10.244.1.5', '10.244.2.7']));

  test('add a service', () => {
    const session = new Session();
    session.sync(snapshot([two]), true);
    const db = port({
      name: 'db',
      clusterIP: '10.96.0.20',
      port: 5432,
      protocol: 'TCP',
      targetPort: 5432,
      endpoints: [{ ip: '10.244.3.3' }],
    });
    assert.equal(
      session.sync(snapshot([two, db])),
      [
        'add chain ip kube-proxy ip-class-1',
        'add rule ip kube-proxy ip-class-1 meta l4proto tcp dnat to ip daddr . tcp dport . numgen random mod 1 map @ip-endpoints-tcp',
        'add rule ip kube-proxy ip-class-1 meta l4proto udp dnat to ip daddr . udp dport . numgen random mod 1 map @ip-endpoints-udp',
        'add rule ip kube-proxy ip-class-1 meta l4proto sctp dnat to ip daddr . sctp dport . numgen random mod 1 map @ip-endpoints-sctp',
        'add element ip kube-proxy cluster-ips {',
        '\t10.96.0.20,',
        '}',
        'add element ip kube-proxy service-ips {',
        '\t10.96.0.20 . tcp . 5432 comment "ns/db:p" : goto to-cluster-ip,',
        '}',
        'add element ip kube-proxy ip-dispatch {',
        '\t10.96.0.20 . tcp . 5432 : goto ip-class-1,',
        '}',
        'add element ip kube-proxy ip-endpoints-tcp {',
        '\t10.96.0.20 . 5432 . 0 : 10.244.3.3 . 5432,',
        '}',
        '',
      ].join('\n'),
    );
  });

  test('change an endpoint (same count: only the endpoint element changes)', () => {
    const session = new Session();
    session.sync(snapshot([two]), true);
    assert.equal(
      session.sync(snapshot([port(web(['10.244.1.5', '10.244.2.9']))])),
      [
        'delete element ip kube-proxy ip-endpoints-tcp {',
        '\t10.96.0.10 . 80 . 1,',
        '}',
        'add element ip kube-proxy ip-endpoints-tcp {',
        '\t10.96.0.10 . 80 . 1 : 10.244.2.9 . 8080,',
        '}',
        '',
      ].join('\n'),
    );
  });

  test('class move: endpoint count 2 -> 3 in one transaction', () => {
    const session = new Session();
    session.sync(snapshot([two]), true);
    assert.equal(
      session.sync(snapshot([port(web(['10.244.1.5', '10.244.2.7', '10.244.3.1']))])),
      [
        'add chain ip kube-proxy ip-class-3',
        'add rule ip kube-proxy ip-class-3 meta l4proto tcp dnat to ip daddr . tcp dport . numgen random mod 3 map @ip-endpoints-tcp',
        'add rule ip kube-proxy ip-class-3 meta l4proto udp dnat to ip daddr . udp dport . numgen random mod 3 map @ip-endpoints-udp',
        'add rule ip kube-proxy ip-class-3 meta l4proto sctp dnat to ip daddr . sctp dport . numgen random mod 3 map @ip-endpoints-sctp',
        'delete element ip kube-proxy ip-dispatch {',
        '\t10.96.0.10 . tcp . 80,',
        '}',
        'add element ip kube-proxy ip-dispatch {',
        '\t10.96.0.10 . tcp . 80 : goto ip-class-3,',
        '}',
        'add element ip kube-proxy ip-endpoints-tcp {',
        '\t10.96.0.10 . 80 . 2 : 10.244.3.1 . 8080,',
        '}',
        'delete chain ip kube-proxy ip-class-2',
        '',
      ].join('\n'),
    );
  });

  test('delete an endpoint (3 -> 2, the class chain of 2 is shared and stays)', () => {
    const session = new Session();
    const other = port({
      name: 'other',
      clusterIP: '10.96.0.30',
      port: 80,
      endpoints: [{ ip: '10.244.9.1' }, { ip: '10.244.9.2' }],
    });
    session.sync(snapshot([port(web(['10.244.1.5', '10.244.2.7', '10.244.3.1'])), other]), true);
    assert.equal(
      session.sync(snapshot([port(web(['10.244.1.5', '10.244.3.1'])), other])),
      [
        'delete element ip kube-proxy ip-dispatch {',
        '\t10.96.0.10 . tcp . 80,',
        '}',
        'delete element ip kube-proxy ip-endpoints-tcp {',
        '\t10.96.0.10 . 80 . 1,',
        '\t10.96.0.10 . 80 . 2,',
        '}',
        'add element ip kube-proxy ip-dispatch {',
        '\t10.96.0.10 . tcp . 80 : goto ip-class-2,',
        '}',
        'add element ip kube-proxy ip-endpoints-tcp {',
        '\t10.96.0.10 . 80 . 1 : 10.244.3.1 . 8080,',
        '}',
        'delete chain ip kube-proxy ip-class-3',
        '',
      ].join('\n'),
    );
  });

  test('delete a service', () => {
    const session = new Session();
    const keep = port({ name: 'keep', clusterIP: '10.96.0.30', port: 80, endpoints: [{ ip: '10.244.9.1' }] });
    session.sync(snapshot([two, keep]), true);
    assert.equal(
      session.sync(snapshot([keep])),
      [
        'delete element ip kube-proxy cluster-ips {',
        '\t10.96.0.10,',
        '}',
        'delete element ip kube-proxy service-ips {',
        '\t10.96.0.10 . tcp . 80,',
        '}',
        'delete element ip kube-proxy ip-dispatch {',
        '\t10.96.0.10 . tcp . 80,',
        '}',
        'delete element ip kube-proxy ip-endpoints-tcp {',
        '\t10.96.0.10 . 80 . 0,',
        '\t10.96.0.10 . 80 . 1,',
        '}',
        'delete chain ip kube-proxy ip-class-2',
        '',
      ].join('\n'),
    );
  });

  test('nothing changed: empty transaction', () => {
    const session = new Session();
    const snap = snapshot([two]);
    session.sync(snap, true);
    assert.equal(session.sync(snapshot([two])), '');
  });

  test('last endpoint gone: the service moves to the reject map', () => {
    const session = new Session();
    session.sync(snapshot([two]), true);
    const script = session.sync(snapshot([port(web([]))]));
    assert.match(
      script,
      /add element ip kube-proxy no-endpoint-services \{\n\t10\.96\.0\.10 \. tcp \. 80 comment "ns\/web:http" : goto reject-chain,\n\}/,
    );
    assert.match(script, /delete element ip kube-proxy service-ips \{\n\t10\.96\.0\.10 \. tcp \. 80,\n\}/);
    assert.match(script, /delete chain ip kube-proxy ip-class-2\n/);
  });

  test('replacing one endpoint rewrites one slot of each endpoint map, whatever the sort order', () => {
    const session = new Session();
    const ips = ['10.244.1.5', '10.244.1.6', '10.244.1.7', '10.244.1.8'];
    const spec = (list: string[]): PortSpec => web(list, { nodePort: 30080 });
    session.sync(snapshot([port(spec(ips))]), true);
    // The replacement sorts first, which would shift every other endpoint by one slot.
    const script = session.sync(snapshot([port(spec(['10.244.0.1', ...ips.slice(0, 3)]))]));
    assert.equal(
      script,
      [
        'delete element ip kube-proxy ip-endpoints-tcp {',
        '\t10.96.0.10 . 80 . 3,',
        '}',
        'delete element ip kube-proxy nodeport-endpoints-tcp {',
        '\t30080 . 3,',
        '}',
        'add element ip kube-proxy ip-endpoints-tcp {',
        '\t10.96.0.10 . 80 . 3 : 10.244.0.1 . 8080,',
        '}',
        'add element ip kube-proxy nodeport-endpoints-tcp {',
        '\t30080 . 3 : 10.244.0.1 . 8080,',
        '}',
        '',
      ].join('\n'),
    );
  });

  test('affinity: a chain per service port over the shared client sets, removed with the service', () => {
    const session = new Session();
    session.sync(snapshot([two]), true);
    const aff = (ips: readonly string[]): ServicePortState =>
      port({
        name: 'aff',
        clusterIP: '10.96.0.30',
        port: 53,
        protocol: 'UDP',
        affinitySeconds: 600,
        endpoints: ips.map((ip) => ({ ip })),
      });
    const setNames = Object.keys(dump(session.table).sets);
    const affinityChains = (): Record<string, string[]> =>
      Object.fromEntries(
        Object.entries(dump(session.table).chains).filter(([name]) => /^affinity-[A-Z2-7]{10}-/.test(name)),
      );
    const added = session.sync(snapshot([two, aff(['10.244.1.5', '10.244.2.7'])]));
    golden('partial-affinity.nft', added);
    assert.deepEqual(Object.keys(dump(session.table).sets), setNames, 'no set per Service or endpoint');
    assert.equal(Object.keys(affinityChains()).length, 1);

    // An endpoint change rewrites the chain; the clients remembered in the set stay.
    const changed = session.sync(snapshot([two, aff(['10.244.1.5', '10.244.3.9'])]));
    assert.match(changed, /^flush chain ip kube-proxy affinity-[A-Z2-7]{10}-cluster$/m);
    assert.match(
      changed,
      /@affinity-udp update @affinity-udp \{ ip saddr \. 10\.96\.0\.30 \. 53 \. 10\.244\.3\.9 \. 8080 timeout 600s \}/,
    );
    const [chainRules = []] = Object.values(affinityChains());
    assert.equal(chainRules.length, 5);
    assert.deepEqual(
      chainRules.filter((rule) => rule.includes('10.244.2.7')),
      [],
      'the old endpoint is gone from the chain',
    );
    assert.equal(chainRules.filter((rule) => rule.includes('10.244.3.9')).length, 3);
    assert.deepEqual(Object.keys(dump(session.table).sets), setNames);

    const removed = session.sync(snapshot([two]));
    assert.match(removed, /^delete chain ip kube-proxy affinity-[A-Z2-7]{10}-cluster$/m);
    assert.deepEqual(affinityChains(), {});
    assert.deepEqual(Object.keys(dump(session.table).sets), setNames);
    assert.ok(
      removed.indexOf('delete element') < removed.indexOf('delete chain'),
      'references go before the chain',
    );
  });

  test('affinity: the chain remembers clients per service port and endpoint, and never drops traffic', () => {
    const script = render(
      undefined,
      snapshot([
        port({
          name: 'aff',
          clusterIP: '10.96.0.30',
          port: 80,
          affinitySeconds: 60,
          endpoints: [{ ip: '10.244.1.5' }, { ip: '10.244.2.7' }, { ip: '10.244.3.9' }],
        }),
      ]),
      OPTIONS_V4,
      true,
    ).script;
    const rules = script
      .split('\n')
      .filter((line) => line.startsWith('add rule ip kube-proxy affinity-'))
      .map((line) => line.replace(/^add rule ip kube-proxy affinity-[A-Z2-7]{10}-cluster /, ''));
    const remember = (ip: string): string =>
      `update @affinity-tcp { ip saddr . 10.96.0.30 . 80 . ${ip} . 8080 timeout 60s } meta l4proto tcp dnat to ${ip}:8080`;
    const known = (ip: string): string =>
      `ip saddr . ip daddr & 0.0.0.0 | 10.96.0.30 . th dport & 0 | 80 . ip daddr & 0.0.0.0 | ${ip} . th dport & 0 | 8080 @affinity-tcp ${remember(ip)}`;
    assert.deepEqual(rules, [
      known('10.244.1.5'),
      known('10.244.2.7'),
      known('10.244.3.9'),
      `numgen random mod 3 == 0 ${remember('10.244.1.5')}`,
      `numgen random mod 2 == 0 ${remember('10.244.2.7')}`,
      remember('10.244.3.9'),
      'meta l4proto tcp dnat to 10.244.3.9:8080',
    ]);
  });
});

describe('nftables render: traffic policies', () => {
  test('NodePort with externalTrafficPolicy Local', () => {
    const script = render(
      undefined,
      snapshot([
        port({
          name: 'np',
          clusterIP: '10.96.0.20',
          port: 80,
          nodePort: 30080,
          externalLocal: true,
          endpoints: [{ ip: '10.244.1.5', local: true }, { ip: '10.244.2.7' }, { ip: '10.244.3.9' }],
        }),
      ]),
      OPTIONS_V4,
      true,
    ).script;
    golden('etp-local-elements.nft', elementsOf(script));
    // External traffic reaches only the local endpoint; pod and node traffic may use all three.
    assert.match(script, /\ttcp \. 30080 : goto nodeport-class-1,\n/);
    assert.match(script, /\ttcp \. 30080 : goto nodeport-shortcut-class-3,\n/);
    assert.match(script, /\ttcp \. 30080 comment "ns\/np:p" : goto to-nodeport-local,\n/);
    assert.match(
      script,
      /add rule ip kube-proxy to-nodeport-local ip saddr 10\.244\.0\.0\/16 meta l4proto \. th dport vmap @nodeport-shortcut-dispatch comment "short-circuit pod traffic"/,
    );
  });

  test('eTP Local without local endpoints drops external traffic, keeps the shortcut', () => {
    const script = render(
      undefined,
      snapshot([
        port({
          name: 'np',
          clusterIP: '10.96.0.20',
          port: 80,
          nodePort: 30080,
          externalLocal: true,
          endpoints: [{ ip: '10.244.2.7' }],
        }),
      ]),
      OPTIONS_V4,
      true,
    ).script;
    const sets = dump(applyScript(emptyTable(), script)).sets;
    assert.deepEqual(sets['no-endpoint-nodeports'], ['tcp . 30080 comment "ns/np:p" : drop']);
    assert.deepEqual(sets['nodeport-dispatch'], [], 'no external selection');
    assert.deepEqual(sets['nodeport-shortcut-dispatch'], ['tcp . 30080 : goto nodeport-shortcut-class-1']);
    assert.deepEqual(sets['nodeport-shortcut-endpoints-tcp'], ['30080 . 0 : 10.244.2.7 . 8080']);
  });

  test('LoadBalancer with source ranges', () => {
    const script = render(
      undefined,
      snapshot([
        port({
          name: 'lb',
          clusterIP: '10.96.0.50',
          port: 443,
          loadBalancerVIPs: ['203.0.113.7'],
          // 192.168.5.0/24 lies inside 192.168.0.0/16, which also covers the node IP.
          sourceRanges: ['198.51.100.0/24', '192.168.0.0/16', '192.168.5.0/24'],
          endpoints: [{ ip: '10.244.1.5' }],
        }),
      ]),
      OPTIONS_V4,
      true,
    ).script;
    golden('lb-source-ranges-elements.nft', elementsOf(script));
    assert.match(
      script,
      /add element ip kube-proxy firewall-allow \{\n\t203\.0\.113\.7 \. tcp \. 443 \. 192\.168\.0\.0\/16,\n\t203\.0\.113\.7 \. tcp \. 443 \. 198\.51\.100\.0\/24,\n\t203\.0\.113\.7 \. tcp \. 443 \. 203\.0\.113\.7,\n\}/,
    );
  });

  test('no endpoints: REJECT everywhere; no local endpoints: DROP external only', () => {
    const script = render(
      undefined,
      snapshot([
        port({
          name: 'none',
          clusterIP: '10.96.0.40',
          port: 80,
          nodePort: 30040,
          externalIPs: ['198.51.100.9'],
        }),
        port({
          name: 'itp',
          clusterIP: '10.96.0.42',
          port: 80,
          internalLocal: true,
          endpoints: [{ ip: '10.244.2.7' }],
        }),
      ]),
      OPTIONS_V4,
      true,
    ).script;
    assert.match(script, /\t10\.96\.0\.40 \. tcp \. 80 comment "ns\/none:p" : goto reject-chain,\n/);
    assert.match(script, /\t198\.51\.100\.9 \. tcp \. 80 comment "ns\/none:p" : goto reject-chain,\n/);
    assert.match(script, /\ttcp \. 30040 comment "ns\/none:p" : goto reject-chain,\n/);
    // internalTrafficPolicy Local without local endpoints: cluster IP traffic is dropped.
    const sets = dump(applyScript(emptyTable(), script)).sets;
    assert.deepEqual(sets['no-endpoint-services'], [
      '10.96.0.40 . tcp . 80 comment "ns/none:p" : goto reject-chain',
      '10.96.0.42 . tcp . 80 comment "ns/itp:p" : drop',
      '198.51.100.9 . tcp . 80 comment "ns/none:p" : goto reject-chain',
    ]);
    assert.deepEqual(sets['no-endpoint-nodeports'], ['tcp . 30040 comment "ns/none:p" : goto reject-chain']);
    // No DNAT for either: neither is a service or dispatch key.
    assert.deepEqual(sets['service-ips'], []);
    assert.deepEqual(sets['service-nodeports'], []);
    assert.deepEqual(sets['ip-dispatch'], []);
  });

  test('masqueradeAll, no local detection, node ports on all addresses', () => {
    const script = render(
      undefined,
      snapshot([port(web(['10.244.1.5']))]),
      {
        ...OPTIONS_V4,
        masqueradeAll: true,
        localDetector: { kind: 'none' },
        nodePortAddresses: { kind: 'all' },
      },
      true,
    ).script;
    assert.match(script, /^add rule ip kube-proxy to-cluster-ip jump mark-for-masquerade$/m);
    const table = applyScript(emptyTable(), script);
    // Without detection, only the node's own traffic is short-circuited.
    assert.deepEqual(dump(table).chains['to-nodeport-local'], [
      'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
      'fib saddr type local meta l4proto . th dport vmap @nodeport-shortcut-dispatch comment "short-circuit local traffic"',
      'meta l4proto . th dport vmap @nodeport-dispatch',
    ]);
    assert.ok(!table.sets.has('nodeport-ips'), 'no node port address set for match-all');
    assert.ok(table.sets.has('cluster-ips'));
    assert.match(
      script,
      /^add rule ip kube-proxy services fib daddr type local ip daddr != 127\.0\.0\.0\/8 meta l4proto \. th dport vmap @service-nodeports$/m,
    );
  });

  test('interface-based local detection', () => {
    const bridge = render(
      undefined,
      snapshot([]),
      { ...OPTIONS_V4, localDetector: { kind: 'bridge', iface: 'cbr0' } },
      true,
    ).script;
    assert.match(bridge, /to-cluster-ip iifname != "cbr0" jump mark-for-masquerade/);
    const prefix = render(
      undefined,
      snapshot([]),
      { ...OPTIONS_V4, localDetector: { kind: 'prefix', prefix: 'veth' } },
      true,
    ).script;
    assert.match(prefix, /to-external-ip-local iifname "veth\*" ip daddr/);
  });

  test('two services claiming one external IP and port: the smaller key wins, the other takes over', () => {
    const session = new Session();
    const a = port({
      name: 'a',
      clusterIP: '10.96.0.1',
      port: 80,
      externalIPs: ['198.51.100.1'],
      endpoints: [{ ip: '10.244.1.1' }],
    });
    const b = port({
      name: 'b',
      clusterIP: '10.96.0.2',
      port: 80,
      externalIPs: ['198.51.100.1'],
      endpoints: [{ ip: '10.244.2.2' }, { ip: '10.244.2.3' }],
    });
    const both = session.sync(snapshot([a, b]), true);
    assert.match(both, /\t198\.51\.100\.1 \. 80 \. 0 : 10\.244\.1\.1 \. 8080,\n/);
    const external = (): string[] =>
      (dump(session.table).sets['ip-endpoints-tcp'] ?? []).filter((line) => line.startsWith('198.51.100.1 '));
    assert.deepEqual(
      external(),
      ['198.51.100.1 . 80 . 0 : 10.244.1.1 . 8080'],
      "only the winner's endpoints",
    );
    const takeover = session.sync(snapshot([b]));
    assert.match(takeover, /\t198\.51\.100\.1 \. tcp \. 80 : goto ip-class-2,\n/);
    assert.match(takeover, /\t198\.51\.100\.1 \. 80 \. 0 : 10\.244\.2\.2 \. 8080,\n/);
    assert.deepEqual(
      dump(session.table),
      dump(applyScript(emptyTable(), render(undefined, snapshot([b]), OPTIONS_V4, true).script)),
    );
  });
});

describe('nftables render: contract', () => {
  test('a spent state cannot be rendered from again', () => {
    const first = render(undefined, snapshot([]), OPTIONS_V4, true);
    render(first.next, snapshot([]), OPTIONS_V4, false);
    assert.throws(() => render(first.next, snapshot([]), OPTIONS_V4, false), /already used/);
  });

  test('names reach the script only as escaped comments', () => {
    const evil = port({ namespace: 'ns', name: 'x"; flush ruleset; "', clusterIP: '10.96.0.9', port: 80 });
    const script = render(undefined, snapshot([evil]), OPTIONS_V4, true).script;
    assert.ok(!script.includes('flush ruleset;'), script);
    assert.match(script, /comment "ns\/x__ flush ruleset_ _:p"/);
  });
});
