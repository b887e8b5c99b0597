// The capture rules of spec 2.3.2 through the iptables tracer: where each kind of packet is sent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRestore, traceIptables } from '../../../src/dataplane/iptables/tracer.ts';
import type { Packet } from '../../../src/dataplane/common/trace.ts';
import { USERSPACE_JUMPS } from '../../../src/dataplane/userspace/owner.ts';
import { renderCapture } from '../../../src/dataplane/userspace/render.ts';
import { SPEC_EXAMPLE, WILDCARD_V4 } from './scenarios.ts';

const HOST = { localAddresses: ['192.168.1.10'] };
const rules = parseRestore(renderCapture(SPEC_EXAMPLE, WILDCARD_V4).text);

function where(packet: Omit<Packet, 'family' | 'protocol'>): string {
  const result = traceIptables(rules, { family: 'IPv4', protocol: 'TCP', ...packet }, HOST, USERSPACE_JUMPS);
  const { outcome } = result;
  return outcome.kind === 'endpoints' ? outcome.endpoints.join(',') : outcome.kind;
}

const pod = { kind: 'arriving', iif: 'veth1' } as const;
const node = { kind: 'local' } as const;

test('cluster IP: pods are REDIRECTed, the node DNATed to the host IP', () => {
  assert.equal(
    where({ sourceIP: '10.244.1.9', destIP: '10.96.0.10', destPort: 80, origin: pod }),
    '192.168.1.10:36421',
  );
  assert.equal(
    where({ sourceIP: '192.168.1.10', destIP: '10.96.0.10', destPort: 80, origin: node }),
    '192.168.1.10:36421',
  );
  assert.equal(where({ sourceIP: '10.244.1.9', destIP: '10.96.0.10', destPort: 81, origin: pod }), 'pass');
});

test('node ports on local addresses only, loopback included for the node', () => {
  assert.equal(
    where({ sourceIP: '192.0.2.1', destIP: '192.168.1.10', destPort: 30080, origin: pod }),
    '192.168.1.10:36421',
  );
  assert.equal(
    where({ sourceIP: '192.0.2.1', destIP: '192.168.1.99', destPort: 30080, origin: pod }),
    'pass',
  );
  assert.equal(
    where({ sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 30080, origin: node }),
    '192.168.1.10:36421',
  );
});

test('external IPs: captured from outside (no bridge), and from the node only when local', () => {
  assert.equal(
    where({ sourceIP: '192.0.2.1', destIP: '203.0.113.7', destPort: 80, origin: pod }),
    '192.168.1.10:36421',
  );
  assert.equal(
    where({ sourceIP: '192.168.1.10', destIP: '203.0.113.7', destPort: 80, origin: node }),
    'pass',
  );
  const local = traceIptables(
    rules,
    {
      family: 'IPv4',
      protocol: 'TCP',
      sourceIP: '192.168.1.10',
      destIP: '203.0.113.7',
      destPort: 80,
      origin: node,
    },
    { localAddresses: ['192.168.1.10', '203.0.113.7'] },
    USERSPACE_JUMPS,
  ).outcome;
  assert.deepEqual(local, { kind: 'endpoints', endpoints: ['192.168.1.10:36421'], masquerade: false });
});
