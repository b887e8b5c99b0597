// Representative services for the golden tests, each rendered in a full sync. Shared with the
// e2e apply test, which loads the same text into a kernel.
import type { IptablesOptions } from '../../../src/dataplane/iptables/options.ts';
import type { ProxySnapshot } from '../../../src/model/types.ts';
import { servicePortState as sp, snapshot } from './fixture.ts';

export const BASE_OPTIONS: IptablesOptions = {
  family: 'IPv4',
  masqueradeBit: 14,
  masqueradeAll: false,
  localDetector: { kind: 'cidr', cidr: '10.244.0.0/16' },
  nodePortAddresses: { kind: 'all' },
  localhostNodePorts: true,
  randomFully: true,
  nfacct: { ctStateInvalidDropped: false, localhostNodePortsAccepted: false },
  conntrackInvalidDrop: true,
};

export const IPV6_OPTIONS: IptablesOptions = {
  ...BASE_OPTIONS,
  family: 'IPv6',
  localDetector: { kind: 'cidr', cidr: 'fd00:10:244::/48' },
};

export interface Scenario {
  readonly name: string;
  readonly snapshot: ProxySnapshot;
  readonly options: IptablesOptions;
}

const twoEndpoints = [
  { ip: '10.244.1.5', port: 8080, local: true },
  { ip: '10.244.2.7', port: 8080 },
];
const remoteOnly = [
  { ip: '10.244.2.7', port: 8080 },
  { ip: '10.244.2.8', port: 8080 },
];

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'nodeport-etp-cluster',
    options: BASE_OPTIONS,
    snapshot: snapshot([
      sp({
        name: 'np',
        portName: 'http',
        clusterIP: '10.96.0.20',
        port: 80,
        nodePort: 30080,
        endpoints: twoEndpoints,
      }),
    ]),
  },
  {
    name: 'loadbalancer-etp-local-with-local-endpoint',
    options: BASE_OPTIONS,
    snapshot: snapshot([
      sp({
        name: 'lb',
        portName: 'http',
        clusterIP: '10.96.0.30',
        port: 80,
        nodePort: 30081,
        loadBalancerVIPs: ['203.0.113.10'],
        healthCheckNodePort: 32000,
        externalPolicyLocal: true,
        endpoints: twoEndpoints,
      }),
    ]),
  },
  {
    name: 'loadbalancer-etp-local-without-local-endpoint',
    options: BASE_OPTIONS,
    snapshot: snapshot([
      sp({
        name: 'lb',
        portName: 'http',
        clusterIP: '10.96.0.30',
        port: 80,
        nodePort: 30081,
        loadBalancerVIPs: ['203.0.113.10'],
        healthCheckNodePort: 32000,
        externalPolicyLocal: true,
        endpoints: remoteOnly,
      }),
    ]),
  },
  {
    name: 'loadbalancer-source-ranges',
    options: BASE_OPTIONS,
    snapshot: snapshot(
      [
        sp({
          name: 'fw',
          clusterIP: '10.96.0.40',
          port: 443,
          nodePort: 30443,
          loadBalancerVIPs: ['203.0.113.20', '203.0.113.21'],
          loadBalancerSourceRanges: ['198.51.100.0/24', '192.168.0.0/16'],
          endpoints: [{ ip: '10.244.2.9', port: 8443 }],
        }),
      ],
      { nodeIPs: ['192.168.0.10'] },
    ),
  },
  {
    name: 'external-ip',
    options: BASE_OPTIONS,
    snapshot: snapshot([
      sp({
        name: 'ext',
        portName: 'dns',
        clusterIP: '10.96.0.50',
        port: 53,
        externalIPs: ['198.51.100.7'],
        endpoints: twoEndpoints,
      }),
    ]),
  },
  {
    name: 'session-affinity',
    options: BASE_OPTIONS,
    snapshot: snapshot([
      sp({
        name: 'sticky',
        clusterIP: '10.96.0.60',
        port: 80,
        affinitySeconds: 10800,
        endpoints: [
          { ip: '10.244.1.5', port: 80 },
          { ip: '10.244.2.7', port: 80 },
          { ip: '10.244.3.9', port: 80 },
        ],
      }),
    ]),
  },
  {
    name: 'no-endpoints',
    options: BASE_OPTIONS,
    snapshot: snapshot([
      sp({
        name: 'empty',
        portName: 'http',
        clusterIP: '10.96.0.70',
        port: 80,
        nodePort: 30070,
        externalIPs: ['198.51.100.8'],
        loadBalancerVIPs: ['203.0.113.30'],
        loadBalancerSourceRanges: ['198.51.100.0/24'],
      }),
    ]),
  },
  {
    name: 'internal-traffic-policy-local',
    options: BASE_OPTIONS,
    snapshot: snapshot([
      sp({
        name: 'itp',
        portName: 'a',
        clusterIP: '10.96.0.80',
        port: 80,
        internalPolicyLocal: true,
        endpoints: twoEndpoints,
      }),
      sp({
        name: 'itp',
        portName: 'b',
        clusterIP: '10.96.0.80',
        port: 81,
        internalPolicyLocal: true,
        endpoints: remoteOnly,
      }),
    ]),
  },
  {
    name: 'udp-and-terminating-fallback',
    options: BASE_OPTIONS,
    snapshot: snapshot([
      sp({
        name: 'dns',
        portName: 'dns',
        protocol: 'UDP',
        clusterIP: '10.96.0.10',
        port: 53,
        endpoints: [
          { ip: '10.244.1.2', port: 53, ready: false, serving: true, terminating: true },
          { ip: '10.244.1.3', port: 53, ready: false, serving: false, terminating: true },
        ],
      }),
    ]),
  },
  {
    name: 'ipv6',
    options: IPV6_OPTIONS,
    snapshot: snapshot(
      [
        sp({
          name: 'v6',
          portName: 'http',
          clusterIP: 'fd00:96::10',
          port: 80,
          nodePort: 30090,
          endpoints: [
            { ip: 'fd00:10:244:1::5', port: 8080, local: true },
            { ip: 'fd00:10:244:2::7', port: 8080 },
          ],
        }),
      ],
      { family: 'IPv6' },
    ),
  },
  {
    name: 'nodeport-addresses-cidrs',
    options: {
      ...BASE_OPTIONS,
      nodePortAddresses: { kind: 'cidrs', cidrs: ['192.168.0.0/24', '127.0.0.0/8', 'fd00::/8'] },
      nodeIPsForNodePorts: ['192.168.0.10', '127.0.0.1', '10.1.1.1', '192.168.0.11'],
      nfacct: { ctStateInvalidDropped: true, localhostNodePortsAccepted: true },
    },
    snapshot: snapshot([
      sp({
        name: 'np',
        portName: 'http',
        clusterIP: '10.96.0.20',
        port: 80,
        nodePort: 30080,
        endpoints: twoEndpoints,
      }),
    ]),
  },
  {
    name: 'masquerade-all-no-random-fully-liberal',
    options: {
      ...BASE_OPTIONS,
      masqueradeAll: true,
      randomFully: false,
      conntrackInvalidDrop: false,
      localhostNodePorts: false,
      masqueradeBit: 5,
    },
    snapshot: snapshot([
      sp({ name: 'web', portName: 'http', clusterIP: '10.96.0.10', port: 80, endpoints: twoEndpoints }),
    ]),
  },
  ...(
    [
      ['none', { kind: 'none' }],
      // NodeCIDR mode: the detector is the node's podCIDR (plan/local-traffic.ts resolves it).
      ['node-cidr', { kind: 'cidr', cidr: '10.244.1.0/24' }],
      ['bridge', { kind: 'bridge', iface: 'cbr0' }],
      ['prefix', { kind: 'prefix', prefix: 'veth' }],
    ] as const
  ).map(([label, detector]) => ({
    name: `local-detector-${label}`,
    options: { ...BASE_OPTIONS, localDetector: detector },
    snapshot: snapshot(
      [
        sp({
          name: 'lb',
          clusterIP: '10.96.0.30',
          port: 80,
          nodePort: 30081,
          externalPolicyLocal: true,
          endpoints: twoEndpoints,
        }),
      ],
      { podCIDRs: ['10.244.1.0/24'] },
    ),
  })),
];
