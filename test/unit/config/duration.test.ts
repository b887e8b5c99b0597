import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  canonicalGoDuration,
  formatGoDuration,
  formatGoDurationNs,
  parseGoDuration,
  parseGoDurationNs,
} from '../../../src/config/duration.ts';

describe('parseGoDuration', () => {
  const cases: [string, number][] = [
    ['0', 0],
    ['0s', 0],
    ['30s', 30_000],
    ['1m', 60_000],
    ['15m0s', 900_000],
    ['24h0m0s', 86_400_000],
    ['1.5s', 1500],
    ['100ms', 100],
    ['2h22m', 8_520_000],
    ['-1m', -60_000],
    ['+5s', 5000],
    ['.5s', 500],
    ['1h2m3s4ms', 3_723_004],
    ['1500us', 1.5],
    ['1500\u00b5s', 1.5],
    ['250ns', 0.00025],
  ];
  for (const [text, ms] of cases) {
    it(`parses ${JSON.stringify(text)} as ${ms} ms`, () => {
      assert.equal(parseGoDuration(text), ms);
    });
  }

  it('rejects junk with Go wording', () => {
    assert.throws(() => parseGoDuration(''), { message: 'time: invalid duration ""' });
    assert.throws(() => parseGoDuration('abc'), { message: 'time: invalid duration "abc"' });
    assert.throws(() => parseGoDuration('30'), { message: 'time: missing unit in duration "30"' });
    assert.throws(() => parseGoDuration('5x'), { message: 'time: unknown unit "x" in duration "5x"' });
    assert.throws(() => parseGoDuration('1s '), /invalid duration|unknown unit/);
    assert.throws(() => parseGoDuration('.s'), { message: 'time: invalid duration ".s"' });
    assert.throws(() => parseGoDuration('3000000h'), { message: 'time: invalid duration "3000000h"' });
  });
});

describe('formatGoDuration', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [30_000, '30s'],
    [60_000, '1m0s'],
    [900_000, '15m0s'],
    [3_600_000, '1h0m0s'],
    [86_400_000, '24h0m0s'],
    [1500, '1.5s'],
    [100, '100ms'],
    [90_500, '1m30.5s'],
    [-60_000, '-1m0s'],
    [1.5, '1.5ms'],
    [0.0015, '1.5\u00b5s'],
    [0.000005, '5ns'],
  ];
  for (const [ms, text] of cases) {
    it(`formats ${ms} ms as ${text}`, () => {
      assert.equal(formatGoDuration(ms), text);
    });
  }

  it('canonicalizes text the way Go prints it', () => {
    assert.equal(canonicalGoDuration('60s'), '1m0s');
    assert.equal(canonicalGoDuration('24h'), '24h0m0s');
    assert.equal(canonicalGoDuration('0'), '0s');
  });

  it('parse(format(ns)) is the identity on nanoseconds', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }), (ns) => {
        assert.equal(parseGoDurationNs(formatGoDurationNs(ns)), ns);
      }),
      { numRuns: 300 },
    );
  });
});
