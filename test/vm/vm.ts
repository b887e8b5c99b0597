// The second-kernel test lane (kernel-notes.md, "A second kernel in a VM"): boots Debian's stock
// kernel under QEMU with software emulation and runs one command inside, with the host's root
// filesystem shared read-only (the project's checkout, its Node and the tools run unchanged) under
// a RAM overlay, so sockets and writes work anywhere. Used for what this machine's kernel lacks:
// IPVS, SCTP, the dummy link type, and the kernel most Debian nodes run.
//
// Everything it needs is fetched on first use through apt (qemu-system-x86, busybox-static,
// ipvsadm, ipset; the kernel package is downloaded and extracted, never installed) and the
// kernel and initramfs are cached under CACHE_DIR. The guest has no network device; the command's
// output comes back on the serial console, followed by a marker line with its exit status.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export const CACHE_DIR = process.env['KUBE_PROXY_VM_CACHE'] ?? '/var/cache/kube-proxy-ts-vm';

/** Debian packages the lane needs on the host, by the file that proves each is installed. */
const HOST_PACKAGES: readonly (readonly [string, string])[] = [
  ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86'],
  ['/bin/busybox', 'busybox-static'],
  ['/usr/sbin/ipvsadm', 'ipvsadm'],
  ['/usr/sbin/ipset', 'ipset'],
  // The SCTP client and server of the lane's SCTP tests (Node.js has no SCTP sockets).
  ['/usr/bin/socat', 'socat'],
];

/** Modules the initramfs loads, in order (each needs the ones before), to mount the 9p shares. */
const INITRAMFS_MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  'netfs',
  'fscache',
  '9pnet',
  '9pnet_virtio',
  '9p',
  'overlay',
];

const STATUS_MARKER = 'KUBE-PROXY-VM-EXIT-STATUS=';

export class VmError extends Error {
  override readonly name = 'VmError';
}

function sh(file: string, args: readonly string[], what: string, cwd?: string): string {
  const result = spawnSync(file, args, { encoding: 'utf8', cwd, maxBuffer: 64 * 1024 * 1024 });
  if (result.error || result.status !== 0)
    throw new VmError(
      `${what}: ${file} ${args.join(' ')} failed: ${result.error?.message ?? (result.stderr.trim() || `status ${String(result.status)}`)}`,
    );
  return result.stdout;
}

/** Installs the host packages that are missing (root only: the lane is skipped otherwise). */
export function ensureHostPackages(): void {
  const missing = HOST_PACKAGES.filter(([file]) => !existsSync(file)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  process.stderr.write(`vm: installing Debian packages: ${missing.join(' ')}\n`);
  sh('apt-get', ['update', '-qq'], 'apt-get update');
  const install = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (install.status !== 0)
    throw new VmError(`cannot install ${missing.join(' ')} with apt-get: ${install.stderr.trim()}`);
}

export interface KernelFiles {
  readonly version: string;
  readonly vmlinuz: string;
  readonly initramfs: string;
  /** The extracted package: its lib/modules is shared with the guest. */
  readonly root: string;
}

/** The image package `linux-image-amd64` depends on, e.g. linux-image-6.1.0-57-amd64. */
function kernelPackage(): string {
  const depends = sh('apt-cache', ['depends', 'linux-image-amd64'], 'finding the Debian kernel');
  const match = /Depends: (linux-image-[0-9][^\s]*-amd64)/.exec(depends);
  if (!match?.[1]) throw new VmError(`cannot tell which kernel linux-image-amd64 names:\n${depends}`);
  return match[1];
}

/** A newc cpio archive (what the kernel unpacks as initramfs) of files and directories. */
function cpio(entries: readonly { path: string; mode: number; data?: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const add = (name: string, mode: number, data: Buffer) => {
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    const header =
      '070701' +
      [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, Buffer.byteLength(name) + 1, 0].map(hex).join('');
    const head = Buffer.from(`${header}${name}\0`);
    parts.push(head, pad(head.length), data, pad(data.length));
  };
  for (const entry of entries) add(entry.path, entry.mode, entry.data ?? Buffer.alloc(0));
  add('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** The guest's /init: mounts the shares, builds the overlay root, runs the command, powers off. */
function initScript(version: string): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${INITRAMFS_MODULES.join(' ')}; do insmod /modules/$m.ko 2>/dev/null; done
mkdir -p /host /lib/modules /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /lower || { echo "vm: cannot mount the host root"; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 modules /host || { echo "vm: cannot mount the modules"; poweroff -f; }
mount --bind /host/lib/modules /lib/modules
echo /bin/modprobe > /proc/sys/kernel/modprobe
mount -t tmpfs -o size=1536m tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || { echo "vm: cannot mount the overlay root"; poweroff -f; }
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount --rbind /dev /newroot/dev
mount -t tmpfs tmpfs /newroot/tmp
mount -t tmpfs tmpfs /newroot/run
mkdir -p /newroot/lib/modules/${version}
mount --bind /host/lib/modules/${version} /newroot/lib/modules/${version}
for m in $(cat /modprobe.list); do modprobe $m; done
ip link set lo up
hostname kube-proxy-vm
cmd=$(cat /proc/cmdline | sed -n 's/.*vmcmd=\\([^ ]*\\).*/\\1/p')
chroot /newroot /bin/sh -c "cd /; export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root; $(echo $cmd | base64 -d)" < /dev/null
echo "${STATUS_MARKER}$?"
sync
poweroff -f
`;
}

/** Modules loaded before the command: what the tests use and tools would modprobe themselves. */
const PRELOAD = [
  'ip_vs',
  'sctp',
  'dummy',
  'veth',
  'bridge',
  'br_netfilter',
  'nf_conntrack',
  'xt_ipvs',
  'ip_set',
];

/** Downloads and extracts the kernel, builds the initramfs; cached after the first run. */
export function ensureKernel(cacheDir = CACHE_DIR): KernelFiles {
  const pkg = kernelPackage();
  const version = pkg.replace(/^linux-image-/, '');
  const dir = join(cacheDir, version);
  const root = join(dir, 'root');
  const vmlinuz = join(root, 'boot', `vmlinuz-${version}`);
  // Keyed by the init script and module lists: a change to them builds a new one.
  const recipe = createHash('sha256')
    .update(initScript(version))
    .update(INITRAMFS_MODULES.join())
    .update(PRELOAD.join())
    .digest('hex')
    .slice(0, 12);
  const initramfs = join(dir, `initramfs-${recipe}.cpio`);
  if (existsSync(vmlinuz) && existsSync(initramfs)) return { version, vmlinuz, initramfs, root };
  mkdirSync(dir, { recursive: true });
  if (!existsSync(vmlinuz)) {
    process.stderr.write(`vm: fetching ${pkg} (downloaded and extracted, not installed)\n`);
    sh('apt-get', ['download', pkg], 'downloading the kernel package', dir);
    const deb = readdirSync(dir).find((name) => name.startsWith(`${pkg}_`) && name.endsWith('.deb'));
    if (!deb) throw new VmError(`apt-get download ${pkg} left no .deb in ${dir}`);
    rmSync(root, { recursive: true, force: true });
    sh('dpkg-deb', ['-x', join(dir, deb), root], 'extracting the kernel package');
    rmSync(join(dir, deb));
    sh('busybox', ['depmod', '-b', root, version], 'indexing the kernel modules');
  }
  const modules = join(root, 'lib', 'modules', version);
  const found = new Map<string, string>();
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.ko')) found.set(name.slice(0, -3).replaceAll('-', '_'), full);
    }
  };
  walk(join(modules, 'kernel'));
  const entries: { path: string; mode: number; data?: Buffer }[] = [];
  for (const d of ['bin', 'dev', 'proc', 'sys', 'modules', 'etc']) entries.push({ path: d, mode: 0o40755 });
  entries.push({ path: 'bin/busybox', mode: 0o100755, data: readFileSync('/bin/busybox') });
  entries.push({ path: 'init', mode: 0o100755, data: Buffer.from(initScript(version)) });
  entries.push({ path: 'modprobe.list', mode: 0o100644, data: Buffer.from(PRELOAD.join('\n')) });
  for (const name of INITRAMFS_MODULES) {
    const file = found.get(name);
    // Some of these are built in on a given kernel: only modules that exist are packed.
    if (file) entries.push({ path: `modules/${name}.ko`, mode: 0o100644, data: readFileSync(file) });
  }
  writeFileSync(`${initramfs}.tmp`, cpio(entries));
  renameSync(`${initramfs}.tmp`, initramfs);
  return { version, vmlinuz, initramfs, root };
}

export interface VmResult {
  readonly status: number;
  readonly output: string;
  readonly seconds: number;
}

export interface VmOptions {
  readonly timeoutMs?: number;
  readonly memoryMb?: number;
  readonly cpus?: number;
  /** Called with each chunk of console output as it arrives. */
  readonly onOutput?: (chunk: string) => void;
}

/** The guest's CPU model (KUBE_PROXY_VM_CPU overrides it). */
export const VM_CPU = 'max';

/** Boots the kernel and runs `command` (a shell command line) inside; resolves with its status. */
export function runInVm(kernel: KernelFiles, command: string, options: VmOptions = {}): Promise<VmResult> {
  const started = Date.now();
  const args = [
    '-accel',
    'tcg,thread=multi',
    '-cpu',
    process.env['KUBE_PROXY_VM_CPU'] ?? VM_CPU,
    '-smp',
    String(options.cpus ?? 2),
    '-m',
    String(options.memoryMb ?? 3072),
    '-nodefaults',
    '-display',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
    '-kernel',
    kernel.vmlinuz,
    '-initrd',
    kernel.initramfs,
    '-append',
    `console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init vmcmd=${Buffer.from(command).toString('base64')}`,
    '-virtfs',
    // multidevs=remap: the host's mounts (/proc, /sys, ...) share inode numbers, which the
    // guest's cache would otherwise take for one file.
    'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs',
    `local,path=${kernel.root},mount_tag=modules,security_model=none,readonly=on`,
  ];
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  return new Promise((resolve, reject) => {
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stderr = '';
    const timer = setTimeout(() => {
      if (qemu.pid !== undefined) qemu.kill('SIGKILL');
      reject(new VmError(`the VM did not finish within ${String(timeoutMs)} ms:\n${output.slice(-4000)}`));
    }, timeoutMs);
    qemu.stdout.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      options.onOutput?.(text);
    });
    qemu.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    qemu.on('error', (error) => {
      clearTimeout(timer);
      reject(new VmError(`cannot start qemu-system-x86_64: ${error.message}`));
    });
    qemu.on('exit', (code) => {
      clearTimeout(timer);
      const match = new RegExp(`${STATUS_MARKER}(\\d+)`).exec(output);
      if (!match)
        return reject(
          new VmError(
            `the VM ended (qemu status ${String(code)}) without the command's status:\n${stderr}\n${output.slice(-4000)}`,
          ),
        );
      resolve({
        status: Number(match[1]),
        output: output.slice(0, match.index),
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
}
