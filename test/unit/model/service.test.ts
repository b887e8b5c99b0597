import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { servicePortsFromService, formatProblem } from '../../../src/model/service.ts';
import { rawService, service } from './fixtures.ts';

describe('servicePortsFromService: filtering (spec 1.2)', () => {
  it('turns each spec.ports entry into a service port with its name, key and printable name', () => {
    const { ports, problems } = servicePortsFromService(
      service({
        ports: [
          { name: 'http', protocol: 'TCP', port: 80 },
          { name: 'dns', protocol: 'UDP', port: 53, nodePort: 30053 },
        ],
      }),
      'IPv4',
    );
    assert.deepEqual(problems, []);
    assert.equal(ports.length, 2);
    const [http, dns] = ports;
    assert.deepEqual(http?.id, {
      namespace: 'default',
      name: 'web',
      portName: 'http',
      protocol: 'TCP',
      key: 'default/web:http/TCP',
      printable: 'default/web:http',
      service: 'default/web',
    });
    assert.equal(http.clusterIP, '10.96.0.10');
    assert.equal(http.port, 80);
    assert.equal(http.nodePort, 0);
    assert.equal(dns?.id.key, 'default/web:dns/UDP');
    assert.equal(dns.nodePort, 30053);
    assert.deepEqual(http.sessionAffinity, { type: 'None' });
  });

  it('prints an unnamed port as namespace/name and defaults a missing protocol to TCP', () => {
    const { ports } = servicePortsFromService(service({ ports: [{ port: 443 }] }), 'IPv4');
    assert.equal(ports[0]?.id.printable, 'default/web');
    assert.equal(ports[0].id.key, 'default/web:/TCP');
  });

  for (const clusterIP of ['None', '']) {
    it(`skips a headless Service (clusterIP ${JSON.stringify(clusterIP)}) without a problem`, () => {
      assert.deepEqual(servicePortsFromService(service({ clusterIP }), 'IPv4'), { ports: [], problems: [] });
    });
  }

  it('skips ExternalName Services', () => {
    const result = servicePortsFromService(service({ type: 'ExternalName' }), 'IPv4');
    assert.deepEqual(result, { ports: [], problems: [] });
  });
});

describe('servicePortsFromService: IP families (spec 1.7)', () => {
  it('uses spec.clusterIP when ipFamilies is empty, only in its own family', () => {
    assert.equal(servicePortsFromService(service(), 'IPv4').ports.length, 1);
    assert.deepEqual(servicePortsFromService(service(), 'IPv6'), { ports: [], problems: [] });
    const v6 = servicePortsFromService(service({ clusterIP: 'fd00:0:0::a' }), 'IPv6');
    assert.equal(v6.ports[0]?.clusterIP, 'fd00::a');
  });

  it('picks clusterIPs[i] for ipFamilies[i] on dual-stack Services', () => {
    const svc = service({
      clusterIP: 'fd00::10',
      clusterIPs: ['fd00::10', '10.96.0.10'],
      ipFamilies: ['IPv6', 'IPv4'],
    });
    assert.equal(servicePortsFromService(svc, 'IPv4').ports[0]?.clusterIP, '10.96.0.10');
    assert.equal(servicePortsFromService(svc, 'IPv6').ports[0]?.clusterIP, 'fd00::10');
  });

  it('skips a family listed in ipFamilies without a matching clusterIPs entry', () => {
    const svc = service({ clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4', 'IPv6'] });
    assert.deepEqual(servicePortsFromService(svc, 'IPv6'), { ports: [], problems: [] });
  });

  it('keeps only external IPs of the family, canonical and without duplicates', () => {
    const svc = service({ externalIPs: ['192.0.2.1', 'FD00::0:1', '192.0.2.1', '192.0.2.2'] });
    assert.deepEqual(servicePortsFromService(svc, 'IPv4').ports[0]?.externalIPs, ['192.0.2.1', '192.0.2.2']);
    const v6 = service({ clusterIP: 'fd00::10', externalIPs: ['192.0.2.1', 'FD00::0:1'] });
    assert.deepEqual(servicePortsFromService(v6, 'IPv6').ports[0]?.externalIPs, ['fd00::1']);
  });
});

describe('servicePortsFromService: load balancers', () => {
  it('takes ingress IPs whose ipMode is unset or VIP, ignoring Proxy, hostnames and other families', () => {
    const svc = service({
      type: 'LoadBalancer',
      ingress: [
        { ip: '203.0.113.1' },
        { ip: '203.0.113.2', ipMode: 'VIP' },
        { ip: '203.0.113.3', ipMode: 'Proxy' },
        { hostname: 'lb.example.com' },
        { ip: '2001:db8::1' },
      ],
    });
    const { ports, problems } = servicePortsFromService(svc, 'IPv4');
    assert.deepEqual(ports[0]?.loadBalancerVIPs, ['203.0.113.1', '203.0.113.2']);
    assert.deepEqual(problems, []);
  });

  it('trims and parses source ranges, clears host bits, keeps the family, drops bad ones with a problem', () => {
    const svc = service({
      type: 'LoadBalancer',
      loadBalancerSourceRanges: [
        ' 10.0.0.0/8 ',
        '192.168.1.5/24',
        '2001:db8::/32',
        'not-a-cidr',
        '10.0.0.0/33',
      ],
    });
    const { ports, problems } = servicePortsFromService(svc, 'IPv4');
    assert.deepEqual(ports[0]?.loadBalancerSourceRanges, ['10.0.0.0/8', '192.168.1.0/24']);
    assert.deepEqual(problems.map(formatProblem), [
      'Service default/web: spec.loadBalancerSourceRanges[3]: invalid CIDR "not-a-cidr", ignored',
      'Service default/web: spec.loadBalancerSourceRanges[4]: invalid CIDR "10.0.0.0/33", ignored',
    ]);
  });

  it('sets healthCheckNodePort only for type LoadBalancer with externalTrafficPolicy Local', () => {
    const hc = (type: string, externalTrafficPolicy: string): number | undefined =>
      servicePortsFromService(service({ type, externalTrafficPolicy, healthCheckNodePort: 32000 }), 'IPv4')
        .ports[0]?.healthCheckNodePort;
    assert.equal(hc('LoadBalancer', 'Local'), 32000);
    assert.equal(hc('LoadBalancer', 'Cluster'), 0);
    assert.equal(hc('NodePort', 'Local'), 0);
  });
});

describe('servicePortsFromService: affinity and traffic policies', () => {
  it('defaults the ClientIP timeout to 10800 seconds and keeps an explicit one', () => {
    const dflt = servicePortsFromService(service({ sessionAffinity: 'ClientIP' }), 'IPv4').ports[0];
    assert.deepEqual(dflt?.sessionAffinity, { type: 'ClientIP', timeoutSeconds: 10800 });
    const set = servicePortsFromService(service({ sessionAffinity: 'ClientIP', timeoutSeconds: 300 }), 'IPv4')
      .ports[0];
    assert.deepEqual(set?.sessionAffinity, { type: 'ClientIP', timeoutSeconds: 300 });
    const none = servicePortsFromService(service({ sessionAffinity: 'None', timeoutSeconds: 300 }), 'IPv4')
      .ports[0];
    assert.deepEqual(none?.sessionAffinity, { type: 'None' });
  });

  it('externalPolicyLocal only for NodePort/LoadBalancer with eTP Local; a ClusterIP Service with externalIPs is Cluster', () => {
    const local = (type: string): boolean | undefined =>
      servicePortsFromService(
        service({
          type,
          externalTrafficPolicy: 'Local',
          externalIPs: ['192.0.2.1'],
          ports: [{ port: 80, nodePort: type === 'ClusterIP' ? 0 : 30080 }],
        }),
        'IPv4',
      ).ports[0]?.externalPolicyLocal;
    assert.equal(local('NodePort'), true);
    assert.equal(local('LoadBalancer'), true);
    assert.equal(local('ClusterIP'), false);
    const cluster = servicePortsFromService(
      service({ type: 'NodePort', externalTrafficPolicy: 'Cluster' }),
      'IPv4',
    );
    assert.equal(cluster.ports[0]?.externalPolicyLocal, false);
  });

  it('internalPolicyLocal follows internalTrafficPolicy Local', () => {
    assert.equal(
      servicePortsFromService(service({ internalTrafficPolicy: 'Local' }), 'IPv4').ports[0]
        ?.internalPolicyLocal,
      true,
    );
    assert.equal(
      servicePortsFromService(service({ internalTrafficPolicy: 'Cluster' }), 'IPv4').ports[0]
        ?.internalPolicyLocal,
      false,
    );
    assert.equal(servicePortsFromService(service(), 'IPv4').ports[0]?.internalPolicyLocal, false);
  });
});

describe('servicePortsFromService: validation at the border', () => {
  const skippedWith = (value: unknown, expected: string): void => {
    const { ports, problems } = servicePortsFromService(rawService(value), 'IPv4');
    assert.deepEqual(ports, []);
    assert.deepEqual(problems.map(formatProblem), [expected]);
  };

  it('skips the whole Service for an unsupported protocol, naming object and field', () => {
    skippedWith(
      service({
        ports: [
          { name: 'a', port: 80 },
          { name: 'b', port: 81, protocol: 'ICMP' },
        ],
      }),
      'Service default/web: spec.ports[1].protocol: unsupported value "ICMP"',
    );
  });

  it('skips the whole Service for a cluster IP carrying rule syntax', () => {
    skippedWith(
      service({ clusterIP: '10.0.0.1 -j ACCEPT' }),
      'Service default/web: spec.clusterIP: invalid IP "10.0.0.1 -j ACCEPT"',
    );
    skippedWith(
      service({ clusterIP: '10.0.0.1', clusterIPs: ['10.0.0.1\n-A X'], ipFamilies: ['IPv4'] }),
      'Service default/web: spec.clusterIPs[0]: invalid IP "10.0.0.1\\n-A X"',
    );
  });

  it('rejects a cluster IP of the wrong family for its ipFamilies slot', () => {
    skippedWith(
      service({ clusterIP: 'fd00::1', clusterIPs: ['fd00::1'], ipFamilies: ['IPv4'] }),
      'Service default/web: spec.clusterIPs[0]: "fd00::1" is not an IPv4 address',
    );
  });

  for (const [label, port, fieldName] of [
    ['port 99999', { name: 'x', port: 99999 }, 'port'],
    ['port 0', { name: 'x', port: 0 }, 'port'],
    ['port 80.5', { name: 'x', port: 80.5 }, 'port'],
    ['port "80"', { name: 'x', port: '80' }, 'port'],
    ['nodePort 70000', { name: 'x', port: 80, nodePort: 70000 }, 'nodePort'],
    ['nodePort -1', { name: 'x', port: 80, nodePort: -1 }, 'nodePort'],
  ] as const) {
    it(`skips the Service for ${label}`, () => {
      const { ports, problems } = servicePortsFromService(
        rawService(service({ ports: [port as never] })),
        'IPv4',
      );
      assert.deepEqual(ports, []);
      assert.equal(problems.length, 1);
      assert.equal(problems[0]?.field, `spec.ports[0].${fieldName}`);
    });
  }

  for (const portName of ['"; drop', 'HTTP', 'a'.repeat(64), 'web\n', '-x']) {
    it(`skips the Service for port name ${JSON.stringify(portName)}`, () => {
      const { ports, problems } = servicePortsFromService(
        service({ ports: [{ name: portName, port: 80 }] }),
        'IPv4',
      );
      assert.deepEqual(ports, []);
      assert.equal(problems[0]?.field, 'spec.ports[0].name');
    });
  }

  it('accepts long DNS-label port names as the API server does', () => {
    const name = 'a-very-long-port-name-of-thirty';
    assert.equal(
      servicePortsFromService(service({ ports: [{ name, port: 80 }] }), 'IPv4').ports[0]?.id.portName,
      name,
    );
  });

  it('skips the Service for bad namespace or name, quoting them safely in the message', () => {
    const { ports, problems } = servicePortsFromService(
      service({ name: 'web\nE0101 fake log line' }),
      'IPv4',
    );
    assert.deepEqual(ports, []);
    const text = formatProblem(problems[0]!);
    assert.equal(problems[0]?.field, 'metadata.name');
    assert.ok(!text.includes('\n'), text);
    assert.equal(
      servicePortsFromService(service({ namespace: 'Default' }), 'IPv4').problems[0]?.field,
      'metadata.namespace',
    );
    assert.equal(
      servicePortsFromService(service({ name: 'a'.repeat(64) }), 'IPv4').problems[0]?.field,
      'metadata.name',
    );
  });

  it('skips the Service for an affinity timeout out of 1..86400 and for a bad health check port', () => {
    skippedWith(
      service({ sessionAffinity: 'ClientIP', timeoutSeconds: 86401 }),
      'Service default/web: spec.sessionAffinityConfig.clientIP.timeoutSeconds: invalid timeout 86401 (want 1..86400)',
    );
    skippedWith(
      service({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 65536 }),
      'Service default/web: spec.healthCheckNodePort: invalid port 65536',
    );
  });

  it('skips a Service with duplicate port name and protocol', () => {
    const { ports, problems } = servicePortsFromService(
      service({
        ports: [
          { name: 'a', port: 80 },
          { name: 'a', port: 81 },
        ],
      }),
      'IPv4',
    );
    assert.deepEqual(ports, []);
    assert.equal(problems[0]?.field, 'spec.ports[1].name');
  });

  it('drops a single bad externalIP or ingress IP and keeps the Service', () => {
    const { ports, problems } = servicePortsFromService(
      service({
        type: 'LoadBalancer',
        externalIPs: ['192.0.2.1', '192.0.2.2 -j ACCEPT'],
        ingress: [{ ip: '"; drop' }, { ip: '203.0.113.9' }],
      }),
      'IPv4',
    );
    assert.deepEqual(ports[0]?.externalIPs, ['192.0.2.1']);
    assert.deepEqual(ports[0].loadBalancerVIPs, ['203.0.113.9']);
    assert.deepEqual(
      problems.map((p) => p.field),
      ['spec.externalIPs[1]', 'status.loadBalancer.ingress[0].ip'],
    );
  });

  it('never throws on objects of the wrong shape', () => {
    for (const value of [
      null,
      42,
      'svc',
      [],
      {},
      { metadata: 7, spec: 'x' },
      { metadata: { name: 'a', namespace: 'b' }, spec: { clusterIP: '10.0.0.1', ports: 'all' } },
      { metadata: { name: 'a', namespace: 'b' }, spec: { clusterIP: ['10.0.0.1'], ports: [null, 3] } },
    ]) {
      const { ports } = servicePortsFromService(rawService(value), 'IPv4');
      assert.deepEqual(ports, []);
    }
  });
});
