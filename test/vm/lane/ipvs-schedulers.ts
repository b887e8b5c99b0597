// Every scheduler `--ipvs-scheduler` documents is loaded by the kernel (a virtual server created
// with it, as the proxier's start-up probe does), on the Debian kernel of the VM lane; a name the
// kernel does not have fails the probe clearly. Runs in a namespace of its own.
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

test(
  'every documented scheduler is loaded by the kernel (a virtual server created with each)',
  { skip },
  async () => {
    const where = ns;
    assert.ok(where);
    // One batch (under emulation every process start costs seconds): a probe-like virtual server
    // per scheduler, listed back, removed.
    const probes = IPVS_SCHEDULERS.map((scheduler, i) => ({ scheduler, port: 20000 + i }));
    const add = probes.map((p) => `-A -t 198.51.100.0:${String(p.port)} -s ${p.scheduler}\n`).join('');
    const added = await where.exec('ipvsadm', ['-R'], { input: add });
    assert.equal(added.stderr.trim(), '', 'every scheduler module loaded');
    const listed = (await where.exec('ipvsadm', ['-S', '-n'])).stdout;
    for (const p of probes)
      assert.match(
        listed,
        new RegExp(`-A -t 198\\.51\\.100\\.0:${String(p.port)} -s ${p.scheduler}\\b`),
        p.scheduler,
      );
    await where.exec('ipvsadm', ['-R'], {
      input: probes.map((p) => `-D -t 198.51.100.0:${String(p.port)}\n`).join(''),
    });
  },
);

test(
  "the proxier's start-up probe passes for the default scheduler and removes itself",
  { skip },
  async () => {
    const where = ns;
    assert.ok(where);
    await probeScheduler((file, args, options) => where.exec(file, args, options), 'rr');
    assert.equal((await where.exec('ipvsadm', ['-S', '-n'])).stdout.trim(), '');
  },
);

test('a scheduler the kernel does not have is refused with a clear error', { skip }, async () => {
  const where = ns;
  assert.ok(where);
  await assert.rejects(
    probeScheduler((file, args, options) => where.exec(file, args, options), 'nosuchsched'),
    /can't use the IPVS proxier: scheduler nosuchsched is not usable \(kernel module ip_vs_nosuchsched\)/,
  );
});
