// Shared by the release tests: where `make release` and `make image` put their output, and the
// single executable copied alone into an empty directory (the proof that it needs nothing else:
// no checkout, no node_modules, no Node.js).
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RELEASE_BINARY = join(ROOT, 'release', 'kube-proxy');
export const IMAGE_ARCHIVE = join(ROOT, 'release', 'kube-proxy-ts-image.tar');

/** Why a release test cannot run, or false. `make test` builds both artifacts first. */
export function missingArtifact(path: string, target: string): string | false {
  return existsSync(path) ? false : `${path} is missing: run \`make ${target}\` (make test runs it first)`;
}

/** Copies release/kube-proxy alone into a new empty directory; returns its path and a cleanup. */
export function copyBinaryAlone(): { readonly binary: string; readonly remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-ts-alone-'));
  const binary = join(dir, 'kube-proxy');
  copyFileSync(RELEASE_BINARY, binary);
  return { binary, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
