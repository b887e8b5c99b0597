// `make image`: the kube-proxy-ts OCI image, built without a Docker engine or a registry.
//
//   layer 1  Debian bookworm, minbase variant, made by debootstrap from Debian's packages, with the
//            tools the proxy drives (IMAGE_PACKAGES); apt lists and caches, documentation (but not
//            the copyright files) and device nodes removed. Cached under CACHE_DIR by suite, mirror
//            and package list: debootstrap takes ~3.5 min, a cached build ~20 s.
//   layer 2  release/kube-proxy (the single executable from `make release`) as
//            /usr/local/bin/kube-proxy, the path upstream's DaemonSet command uses.
//
// umoci (Debian's package) writes the OCI layout; the result is release/kube-proxy-ts-image.tar, an
// OCI archive (`skopeo copy oci-archive:release/kube-proxy-ts-image.tar docker://REGISTRY/...`).
// deploy/Dockerfile builds the same image from public base images for users with Docker; the
// package list is the same (test/e2e/image.test.ts checks it).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  readdirSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { RELEASE_DIR, releaseInfo } from './paths.ts';

/** What the proxy runs: iptables/ip6tables (legacy and nft), nft, conntrack, ip, sysctl (procps), ipvsadm, ipset, modprobe (kmod), nfacct. */
export const IMAGE_PACKAGES = [
  'iptables',
  'nftables',
  'conntrack',
  'iproute2',
  'procps',
  'ipvsadm',
  'ipset',
  'kmod',
  'nfacct',
];
const SUITE = 'bookworm';
const MIRROR = process.env['KUBE_PROXY_IMAGE_MIRROR'] ?? 'http://deb.debian.org/debian';
export const CACHE_DIR = process.env['KUBE_PROXY_IMAGE_CACHE'] ?? '/var/cache/kube-proxy-ts-image';
export const IMAGE_ARCHIVE = join(RELEASE_DIR, 'kube-proxy-ts-image.tar');
export const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Paths under the base rootfs that an image does not need: package caches, docs, device nodes. */
const PRUNE = [
  'var/cache/apt',
  'var/lib/apt/lists',
  'var/cache/debconf/*-old',
  'var/log',
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'dev',
  'run',
  'tmp',
];

function sh(file: string, args: readonly string[], what: string, cwd?: string): string {
  try {
    return execFileSync(file, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 2 ** 20,
      ...(cwd ? { cwd } : {}),
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(
      `${what} failed (${file} ${args.join(' ')}): ${stderr.trim().slice(-2000) || String(error)}`,
      {
        cause: error,
      },
    );
  }
}

function tarLayer(dir: string, out: string, epoch: number): void {
  sh(
    'tar',
    [
      '--sort=name',
      '--numeric-owner',
      '--xattrs',
      `--mtime=@${String(epoch)}`,
      '--clamp-mtime',
      '-C',
      dir,
      '-cf',
      out,
      '.',
    ],
    `packing ${dir}`,
  );
}

/** The cached base layer (an uncompressed tar of the rootfs), made by debootstrap on first use. */
export function ensureBase(cacheDir = CACHE_DIR): string {
  const key = createHash('sha256')
    .update(JSON.stringify({ SUITE, MIRROR, IMAGE_PACKAGES, PRUNE }))
    .digest('hex')
    .slice(0, 12);
  const layer = join(cacheDir, `base-${SUITE}-${key}.tar`);
  if (existsSync(layer)) return layer;
  mkdirSync(cacheDir, { recursive: true });
  const work = join(cacheDir, `work-${String(process.pid)}`);
  rmSync(work, { recursive: true, force: true });
  try {
    const rootfs = join(work, 'rootfs');
    process.stdout.write(`debootstrap ${SUITE} from ${MIRROR} into the cache (first use: a few minutes)\n`);
    sh(
      'debootstrap',
      ['--variant=minbase', `--include=${IMAGE_PACKAGES.join(',')}`, SUITE, rootfs, MIRROR],
      'debootstrap',
    );
    // Documentation goes, the copyright files (the packages' licences) stay.
    sh(
      'find',
      [join(rootfs, 'usr/share/doc'), '-type', 'f', '!', '-name', 'copyright', '-delete'],
      'pruning docs',
    );
    sh('find', [join(rootfs, 'usr/share/doc'), '-type', 'l', '-delete'], 'pruning doc links');
    sh(
      'sh',
      [
        '-c',
        `cd '${rootfs}' && rm -rf ${PRUNE.join(' ')} && mkdir -p dev run tmp var/log var/cache/apt var/lib/apt/lists/partial && chmod 1777 tmp`,
      ],
      'pruning',
    );
    // Leave the iptables alternative as Debian sets it; kube-proxy-ts calls the -legacy / -nft
    // commands explicitly after detecting which backend the node uses.
    tarLayer(rootfs, `${layer}.partial`, 0);
    renameSync(`${layer}.partial`, layer);
    // A base for an older package list or mirror is never used again.
    for (const old of readdirSync(cacheDir).filter(
      (f) => /^base-.*\.tar$/.test(f) && join(cacheDir, f) !== layer,
    )) {
      rmSync(join(cacheDir, old), { force: true });
    }
    return layer;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface ImageReport {
  readonly archive: string;
  readonly archiveBytes: number;
  readonly unpackedBytes: number;
  readonly tag: string;
}

/** Builds the image from the cached base and release/kube-proxy; returns its sizes. */
export function buildImage(binary = join(RELEASE_DIR, 'kube-proxy')): ImageReport {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run make release first`);
  const { version, sourceDateEpoch } = releaseInfo();
  const base = ensureBase();
  const work = join(RELEASE_DIR, 'image-work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const bin = join(work, 'bin-layer', 'usr', 'local', 'bin');
    mkdirSync(bin, { recursive: true });
    copyFileSync(binary, join(bin, 'kube-proxy'));
    chmodSync(join(bin, 'kube-proxy'), 0o755);
    const binLayer = join(work, 'bin-layer.tar');
    tarLayer(join(work, 'bin-layer'), binLayer, sourceDateEpoch);

    const layout = join(work, 'oci');
    const image = `${layout}:${version}`;
    const created = new Date(sourceDateEpoch * 1000).toISOString();
    sh('umoci', ['init', '--layout', layout], 'umoci init');
    sh('umoci', ['new', '--image', image], 'umoci new');
    sh(
      'umoci',
      [
        'raw',
        'add-layer',
        '--image',
        image,
        '--history.created',
        created,
        '--history.created_by',
        `debootstrap --variant=minbase ${SUITE} + ${IMAGE_PACKAGES.join(' ')}`,
        base,
      ],
      'adding the base layer',
    );
    sh(
      'umoci',
      [
        'raw',
        'add-layer',
        '--image',
        image,
        '--history.created',
        created,
        '--history.created_by',
        'make release: release/kube-proxy',
        binLayer,
      ],
      'adding the binary layer',
    );
    sh(
      'umoci',
      [
        'config',
        '--image',
        image,
        '--created',
        created,
        '--history.created',
        created,
        '--architecture',
        'amd64',
        '--os',
        'linux',
        '--config.entrypoint',
        '/usr/local/bin/kube-proxy',
        '--config.env',
        `PATH=${IMAGE_PATH}`,
        '--config.workingdir',
        '/',
        '--config.label',
        `org.opencontainers.image.version=${version}`,
        '--config.label',
        'org.opencontainers.image.title=kube-proxy-ts',
      ],
      'umoci config',
    );
    sh('umoci', ['gc', '--layout', layout], 'umoci gc');
    tarLayer(layout, `${IMAGE_ARCHIVE}.partial`, sourceDateEpoch);
    renameSync(`${IMAGE_ARCHIVE}.partial`, IMAGE_ARCHIVE);
    const unpackedBytes = statSync(base).size + statSync(binLayer).size;
    const report = {
      archive: IMAGE_ARCHIVE,
      archiveBytes: statSync(IMAGE_ARCHIVE).size,
      unpackedBytes,
      tag: version,
    };
    writeFileSync(join(RELEASE_DIR, 'image-size.txt'), formatReport(report));
    return report;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function formatReport(report: ImageReport): string {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${report.archive} (tag ${report.tag}): ${mib(report.archiveBytes)} compressed, ${mib(report.unpackedBytes)} unpacked\n`;
}

if (import.meta.main) {
  const started = Date.now();
  const report = buildImage();
  process.stdout.write(formatReport(report));
  process.stdout.write(`built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
