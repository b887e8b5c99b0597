// Every scheduler `--ipvs-scheduler` documents is loaded by the kernel: the proxier's own
// start-up probe (a virtual server created with it, then listed) passes for each, on the Debian
// kernel of the VM lane. Runs in a namespace of its own.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { IPVS_SCHEDULERS } from '../../../src/dataplane/ipvs/options.ts';
import { probeScheduler } from '../../../src/dataplane/ipvs/proxier.ts';
import { cleanupNetns, createNetns, uniquePrefix, type Netns } from '../../support/netns.ts';
import { ipvsSkipReason } from './kernel.ts';

const skip = ipvsSkipReason();
let ns: Netns | undefined;

before(async () => {
  if (!skip) ns = await createNetns(`${uniquePrefix('kps')}ipvs`);
});
after(cleanupNetns);

for (const scheduler of IPVS_SCHEDULERS) {
  test(`scheduler ${scheduler} is loaded by the kernel`, { skip }, async () => {
    const where = ns;
    assert.ok(where);
    await probeScheduler((file, args, options) => where.exec(file, args, options), scheduler);
    // The probe removes itself.
    assert.equal((await where.exec('ipvsadm', ['-S', '-n'])).stdout.trim(), '');
  });
}

test('a scheduler the kernel does not have is refused with a clear error', { skip }, async () => {
  const where = ns;
  assert.ok(where);
  await assert.rejects(
    probeScheduler((file, args, options) => where.exec(file, args, options), 'nosuchsched'),
    /can't use the IPVS proxier: scheduler nosuchsched is not usable \(kernel module ip_vs_nosuchsched\)/,
  );
});
