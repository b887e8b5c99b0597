// Listeners for the userspace capture golden tests, shared with the e2e apply test, which loads
// the same text into a kernel.
import type { CaptureListener, CaptureOptions } from '../../../src/dataplane/userspace/render.ts';
import { frontendsOf } from '../../../src/dataplane/userspace/render.ts';
import type { ServicePort } from '../../../src/model/types.ts';
import { servicePortState as sp } from '../iptables/fixture.ts';

export interface CaptureScenario {
  readonly name: string;
  readonly listeners: readonly CaptureListener[];
  readonly options: CaptureOptions;
}

export const WILDCARD_V4: CaptureOptions = { family: 'IPv4', listenIP: '0.0.0.0', hostIP: '192.168.1.10' };

/** One listener per frontend kind, proxy ports handed out from `firstPort` upwards. */
export function listenersFor(ports: readonly ServicePort[], firstPort: number): CaptureListener[] {
  let next = firstPort;
  return ports.flatMap((servicePort) =>
    frontendsOf(servicePort).map((frontend) => ({ servicePort, frontend, proxyPort: next++ })),
  );
}

const web = sp({
  name: 'web',
  portName: 'http',
  clusterIP: '10.96.0.10',
  port: 80,
  externalIPs: ['203.0.113.7'],
  nodePort: 30080,
  endpoints: [{ ip: '10.244.1.5', port: 8080 }],
}).servicePort;

/** Spec 2.3.2's example: upstream's single socket per service port, so one proxy port for all. */
export const SPEC_EXAMPLE: readonly CaptureListener[] = frontendsOf(web).map((frontend) => ({
  servicePort: web,
  frontend,
  proxyPort: 36421,
}));

const dns = sp({
  namespace: 'kube-system',
  name: 'dns',
  portName: 'dns',
  protocol: 'UDP',
  clusterIP: '10.96.0.53',
  port: 53,
}).servicePort;
const unnamed = sp({ name: 'plain', clusterIP: '10.96.0.30', port: 8080 }).servicePort;
const lb = sp({
  name: 'lb',
  portName: 'https',
  clusterIP: '10.96.0.40',
  port: 443,
  externalIPs: ['198.51.100.7', '198.51.100.8'],
  loadBalancerVIPs: ['203.0.113.20', '203.0.113.21'],
  loadBalancerSourceRanges: ['192.0.2.0/24'],
  nodePort: 30443,
  externalPolicyLocal: true,
}).servicePort;
const v6 = sp({
  name: 'web6',
  portName: 'http',
  clusterIP: 'fd00:10:96::10',
  port: 80,
  externalIPs: ['2001:db8::7'],
  loadBalancerVIPs: ['2001:db8::20'],
  nodePort: 30080,
}).servicePort;

export const SCENARIOS: readonly CaptureScenario[] = [
  { name: 'empty', listeners: [], options: WILDCARD_V4 },
  {
    name: 'every-frontend-wildcard',
    listeners: listenersFor([unnamed, dns, lb], 40000),
    options: WILDCARD_V4,
  },
  {
    name: 'every-frontend-bound-address',
    listeners: listenersFor([unnamed, dns, lb], 40000),
    options: { family: 'IPv4', listenIP: '192.168.1.10', hostIP: '192.168.1.10' },
  },
  {
    name: 'ipv6',
    listeners: listenersFor([v6], 40100),
    options: { family: 'IPv6', listenIP: '::', hostIP: 'fd00:192::10' },
  },
];
