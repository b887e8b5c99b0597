// The long-lived `nft -i` session (src/dataplane/nftables/session.ts) against the real nft and
// kernel, in a namespace of our own: a transaction is committed whole, a failing one leaves
// nothing behind and says what nft said, the session carries on after it, and a dead session
// says so (the proxier then falls back to nft -f). Prints what one small transaction costs
// through the session and through a fresh nft -f (a figure, not a judged timing).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test, type TestContext } from 'node:test';
import { NftSession, NftSessionError } from '../../src/dataplane/nftables/session.ts';
import { cleanupNetns, createNetns, kernelSkipReason, uniquePrefix, type Netns } from '../support/netns.ts';

const skip = kernelSkipReason();
let ns: Netns | undefined;
const netns = () => {
  if (!ns) throw new Error('no namespace');
  return ns;
};
const sessionIn = (n: Netns) =>
  new NftSession(() =>
    spawn('ip', ['netns', 'exec', n.name, 'nft', '-i'], { stdio: ['pipe', 'ignore', 'pipe'] }),
  );
const elements = async () => (await netns().exec('nft', ['list', 'map', 'ip', 't', 'm'])).stdout;

before(async () => {
  if (skip) return;
  ns = await createNetns(`${uniquePrefix('kpns')}s`);
  await netns().exec('nft', ['-f', '-'], {
    input: 'table ip t {\n  map m {\n    type ipv4_addr : ipv4_addr\n  }\n}\n',
  });
});
after(async () => {
  await cleanupNetns();
});

test(
  "transactions through nft -i: whole, all-or-nothing, with nft's error, and the session carries on",
  { skip },
  async () => {
    const session = sessionIn(netns());
    try {
      await session.apply('add element ip t m {\n\t10.0.0.1 : 10.1.0.1,\n\t10.0.0.2 : 10.1.0.2,\n}\n');
      assert.match(await elements(), /10\.0\.0\.1 : 10\.1\.0\.1, 10\.0\.0\.2 : 10\.1\.0\.2/);
      await assert.rejects(
        session.apply(
          'add element ip t m { 10.0.0.3 : 10.1.0.3 }\nadd element ip t m { 10.0.0.1 : 10.1.0.9 }\n',
        ),
        (error: unknown) =>
          error instanceof Error && !(error instanceof NftSessionError) && /File exists/.test(error.message),
      );
      assert.doesNotMatch(await elements(), /10\.0\.0\.3/, 'nothing of the failed transaction was committed');
      await session.apply('delete element ip t m { 10.0.0.2 }\n');
      assert.doesNotMatch(await elements(), /10\.0\.0\.2/);
    } finally {
      session.close();
    }
  },
);

test('a session whose nft died says so, for the fallback to nft -f', { skip }, async () => {
  const session = sessionIn(netns());
  session.close();
  await assert.rejects(session.apply('add element ip t m { 10.0.0.5 : 10.1.0.5 }\n'), NftSessionError);
  assert.equal(session.alive, false);
});

test('one small transaction: session vs fresh nft -f (figure)', { skip }, async (t: TestContext) => {
  const session = sessionIn(netns());
  const q = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const viaSession: number[] = [];
  const fresh: number[] = [];
  try {
    for (let i = 0; i < 30; i++) {
      let start = performance.now();
      await session.apply(`add element ip t m { 10.2.0.${String(i)} : 10.3.0.1 }\n`);
      viaSession.push(performance.now() - start);
      start = performance.now();
      await netns().exec('nft', ['-f', '-'], {
        input: `add element ip t m { 10.4.0.${String(i)} : 10.3.0.1 }\n`,
      });
      fresh.push(performance.now() - start);
    }
  } finally {
    session.close();
  }
  t.diagnostic(`median: session ${q(viaSession).toFixed(1)} ms, fresh nft -f ${q(fresh).toFixed(1)} ms`);
  assert.match(await elements(), /10\.2\.0\.29/);
});
