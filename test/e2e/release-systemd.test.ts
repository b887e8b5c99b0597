// The systemd unit (deploy/systemd/): it verifies with systemd's own checker, it has what the usual
// kube-proxy unit has, and the flags in its environment file are flags the release binary accepts.
// Also what `make release` puts next to the binary: its SHA-256 and the tarball's contents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { missingArtifact, RELEASE_BINARY, ROOT } from './release-support.ts';

const UNIT = join(ROOT, 'deploy', 'systemd', 'kube-proxy.service');
const ENV_FILE = join(ROOT, 'deploy', 'systemd', 'kube-proxy.env');
const analyzeMissing =
  spawnSync('systemd-analyze', ['--version']).status === 0
    ? false
    : 'systemd-analyze is missing (make test installs the systemd package)';
const noBinary = missingArtifact(RELEASE_BINARY, 'release');
/** A clean PATH: no node_modules/.bin, so nothing of the checkout can help the binary. */
const SYSTEM_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' };

/**
 * `systemd-analyze verify` of a unit as installed: in a scratch root holding systemd's own units
 * (the unit's targets must resolve) and an executable at the unit's ExecStart path.
 * Returns everything it printed; it prints nothing for a good unit.
 */
function verifyUnit(unitText: string): { status: number | null; output: string } {
  const root = mkdtempSync(join(tmpdir(), 'kube-proxy-ts-unit-'));
  try {
    mkdirSync(join(root, 'etc', 'systemd', 'system'), { recursive: true });
    mkdirSync(join(root, 'usr', 'local', 'bin'), { recursive: true });
    mkdirSync(join(root, 'usr', 'lib', 'systemd'), { recursive: true });
    cpSync('/usr/lib/systemd/system', join(root, 'usr', 'lib', 'systemd', 'system'), { recursive: true });
    writeFileSync(join(root, 'usr', 'local', 'bin', 'kube-proxy'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(root, 'etc', 'systemd', 'system', 'kube-proxy.service'), unitText);
    const result = spawnSync(
      'systemd-analyze',
      ['verify', `--root=${root}`, '/etc/systemd/system/kube-proxy.service'],
      { encoding: 'utf8' },
    );
    return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** `Key=value` lines of a unit section. */
function directives(unitText: string, section: string): Map<string, string> {
  const out = new Map<string, string>();
  let current = '';
  for (const line of unitText.split('\n')) {
    const header = /^\[(.+)\]$/.exec(line.trim());
    if (header?.[1]) current = header[1];
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (current === section && kv?.[1] !== undefined && kv[2] !== undefined) out.set(kv[1], kv[2]);
  }
  return out;
}

test(
  'the systemd unit verifies with systemd-analyze, which does catch a broken one',
  { skip: analyzeMissing },
  () => {
    const unit = readFileSync(UNIT, 'utf8');
    const good = verifyUnit(unit);
    assert.equal(good.status, 0, good.output);
    assert.equal(good.output, '', 'systemd-analyze has no complaint');
    // The check is real: misspelt values are reported.
    const broken = verifyUnit(unit.replace('KillMode=process', 'KillMode=proces'));
    assert.match(broken.output, /kill mode/i);
    const restart = verifyUnit(unit.replace('Restart=always', 'Restart=alway'));
    assert.match(restart.output, /restart/i);
  },
);

test('the unit is the usual kube-proxy unit: restarts always, kills only the main process, waits for the network', () => {
  const unit = readFileSync(UNIT, 'utf8');
  const service = directives(unit, 'Service');
  const unitSection = directives(unit, 'Unit');
  assert.equal(service.get('Restart'), 'always');
  assert.equal(service.get('KillMode'), 'process');
  assert.ok(Number(service.get('LimitNOFILE')) >= 65536, `LimitNOFILE=${String(service.get('LimitNOFILE'))}`);
  assert.equal(unitSection.get('After'), 'network-online.target');
  assert.equal(unitSection.get('Wants'), 'network-online.target');
  assert.equal(service.get('EnvironmentFile'), '/etc/kube-proxy/kube-proxy.env');
  assert.equal(service.get('ExecStart'), '/usr/local/bin/kube-proxy $KUBE_PROXY_ARGS');
  assert.equal(directives(unit, 'Install').get('WantedBy'), 'multi-user.target');
});

test(
  "the environment file's flags are flags the release binary accepts (from any directory, without Node)",
  { skip: noBinary },
  () => {
    const env = readFileSync(ENV_FILE, 'utf8');
    const match = /^KUBE_PROXY_ARGS="([^"]*)"$/m.exec(env);
    assert.ok(match?.[1], 'KUBE_PROXY_ARGS="..." in the environment file');
    // systemd splits an unbraced $VAR on white space, one argument per word.
    const args = match[1].split(/\s+/).filter(Boolean);
    assert.ok(args.some((a) => a.startsWith('--kubeconfig=')));
    const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-ts-envfile-'));
    try {
      const out = join(dir, 'config.yaml');
      // --write-config-to parses and validates every flag, writes the configuration and exits.
      execFileSync(RELEASE_BINARY, [...args, `--write-config-to=${out}`], { cwd: '/', env: SYSTEM_ENV });
      const written = readFileSync(out, 'utf8');
      assert.match(written, /mode: iptables/);
      assert.match(written, /clusterCIDR: 10\.200\.0\.0\/16/);
      assert.match(written, /kubeconfig: \/var\/lib\/kube-proxy\/kubeconfig/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'release/kube-proxy --version and --help work from any directory, without Node on PATH',
  { skip: noBinary },
  () => {
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const cwd of ['/', tmpdir()]) {
      const out = execFileSync(RELEASE_BINARY, ['--version'], { cwd, env: SYSTEM_ENV, encoding: 'utf8' });
      // component-base's form, our release as build metadata (src/util/version.ts).
      assert.match(
        out,
        new RegExp(
          `^Kubernetes v\\d+\\.\\d+\\.\\d+\\+kube-proxy-ts\\.${version.version.replace(/\./g, '\\.')}\n$`,
        ),
      );
      const help = execFileSync(RELEASE_BINARY, ['--help'], { cwd, env: SYSTEM_ENV, encoding: 'utf8' });
      assert.match(help, /--proxy-mode/);
      assert.match(help, /--kubeconfig/);
    }
    // A bad flag is an error naming it, exit code 1, as upstream.
    const bad = spawnSync(RELEASE_BINARY, ['--no-such-flag'], { env: SYSTEM_ENV, encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /no-such-flag/);
  },
);

test(
  'the SHA-256 file matches the binary, and the tarball holds binary, unit, manifests and notices',
  { skip: noBinary },
  () => {
    const digest = createHash('sha256').update(readFileSync(RELEASE_BINARY)).digest('hex');
    assert.equal(readFileSync(`${RELEASE_BINARY}.sha256`, 'utf8'), `${digest}  kube-proxy\n`);
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    const name = `kube-proxy-ts-v${version}-linux-amd64`;
    const tarball = join(ROOT, 'release', `${name}.tar.gz`);
    const tarDigest = createHash('sha256').update(readFileSync(tarball)).digest('hex');
    assert.equal(readFileSync(`${tarball}.sha256`, 'utf8'), `${tarDigest}  ${name}.tar.gz\n`);
    const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-ts-tarball-'));
    try {
      execFileSync('tar', ['-xzf', tarball, '-C', dir]);
      const top = join(dir, name);
      const inTar = createHash('sha256')
        .update(readFileSync(join(top, 'kube-proxy')))
        .digest('hex');
      assert.equal(inTar, digest, 'the tarball holds the same binary');
      // `sha256sum -c` works in the unpacked directory, as docs/install.md says.
      execFileSync('sha256sum', ['-c', 'kube-proxy.sha256'], { cwd: top });
      assert.equal(
        readFileSync(join(top, 'systemd', 'kube-proxy.service'), 'utf8'),
        readFileSync(UNIT, 'utf8'),
      );
      assert.ok(readFileSync(join(top, 'systemd', 'kube-proxy.env'), 'utf8').includes('KUBE_PROXY_ARGS='));
      for (const manifest of [
        'daemonset.yaml',
        'configmap.yaml',
        'serviceaccount.yaml',
        'clusterrolebinding.yaml',
      ]) {
        assert.ok(readFileSync(join(top, 'manifests', manifest), 'utf8').length > 0, manifest);
      }
      // Every runtime dependency (and so everything bundled) and Node itself have their notice.
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
      };
      const index = readFileSync(join(top, 'LICENSES', 'README.txt'), 'utf8');
      for (const dep of [...Object.keys(pkg.dependencies), 'node']) {
        const file = join(top, 'LICENSES', dep.replace('/', '__'), 'LICENSE');
        assert.ok(readFileSync(file, 'utf8').length > 100, `notice of ${dep}`);
        assert.ok(
          index.includes(dep === 'node' ? 'Node.js v' : `- ${dep} `),
          `${dep} listed in LICENSES/README.txt`,
        );
      }
      assert.match(readFileSync(join(top, 'LICENSES', 'node', 'LICENSE'), 'utf8'), /Node\.js is licensed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
