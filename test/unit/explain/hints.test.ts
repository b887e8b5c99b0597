// Explain on manifests: the "why not" answers and near-miss hints name the object and the field
// a user has to fix, and the JSON carries the contract's fields.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { explain } from '../../../src/explain/engine.ts';
import { formatExplanation } from '../../../src/explain/format.ts';
import { sortObjects, stateFromManifests } from '../../../src/explain/manifests.ts';
import { EXPLAIN_API_VERSION } from '../../../src/explain/types.ts';
import { endpointSlice, node, service } from '../../support/objects.ts';
import { settingsFor } from './fixtures.ts';

const NODE_IP = '192.168.0.10';

function stateOf(objects: unknown[], mode = 'nftables') {
  return stateFromManifests(sortObjects(objects, 'test'), {
    nodeName: 'node1',
    mode,
    settings: settingsFor(['10.244.0.0/16'], { kind: 'primary' }),
    from: 'test',
  }).state;
}

const theNode = node({ name: 'node1', ips: [NODE_IP], podCIDRs: ['10.244.1.0/24'], zone: 'a' });
const http = [{ name: 'http', port: 80, targetPort: 8080 }];

describe('explain hints', () => {
  test('an unallocated address of a ServiceCIDR in the manifests: DROP in nftables mode, untouched in iptables', () => {
    const objects = [
      theNode,
      service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: http }),
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'ServiceCIDR',
        metadata: { name: 'kubernetes' },
        spec: { cidrs: ['10.96.0.0/16'] },
      },
    ];
    const query = { src: '10.244.1.9', dst: '10.96.7.7', dport: 80 };
    const nft = explain(stateOf(objects), query);
    assert.equal(nft.verdict.action, 'DROP');
    assert.match(nft.verdict.because, /inside the service CIDR 10\.96\.0\.0\/16 but no Service holds it/);
    assert.ok(
      nft.path.some((step) => step.rule.includes('Drop traffic to unallocated ClusterIPs')),
      JSON.stringify(nft.path),
    );
    assert.ok(!nft.caveats.some((c) => c.includes('a bug')), nft.caveats.join('\n'));
    assert.equal(explain(stateOf(objects, 'iptables'), query).verdict.action, 'NOT_HANDLED');
  });

  test('a slice whose port name differs from the Service port: REJECT, and the hint names both', () => {
    const state = stateOf([
      theNode,
      service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: http }),
      endpointSlice({
        service: 'web',
        name: 'web-abc12',
        ports: [{ name: 'web', port: 8080 }],
        endpoints: [{ ip: '10.244.1.5', node: 'node1' }],
      }),
    ]);
    const e = explain(state, { src: '10.244.1.9', dst: '10.96.0.10', dport: 80 });
    assert.equal(e.verdict.action, 'REJECT');
    assert.equal(e.match.servicePort, 'default/web:http');
    assert.ok(e.decisions.some((d) => d.step === 'noEndpoints'));
    assert.ok(
      e.hints.some(
        (h) => h.includes('EndpointSlice default/web-abc12 has port "web"/TCP') && h.includes('"http"/TCP'),
      ),
      e.hints.join('\n'),
    );
  });

  test('no EndpointSlice for the Service at all', () => {
    const state = stateOf([theNode, service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: http })]);
    const e = explain(state, { src: '10.244.1.9', dst: '10.96.0.10', dport: 80 });
    assert.equal(e.verdict.action, 'REJECT');
    assert.ok(
      e.hints.some((h) => h.includes('kubernetes.io/service-name=web')),
      e.hints.join('\n'),
    );
  });

  test('every endpoint not ready: REJECT, endpoints listed as not ready', () => {
    const state = stateOf([
      theNode,
      service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: http }),
      endpointSlice({
        service: 'web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [
          { ip: '10.244.1.5', node: 'node1', ready: false, serving: false },
          { ip: '10.244.2.5', node: 'node2', ready: false, serving: false },
        ],
      }),
    ]);
    const e = explain(state, { src: '10.244.1.9', dst: '10.96.0.10', dport: 80 });
    assert.equal(e.verdict.action, 'REJECT');
    assert.deepEqual(
      e.endpoints.map((ep) => [ep.endpoint, ep.eligible, ep.why]),
      [
        ['10.244.1.5:8080', false, 'not ready (conditions.ready=false)'],
        ['10.244.2.5:8080', false, 'not ready (conditions.ready=false)'],
      ],
    );
    assert.ok(e.hints.some((h) => h.includes('all 2 endpoints of default/web:http are not ready')));
  });

  test('terminating fallback: the serving terminating endpoint takes the traffic', () => {
    const state = stateOf([
      theNode,
      service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: http }),
      endpointSlice({
        service: 'web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [
          { ip: '10.244.1.5', node: 'node1', ready: false, serving: true, terminating: true },
          { ip: '10.244.2.5', node: 'node2', ready: false, serving: false, terminating: true },
        ],
      }),
    ]);
    const e = explain(state, { src: '10.244.1.9', dst: '10.96.0.10', dport: 80 });
    assert.deepEqual(e.verdict.to, ['10.244.1.5:8080']);
    assert.ok(e.decisions.some((d) => d.step === 'terminatingFallback' && d.outcome === 'used'));
  });

  test('eTP=Local with every endpoint on another node: DROP from outside, with the field to change', () => {
    const state = stateOf(
      [
        theNode,
        service({
          name: 'lb',
          type: 'LoadBalancer',
          clusterIPs: ['10.96.0.30'],
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }],
          externalTrafficPolicy: 'Local',
          loadBalancerIPs: ['203.0.113.10'],
          healthCheckNodePort: 32000,
        }),
        endpointSlice({
          service: 'lb',
          ports: [{ name: 'http', port: 8080 }],
          endpoints: [
            { ip: '10.244.2.7', node: 'node2' },
            { ip: '10.244.2.8', node: 'node2' },
          ],
        }),
      ],
      'iptables',
    );
    const e = explain(state, { src: '198.51.100.20', dst: '203.0.113.10', dport: 80 });
    assert.equal(e.match.kind, 'loadBalancerIP');
    assert.equal(e.verdict.action, 'DROP');
    assert.equal(e.packet.arrival.from, 'external');
    const policy = e.decisions.find((d) => d.step === 'trafficPolicy');
    assert.deepEqual(policy?.fields, ['spec.externalTrafficPolicy', 'endpoints[].nodeName']);
    assert.ok(
      e.hints.some((h) => h.includes('on other nodes (node2)') && h.includes('spec.externalTrafficPolicy')),
    );
    assert.ok(e.hints.some((h) => h.includes('health check node port 32000 answers 503')));
    assert.ok(e.endpoints.every((ep) => !ep.eligible && ep.why?.includes('traffic policy is Local')));
    // The path ends at the DROP, quoted as iptables-save prints it.
    const last = e.path[e.path.length - 1];
    assert.match(last?.rule ?? '', /^-A KUBE-EXTERNAL-SERVICES .*-d 203\.0\.113\.10 .*-j DROP$/);
    // The node itself is not subject to eTP=Local.
    const fromNode = explain(state, { src: NODE_IP, dst: '203.0.113.10', dport: 80 });
    assert.equal(fromNode.verdict.action, 'DNAT');
    assert.equal(fromNode.verdict.snat, true);
  });

  test('source ranges: a client outside them is dropped and told which field lets it in', () => {
    const state = stateOf([
      theNode,
      service({
        name: 'lb',
        type: 'LoadBalancer',
        clusterIPs: ['10.96.0.30'],
        ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }],
        loadBalancerIPs: ['203.0.113.10'],
        loadBalancerSourceRanges: ['198.51.100.0/24'],
      }),
      endpointSlice({
        service: 'lb',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ ip: '10.244.2.7', node: 'node2' }],
      }),
    ]);
    const denied = explain(state, { src: '192.0.2.1', dst: '203.0.113.10', dport: 80 });
    assert.equal(denied.verdict.action, 'DROP');
    assert.deepEqual(denied.decisions[0]?.fields, ['spec.loadBalancerSourceRanges']);
    assert.ok(denied.hints.some((h) => h.includes('spec.loadBalancerSourceRanges')));
    const allowed = explain(state, { src: '198.51.100.20', dst: '203.0.113.10', dport: 80 });
    assert.deepEqual(allowed.verdict, {
      action: 'DNAT',
      to: ['10.244.2.7:8080'],
      snat: true,
      because: 'the load balancer IP of default/lb:http with 1 usable endpoint, source masqueraded',
    });
  });

  test('a Service another proxy handles is named as not programmed', () => {
    const state = stateOf([
      theNode,
      service({
        name: 'other',
        clusterIPs: ['10.96.0.50'],
        ports: http,
        labels: { 'service.kubernetes.io/service-proxy-name': 'cilium' },
      }),
      service({ name: 'gone', clusterIPs: ['None'], ports: http }),
    ]);
    const e = explain(state, { src: '10.244.1.9', dst: '10.96.0.50', dport: 80 });
    assert.equal(e.match.kind, 'none');
    assert.equal(e.verdict.action, 'NOT_HANDLED');
    assert.deepEqual(e.match.notProgrammed, [
      {
        service: 'default/other',
        reason: 'labelled service.kubernetes.io/service-proxy-name="cilium": another proxy handles it',
      },
    ]);
  });

  test('another port of a cluster IP: nftables rejects it, iptables leaves it alone', () => {
    const objects = [theNode, service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: http })];
    const nft = explain(stateOf(objects, 'nftables'), { src: '10.244.1.9', dst: '10.96.0.10', dport: 81 });
    assert.equal(nft.match.kind, 'clusterIPOtherPort');
    assert.equal(nft.verdict.action, 'REJECT');
    assert.ok(nft.hints.some((h) => h.includes('serves 80/TCP')));
    const ipt = explain(stateOf(objects, 'iptables'), { src: '10.244.1.9', dst: '10.96.0.10', dport: 81 });
    assert.equal(ipt.verdict.action, 'NOT_HANDLED');
  });

  test('bad input names the flag', () => {
    const state = stateOf([theNode]);
    assert.throws(
      () => explain(state, { src: 'x', dst: '10.96.0.10', dport: 80 }),
      /--src "x" is not an IP address/,
    );
    assert.throws(
      () => explain(state, { src: '10.0.0.1', dst: 'fd00::1', dport: 80 }),
      /a packet has one family/,
    );
    assert.throws(
      () => explain(state, { src: '10.0.0.1', dst: '10.96.0.1', dport: 0 }),
      /--dport 0 is not a port number/,
    );
  });

  test('the JSON contract and the text form', () => {
    const state = stateOf([
      theNode,
      service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: http }),
      endpointSlice({
        service: 'web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [
          { ip: '10.244.1.5', node: 'node2' },
          { ip: '10.244.2.7', node: 'node2' },
        ],
      }),
    ]);
    const e = explain(state, { src: '10.244.1.9', dst: '10.96.0.10', dport: 80 });
    assert.equal(e.apiVersion, EXPLAIN_API_VERSION);
    assert.equal(e.kind, 'Explanation');
    assert.equal(e.source.mode, 'nftables');
    assert.deepEqual(e.packet.arrival, { from: 'pod', hook: 'prerouting', iif: 'veth0', inferred: true });
    assert.deepEqual(
      e.endpoints.map((ep) => [ep.endpoint, ep.eligible, ep.chance, ep.slot]),
      [
        ['10.244.1.5:8080', true, 0.5, 0],
        ['10.244.2.7:8080', true, 0.5, 1],
      ],
    );
    const service_ips = e.path.find((step) => step.element?.set === 'service-ips');
    assert.deepEqual(service_ips, {
      table: 'ip kube-proxy',
      hook: 'prerouting',
      priority: -100,
      chain: 'services',
      rule: 'ip daddr . meta l4proto . th dport vmap @service-ips',
      matched: true,
      element: {
        set: 'service-ips',
        text: '10.96.0.10 . tcp . 80 comment "default/web:http" : goto to-cluster-ip',
      },
    });
    const text = formatExplanation(e);
    assert.match(text, /^Packet {5}TCP 10\.244\.1\.9 -> 10\.96\.0\.10:80, from a pod/m);
    assert.match(text, /^Verdict {4}DNAT to 10\.244\.1\.5:8080 or 10\.244\.2\.7:8080, client address kept$/m);
    assert.match(text, /@ip-endpoints-tcp: 10\.96\.0\.10 \. 80 \. 1 : 10\.244\.2\.7 \. 8080/);
  });
});
