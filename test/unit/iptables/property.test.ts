// Property tests over random snapshots: structural invariants of the restore text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { renderIptables } from '../../../src/dataplane/iptables/render.ts';
import { isServiceChainName } from '../../../src/dataplane/iptables/chains.ts';
import type { IptablesOptions } from '../../../src/dataplane/iptables/options.ts';
import { servicePortState, snapshot, type ServiceSpec } from './fixture.ts';
import { BASE_OPTIONS } from './scenarios.ts';

const BUILTIN_TARGETS = new Set(['ACCEPT', 'DROP', 'REJECT', 'RETURN', 'MARK', 'MASQUERADE', 'DNAT']);
const FIXED = new Set([
  'KUBE-SERVICES',
  'KUBE-NODEPORTS',
  'KUBE-POSTROUTING',
  'KUBE-MARK-MASQ',
  'KUBE-EXTERNAL-SERVICES',
  'KUBE-FORWARD',
  'KUBE-PROXY-FIREWALL',
  'KUBE-FIREWALL',
]);

/** iptables-restore's tokenizer: whitespace-separated, double quotes group, backslash escapes inside. */
function tokenize(line: string): string[] {
  const tokens: string[] = [];
  let current = '';
  let inQuote = false;
  let has = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (inQuote) {
      if (ch === '\\') {
        current += line[++i] ?? '';
      } else if (ch === '"') {
        inQuote = false;
      } else current += ch;
      continue;
    }
    if (ch === '"') {
      inQuote = true;
      has = true;
    } else if (ch === ' ' || ch === '\t') {
      if (has || current) tokens.push(current);
      current = '';
      has = false;
    } else {
      current += ch;
      has = true;
    }
  }
  assert.equal(inQuote, false, `unbalanced quote in ${line}`);
  if (has || current) tokens.push(current);
  return tokens;
}

interface Table {
  declared: string[];
  rules: string[][];
  deleted: string[];
}

function parseRestore(text: string): Map<string, Table> {
  const tables = new Map<string, Table>();
  let current: Table | undefined;
  assert.ok(text.endsWith('COMMIT\n'));
  for (const line of text.slice(0, -1).split('\n')) {
    assert.doesNotMatch(line, /[\r\0]/);
    if (line.startsWith('*')) {
      current = { declared: [], rules: [], deleted: [] };
      tables.set(line.slice(1), current);
    } else if (line === 'COMMIT') current = undefined;
    else {
      assert.ok(current, `line outside a table: ${line}`);
      if (line.startsWith(':')) {
        assert.match(line, /^:[A-Z0-9-]+ - \[0:0\]$/);
        current.declared.push(line.slice(1, line.indexOf(' ')));
      } else if (line.startsWith('-X ')) current.deleted.push(line.slice(3));
      else {
        const tokens = tokenize(line);
        assert.equal(tokens[0], '-A', line);
        // Comments are one token, never contain quotes or backslashes, and at most one -j.
        tokens.forEach((t, i) => {
          if (tokens[i - 1] === '--comment') assert.doesNotMatch(t, /["\\\n]/);
        });
        assert.ok(tokens.filter((t) => t === '-j').length <= 1, line);
        current.rules.push(tokens);
      }
    }
  }
  return tables;
}

function target(tokens: readonly string[]): string | undefined {
  const i = tokens.indexOf('-j');
  return i < 0 ? undefined : tokens[i + 1];
}

const nameArb = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
const octet = fc.integer({ min: 1, max: 254 });
const ipv4 = fc.tuple(octet, octet).map(([a, b]) => `10.${a}.${b}.1`);
const endpointArb = fc.record({
  ip: fc.tuple(octet, octet).map(([a, b]) => `10.244.${a}.${b}`),
  port: fc.integer({ min: 1, max: 65535 }),
  local: fc.boolean(),
  ready: fc.boolean(),
  serving: fc.boolean(),
  terminating: fc.boolean(),
});
const serviceArb: fc.Arbitrary<ServiceSpec> = fc.record({
  namespace: nameArb,
  name: nameArb,
  portName: fc.oneof(fc.constant(''), nameArb),
  protocol: fc.constantFrom('TCP' as const, 'UDP' as const, 'SCTP' as const),
  clusterIP: ipv4,
  port: fc.integer({ min: 1, max: 65535 }),
  nodePort: fc.oneof(fc.constant(0), fc.integer({ min: 30000, max: 32767 })),
  externalIPs: fc.array(ipv4, { maxLength: 2 }),
  loadBalancerVIPs: fc.array(ipv4, { maxLength: 2 }),
  loadBalancerSourceRanges: fc.array(fc.constantFrom('192.168.0.0/16', '198.51.100.0/24', '0.0.0.0/0'), {
    maxLength: 2,
  }),
  healthCheckNodePort: fc.oneof(fc.constant(0), fc.integer({ min: 30000, max: 32767 })),
  affinitySeconds: fc.option(fc.integer({ min: 1, max: 86400 }), { nil: undefined }),
  externalPolicyLocal: fc.boolean(),
  internalPolicyLocal: fc.boolean(),
  endpoints: fc.uniqueArray(endpointArb, { maxLength: 5, selector: (e) => `${e.ip}:${e.port}` }),
});
const optionsArb: fc.Arbitrary<IptablesOptions> = fc
  .record({
    masqueradeAll: fc.boolean(),
    localDetector: fc.constantFrom(
      { kind: 'none' } as const,
      { kind: 'cidr', cidr: '10.244.0.0/16' } as const,
      { kind: 'bridge', iface: 'cbr0' } as const,
      { kind: 'prefix', prefix: 'veth' } as const,
    ),
    localhostNodePorts: fc.boolean(),
    randomFully: fc.boolean(),
    conntrackInvalidDrop: fc.boolean(),
    largeClusterThreshold: fc.constantFrom(1000, 5),
  })
  .map((o) => ({ ...BASE_OPTIONS, ...o }));

const statesArb = fc.array(serviceArb, { maxLength: 8 }).map((specs) => {
  const byKey = new Map(specs.map((s) => [servicePortState(s).servicePort.id.key, servicePortState(s)]));
  return [...byKey.values()];
});

test('full sync: every jump target exists, every service chain is reachable, deterministic', () => {
  fc.assert(
    fc.property(statesArb, optionsArb, (states, options) => {
      const snap = snapshot(states);
      const out = renderIptables({ snapshot: snap, full: true, options });
      const again = renderIptables({ snapshot: snapshot(states), full: true, options });
      assert.equal(again.text, out.text);
      const tables = parseRestore(out.text);
      assert.deepEqual([...tables.keys()], ['filter', 'nat']);
      for (const [name, table] of tables) {
        const declared = new Set(table.declared);
        assert.equal(declared.size, table.declared.length, `${name}: a chain is declared twice`);
        for (const rule of table.rules) {
          assert.ok(declared.has(rule[1]!), `${name}: rule in undeclared chain ${rule[1]}`);
          const t = target(rule);
          if (t !== undefined)
            assert.ok(BUILTIN_TARGETS.has(t) || declared.has(t), `${name}: jump to undeclared ${t}`);
        }
      }
      const nat = tables.get('nat')!;
      const perService = nat.declared.filter(isServiceChainName);
      assert.deepEqual(new Set(perService), out.activeNatChains);
      // Reachability from the entry chains.
      const edges = new Map<string, string[]>();
      for (const rule of nat.rules) {
        const t = target(rule);
        if (t) edges.set(rule[1]!, [...(edges.get(rule[1]!) ?? []), t]);
      }
      const seen = new Set(['KUBE-SERVICES', 'KUBE-NODEPORTS']);
      const queue = [...seen];
      while (queue.length > 0) {
        for (const next of edges.get(queue.pop()!) ?? []) {
          if (!seen.has(next)) {
            seen.add(next);
            queue.push(next);
          }
        }
      }
      for (const chain of perService) assert.ok(seen.has(chain), `unreachable ${chain}`);
      for (const chain of nat.declared) assert.ok(isServiceChainName(chain) || FIXED.has(chain));
    }),
    { numRuns: 150 },
  );
});

test('partial sync: jumps only into declared or still-active chains; stale chains are deleted', () => {
  fc.assert(
    fc.property(statesArb, statesArb, fc.boolean(), (before, after, keepSome) => {
      const merged = keepSome ? [...before.slice(0, 2), ...after] : after;
      const byKey = new Map(merged.map((s) => [s.servicePort.id.key, s]));
      const states = [...byKey.values()];
      const first = renderIptables({ snapshot: snapshot(before), full: true, options: BASE_OPTIONS });
      const kept = new Set(before.slice(0, 2).filter((s) => byKey.get(s.servicePort.id.key) === s));
      const changed = new Set(
        [...before, ...states].filter((s) => !kept.has(s)).map((s) => s.servicePort.id.service),
      );
      // A service is unchanged only if all its ports are the same objects.
      for (const s of states) if (!kept.has(s)) changed.add(s.servicePort.id.service);
      const out = renderIptables({
        snapshot: snapshot(states, { changed: [...changed] }),
        full: false,
        options: BASE_OPTIONS,
        previous: first.cache,
        existingNatChains: first.activeNatChains,
      });
      const nat = parseRestore(out.text).get('nat')!;
      const declared = new Set(nat.declared);
      for (const rule of nat.rules) {
        const t = target(rule);
        if (t !== undefined && !BUILTIN_TARGETS.has(t)) {
          assert.ok(declared.has(t) || out.activeNatChains.has(t), `jump to missing ${t}`);
          assert.ok(!out.deletedChains.includes(t), `jump to deleted ${t}`);
        }
      }
      for (const chain of first.activeNatChains) {
        if (!out.activeNatChains.has(chain)) assert.ok(nat.deleted.includes(chain), `stale ${chain} kept`);
      }
      for (const chain of nat.deleted) assert.ok(declared.has(chain));
    }),
    { numRuns: 100 },
  );
});
