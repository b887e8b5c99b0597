// deploy/Dockerfile, read as text (no Docker engine here): the Node 24 bookworm base, the Debian
// tools the dataplanes call, a runtime with production dependencies only, and an entry point at
// the path the DaemonSet's (and upstream's) command uses.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import {
  DEPLOY_DIR,
  REPO_ROOT,
  asArray,
  asString,
  at,
  findObject,
  isRecord,
  loadManifests,
} from './manifests.ts';

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Instructions with continuation lines joined and comments dropped, split into stages. */
function parseDockerfile(text: string): Instruction[][] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    pending += (pending === '' ? '' : ' ') + line.replace(/\\$/, '').trim();
    if (!line.endsWith('\\')) {
      if (pending !== '') logical.push(pending);
      pending = '';
    }
  }
  const stages: Instruction[][] = [];
  for (const line of logical) {
    const space = line.indexOf(' ');
    const instruction = { op: line.slice(0, space).toUpperCase(), args: line.slice(space + 1).trim() };
    if (instruction.op === 'FROM') stages.push([]);
    assert.ok(stages.length > 0, `${instruction.op} before FROM`);
    stages[stages.length - 1]!.push(instruction);
  }
  return stages;
}

const dockerfile = readFileSync(join(DEPLOY_DIR, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const final = stages[stages.length - 1]!;
const args = (stage: readonly Instruction[], op: string): string[] =>
  stage.filter((i) => i.op === op).map((i) => i.args);
const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as unknown;
const wrapperPath = join(DEPLOY_DIR, 'kube-proxy.sh');
const wrapper = readFileSync(wrapperPath, 'utf8');

describe('deploy/Dockerfile', () => {
  it('builds every stage on node:24-bookworm-slim', () => {
    assert.ok(stages.length >= 2, 'a build stage and a runtime stage');
    for (const stage of stages) assert.match(stage[0]!.args, /^node:24-bookworm-slim(\s+AS\s+\S+)?$/i);
  });

  it('installs the Debian tools without recommends and drops the apt lists in the same layer', () => {
    const install = args(final, 'RUN').find((r) => r.includes('apt-get install'));
    assert.ok(install, 'the runtime stage installs Debian packages');
    assert.match(install, /apt-get update/);
    assert.match(install, /--no-install-recommends/);
    const words = new Set(install.split(/\s+/));
    for (const pkg of ['iptables', 'nftables', 'conntrack', 'iproute2', 'procps', 'ipvsadm', 'ipset']) {
      assert.ok(words.has(pkg), `missing Debian package ${pkg}`);
    }
    assert.match(install, /rm -rf \/var\/lib\/apt\/lists\/\*/);
  });

  it('compiles with the full dependency set, and ships production dependencies only', () => {
    const runs = stages.map((stage) => args(stage, 'RUN').join(' && '));
    assert.ok(
      runs.some((r) => /npm ci\b/.test(r) && /npm run build\b/.test(r)),
      'a stage runs npm ci and the build',
    );
    assert.ok(
      runs.some((r) => /npm ci --omit=dev\b/.test(r)),
      'a stage installs production dependencies',
    );
    // The build compiles src/ and puts the web page's files (src/ui/assets) beside it in dist/.
    const build = String(at(packageJson, 'scripts', 'build'));
    assert.match(build, /^tsc -p tsconfig\.build\.json && /);
    assert.match(build, /cp -r src\/ui\/assets dist\/ui\/assets/);
    const copies = args(final, 'COPY');
    assert.ok(
      copies.some((c) => /^--from=\S+ \S*\/node_modules \.\/node_modules$/.test(c)),
      'node_modules copied',
    );
    assert.ok(
      copies.some((c) => /^--from=\S+ \S*\/dist \.\/dist$/.test(c)),
      'dist copied',
    );
    assert.ok(
      !copies.some((c) => /^--from=build \S*node_modules/.test(c)),
      'dev node_modules must not be copied',
    );
  });

  it('everything src/ imports at run time is a production dependency', () => {
    const dependencies = at(packageJson, 'dependencies');
    assert.ok(isRecord(dependencies));
    const runtime = new Set<string>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.ts')) {
          const text = readFileSync(path, 'utf8');
          // `import type` is erased; every other import (even of types only) stays in the output.
          for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^'.][^']*)'/gms)) {
            const spec = m[1]!;
            if (spec.startsWith('node:')) continue;
            const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
            runtime.add(`${name} (${relative(REPO_ROOT, path)})`);
            assert.ok(name in dependencies, `${relative(REPO_ROOT, path)} imports ${spec} at run time`);
          }
        }
      }
    };
    walk(join(REPO_ROOT, 'src'));
    assert.ok(runtime.size > 0, 'the scan found the runtime imports');
  });

  it('its entry point is the command the DaemonSet runs, a wrapper around the built CLI', () => {
    const command = asArray(
      at(
        findObject(loadManifests(), 'DaemonSet', 'kube-proxy'),
        'spec',
        'template',
        'spec',
        'containers',
        0,
        'command',
      ),
      'command',
    );
    const program = asString(command[0], 'command[0]');
    assert.deepEqual(args(final, 'ENTRYPOINT'), [JSON.stringify([program])]);
    assert.ok(args(final, 'COPY').includes(`--chmod=0755 deploy/kube-proxy.sh ${program}`));
    assert.ok((statSync(wrapperPath).mode & 0o111) !== 0, 'kube-proxy.sh is executable');

    // The wrapper runs dist/cli/main.js from the runtime WORKDIR on the image's own node.
    const workdir = args(final, 'WORKDIR').at(-1);
    assert.ok(workdir);
    assert.match(wrapper, /^#!\/bin\/sh\n/);
    const exec = wrapper.split('\n').find((line) => line.startsWith('exec '));
    assert.equal(
      exec,
      `exec /usr/local/bin/node --enable-source-maps --max-semi-space-size=4 ${workdir}/dist/cli/main.js "$@"`,
    );
    // tsc -p tsconfig.build.json maps src/ to dist/, so src/cli/main.ts becomes dist/cli/main.js.
    const build = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as unknown;
    assert.equal(at(build, 'compilerOptions', 'outDir'), 'dist');
    assert.equal(at(build, 'compilerOptions', 'rootDir'), 'src');
    assert.ok(existsSync(join(REPO_ROOT, 'src/cli/main.ts')));
    // dist/ is ESM: package.json's "type": "module" must be beside it.
    assert.equal(at(packageJson, 'type'), 'module');
    assert.ok(args(final, 'COPY').includes('package.json ./'));
  });

  it('copies only files that exist and that deploy/Dockerfile.dockerignore lets through', () => {
    const ignore = readFileSync(join(DEPLOY_DIR, 'Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'everything is excluded by default');
    const allowed = new Set(ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1)));
    const sources = stages
      .flatMap((stage) => args(stage, 'COPY'))
      .filter((c) => !c.startsWith('--from='))
      .flatMap((c) =>
        c
          .replace(/^--chmod=\S+\s+/, '')
          .split(/\s+/)
          .slice(0, -1),
      );
    assert.ok(sources.length > 0);
    for (const source of sources) {
      assert.ok(existsSync(join(REPO_ROOT, source)), `COPY source ${source} does not exist`);
      assert.ok(allowed.has(source), `COPY source ${source} is excluded from the build context`);
    }
  });
});
