// What the VM lane's tests need of the kernel, as skip reasons: they run where the kernel has
// IPVS and SCTP (the Debian kernel of test/vm/), and say why they do not run elsewhere.
import { spawnSync } from 'node:child_process';
import { kernelSkipReason } from '../../support/netns.ts';

function works(file: string, args: readonly string[]): boolean {
  const result = spawnSync(file, args, { encoding: 'utf8' });
  return !result.error && result.status === 0;
}

/** Why IPVS tests cannot run here; false when they can. */
export function ipvsSkipReason(): string | false {
  const base = kernelSkipReason();
  if (base) return base;
  if (!works('ipvsadm', ['-L', '-n']))
    return 'this kernel has no IPVS (or ipvsadm is missing): run the VM lane, `make test-vm`';
  if (!works('ipset', ['--version'])) return 'ipset is missing: run the VM lane, `make test-vm`';
  return false;
}

/** Why SCTP tests cannot run here; false when they can. */
export function sctpSkipReason(): string | false {
  const base = kernelSkipReason();
  if (base) return base;
  if (!works('socat', ['-V'])) return 'socat (the SCTP client and server) is missing: run `make test-vm`';
  const probe = spawnSync('socat', ['-T', '1', '-u', 'SCTP-LISTEN:1,bind=127.0.0.1', '/dev/null'], {
    encoding: 'utf8',
    timeout: 2000,
  });
  if (/Protocol not supported|Address family not supported|Socket type not supported/.test(probe.stderr))
    return 'this kernel has no SCTP sockets: run the VM lane, `make test-vm`';
  return false;
}
