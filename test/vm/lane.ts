// The VM lane `make test-vm` runs (and `make test` with it): one boot of Debian's stock kernel
// (vm.ts), and inside it the tests this machine's kernel cannot run: IPVS schedulers, the mode
// switches with TCP and SCTP traffic in every mode (the smoke run of the iptables and nftables
// modes on the Debian kernel), the traffic scenarios in IPVS mode, and its tool faults and
// restarts. Deadlines in the test
// support are scaled for software emulation. Exits with the tests' status.
import { fileURLToPath } from 'node:url';
import { IS_ROOT } from '../support/netns.ts';
import { ensureHostPackages, ensureKernel, runInVm, VmError } from './vm.ts';
import { laneCommand } from './lane-command.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ALL_FILES = [
  'test/vm/lane/ipvs-schedulers.ts',
  'test/vm/lane/modes.ts',
  'test/vm/lane/ipvs-traffic.ts',
  'test/vm/lane/ipvs-faults.ts',
];
/** `VM_LANE_FILES=test/vm/lane/modes.ts make test-vm` runs a part of the lane. */
const FILES = process.env['VM_LANE_FILES']?.split(/[\s,]+/).filter(Boolean) ?? ALL_FILES;
/**
 * Emulation is several times slower than this machine. The lane aims at 15 minutes; the VM is
 * given more before it is killed, so a slow shared machine fails the lane with its tests' own
 * messages rather than a bare timeout.
 */
const TIMEOUT_SCALE = 4;
const LANE_TIMEOUT_MS = 25 * 60_000;

if (!IS_ROOT) {
  process.stderr.write('vm lane: skipped, needs root (apt-get, QEMU, network namespaces in the guest)\n');
  process.exit(0);
}
// The guest mounts its own tmpfs on /tmp and /run (sockets do not work on 9p): a checkout there
// is invisible inside it.
if (/^\/(tmp|run)(\/|$)/.test(ROOT)) {
  process.stderr.write(
    `vm lane: the checkout ${ROOT} is under /tmp or /run, which the guest replaces with its own tmpfs; clone it elsewhere to run the lane\n`,
  );
  process.exit(1);
}
try {
  ensureHostPackages();
  const kernel = ensureKernel();
  process.stderr.write(`vm lane: booting Debian kernel ${kernel.version} (QEMU, software emulation)\n`);
  // One file at a time: two clusters starting at once on two emulated CPUs (a dozen Node
  // processes each) left a proxy without its first sync for two minutes when the host was busy.
  const command = laneCommand(ROOT, FILES, process.execPath, TIMEOUT_SCALE);
  const result = await runInVm(kernel, command, {
    timeoutMs: LANE_TIMEOUT_MS,
    onOutput: (chunk) => process.stdout.write(chunk),
  });
  process.stderr.write(`vm lane: status ${String(result.status)} after ${result.seconds.toFixed(0)} s\n`);
  process.exit(result.status);
} catch (error) {
  process.stderr.write(`vm lane: ${error instanceof VmError ? error.message : String(error)}\n`);
  process.exit(1);
}
