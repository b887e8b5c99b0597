// Property: for random cluster states and packets, the verdict explain reports (decided by the
// traffic plan) equals what the mode's tracer finds in the rules the mode renders for the same
// state: the same endpoints, REJECT or DROP, and the same masquerade. Both modes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import { formatOutcome } from '../../../src/dataplane/common/trace.ts';
import { explain, explainerOf, verdictOutcome, type PacketQuery } from '../../../src/explain/engine.ts';
import { snapshotOf, type ExplainState } from '../../../src/explain/state.ts';
import { ProxyModel } from '../../../src/model/tracker.ts';
import { endpointSlice, node, service } from '../../support/objects.ts';
import { NODE_PORTS, settingsFor, type TracedMode } from './fixtures.ts';

const NODE = 'node1';
const NODE_IP = '192.168.0.10';
const POD_IPS = ['10.244.1.1', '10.244.1.2', '10.244.2.1', '10.244.2.2'];
// Frontends never collide across Services here: the API server refuses duplicate node ports, and
// two Services sharing an external IP is a misconfiguration on which the plan (first Service wins)
// and the rules (a DNAT wins over a later REJECT) do not agree.
const EXTERNAL_IPS = ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'];
const LB_IPS = ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4'];

const endpointArb = (ip: string) =>
  fc.record({
    ip: fc.constant(ip),
    node: fc.constant(ip.startsWith('10.244.1.') ? NODE : 'node2'),
    ready: fc.boolean(),
    serving: fc.boolean(),
    terminating: fc.boolean(),
  });

const serviceArb = (index: number) =>
  fc.record({
    present: fc.constantFrom(true, true, true, false),
    type: fc.constantFrom('ClusterIP' as const, 'NodePort' as const, 'LoadBalancer' as const),
    port: fc.constantFrom(80, 443),
    protocol: fc.constantFrom('TCP' as const, 'UDP' as const),
    nodePort: fc.constant(30000 + index),
    externalIPs: fc.subarray([EXTERNAL_IPS[index] ?? '']),
    loadBalancerIPs: fc.subarray([LB_IPS[index] ?? '']),
    sourceRanges: fc.subarray(['198.51.100.0/24', '192.168.0.0/16']),
    affinity: fc.constantFrom(undefined, undefined, 60),
    externalLocal: fc.boolean(),
    internalLocal: fc.boolean(),
    endpoints: fc.subarray(POD_IPS).chain((ips) => fc.tuple(...ips.map(endpointArb))),
  });

type ServiceArb = fc.Arbitrary<{ present: boolean } & Record<string, unknown>>;
const stateArb = fc.tuple(...[0, 1, 2, 3].map((i) => serviceArb(i) as ServiceArb));

function objectsOf(specs: readonly fc.Arbitrary<unknown>[] | unknown[]): (Service | EndpointSlice)[] {
  const objects: (Service | EndpointSlice)[] = [];
  (specs as ReturnType<typeof serviceArb> extends fc.Arbitrary<infer T> ? T[] : never).forEach((spec, i) => {
    if (!spec.present) return;
    const name = `svc${i}`;
    objects.push(
      service({
        name,
        type: spec.type,
        clusterIPs: [`10.96.0.${i + 1}`],
        ports: [
          {
            name: 'p',
            port: spec.port,
            protocol: spec.protocol,
            targetPort: 8080,
            ...(spec.type !== 'ClusterIP' ? { nodePort: spec.nodePort } : {}),
          },
        ],
        externalIPs: spec.externalIPs,
        ...(spec.type === 'LoadBalancer'
          ? { loadBalancerIPs: spec.loadBalancerIPs, loadBalancerSourceRanges: spec.sourceRanges }
          : {}),
        externalTrafficPolicy: spec.externalLocal ? 'Local' : 'Cluster',
        internalTrafficPolicy: spec.internalLocal ? 'Local' : 'Cluster',
        ...(spec.affinity !== undefined ? { sessionAffinityTimeoutSeconds: spec.affinity } : {}),
      }),
      endpointSlice({
        service: name,
        ports: [{ name: 'p', port: 8080, protocol: spec.protocol }],
        endpoints: spec.endpoints,
      }),
    );
  });
  return objects;
}

function stateOf(objects: readonly (Service | EndpointSlice)[], mode: TracedMode): ExplainState {
  const model = new ProxyModel({ family: 'IPv4', nodeName: NODE, proxyStartTimeMs: 0 });
  model.setNode(node({ name: NODE, ips: [NODE_IP], podCIDRs: ['10.244.1.0/24'], zone: 'a' }));
  for (const obj of objects) {
    if ('addressType' in obj) model.upsertSlice(obj);
    else model.upsertService(obj);
  }
  const snapshot = model.snapshot();
  return {
    source: { kind: 'manifests' },
    node: NODE,
    mode,
    settings: settingsFor(['10.244.0.0/16'], NODE_PORTS[mode]),
    families: [
      {
        family: 'IPv4',
        node: snapshot.node,
        servicePorts: new Map(snapshot.servicePorts),
        hostAddresses: [],
        skipped: [],
      },
    ],
  };
}

const packetArb: fc.Arbitrary<PacketQuery> = fc
  .record({
    src: fc.constantFrom('10.244.1.9', '10.244.1.1', '10.244.2.5', NODE_IP, '192.0.2.100', '198.51.100.7'),
    dst: fc.constantFrom(
      '10.96.0.1',
      '10.96.0.2',
      '10.96.0.3',
      '10.96.0.4',
      '10.96.0.99',
      NODE_IP,
      ...EXTERNAL_IPS,
      ...LB_IPS,
    ),
    dport: fc.constantFrom(80, 443, 81, 30000, 30001, 30002, 30003, 30099),
    proto: fc.constantFrom('TCP' as const, 'UDP' as const),
    external: fc.boolean(),
  })
  .map(({ external, ...packet }) => ({
    ...packet,
    // The node's address only ever sends from the node; anything else arrives.
    from:
      packet.src === NODE_IP
        ? ('node' as const)
        : packet.src.startsWith('10.244.1.') && !external
          ? ('pod' as const)
          : ('external' as const),
  }));

for (const mode of ['iptables', 'nftables', 'ipvs', 'userspace'] as const) {
  test(`explain's verdict is what the ${mode} tracer finds in the rendered rules`, () => {
    const explainer = explainerOf(mode);
    assert.ok(explainer);
    fc.assert(
      fc.property(stateArb, fc.array(packetArb, { minLength: 1, maxLength: 8 }), (specs, packets) => {
        const state = stateOf(objectsOf(specs), mode);
        const family = state.families[0];
        assert.ok(family);
        const rules = explainer.render({
          family: 'IPv4',
          snapshot: snapshotOf(family),
          settings: state.settings,
          node: {
            name: NODE,
            primaryFamily: 'IPv4',
            ips: { IPv4: [NODE_IP], IPv6: [] },
            podCIDRs: ['10.244.1.0/24'],
          },
          hostAddresses: [],
        });
        for (const packet of packets) {
          const explanation = explain(state, packet);
          const traced = rules.trace(
            {
              family: 'IPv4',
              protocol: packet.proto ?? 'TCP',
              sourceIP: packet.src,
              destIP: packet.dst,
              destPort: packet.dport,
              origin:
                packet.from === 'node'
                  ? { kind: 'local' }
                  : { kind: 'arriving', iif: explanation.packet.arrival.iif ?? 'eth0' },
            },
            { localAddresses: [NODE_IP] },
          ).outcome;
          const said = verdictOutcome(explanation.verdict);
          const same =
            said.kind === 'pass' && traced.kind === 'pass'
              ? true
              : formatOutcome(said) === formatOutcome(traced);
          assert.ok(
            same,
            `${JSON.stringify(packet)}: explain says ${JSON.stringify(formatOutcome(said))}, the ${mode} rules ${JSON.stringify(formatOutcome(traced))}`,
          );
        }
      }),
      { numRuns: 150 },
    );
  });
}
