// Runs the OCI image the way a kubelet runs the DaemonSet's pod, with nothing but the kernel and
// util-linux: the image unpacked by umoci, its rootfs entered with chroot in a mount namespace of
// its own (so the pod's mounts vanish with it), inside the test cluster's node namespace (the pod
// uses hostNetwork). Mounts, command, $(VAR) expansion and environment come from deploy/'s
// DaemonSet; the ConfigMap volume is a directory holding the ConfigMap's keys as files, as the
// kubelet projects it; the ServiceAccount token is mounted where the kubelet puts it.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';

export interface UnpackedImage {
  readonly rootfs: string;
  /** The image's tag (the OCI index's ref name). */
  readonly tag: string;
  /** Entrypoint and cmd, as the OCI runtime configuration umoci derives from the image config. */
  readonly args: readonly string[];
  /** The image's environment, `KEY=value`. */
  readonly env: readonly string[];
  readonly remove: () => void;
}

/** Unpacks an OCI archive (a tar of an OCI layout) with umoci into a new directory. */
export function unpackImage(archive: string): UnpackedImage {
  const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-ts-image-'));
  try {
    const layout = join(dir, 'oci');
    mkdirSync(layout);
    execFileSync('tar', ['-xf', archive, '-C', layout]);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
      manifests: { annotations?: Record<string, string> }[];
    };
    const tag = index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'];
    if (!tag) throw new Error(`${archive}: the OCI index names no tag`);
    const bundle = join(dir, 'bundle');
    execFileSync('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle], { stdio: 'pipe' });
    rmSync(layout, { recursive: true, force: true });
    const runtime = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as {
      process: { args: string[]; env: string[] };
    };
    return {
      rootfs: join(bundle, 'rootfs'),
      tag,
      args: runtime.process.args,
      env: runtime.process.env,
      remove: () => removeUnmounted(dir),
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Removes a directory tree, but never one with something mounted under it: the pod's mounts live
 * in a mount namespace of their own, and if one ever showed up here, a recursive delete would
 * walk into the machine's /dev, /proc or /sys.
 */
function removeUnmounted(dir: string): void {
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
  if (mounted.length > 0) throw new Error(`not removing ${dir}: mounted under it: ${mounted.join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
}

export interface PodMount {
  readonly source: string;
  /** Path inside the container. */
  readonly target: string;
  readonly readOnly: boolean;
}

const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

/**
 * Where `path` (inside the container) is on the host: every symlink on the way is followed as the
 * container sees it, relative to the rootfs (Debian's /var/run -> /run would otherwise lead a
 * mkdir or a mount out of the rootfs, onto the machine's own /run).
 */
export function pathInRoot(rootfs: string, path: string, depth = 0): string {
  if (depth > 40) throw new Error(`too many symlinks resolving ${path} in ${rootfs}`);
  let resolved = '';
  const parts = path.split('/').filter(Boolean);
  for (const [index, part] of parts.entries()) {
    if (part === '..') {
      resolved = dirname(resolved === '' ? '/' : resolved);
      if (resolved === '/') resolved = '';
      continue;
    }
    const candidate = `${resolved}/${part}`;
    const host = join(rootfs, candidate);
    if (existsSync(host) || isSymlink(host)) {
      if (isSymlink(host)) {
        const target = readlinkSync(host);
        const rest = parts.slice(index + 1).join('/');
        const next = target.startsWith('/') ? target : `${resolved}/${target}`;
        return pathInRoot(rootfs, `${next}/${rest}`, depth + 1);
      }
    }
    resolved = candidate;
  }
  return join(rootfs, resolved);
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The command that runs `argv` in the rootfs with the given mounts and environment: to be started
 * inside the node's network namespace. Every step execs the next, so the PID the caller gets is
 * the proxy's own (signals reach it, as the kubelet's do).
 */
export function chrootCommand(
  rootfs: string,
  mounts: readonly PodMount[],
  env: readonly string[],
  argv: readonly string[],
): [string, ...string[]] {
  const r = quote(rootfs);
  const lines = [
    'set -e',
    `mount --rbind /proc ${r}/proc`,
    `mount --rbind /sys ${r}/sys`,
    `mount --rbind /dev ${r}/dev`,
    `mount -t tmpfs tmpfs ${r}/run`,
    `mount -t tmpfs tmpfs ${r}/tmp`,
  ];
  for (const m of mounts) {
    const hostTarget = pathInRoot(rootfs, m.target);
    if (!hostTarget.startsWith(`${rootfs}/`)) throw new Error(`mount target ${m.target} leaves the rootfs`);
    const target = quote(hostTarget);
    lines.push(
      `if [ -d ${quote(m.source)} ]; then mkdir -p ${target}; else mkdir -p ${quote(dirname(hostTarget))}; touch ${target}; fi`,
      `mount --bind ${quote(m.source)} ${target}`,
    );
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
  }
  lines.push(`exec chroot ${r} /usr/bin/env -i ${[...env, ...argv].map(quote).join(' ')}`);
  // unshare --mount: the mounts above live in a mount namespace of their own, private, gone with the pod.
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', lines.join('\n')];
}

interface Container {
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  startupProbe?: { httpGet?: { path: string; port: number } };
  image: string;
}
interface Volume {
  name: string;
  configMap?: { name: string };
  hostPath?: { path: string; type?: string };
}
export interface DaemonSetPodSpec {
  readonly container: Container;
  readonly volumes: readonly Volume[];
}

export function readDaemonSet(path: string): DaemonSetPodSpec {
  const ds = parse(readFileSync(path, 'utf8')) as {
    spec: { template: { spec: { containers: Container[]; volumes?: Volume[] } } };
  };
  const container = ds.spec.template.spec.containers[0];
  if (!container) throw new Error(`${path}: no container`);
  return { container, volumes: ds.spec.template.spec.volumes ?? [] };
}

/** The ConfigMap's data keys, each a file in a new directory (the kubelet's configMap volume). */
export function projectConfigMap(data: Readonly<Record<string, string>>): {
  dir: string;
  remove: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-ts-configmap-'));
  for (const [key, value] of Object.entries(data)) writeFileSync(join(dir, key), value);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Kubelet's `$(VAR)` expansion in command and args. */
function expand(value: string, env: ReadonlyMap<string, string>): string {
  return value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env.get(name) ?? whole);
}

/**
 * The pod's command for chrootCommand: the DaemonSet container's command (or the image's
 * entrypoint), its env (fieldRef spec.nodeName resolved), its volume mounts (configMap volumes
 * from `configMapDirs`, hostPath volumes as they are) and the ServiceAccount mount.
 */
export function daemonSetPodCommand(options: {
  readonly spec: DaemonSetPodSpec;
  readonly image: UnpackedImage;
  readonly nodeName: string;
  readonly configMapDirs: Readonly<Record<string, string>>;
  readonly serviceAccountDir: string;
  /** Where stand-ins for missing hostPath directories are made (the caller removes it). */
  readonly scratchDir: string;
}): [string, ...string[]] {
  const { container, volumes } = options.spec;
  const env = new Map<string, string>();
  for (const entry of options.image.env) {
    const at = entry.indexOf('=');
    env.set(entry.slice(0, at), entry.slice(at + 1));
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env.set(e.name, e.value);
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env.set(e.name, options.nodeName);
    else throw new Error(`env ${e.name}: only value and fieldRef spec.nodeName are supported here`);
  }
  const mounts: PodMount[] = [];
  for (const vm of container.volumeMounts ?? []) {
    const volume = volumes.find((v) => v.name === vm.name);
    if (!volume) throw new Error(`volumeMount ${vm.name} has no volume`);
    let source: string;
    if (volume.configMap) {
      const dir = options.configMapDirs[volume.configMap.name];
      if (!dir) throw new Error(`no directory for ConfigMap ${volume.configMap.name}`);
      source = dir;
    } else if (volume.hostPath) {
      source = volume.hostPath.path;
      if (!existsSync(source)) {
        if (volume.hostPath.type === 'FileOrCreate') writeFileSync(source, '');
        // No type: no check, and the container runtime binds an empty directory (this machine,
        // itself a container, has no /lib/modules).
        else if (volume.hostPath.type === undefined)
          source = mkdtempSync(join(options.scratchDir, 'hostpath-'));
        else throw new Error(`hostPath ${source} (type ${volume.hostPath.type}) is missing`);
      }
    } else {
      throw new Error(`volume ${volume.name}: only configMap and hostPath are supported here`);
    }
    mounts.push({ source, target: vm.mountPath, readOnly: vm.readOnly ?? false });
  }
  mounts.push({
    source: options.serviceAccountDir,
    target: '/var/run/secrets/kubernetes.io/serviceaccount',
    readOnly: true,
  });
  const argv = [...(container.command ?? options.image.args), ...(container.args ?? [])].map((a) =>
    expand(a, env),
  );
  return chrootCommand(
    options.image.rootfs,
    mounts,
    [...env].map(([k, v]) => `${k}=${v}`),
    argv,
  );
}
