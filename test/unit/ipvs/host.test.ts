// kube-ipvs0 creation: both families' proxiers ensure it at start, concurrently, so one of them
// may find it created between its look and its add.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ensureInterface } from '../../../src/dataplane/ipvs/host.ts';
import { ExecError, type ExecResult } from '../../../src/util/exec.ts';

function runner(addError: string | undefined) {
  const calls: string[] = [];
  const run = (file: string, args: readonly string[]): Promise<ExecResult> => {
    calls.push([file, ...args].join(' '));
    if (args[1] === 'show')
      return Promise.reject(
        new ExecError(file, 1, '', 'Device "kube-ipvs0" does not exist.', 'exit status 1'),
      );
    if (addError !== undefined) return Promise.reject(new ExecError(file, 2, '', addError, 'exit status 2'));
    return Promise.resolve({ stdout: '', stderr: '', code: 0 });
  };
  return { run, calls };
}

test('a missing kube-ipvs0 is created as a dummy link', async () => {
  const { run, calls } = runner(undefined);
  await ensureInterface(run);
  assert.deepEqual(calls, ['ip link show kube-ipvs0', 'ip link add kube-ipvs0 type dummy']);
});

test('kube-ipvs0 created meanwhile by the other family ("File exists") is no error', async () => {
  await ensureInterface(runner('RTNETLINK answers: File exists').run);
});

test('any other failure names the link and the likely cause', async () => {
  await assert.rejects(
    ensureInterface(runner('Error: Unknown device type.').run),
    /cannot create the kube-ipvs0 dummy interface \(is the dummy kernel module available\?\).*Unknown device type/,
  );
});
