// deploy/Dockerfile, read as text (no Docker engine here; test/e2e/image.test.ts runs the image
// `make image` builds without one): the single executable built on Node 24 bookworm, a Debian
// bookworm runtime base (selectable) with the same tools as `make image`'s, and an entry point at
// the path the DaemonSet's (and upstream's) command uses.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
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
import { IMAGE_PACKAGES } from '../../../scripts/release/image.ts';

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
    // A global ARG before the first FROM (the runtime base) belongs to no stage.
    if (instruction.op === 'ARG' && stages.length === 0) continue;
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

describe('deploy/Dockerfile', () => {
  it('builds on node:24-bookworm-slim and runs on a selectable Debian bookworm base', () => {
    assert.equal(stages.length, 2, 'a build stage and a runtime stage');
    assert.match(stages[0]![0]!.args, /^node:24-bookworm-slim\s+AS\s+build$/i);
    assert.equal(final[0]!.args, '${BASE}');
    assert.match(dockerfile, /^ARG BASE=debian:bookworm-slim$/m);
  });

  it("installs make image's Debian packages without recommends and drops the apt lists in the same layer", () => {
    const install = args(final, 'RUN').find((r) => r.includes('apt-get install'));
    assert.ok(install, 'the runtime stage installs Debian packages');
    assert.match(install, /apt-get update/);
    assert.match(install, /--no-install-recommends/);
    const packages = install
      .slice(
        install.indexOf('--no-install-recommends') + '--no-install-recommends'.length,
        install.indexOf(' && rm'),
      )
      .split(/\s+/)
      .filter(Boolean)
      .sort();
    assert.deepEqual(packages, [...IMAGE_PACKAGES].sort());
    assert.match(install, /rm -rf \/var\/lib\/apt\/lists\/\*/);
  });

  it('builds the single executable as make release does, and ships only that', () => {
    const build = args(stages[0]!, 'RUN').join(' && ');
    assert.match(build, /npm ci\b/);
    assert.match(build, /node_modules\/\.bin\/node scripts\/release\/build\.ts/);
    const copies = args(final, 'COPY');
    assert.deepEqual(copies, ['--from=build /src/release/kube-proxy /usr/local/bin/kube-proxy']);
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

  it('its entry point is the command the DaemonSet runs: the single executable', () => {
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
    assert.ok(args(final, 'COPY').some((c) => c.endsWith(` ${program}`)));
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
