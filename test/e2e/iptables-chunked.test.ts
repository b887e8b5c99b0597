// A large full sync on iptables-nft in pieces (chunk.ts), into a real kernel: the pieces load
// one after another, the result is line for line what one input gives, and between pieces the
// kernel never holds half a Service (a Service chain is either absent or has all its rules).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { performance } from 'node:perf_hooks';
import { chunkRestore } from '../../src/dataplane/iptables/chunk.ts';
import { renderIptables } from '../../src/dataplane/iptables/render.ts';
import { iptablesTools, restore, type Runner } from '../../src/dataplane/xtables/index.ts';
import { cleanupNetns, createNetns, kernelSkipReason, uniquePrefix } from '../support/netns.ts';
import { manyServicePorts, snapshot } from '../unit/iptables/fixture.ts';
import { BASE_OPTIONS } from '../unit/iptables/scenarios.ts';

const skip = kernelSkipReason();
const prefix = uniquePrefix('kpck');
let counter = 0;
after(cleanupNetns);

async function newRun(): Promise<Runner> {
  const ns = await createNetns(`${prefix}${counter++}`);
  return (file, args, options) => ns.exec(file, args, options);
}

const tools = iptablesTools('nft', 'IPv4');
const ruleLines = (text: string) => text.split('\n').filter((l) => l.startsWith('-A '));
const natRules = async (run: Runner) => ruleLines((await run('iptables-nft-save', ['-t', 'nat'])).stdout);

function text(services: number): string {
  const states = manyServicePorts(services, 5);
  return renderIptables({ snapshot: snapshot(states), full: true, options: BASE_OPTIONS }).text;
}

test(
  'iptables-nft: a chunked full sync loads, equals one input, and never shows half a Service',
  { skip },
  async (t) => {
    const full = text(300);
    const chunks = chunkRestore(full, 500);
    assert.ok(chunks.length >= 3, `${chunks.length} inputs`);

    const whole = await newRun();
    let started = performance.now();
    await restore(whole, tools, full);
    t.diagnostic(`one input: ${Math.round(performance.now() - started)} ms`);
    const expected = await natRules(whole);

    const pieces = await newRun();
    const byChain = new Map<string, string[]>();
    for (const line of expected) {
      const chain = line.split(' ')[1] ?? '';
      byChain.set(chain, [...(byChain.get(chain) ?? []), line]);
    }
    started = performance.now();
    for (const [i, chunk] of chunks.entries()) {
      await restore(pieces, tools, chunk);
      if (i === chunks.length - 1) break;
      // Between pieces: every Service chain in the kernel is complete.
      const now = await natRules(pieces);
      const present = new Map<string, string[]>();
      for (const line of now) {
        const chain = line.split(' ')[1] ?? '';
        if (/^KUBE-(SVC|SEP)-/.test(chain)) present.set(chain, [...(present.get(chain) ?? []), line]);
      }
      for (const [chain, rules] of present)
        assert.deepEqual(rules, byChain.get(chain), `after input ${i}: ${chain}`);
      assert.ok(
        !now.some((l) => l.startsWith('-A KUBE-SERVICES ')),
        'nothing reachable before the last input',
      );
    }
    t.diagnostic(
      `${chunks.length} inputs: ${Math.round(performance.now() - started)} ms (with kernel reads between them)`,
    );
    assert.deepEqual((await natRules(pieces)).sort(), [...expected].sort());
  },
);
