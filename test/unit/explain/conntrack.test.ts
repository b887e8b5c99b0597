// explain --conntrack: the flows of a `conntrack -L` listing for the tuple, each with the endpoint
// it was DNATed to, and stale when the service port no longer has that endpoint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conntrackArgs, conntrackFlows, withConntrack } from '../../../src/explain/conntrack.ts';
import { explain } from '../../../src/explain/engine.ts';
import { sortObjects, stateFromManifests } from '../../../src/explain/manifests.ts';
import { formatExplanation } from '../../../src/explain/format.ts';
import { ExecError } from '../../../src/util/exec.ts';
import { endpointSlice, node, service } from '../../support/objects.ts';
import { settingsFor } from './fixtures.ts';

const state = stateFromManifests(
  sortObjects(
    [
      node({ name: 'node1', ips: ['192.168.0.10'], podCIDRs: ['10.244.1.0/24'], zone: 'a' }),
      service({
        name: 'web',
        clusterIPs: ['10.96.0.10'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
      endpointSlice({
        service: 'web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ ip: '10.244.1.5', node: 'node1' }],
      }),
    ],
    'test',
  ),
  {
    nodeName: 'node1',
    mode: 'nftables',
    settings: settingsFor(['10.244.0.0/16'], { kind: 'primary' }),
    from: 'test',
  },
).state;
const e = explain(state, { src: '10.244.1.9', dst: '10.96.0.10', dport: 80 });

const LISTING = [
  'tcp      6 431999 ESTABLISHED src=10.244.1.9 dst=10.96.0.10 sport=40000 dport=80 src=10.244.1.5 dst=10.244.1.9 sport=8080 dport=40000 [ASSURED] mark=0 use=1',
  'tcp      6 117 TIME_WAIT src=10.244.1.9 dst=10.96.0.10 sport=40001 dport=80 src=10.244.2.7 dst=10.244.1.9 sport=8080 dport=40001 [ASSURED] mark=0 use=1',
  'tcp      6 117 TIME_WAIT src=10.244.1.9 dst=10.96.0.10 sport=40002 dport=81 src=10.244.2.7 dst=10.244.1.9 sport=8080 dport=40002 [ASSURED] mark=0 use=1',
].join('\n');

test('the listing is scoped to the tuple', () => {
  assert.deepEqual(conntrackArgs(e), [
    '-L',
    '-f',
    'ipv4',
    '-p',
    'tcp',
    '--orig-src',
    '10.244.1.9',
    '--orig-dst',
    '10.96.0.10',
    '--dport',
    '80',
  ]);
});

test('flows to an endpoint the service port no longer has are stale', () => {
  assert.deepEqual(conntrackFlows(e, LISTING), [
    {
      orig: '10.244.1.9:40000 -> 10.96.0.10:80',
      reply: '10.244.1.5:8080 -> 10.244.1.9:40000',
      state: 'ESTABLISHED',
      endpoint: '10.244.1.5:8080',
      stale: false,
    },
    {
      orig: '10.244.1.9:40001 -> 10.96.0.10:80',
      reply: '10.244.2.7:8080 -> 10.244.1.9:40001',
      state: 'TIME_WAIT',
      endpoint: '10.244.2.7:8080',
      stale: true,
    },
  ]);
});

test('the section, its hint and its text; a failing tool is reported, not thrown', async () => {
  const withFlows = await withConntrack(e, () => Promise.resolve({ stdout: LISTING, stderr: '', code: 0 }));
  assert.equal(withFlows.conntrack?.flows.length, 2);
  assert.ok(withFlows.hints.some((h) => h.includes('10.244.2.7:8080') && h.includes('conntrack -D')));
  assert.match(
    formatExplanation(withFlows),
    /DNATed to 10\.244\.2\.7:8080 {2}\[STALE: endpoint no longer exists\]/,
  );
  const failed = await withConntrack(e, () =>
    Promise.reject(
      new ExecError('conntrack -L', 1, '', 'conntrack v1.4.7: Operation not permitted', 'failed'),
    ),
  );
  assert.ok(failed.conntrack);
  assert.equal(failed.conntrack.flows.length, 0);
  assert.match(failed.conntrack.error ?? '', /failed|not permitted/);
});
