import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HASHSIZE_KEY,
  applyConntrackSettings,
  watchPendingSysctls,
  type ConntrackSettings,
} from '../../../src/conntrack/sysctls.ts';
import { configureLogging } from '../../../src/log/log.ts';
import { FakeHost } from '../../../src/host/fake.ts';
import { pollUntil } from '../../support/netns.ts';

const settings: ConntrackSettings = {
  maxPerCore: 32768,
  min: 131072,
  tcpEstablishedTimeoutSeconds: 86400,
  tcpCloseWaitTimeoutSeconds: 3600,
  tcpBeLiberal: false,
  udpTimeoutSeconds: 0,
  udpStreamTimeoutSeconds: 0,
};

const ESTABLISHED = 'net/netfilter/nf_conntrack_tcp_timeout_established';
const CLOSE_WAIT = 'net/netfilter/nf_conntrack_tcp_timeout_close_wait';
const MAX = 'net/netfilter/nf_conntrack_max';

function captureLog(): string[] {
  const lines: string[] = [];
  configureLogging({ write: (line) => lines.push(line) });
  return lines;
}

test('conntrack sysctls are written whenever they differ, nf_conntrack_max lowered too (v1.36)', async () => {
  const host = new FakeHost({
    sysctls: { [MAX]: '262144', [HASHSIZE_KEY]: '65536', [ESTABLISHED]: '432000', [CLOSE_WAIT]: '3600' },
  });
  const pending = await applyConntrackSettings(settings, host.sysctl, 4);
  assert.deepEqual(pending, []);
  assert.deepEqual(host.sysctlWrites, [
    { key: MAX, value: '131072' },
    { key: ESTABLISHED, value: '86400' },
  ]);
});

test('no cap on nf_conntrack_max; the hash size is raised to max/4 when smaller, never lowered', async () => {
  const host = new FakeHost({ sysctls: { [MAX]: '65536', [HASHSIZE_KEY]: '16384' } });
  await applyConntrackSettings(
    { ...settings, tcpEstablishedTimeoutSeconds: 0, tcpCloseWaitTimeoutSeconds: 0 },
    host.sysctl,
    64,
  );
  assert.deepEqual(host.sysctlWrites, [
    { key: MAX, value: String(32768 * 64) },
    { key: HASHSIZE_KEY, value: String((32768 * 64) / 4) },
  ]);
  const big = new FakeHost({ sysctls: { [MAX]: '131072', [HASHSIZE_KEY]: '262144' } });
  await applyConntrackSettings(
    { ...settings, tcpEstablishedTimeoutSeconds: 0, tcpCloseWaitTimeoutSeconds: 0 },
    big.sysctl,
    4,
  );
  assert.deepEqual(big.sysctlWrites, [], 'a larger hash size stays');
});

test('missing conntrack sysctls (nf_conntrack not loaded) do not fail the start and are set once they exist', async () => {
  const lines = captureLog();
  const host = new FakeHost({ sysctls: {} });
  // Writes into a missing key fail like /proc/sys does (ENOENT) until the "module" is loaded.
  let loaded = false;
  const sysctl = {
    read: (key: string) => host.sysctl.read(key),
    write: (key: string, value: string) =>
      loaded
        ? host.sysctl.write(key, value)
        : Promise.reject(Object.assign(new Error('ENOENT'), { code: 'ENOENT' })),
  };
  const pending = await applyConntrackSettings(settings, sysctl, 4);
  assert.deepEqual(
    pending.map((wanted) => wanted.key),
    [MAX, HASHSIZE_KEY, ESTABLISHED, CLOSE_WAIT],
  );
  assert.deepEqual(host.sysctlWrites, []);
  assert.ok(lines.some((line) => line.includes('Conntrack sysctls do not exist yet')));

  const watch = watchPendingSysctls(pending, sysctl, 10);
  try {
    assert.equal(await watch.check(), false);
    // The first rule that needs conntrack loads the module: the keys appear with kernel defaults.
    loaded = true;
    host.sysctls.set(MAX, '65536');
    host.sysctls.set(HASHSIZE_KEY, '65536');
    host.sysctls.set(ESTABLISHED, '432000');
    host.sysctls.set(CLOSE_WAIT, '60');
    await pollUntil(
      'pending sysctls written',
      () => (host.sysctlWrites.length === 3 ? true : undefined),
      2000,
      5,
    );
    assert.deepEqual(host.sysctlWrites, [
      { key: MAX, value: '131072' },
      { key: ESTABLISHED, value: '86400' },
      { key: CLOSE_WAIT, value: '3600' },
    ]);
    assert.equal(await watch.check(), true);
    assert.ok(lines.some((line) => line.includes('Setting nf_conntrack_max')));
    assert.ok(lines.some((line) => line.includes('Set sysctl') && line.includes(ESTABLISHED)));
  } finally {
    watch.stop();
    configureLogging({ write: (line) => process.stderr.write(line) });
  }
});

test('a sysctl that exists but cannot be written still fails the start with the way out', async () => {
  const host = new FakeHost({ sysctls: { [MAX]: '1000' }, sysctlWriteError: 'EACCES: read-only' });
  await assert.rejects(applyConntrackSettings(settings, host.sysctl, 4), /--conntrack-max-per-core=0/);
});
