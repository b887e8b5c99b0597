import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Balancer, EJECT_BASE_MS, EJECT_MAX_MS } from '../../../src/dataplane/userspace/balancer.ts';
import type { Endpoint } from '../../../src/model/types.ts';
import { endpointAt } from './endpoint.ts';

const ep = (ip: string, port = 80): Endpoint => endpointAt(ip, port);

const A = ep('10.0.0.1');
const B = ep('10.0.0.2');
const C = ep('10.0.0.3');
const ALL = [A, B, C];
const rr = { policy: 'round-robin', affinitySeconds: 0 } as const;

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function picks(b: Balancer, n: number, client = '192.0.2.1', list = ALL): string[] {
  return Array.from({ length: n }, () => b.pick(client, list)?.ip ?? 'none');
}

describe('userspace balancer', () => {
  it('round robin visits every endpoint once per round, from a random start', () => {
    const b = new Balancer(rr, Date.now, () => 0.5); // start at index 1
    assert.deepEqual(picks(b, 6), ['10.0.0.2', '10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1']);
  });

  it('a failed endpoint is skipped for a back-off that doubles up to the cap, then tried again', () => {
    const c = clock();
    const b = new Balancer(rr, c.now, () => 0);
    assert.equal(b.failed(A.endpoint).forMs, EJECT_BASE_MS);
    assert.ok(!picks(b, 4).includes(A.ip), 'A is skipped while ejected');
    c.advance(EJECT_BASE_MS);
    assert.ok(picks(b, 3).includes(A.ip), 'A is back after its back-off');
    assert.equal(b.failed(A.endpoint).forMs, 2 * EJECT_BASE_MS);
    for (let i = 0; i < 10; i++) b.failed(A.endpoint);
    assert.equal(b.failed(A.endpoint).forMs, EJECT_MAX_MS);
    assert.equal(b.succeeded(A.endpoint), true, 'a success ends the ejection');
    assert.equal(b.failed(A.endpoint).forMs, EJECT_BASE_MS, 'and forgets the failures');
  });

  it('every endpoint ejected: all are tried rather than none', () => {
    const b = new Balancer(rr, Date.now, () => 0);
    for (const e of ALL) b.failed(e.endpoint);
    assert.deepEqual(new Set(picks(b, 3)), new Set(ALL.map((e) => e.ip)));
  });

  it('a connection does not retry an endpoint it already failed on, and gives up when all are tried', () => {
    const b = new Balancer(rr, Date.now, () => 0);
    const tried = new Set([A.endpoint, B.endpoint]);
    assert.equal(b.pick('c', ALL, tried)?.ip, C.ip);
    assert.equal(b.pick('c', ALL, new Set(ALL.map((e) => e.endpoint))), undefined);
  });

  it('ClientIP affinity sticks within the sliding window and ends after it', () => {
    const c = clock();
    const b = new Balancer({ policy: 'round-robin', affinitySeconds: 10 }, c.now, () => 0);
    const first = b.pick('192.0.2.7', ALL)?.ip;
    for (let i = 0; i < 5; i++) {
      c.advance(9_000); // each use slides the window
      assert.equal(b.pick('192.0.2.7', ALL)?.ip, first);
    }
    assert.notEqual(b.pick('192.0.2.8', ALL)?.ip, first, 'another client goes round robin');
    c.advance(10_000);
    assert.notEqual(b.pick('192.0.2.7', ALL)?.ip, first, 'expired: the next in the rotation');
  });

  it('affinity is bypassed on a retry and dropped when its endpoint fails or leaves', () => {
    const b = new Balancer({ policy: 'round-robin', affinitySeconds: 100 }, Date.now, () => 0);
    assert.equal(b.pick('x', ALL)?.ip, A.ip);
    assert.equal(b.pick('x', ALL, new Set([A.endpoint]))?.ip, B.ip, 'retry: next endpoint');
    assert.equal(b.pick('x', ALL)?.ip, B.ip, 'and the retry overwrote the record');
    b.failed(B.endpoint);
    assert.notEqual(b.pick('x', ALL)?.ip, B.ip);
    const pinned = b.pick('y', ALL)?.ip;
    b.update(
      { policy: 'round-robin', affinitySeconds: 100 },
      new Set(ALL.filter((e) => e.ip !== pinned).map((e) => e.endpoint)),
    );
    assert.notEqual(
      b.pick(
        'y',
        ALL.filter((e) => e.ip !== pinned),
      )?.ip,
      pinned,
    );
  });

  it('least connections picks the endpoint with the fewest open connections', () => {
    const b = new Balancer({ policy: 'least-connections', affinitySeconds: 0 }, Date.now, () => 0);
    b.opened(A.endpoint);
    b.opened(A.endpoint);
    b.opened(B.endpoint);
    assert.equal(b.pick('c', ALL)?.ip, C.ip);
    b.opened(C.endpoint);
    b.opened(C.endpoint);
    assert.equal(b.pick('c', ALL)?.ip, B.ip);
    b.closed(A.endpoint);
    b.closed(A.endpoint);
    assert.equal(b.pick('c', ALL)?.ip, A.ip);
  });

  it('expired affinity records are forgotten even while the Service does not change', () => {
    const c = clock();
    const b = new Balancer({ policy: 'round-robin', affinitySeconds: 10 }, c.now, () => 0);
    for (let i = 0; i < 100; i++) b.pick(`192.0.2.${i}`, ALL);
    assert.equal(b.affinityRecords(), 100);
    c.advance(10_001);
    b.pick('198.51.100.1', ALL);
    assert.equal(b.affinityRecords(), 1, 'only the newest client is remembered');
  });
});
