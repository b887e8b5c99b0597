// `make release`: one self-contained linux-amd64 executable, release/kube-proxy, made with Node's
// single executable application support (SEA) from the pinned Node 24 binary, plus its SHA-256 and a
// tarball holding the binary, the systemd unit, the manifests and the licence notices of everything
// bundled. Steps: esbuild bundles the CLI into one CommonJS file (a Node 24 SEA runs CommonJS
// only); `node --experimental-sea-config` turns it into a blob; postject injects the blob into a
// copy of the node binary, whose debug sections are stripped first (6 MiB; `strip --strip-all`
// leaves a binary that crashes at start, so only debug sections go).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { collectNotices, packageName } from './licenses.ts';
import { RELEASE_DIR, ROOT, releaseInfo } from './paths.ts';
import { FILES as UI_FILES, seaAssetKey } from '../../src/ui/static.ts';

/** The fuse string Node's SEA support looks for (Node's documentation, stable since v20). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const REQUIRED_NODE_MAJOR = 24;

function run(file: string, args: readonly string[], what: string): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${what} failed (${file} ${args.join(' ')}): ${stderr.trim() || String(error)}`, {
      cause: error,
    });
  }
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Bundles the CLI into one CommonJS file; returns the package directories it took code from. */
async function bundle(outfile: string, version: string): Promise<string[]> {
  const result = await build({
    entryPoints: [join(ROOT, 'scripts', 'release', 'sea-main.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    outfile,
    metafile: true,
    // Licence comments go to LICENSES/ in the tarball, not into the executable.
    legalComments: 'none',
    define: { KUBE_PROXY_TS_VERSION: JSON.stringify(version) },
    logLevel: 'warning',
    // import.meta is empty in CommonJS: src/cli/main.ts's "started directly?" check is then false
    // (sea-main.ts starts main() itself) and packageVersion() takes the defined version instead.
    logOverride: { 'empty-import-meta': 'silent' },
  });
  const packages = new Set<string>();
  for (const input of Object.keys(result.metafile.inputs)) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (match?.[1]) packages.add(join(ROOT, match[1]));
  }
  return [...packages].sort();
}

function makeExecutable(blobDir: string, bundlePath: string, out: string): void {
  const node = process.execPath;
  const major = Number(process.versions.node.split('.')[0]);
  if (major !== REQUIRED_NODE_MAJOR) {
    throw new Error(
      `release builds use the pinned Node ${String(REQUIRED_NODE_MAJOR)} (node_modules/.bin/node), not ${node} v${process.versions.node}: run through make release`,
    );
  }
  const blob = join(blobDir, 'sea.blob');
  const config = join(blobDir, 'sea-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      main: bundlePath,
      output: blob,
      disableExperimentalSEAWarning: true,
      // V8's compile cache for the bundle, made by this same Node: a faster start.
      useCodeCache: true,
      // bin/kube-proxy's node flag: a small young generation, or a per-node agent that builds large
      // rule texts keeps hundreds of MiB it no longer uses (bench/README.md).
      execArgv: ['--max-semi-space-size=4'],
      // The web page's files (src/ui/static.ts reads them with node:sea's getAsset).
      assets: Object.fromEntries(
        Object.keys(UI_FILES).map((name) => [seaAssetKey(name), join(ROOT, 'src', 'ui', 'assets', name)]),
      ),
    }),
  );
  run(node, ['--experimental-sea-config', config], 'making the SEA blob');
  copyFileSync(node, out);
  chmodSync(out, 0o755);
  run('strip', ['--strip-debug', out], 'stripping debug symbols from the node binary copy');
  const postject = join(ROOT, 'node_modules', 'postject', 'dist', 'cli.js');
  run(node, [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], 'postject');
}

/** A tar.gz with fixed owners, order and times, so the same inputs give the same bytes. */
function tarball(parent: string, name: string, out: string): void {
  run(
    'tar',
    [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      `--mtime=@${releaseInfo().sourceDateEpoch}`,
      '-C',
      parent,
      '-czf',
      out,
      name,
    ],
    'making the tarball',
  );
}

async function main(): Promise<void> {
  const { version, tarballName, stageName } = releaseInfo();
  const work = join(RELEASE_DIR, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const started = Date.now();

  const bundlePath = join(work, 'kube-proxy.cjs');
  const packages = await bundle(bundlePath, version);
  const binary = join(RELEASE_DIR, 'kube-proxy');
  makeExecutable(work, bundlePath, binary);
  const digest = sha256File(binary);
  writeFileSync(join(RELEASE_DIR, 'kube-proxy.sha256'), `${digest}  kube-proxy\n`);

  // The tarball's tree: the binary and its checksum, the systemd unit, the manifests, the notices.
  const stage = join(work, stageName);
  mkdirSync(join(stage, 'systemd'), { recursive: true });
  mkdirSync(join(stage, 'manifests'), { recursive: true });
  copyFileSync(binary, join(stage, 'kube-proxy'));
  chmodSync(join(stage, 'kube-proxy'), 0o755);
  copyFileSync(join(RELEASE_DIR, 'kube-proxy.sha256'), join(stage, 'kube-proxy.sha256'));
  for (const file of readdirSync(join(ROOT, 'deploy', 'systemd'))) {
    copyFileSync(join(ROOT, 'deploy', 'systemd', file), join(stage, 'systemd', file));
  }
  for (const file of readdirSync(join(ROOT, 'deploy')).filter((f) => f.endsWith('.yaml'))) {
    copyFileSync(join(ROOT, 'deploy', file), join(stage, 'manifests', file));
  }
  collectNotices(packages, join(stage, 'LICENSES'), process.versions.node, version);
  copyFileSync(join(ROOT, 'docs', 'install.md'), join(stage, 'INSTALL.md'));
  const tar = join(RELEASE_DIR, tarballName);
  tarball(work, stageName, tar);
  writeFileSync(`${tar}.sha256`, `${sha256File(tar)}  ${basename(tar)}\n`);
  rmSync(work, { recursive: true, force: true });

  const mib = (path: string) => (readFileSync(path).length / 2 ** 20).toFixed(1);
  process.stdout.write(
    [
      `release/kube-proxy  ${mib(binary)} MiB  sha256 ${digest}`,
      `release/${tarballName}  ${mib(tar)} MiB`,
      `bundled packages: ${packages.map(packageName).join(', ')}`,
      `built in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      '',
    ].join('\n'),
  );
}

if (import.meta.main) await main();
