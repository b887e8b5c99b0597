// The version this proxy reports: upstream's release whose behaviour it follows (flags, config,
// metrics, endpoints), with our own release as semver build metadata, so tools that parse
// `Kubernetes vX.Y.Z` keep working (build metadata does not change precedence) and an operator
// still sees which implementation runs. Used by --version, kubernetes_build_info and /statusz.
import { readFileSync } from 'node:fs';

/** The upstream release this proxy is a drop-in for. */
export const UPSTREAM = { major: '1', minor: '36', patch: '0' } as const;

export interface BuildInfo {
  readonly major: string;
  readonly minor: string;
  readonly gitVersion: string;
  readonly gitCommit: string;
  readonly gitTreeState: string;
  readonly buildDate: string;
  /** The runtime in Go's field: we have no Go toolchain, the Node.js version stands there. */
  readonly goVersion: string;
  readonly compiler: string;
  readonly platform: string;
}

function readJSON(relative: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8'));
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' && value !== '' ? value : fallback;
}

const GOARCH: Readonly<Record<string, string>> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' };

// A bundled build (scripts/release/build.ts) has no package.json beside it: the bundler defines
// this name as the version string. Unbundled, nothing defines it.
declare const KUBE_PROXY_TS_VERSION: string | undefined;

/** Our package version (package.json), e.g. "0.1.0". src/util and dist/util both sit two below it. */
export function ownVersion(): string {
  if (typeof KUBE_PROXY_TS_VERSION === 'string') return KUBE_PROXY_TS_VERSION;
  return text(readJSON('../../package.json')['version'], '0.0.0');
}

/**
 * The build's facts. `build-info.json` (written by `make build` next to the package.json: commit,
 * tree state, date) is optional; without it they are empty, as an unversioned Go build's are.
 */
export function buildInfo(override?: string): BuildInfo {
  const build = readJSON('../../build-info.json');
  const base = `v${UPSTREAM.major}.${UPSTREAM.minor}.${UPSTREAM.patch}`;
  const gitVersion = override ?? `${base}+kube-proxy-ts.${ownVersion()}`;
  const parts = /^v(\d+)\.(\d+)/.exec(gitVersion);
  return {
    major: parts?.[1] ?? UPSTREAM.major,
    minor: parts?.[2] ?? UPSTREAM.minor,
    gitVersion,
    gitCommit: text(build['gitCommit'], ''),
    gitTreeState: text(build['gitTreeState'], ''),
    buildDate: text(build['buildDate'], '1970-01-01T00:00:00Z'),
    goVersion: `node${process.versions.node}`,
    compiler: 'node',
    platform: `${process.platform}/${GOARCH[process.arch] ?? process.arch}`,
  };
}

/** `--version`: `Kubernetes <gitVersion>`, as component-base prints it. */
export function versionLine(info: BuildInfo): string {
  return `Kubernetes ${info.gitVersion}\n`;
}

/** `--version=raw`: every field in Go's `%#v` form of version.Info. */
export function rawVersion(info: BuildInfo): string {
  const q = JSON.stringify;
  return (
    `version.Info{Major:${q(info.major)}, Minor:${q(info.minor)}, EmulationMajor:"", EmulationMinor:"", ` +
    `MinCompatibilityMajor:"", MinCompatibilityMinor:"", GitVersion:${q(info.gitVersion)}, ` +
    `GitCommit:${q(info.gitCommit)}, GitTreeState:${q(info.gitTreeState)}, BuildDate:${q(info.buildDate)}, ` +
    `GoVersion:${q(info.goVersion)}, Compiler:${q(info.compiler)}, Platform:${q(info.platform)}}\n`
  );
}
