// A large full sync on the nft backend as a sequence of small restores (chunk.ts): nothing lost or
// added, no input depends on a later one, every Service travels whole, and the stale chains and
// entry chains come last.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkRestore } from '../../../src/dataplane/iptables/chunk.ts';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import { servicePortState, snapshot } from './fixture.ts';
import { BASE_OPTIONS } from './scenarios.ts';

function bigText(services: number): string {
  const states = Array.from({ length: services }, (_, i) =>
    servicePortState({
      name: `svc${i}`,
      portName: 'http',
      clusterIP: `10.96.${Math.floor(i / 200)}.${(i % 200) + 1}`,
      port: 80,
      ...(i % 5 === 0 ? { nodePort: 30000 + i, externalPolicyLocal: i % 10 === 0 } : {}),
      ...(i % 7 === 0
        ? { loadBalancerVIPs: [`203.0.113.${(i % 200) + 1}`], loadBalancerSourceRanges: ['192.0.2.0/24'] }
        : {}),
      endpoints: [1, 2, 3].map((n) => ({
        ip: `10.244.${n}.${(i % 200) + 1}`,
        port: 8080,
        nodeName: n === 1 ? 'node-a' : 'node-b',
      })),
    }),
  );
  return renderIptables({
    snapshot: snapshot(states),
    full: true,
    options: BASE_OPTIONS,
    // Two chains of Services that no longer exist: deleted by this sync.
    existingNatChains: new Set(['KUBE-SVC-GONEGONEGONEGONE', 'KUBE-SEP-GONEGONEGONEGONE']),
  }).text;
}

const lines = (text: string) =>
  text.split('\n').filter((l) => l !== '' && !l.startsWith('*') && l !== 'COMMIT');
const declaredIn = (chunk: string) =>
  new Set(
    lines(chunk)
      .filter((l) => l.startsWith(':'))
      .map((l) => l.slice(1).split(' ')[0]),
  );
const target = (rule: string) => / -[jg] (KUBE-\S+)/.exec(rule)?.[1];

test('a small full sync stays one input', () => {
  const text = bigText(5);
  assert.deepEqual(chunkRestore(text, 1_000), [text]);
});

test('a large full sync: every line once, no input needs a later one, every Service whole', () => {
  const text = bigText(120);
  const chunks = chunkRestore(text, 40);
  assert.ok(chunks.length > 5, `${chunks.length} inputs`);

  // Nothing lost, nothing new (the helper chain KUBE-MARK-MASQ is written twice: first and last).
  const seen = new Map<string, number>();
  for (const chunk of chunks) for (const line of lines(chunk)) seen.set(line, (seen.get(line) ?? 0) + 1);
  const original = lines(text);
  assert.deepEqual(new Set(seen.keys()), new Set(original));
  for (const [line, n] of seen) {
    const expected = original.filter((l) => l === line).length;
    if (n !== expected) assert.match(line, /KUBE-MARK-MASQ/, `only the helper chain repeats: ${line}`);
  }

  // Each input jumps only to chains declared in it or in an earlier one.
  const known = new Set<string>();
  for (const [i, chunk] of chunks.entries()) {
    for (const chain of declaredIn(chunk)) if (chain) known.add(chain);
    for (const rule of lines(chunk).filter((l) => l.startsWith('-A '))) {
      const to = target(rule);
      if (to !== undefined) assert.ok(known.has(to), `input ${i} jumps to ${to} before it exists`);
    }
  }

  // Every Service whole: a service chain's endpoint chains are in the same input.
  for (const chunk of chunks.slice(0, -1)) {
    const here = declaredIn(chunk);
    assert.ok([...here].filter((c) => c?.match(/^KUBE-(SVC|SVL|EXT|FW|SEP)-/)).length <= 40 + 10);
    for (const rule of lines(chunk).filter((l) => /^-A KUBE-(SVC|SVL|EXT|FW)-/.test(l))) {
      const to = target(rule);
      if (to?.match(/^KUBE-(SVC|SVL|EXT|FW|SEP)-/)) assert.ok(here.has(to), `${to} travels with its Service`);
    }
    assert.doesNotMatch(
      chunk,
      /^:KUBE-(SERVICES|NODEPORTS) /m,
      'entry chains are not touched before the end',
    );
  }

  // The last input: the entry chains, the filter table, and the deletion of the stale chains.
  const last = chunks.at(-1) ?? '';
  assert.match(last, /^\*filter$/m);
  assert.match(last, /^:KUBE-SERVICES - \[0:0\]$/m);
  assert.match(last, /^-X KUBE-SVC-GONEGONEGONEGONE$/m);
  assert.match(last, /^:KUBE-SVC-GONEGONEGONEGONE - \[0:0\]$/m);
});
