import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandLine, resolveEffective } from '../../../src/config/load.ts';
import { parsePortRange } from '../../../src/config/port-range.ts';
import { HEADER, filesIO, noFiles } from './helpers.ts';

describe('parsePortRange (--proxy-port-range)', () => {
  it('reads begin-end, begin+offset and single ports, inclusive', () => {
    assert.deepEqual(parsePortRange('30000-30009'), { base: 30000, size: 10 });
    assert.deepEqual(parsePortRange('30000+9'), { base: 30000, size: 10 });
    assert.deepEqual(parsePortRange('30000+0'), { base: 30000, size: 1 });
    assert.deepEqual(parsePortRange(' 5000 '), { base: 5000, size: 1 });
    assert.deepEqual(parsePortRange('0-65535'), { base: 0, size: 65536 });
  });

  it('empty, 0 and 0-0 let the kernel choose', () => {
    for (const text of ['', '0', '0-0', '0+0', '  ']) assert.equal(parsePortRange(text), undefined, text);
  });

  it('refuses anything else', () => {
    for (const text of ['abc', '2000-300', '65536', '1-65536', '65000+1000', '-1', '1-', '1,2']) {
      assert.equal(parsePortRange(text), null, text);
    }
  });
});

describe('the userspace settings in the effective configuration', () => {
  const FILE = '/etc/kube-proxy/config.yaml';

  function effective(argv: readonly string[], files: Readonly<Record<string, string>> = {}) {
    const result = parseCommandLine(argv, Object.keys(files).length === 0 ? noFiles : filesIO(files));
    if (result.kind !== 'run') assert.fail(`expected run, got ${JSON.stringify(result)}`);
    return resolveEffective(result.options.config);
  }

  it('defaults: kernel-chosen ports, 250ms UDP flows', () => {
    const e = effective([]);
    assert.equal(e.proxyPortRange, undefined);
    assert.equal(e.udpIdleTimeoutMs, 250);
  });

  it('--proxy-port-range and --udp-timeout', () => {
    const e = effective(['--proxy-mode=userspace', '--proxy-port-range=40000+99', '--udp-timeout=30s']);
    assert.deepEqual(e.proxyPortRange, { base: 40000, size: 100 });
    assert.equal(e.udpIdleTimeoutMs, 30_000);
  });

  it('portRange and udpIdleTimeout from the file', () => {
    const e = effective(['--config', FILE], {
      [FILE]: `${HEADER}mode: userspace\nportRange: 40000-40001\nudpIdleTimeout: 2s\n`,
    });
    assert.deepEqual(e.proxyPortRange, { base: 40000, size: 2 });
    assert.equal(e.udpIdleTimeoutMs, 2000);
  });

  it('a bad --udp-timeout is refused naming the field', () => {
    const result = parseCommandLine(['--udp-timeout=-5s'], noFiles);
    if (result.kind !== 'error') assert.fail(`expected an error, got ${result.kind}`);
    assert.match(result.message, /udpIdleTimeout: Invalid value: -5s/);
  });
});
