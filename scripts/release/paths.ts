// Where the release tooling reads and writes, and the names of what it makes.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RELEASE_DIR = join(ROOT, 'release');

export interface ReleaseInfo {
  readonly version: string;
  /** The tarball's file name, e.g. kube-proxy-ts-v0.1.0-linux-amd64.tar.gz. */
  readonly tarballName: string;
  /** The top directory inside the tarball. */
  readonly stageName: string;
  /** File times in the tarball and the image: the last commit's time, so rebuilds give equal bytes. */
  readonly sourceDateEpoch: number;
}

function lastCommitTime(): number {
  const fromEnv = Number(process.env['SOURCE_DATE_EPOCH']);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  try {
    return (
      Number(execFileSync('git', ['-C', ROOT, 'log', '-1', '--format=%ct'], { encoding: 'utf8' }).trim()) || 0
    );
  } catch {
    return 0; // not a git checkout (e.g. an unpacked source archive)
  }
}

export function releaseInfo(): ReleaseInfo {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no "version" string');
  const stageName = `kube-proxy-ts-v${pkg.version}-linux-amd64`;
  return {
    version: pkg.version,
    tarballName: `${stageName}.tar.gz`,
    stageName,
    sourceDateEpoch: lastCommitTime(),
  };
}
