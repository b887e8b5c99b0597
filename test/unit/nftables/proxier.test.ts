// The proxier around the renderer, with a recording fake in place of the nft tool.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cleanupNftables } from '../../../src/dataplane/nftables/cleanup.ts';
import { validateOptions } from '../../../src/dataplane/nftables/options.ts';
import {
  createNftablesProxier,
  parseKernelRelease,
  parseNftVersion,
  type Runner,
} from '../../../src/dataplane/nftables/proxier.ts';
import { ExecError, type ExecOptions, inputText } from '../../../src/util/exec.ts';
import {
  applyScript,
  emptyTable,
  FakeNftError,
  type FakeTable,
} from '../../../src/dataplane/nftables/fake.ts';
import { OPTIONS_V4, port, snapshot } from './fixtures.ts';

/** nft as a fake: `--version`, `-f -` applied to a fake table, failing on request. */
function fakeNft(version = 'nftables v1.0.6 (Lester Gooch #5)') {
  const calls: string[][] = [];
  const state: { table: FakeTable; failNext: string | undefined } = {
    table: emptyTable(),
    failNext: undefined,
  };
  const run: Runner = (file: string, args: readonly string[], options?: ExecOptions) => {
    calls.push([file, ...args]);
    if (args[0] === '--version') return Promise.resolve({ stdout: `${version}\n`, stderr: '', code: 0 });
    if (args[0] === '-f') {
      if (state.failNext) {
        const stderr = state.failNext;
        state.failNext = undefined;
        return Promise.reject(new ExecError('nft -f -', 1, '', stderr, 'exit status 1'));
      }
      try {
        state.table = applyScript(state.table, inputText(options?.input));
      } catch (error) {
        if (error instanceof FakeNftError)
          return Promise.reject(new ExecError('nft -f -', 1, '', error.message, 'exit status 1'));
        throw error;
      }
      return Promise.resolve({ stdout: '', stderr: '', code: 0 });
    }
    if (args[0] === 'delete') {
      return Promise.reject(
        new ExecError(`nft ${args.join(' ')}`, 1, '', 'Error: No such file or directory\n', 'exit status 1'),
      );
    }
    return Promise.reject(new Error(`unexpected ${args.join(' ')}`));
  };
  return { run, calls, state };
}

const web = (ips: string[]) =>
  port({ name: 'web', clusterIP: '10.96.0.10', port: 80, endpoints: ips.map((ip) => ({ ip })) });

describe('nftables proxier', () => {
  test('refuses nft older than 1.0.1 and old kernels', async () => {
    await assert.rejects(
      createNftablesProxier(OPTIONS_V4, {
        run: fakeNft('nftables v0.9.8 (E.D.S.)').run,
        skipKernelCheck: true,
      }),
      /nft >= 1\.0\.1/,
    );
    await assert.rejects(
      createNftablesProxier(OPTIONS_V4, { run: fakeNft().run, kernelRelease: '5.10.0-28-amd64' }),
      /kernel >= 5\.13/,
    );
    await createNftablesProxier(OPTIONS_V4, {
      run: fakeNft('nftables v1.0.1 (Fearless Fosdick #3)').run,
      kernelRelease: '6.1.0',
    });
    assert.deepEqual(parseNftVersion('nftables v1.0.6 (Lester Gooch #5)'), [1, 0, 6]);
    assert.deepEqual(parseKernelRelease('6.18.44-fc-v669'), [6, 18]);
  });

  test('one nft -f - per sync; first sync full, then partial; nothing to do runs nothing', async () => {
    const fake = fakeNft();
    const proxier = await createNftablesProxier(OPTIONS_V4, { run: fake.run, skipKernelCheck: true });
    assert.equal(proxier.mode, 'nftables');
    assert.equal(proxier.family, 'IPv4');
    const first = await proxier.sync({ snapshot: snapshot([web(['10.244.1.5'])]), full: false });
    assert.equal(first.full, true, 'no record yet: full');
    const same = web(['10.244.1.5', '10.244.2.7']);
    const second = await proxier.sync({ snapshot: snapshot([same]), full: false });
    assert.equal(second.full, false);
    const runs = fake.calls.filter((call) => call[1] === '-f').length;
    await proxier.sync({ snapshot: snapshot([same]), full: false });
    assert.equal(fake.calls.filter((call) => call[1] === '-f').length, runs, 'empty transaction is not run');
    assert.equal(second.details?.['servicePorts'], 1);
  });

  test('a failure throws with nft stderr and the cited line, and forces a full sync', async () => {
    const fake = fakeNft();
    const proxier = await createNftablesProxier(OPTIONS_V4, { run: fake.run, skipKernelCheck: true });
    await proxier.sync({ snapshot: snapshot([web(['10.244.1.5'])]), full: true });
    fake.state.failNext = '/dev/stdin:2:3-9: Error: Could not process rule: No such file or directory\n';
    await assert.rejects(
      proxier.sync({ snapshot: snapshot([web(['10.244.9.9'])]), full: false }),
      (error: Error) => {
        assert.match(
          error.message,
          /^nft -f - failed: \/dev\/stdin:2:3-9: Error: Could not process rule: No such file or directory\nline 2: \t10\.96\.0\.10 \. 80 \. 0,$/,
        );
        return true;
      },
    );
    const retry = await proxier.sync({ snapshot: snapshot([web(['10.244.9.9'])]), full: false });
    assert.equal(retry.full, true);
  });

  test('cleanup ignores missing tables', async () => {
    const fake = fakeNft();
    await cleanupNftables(fake.run);
    assert.deepEqual(fake.calls, [
      ['nft', 'delete', 'table', 'ip', 'kube-proxy'],
      ['nft', 'delete', 'table', 'ip6', 'kube-proxy'],
    ]);
    const broken: Runner = () =>
      Promise.reject(new ExecError('nft', 1, '', 'Error: Operation not permitted\n', 'exit status 1'));
    await assert.rejects(cleanupNftables(broken), /Operation not permitted/);
  });

  test('options are validated before anything is rendered', () => {
    assert.throws(() => validateOptions({ ...OPTIONS_V4, masqueradeBit: 40 }), /masqueradeBit 40/);
    assert.throws(
      () => validateOptions({ ...OPTIONS_V4, localDetector: { kind: 'cidr', cidr: '10.244.0.1/16' } }),
      /localDetector\.cidr: "10\.244\.0\.1\/16" is not a canonical IPv4 CIDR/,
    );
    assert.throws(
      () => validateOptions({ ...OPTIONS_V4, localDetector: { kind: 'bridge', iface: 'br0"; drop' } }),
      /localDetector\.iface/,
    );
    assert.throws(
      () => validateOptions({ ...OPTIONS_V4, nodePortAddresses: { kind: 'ips', ips: ['fd00::1'] } }),
      /nodePortAddresses entry "fd00::1"/,
    );
  });
});
