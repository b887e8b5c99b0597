// Partial syncs, stale chains and large-cluster mode (spec 3.9, 3.5).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import { serviceChainNames } from '../../../src/dataplane/iptables/chains.ts';
import { servicePortState, snapshot, type ServiceSpec } from './fixture.ts';
import { BASE_OPTIONS } from './scenarios.ts';

const svc = (name: string, ip: string, endpoints: number, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({
  name,
  clusterIP: ip,
  port: 80,
  endpoints: Array.from({ length: endpoints }, (_, i) => ({
    ip: `10.244.${ip.split('.')[3]}.${i + 1}`,
    port: 8080,
  })),
  ...extra,
});

const chainLines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith(':'));

test('partial sync declares only the changed service chains; others stay active', () => {
  const a = servicePortState(svc('a', '10.96.0.1', 2));
  const b = servicePortState(svc('b', '10.96.0.2', 2, { nodePort: 30002 }));
  const full = renderIptables({ snapshot: snapshot([a, b]), full: true, options: BASE_OPTIONS });
  const bNames = serviceChainNames('default/b', 'TCP');

  const b2 = servicePortState(svc('b', '10.96.0.2', 1, { nodePort: 30002 }));
  const existing = new Set([...full.activeNatChains, 'KUBE-SERVICES', 'KUBE-NODEPORTS', 'OTHER-CHAIN']);
  const partial = renderIptables({
    snapshot: snapshot([a, b2], { changed: ['default/b'] }),
    full: false,
    options: BASE_OPTIONS,
    previous: full.cache,
    existingNatChains: existing,
  });
  const aNames = serviceChainNames('default/a', 'TCP');
  // a's chains are neither declared nor written, but its KUBE-SERVICES rule is.
  assert.doesNotMatch(partial.text, new RegExp(`^:${aNames.cluster}`, 'm'));
  assert.doesNotMatch(partial.text, new RegExp(`^-A ${aNames.cluster}`, 'm'));
  assert.match(partial.text, new RegExp(`^-A KUBE-SERVICES .* -j ${aNames.cluster}$`, 'm'));
  assert.equal(partial.activeNatChains.has(aNames.cluster), true);
  // b's chains are rewritten.
  assert.match(partial.text, new RegExp(`^:${bNames.cluster} - \\[0:0\\]$`, 'm'));
  assert.match(partial.text, new RegExp(`^:${bNames.external} - \\[0:0\\]$`, 'm'));
  // b's dropped endpoint chain is stale: declared (flushed) and deleted, before the last rule.
  assert.equal(partial.deletedChains.length, 1);
  const stale = partial.deletedChains[0]!;
  assert.match(stale, /^KUBE-SEP-/);
  assert.equal(full.activeNatChains.has(stale), true);
  const lines = partial.text.split('\n');
  const del = lines.indexOf(`-X ${stale}`);
  assert.ok(lines.includes(`:${stale} - [0:0]`));
  assert.ok(del > 0 && lines[del + 1]!.includes('NOTE: this must be the last rule'));
  // Foreign and fixed chains are never deleted.
  assert.doesNotMatch(partial.text, /-X (OTHER-CHAIN|KUBE-SERVICES|KUBE-NODEPORTS)/);
  // Counts: a's per-service rules are skipped but still owned.
  assert.equal(partial.counts.natRulesSkipped, 1 + 2 + 4);
  assert.equal(partial.counts.natRulesTotal, partial.counts.natRulesWritten + partial.counts.natRulesSkipped);
  assert.equal(partial.counts.natChainsDeleted, 1);
  // A full sync of the same state writes everything and deletes the same stale chain.
  const again = renderIptables({
    snapshot: snapshot([a, b2]),
    full: true,
    options: BASE_OPTIONS,
    previous: partial.cache,
    existingNatChains: existing,
  });
  assert.equal(chainLines(again.text).length, chainLines(partial.text).length + 3);
  assert.deepEqual(again.deletedChains, [stale]);
});

test('a deleted service: all its chains are stale', () => {
  const a = servicePortState(svc('a', '10.96.0.1', 2));
  const b = servicePortState(svc('b', '10.96.0.2', 3));
  const full = renderIptables({ snapshot: snapshot([a, b]), full: true, options: BASE_OPTIONS });
  const partial = renderIptables({
    snapshot: snapshot([a], { changed: ['default/b'] }),
    full: false,
    options: BASE_OPTIONS,
    previous: full.cache,
    existingNatChains: full.activeNatChains,
  });
  assert.equal(partial.deletedChains.length, 4);
  assert.doesNotMatch(partial.text, /default\/b/);
  // 6 filter chains, 4 fixed nat chains, 4 stale ones; a (unchanged) is not declared.
  assert.equal(chainLines(partial.text).length, 6 + 4 + 4);
});

test('unchanged service port states are rendered once (cached by identity)', () => {
  const a = servicePortState(svc('a', '10.96.0.1', 2));
  const first = renderIptables({ snapshot: snapshot([a]), full: true, options: BASE_OPTIONS });
  const second = renderIptables({
    snapshot: snapshot([a]),
    full: true,
    options: BASE_OPTIONS,
    previous: first.cache,
  });
  assert.equal(second.cache, first.cache);
  // Different settings invalidate the cache.
  const third = renderIptables({
    snapshot: snapshot([a]),
    full: true,
    options: { ...BASE_OPTIONS, masqueradeAll: true },
    previous: second.cache,
  });
  assert.notEqual(third.cache, first.cache);
  assert.match(third.text, /--dport 80 -j KUBE-MARK-MASQ/);
});

test('large-cluster mode: more than 1000 endpoints drops SVC->SEP and SEP comments', () => {
  const states = Array.from({ length: 101 }, (_, i) =>
    servicePortState(svc(`s${i}`, `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`, 10)),
  );
  const out = renderIptables({ snapshot: snapshot(states), full: true, options: BASE_OPTIONS });
  assert.equal(out.counts.endpoints, 1010);
  assert.equal(out.largeClusterMode, true);
  const sepRules = out.text.split('\n').filter((l) => l.startsWith('-A KUBE-SEP-'));
  assert.equal(sepRules.length, 2020);
  assert.ok(sepRules.every((l) => !l.includes('--comment')));
  const dispatch = out.text.split('\n').filter((l) => /^-A KUBE-SVC-\S+ .*-j KUBE-SEP-/.test(l));
  assert.equal(dispatch.length, 1010);
  assert.ok(dispatch.every((l) => !l.includes('--comment')));
  // Entry and masquerade rules keep theirs.
  assert.match(out.text, /-A KUBE-SERVICES -m comment --comment "default\/s0 cluster IP"/);

  const small = renderIptables({
    snapshot: snapshot(states.slice(0, 100)),
    full: true,
    options: BASE_OPTIONS,
  });
  assert.equal(small.counts.endpoints, 1000);
  assert.equal(small.largeClusterMode, false);
  assert.match(small.text, /-A KUBE-SEP-\S+ -m comment --comment default\/s0 -s /);
});
