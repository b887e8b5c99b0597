// Runs one shell command inside the VM lane's Debian kernel (vm.ts) and exits with its status:
//   node test/vm/run.ts 'ipvsadm -L -n'
// Fetches what it needs on first use (root only). KUBE_PROXY_VM_TIMEOUT_MINUTES (default 15)
// bounds the VM's life.
import { ensureHostPackages, ensureKernel, runInVm, VmError } from './vm.ts';

const command = process.argv.slice(2).join(' ');
if (command === '') {
  process.stderr.write('usage: node test/vm/run.ts COMMAND...\n');
  process.exit(2);
}
try {
  ensureHostPackages();
  const kernel = ensureKernel();
  process.stderr.write(`vm: booting ${kernel.version}\n`);
  const minutes = Number(process.env['KUBE_PROXY_VM_TIMEOUT_MINUTES'] ?? '15');
  const result = await runInVm(kernel, command, {
    timeoutMs: minutes * 60_000,
    onOutput: (chunk) => process.stdout.write(chunk),
  });
  process.stderr.write(`vm: exit status ${String(result.status)} after ${result.seconds.toFixed(1)} s\n`);
  process.exit(result.status);
} catch (error) {
  process.stderr.write(`vm: ${error instanceof VmError ? error.message : String(error)}\n`);
  process.exit(1);
}
