// The playground's pure parts: the command language, the EndpointSlice controller, allocation,
// the rule listing diff, the settle fingerprint and the sync report.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import { allocate, inUseBy } from '../../../src/playground/allocate.ts';
import { CommandError, hereDocument, parseCommand, words } from '../../../src/playground/commands.ts';
import { desiredSlices, isManaged, type RunningPod } from '../../../src/playground/controller.ts';
import { formatSyncs, syncViews } from '../../../src/playground/debug.ts';
import { diffLines, formatDiff, iptablesLines, nftLines } from '../../../src/playground/rules.ts';
import { fingerprint } from '../../../src/playground/settle.ts';
import { describeService, table, tableOf } from '../../../src/playground/views.ts';
import {
  deploymentPods,
  ManifestError,
  parseDeployment,
  parsePod,
  READY_ANNOTATION,
} from '../../../src/playground/workloads.ts';

const ZONES = { node1: 'zone-a', node2: 'zone-b' } as const;

describe('commands', () => {
  it('parses kubectl shapes', () => {
    assert.deepEqual(parseCommand('get svc -o wide'), {
      verb: 'get',
      kind: 'Service',
      namespace: 'default',
      output: 'wide',
    });
    assert.deepEqual(parseCommand('get pods web-1 -A'), {
      verb: 'get',
      kind: 'Pod',
      name: 'web-1',
      namespace: '',
      output: 'table',
    });
    assert.deepEqual(parseCommand('describe svc/web -n shop'), {
      verb: 'describe',
      ref: { kind: 'Service', name: 'web', namespace: 'shop' },
    });
    assert.deepEqual(parseCommand('delete pod a b'), {
      verb: 'delete',
      refs: [
        { kind: 'Pod', name: 'a', namespace: 'default' },
        { kind: 'Pod', name: 'b', namespace: 'default' },
      ],
    });
    assert.deepEqual(parseCommand('apply -f -'), { verb: 'apply', file: '-' });
    assert.deepEqual(parseCommand('curl --from client --count 5 http://10.96.0.10:80/'), {
      verb: 'curl',
      from: 'client',
      dst: '10.96.0.10',
      dport: 80,
      count: 5,
    });
    assert.deepEqual(parseCommand('explain --from=external --proto udp 192.0.2.11:30053'), {
      verb: 'explain',
      from: 'external',
      dst: '192.0.2.11',
      dport: 30053,
      proto: 'udp',
      output: 'text',
    });
    assert.deepEqual(parseCommand('  # a comment'), { verb: 'nothing' });
  });

  it('names what is wrong', () => {
    const error = (line: string) => {
      try {
        parseCommand(line);
      } catch (e) {
        assert.ok(e instanceof CommandError);
        return e.message;
      }
      assert.fail(`${line} parsed`);
    };
    assert.match(error('frob'), /unknown command "frob"/);
    assert.match(error('get widgets'), /resource type "widgets"/);
    assert.match(error('get svc -o xml'), /output format "xml"/);
    assert.match(error('apply'), /must specify -f/);
    assert.match(error('curl 10.96.0.10:80'), /--from/);
    assert.match(error('curl --from client 10.96.0.10'), /ADDRESS:PORT/);
    assert.match(error('curl --from client --count 0 10.96.0.10:80'), /--count is 1-200/);
    assert.match(error('get svc --bogus'), /unknown flag: --bogus/);
    assert.match(error("get 'svc"), /unterminated/);
  });

  it('splits words and finds here-documents', () => {
    assert.deepEqual(words(`apply -f "a b.yaml" # note`), ['apply', '-f', 'a b.yaml']);
    assert.deepEqual(hereDocument('apply -f - <<EOF'), { line: 'apply -f -', marker: 'EOF' });
    assert.deepEqual(hereDocument("apply -f - <<'END'"), { line: 'apply -f -', marker: 'END' });
    assert.equal(hereDocument('get svc'), undefined);
  });
});

function pod(
  name: string,
  node: 'node1' | 'node2',
  ipv4: string,
  extra: Partial<RunningPod['spec']> = {},
): RunningPod {
  return {
    node,
    ipv4,
    spec: {
      namespace: 'default',
      name,
      labels: { app: 'web' },
      node,
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      ready: true,
      ...extra,
    },
  };
}

const web: Service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { namespace: 'default', name: 'web' },
  spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
};

describe('EndpointSlice controller', () => {
  it('lists the selected pods with readiness, node and zone, resolving named target ports', () => {
    const [slice, extra] = desiredSlices(
      web,
      [
        pod('web-2', 'node2', '10.244.2.11', { ready: false }),
        pod('web-1', 'node1', '10.244.1.12'),
        pod('other', 'node1', '10.244.1.13', { labels: { app: 'other' } }),
      ],
      ZONES,
    );
    assert.equal(extra, undefined);
    assert.ok(slice && isManaged(slice));
    assert.equal(slice.metadata?.name, 'web-auto');
    assert.equal(slice.metadata.labels?.['kubernetes.io/service-name'], 'web');
    assert.deepEqual(slice.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    assert.deepEqual(
      slice.endpoints.map((e) => [e.addresses[0], e.conditions?.ready, e.nodeName, e.zone]),
      [
        ['10.244.1.12', true, 'node1', 'zone-a'],
        ['10.244.2.11', false, 'node2', 'zone-b'],
      ],
    );
  });

  it('writes one slice per port mapping, zone hints for PreferClose, and an empty slice when nothing matches', () => {
    const numbered: Service = { ...web, spec: { ...web.spec, trafficDistribution: 'PreferClose' } };
    const slices = desiredSlices(
      numbered,
      [
        pod('a', 'node1', '10.244.1.12'),
        pod('b', 'node2', '10.244.2.11', { ports: [{ name: 'http', port: 9090, protocol: 'TCP' }] }),
      ],
      ZONES,
    );
    assert.deepEqual(
      slices.map((s) => [s.metadata?.name, s.ports?.[0]?.port, s.endpoints[0]?.hints?.forZones?.[0]?.name]),
      [
        ['web-auto', 8080, 'zone-a'],
        ['web-auto-2', 9090, 'zone-b'],
      ],
    );
    const empty = desiredSlices(web, [], ZONES);
    assert.equal(empty.length, 1);
    assert.deepEqual(empty[0]?.endpoints, []);
    assert.deepEqual(desiredSlices({ ...web, spec: { ports: web.spec?.ports ?? [] } }, [], ZONES), []);
  });
});

describe('workloads', () => {
  it('reads pods and deployments, and spreads replicas over the nodes', () => {
    const p = parsePod({
      metadata: { name: 'x', labels: { app: 'x' }, annotations: { [READY_ANNOTATION]: 'false' } },
      spec: { nodeName: 'node2', containers: [{ ports: [{ containerPort: 53, protocol: 'UDP' }] }] },
    });
    assert.deepEqual(p, {
      namespace: 'default',
      name: 'x',
      labels: { app: 'x' },
      node: 'node2',
      ports: [{ name: '', port: 53, protocol: 'UDP' }],
      ready: false,
    });
    const d = parseDeployment({
      metadata: { name: 'web' },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { containers: [] } },
      },
    });
    assert.deepEqual(
      deploymentPods(d).map((x) => [x.name, x.node, x.owner]),
      [
        ['web-1', 'node1', 'web'],
        ['web-2', 'node2', 'web'],
        ['web-3', 'node1', 'web'],
      ],
    );
  });

  it('names the object and field of a bad manifest', () => {
    assert.throws(() => parsePod({ metadata: { name: 'bad' }, spec: { nodeName: 'node7' } }), {
      name: 'ManifestError',
      message: 'Pod bad: spec.nodeName: the playground has node1 and node2, not "node7"',
    });
    assert.throws(
      () => parsePod({ metadata: { name: 'p' }, spec: { containers: [{ ports: [{ containerPort: 0 }] }] } }),
      /Pod p: spec.containers\[0\].ports\[0\].containerPort: must be 1-65535/,
    );
    assert.throws(() => parsePod({ metadata: { name: 'Bad_Name' } }), ManifestError);
    assert.throws(
      () =>
        parseDeployment({
          metadata: { name: 'd' },
          spec: { selector: { matchLabels: { app: 'd' } }, template: { metadata: { labels: { app: 'e' } } } },
        }),
      /Deployment d: spec.template.metadata.labels must match/,
    );
  });
});

describe('allocate', () => {
  it('fills in a cluster IP, node ports and a load-balancer IP, keeping what the Service had', () => {
    const inUse = inUseBy([
      {
        spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ports: [{ port: 80, nodePort: 30000 }] },
      },
    ]);
    const lb = allocate(
      {
        metadata: { name: 'lb' },
        spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ port: 80 }] },
      },
      undefined,
      inUse,
    );
    assert.equal(lb.spec?.clusterIP, '10.96.0.11');
    assert.equal(lb.spec.ports?.[0]?.nodePort, 30001);
    assert.equal(lb.spec.healthCheckNodePort, 30002);
    assert.equal(lb.status?.loadBalancer?.ingress?.[0]?.ip, '203.0.113.10');
    const again = allocate(
      { metadata: { name: 'lb' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } },
      lb,
      inUse,
    );
    assert.equal(again.spec?.clusterIP, '10.96.0.11');
    assert.equal(again.spec.ports?.[0]?.nodePort, 30001);
    assert.equal(again.spec.healthCheckNodePort, undefined, 'Cluster policy: no health check port');
    assert.equal(again.status?.loadBalancer?.ingress?.[0]?.ip, '203.0.113.10');
    assert.throws(
      () =>
        allocate(
          { metadata: { name: 'dup' }, spec: { clusterIP: '10.96.0.10', ports: [] } },
          undefined,
          inUse,
        ),
      /Service dup: spec.clusterIP 10.96.0.10 is already allocated/,
    );
    assert.throws(
      () =>
        allocate(
          { metadata: { name: 'np' }, spec: { type: 'NodePort', ports: [{ port: 1, nodePort: 30000 }] } },
          undefined,
          inUse,
        ),
      /nodePort 30000 is already allocated/,
    );
  });
});

describe('rule listings', () => {
  it('tags nft lines with their chain, set or map, one element per line, without expiry times', () => {
    const text = [
      'table ip kube-proxy {',
      '\tmap service-ips {',
      '\t\ttype ipv4_addr . inet_proto . inet_service : verdict',
      '\t\telements = { 10.96.0.10 . tcp . 80 : goto to-cluster-ip,',
      '\t\t\t     10.96.0.20 . tcp . 80 comment "a, b" : goto to-cluster-ip }',
      '\t}',
      '\tset affinity-tcp {',
      '\t\telements = { 10.244.1.11 . 10.96.0.20 timeout 3h expires 2h59m58s }',
      '\t}',
      '\tchain ip-class-3 {',
      '\t\tdnat ip to ip daddr . tcp dport . numgen random mod 3 map @ip-endpoints-tcp',
      '\t}',
      '}',
    ].join('\n');
    assert.deepEqual(nftLines(text), [
      '[ip map service-ips] type ipv4_addr . inet_proto . inet_service : verdict',
      '[ip map service-ips] 10.96.0.10 . tcp . 80 : goto to-cluster-ip',
      '[ip map service-ips] 10.96.0.20 . tcp . 80 comment "a, b" : goto to-cluster-ip',
      '[ip set affinity-tcp] 10.244.1.11 . 10.96.0.20 timeout 3h',
      '[ip chain ip-class-3] dnat ip to ip daddr . tcp dport . numgen random mod 3 map @ip-endpoints-tcp',
    ]);
  });

  it('tags iptables-save lines with their table, without counters or comments', () => {
    const text = '# Generated\n*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j KUBE-NODEPORTS\nCOMMIT\n';
    assert.deepEqual(iptablesLines(text, 'ip'), [
      '[ip nat] :KUBE-SERVICES',
      '[ip nat] -A KUBE-SERVICES -j KUBE-NODEPORTS',
    ]);
  });

  it('diffs with repeats counted, removed lines first', () => {
    const diff = diffLines(['a', 'b', 'b', 'c'], ['b', 'c', 'd', 'd']);
    assert.deepEqual(diff, { removed: ['a', 'b'], added: ['d', 'd'] });
    assert.deepEqual(formatDiff(diff, 'nft list'), [
      'rules (nft list): 2 added, 2 removed',
      '  - a',
      '  - b',
      '  + d',
      '  + d',
    ]);
    assert.deepEqual(formatDiff({ removed: [], added: [] }, 'iptables-save'), [
      'rules: no change (iptables-save)',
    ]);
    assert.match(
      formatDiff({ removed: [], added: ['x', 'y', 'z'] }, 'nft list', 2).at(-1) ?? '',
      /1 more lines/,
    );
  });
});

describe('settle and sync report', () => {
  it('compares service ports and endpoints, in any order, ignoring the selection', () => {
    const dump = (order: number[], selection: string[]) => ({
      families: [
        {
          family: 'IPv4',
          servicePorts: order.map((i) => ({
            name: `svc${i}`,
            endpoints: [{ ip: `10.0.0.${i}` }, { ip: '10.0.0.9' }],
            selection: { clusterEndpoints: selection },
          })),
        },
      ],
    });
    assert.equal(fingerprint(dump([1, 2], ['a'])), fingerprint(dump([2, 1], ['b'])));
    assert.notEqual(fingerprint(dump([1, 2], [])), fingerprint(dump([1], [])));
  });

  it('reports the syncs a change caused, or none', () => {
    const before = syncViews({ families: [{ ipFamily: 'IPv4', successfulSyncs: 2 }] });
    const after = syncViews({
      families: [
        {
          ipFamily: 'IPv4',
          successfulSyncs: 4,
          lastSync: { full: false, renderSeconds: 0.001, applySeconds: 0.0025 },
        },
        { ipFamily: 'IPv6', successfulSyncs: 0 },
        'junk',
      ],
    });
    assert.deepEqual(formatSyncs(before, after), [
      'sync (IPv4): partial, 3.5 ms (render 1.0 ms, apply 2.5 ms), sync #4 (2 syncs since the change; the last shown)',
    ]);
    assert.deepEqual(formatSyncs(after, after), ['sync: none (nothing node1 programs changed)']);
  });
});

describe('views', () => {
  const shop: Service = {
    metadata: { namespace: 'default', name: 'shop' },
    spec: {
      type: 'NodePort',
      clusterIP: '10.96.0.10',
      selector: { app: 'shop' },
      externalTrafficPolicy: 'Local',
      ports: [{ port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }],
    },
  };

  it('lists Services with kubectl columns', () => {
    assert.equal(
      table(tableOf('Service', [shop], true, false)),
      [
        'NAME  TYPE      CLUSTER-IP  EXTERNAL-IP  PORT(S)       SELECTOR',
        'shop  NodePort  10.96.0.10  <none>       80:30080/TCP  app=shop',
      ].join('\n'),
    );
  });

  it('describes a Service with what kube-proxy on node1 made of it', () => {
    const lines = describeService(
      shop,
      [
        {
          addressType: 'IPv4',
          metadata: { name: 'shop-auto' },
          ports: [{ port: 8080 }],
          endpoints: [
            { addresses: ['10.244.1.12'], conditions: { ready: true } },
            { addresses: ['10.244.2.11'], conditions: { ready: false } },
          ],
        },
      ],
      {
        families: [
          {
            servicePorts: [
              {
                namespace: 'default',
                name: 'shop',
                portName: '',
                clusterIP: '10.96.0.10',
                port: 80,
                protocol: 'TCP',
                endpoints: [{ ip: '10.244.1.12', port: 8080, ready: true, nodeName: 'node1' }],
                selection: { clusterEndpoints: ['10.244.1.12:8080'], localEndpoints: ['10.244.1.12:8080'] },
              },
            ],
          },
        ],
      },
    );
    assert.ok(lines.includes('Endpoints:                10.244.1.12:8080'), lines.join('\n'));
    assert.ok(lines.includes('External Traffic Policy:  Local'));
    assert.ok(lines.includes('    local traffic to:     10.244.1.12:8080'), lines.join('\n'));
    const none = describeService(shop, [], { families: [] });
    assert.equal(none.at(-1), '  not programmed (see explain for why)');
  });
});
