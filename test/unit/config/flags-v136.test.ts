// Every flag the v1.36 binary accepts is accepted here too (issue 14, item 2).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderHelp } from '../../../src/config/flags/help.ts';
import { parseCommandLine } from '../../../src/config/load.ts';
import { noFiles } from './helpers.ts';

function outcome(argv: readonly string[]) {
  return parseCommandLine(argv, noFiles);
}

describe('--version (component-base verflag)', () => {
  it('prints "Kubernetes v1.36.0+kube-proxy-ts.<release>" for --version and --version=true', () => {
    for (const argv of [['--version'], ['--version=true'], ['--config=/missing', '--version']]) {
      const result = outcome(argv);
      assert.equal(result.kind, 'version', argv.join(' '));
      assert.match(result.text, /^Kubernetes v1\.36\.\d+\+kube-proxy-ts\.\d+\.\d+\.\d+\n$/);
    }
  });

  it("prints Go's version.Info for --version=raw", () => {
    const result = outcome(['--version=raw']);
    assert.equal(result.kind, 'version');
    assert.match(result.text, /^version\.Info\{Major:"1", Minor:"36", /);
    assert.match(result.text, /GitVersion:"v1\.36\.\d+\+kube-proxy-ts\.[^"]+"/);
    assert.match(result.text, /Platform:"linux\/(amd64|arm64)"\}\n$/);
  });

  it('runs with --version=false, and --version=vX.Y.Z sets the reported version', () => {
    assert.equal(outcome(['--version=false']).kind, 'run');
    const result = outcome(['--version=v1.36.2']);
    assert.equal(result.kind, 'run');
    assert.equal(result.options.reportedVersion, 'v1.36.2');
    assert.equal(outcome(['--version=maybe']).kind, 'error');
  });
});

describe('flags from Go flag set (cAdvisor, klog)', () => {
  const accepted: readonly (readonly string[])[] = [
    ['--boot-id-file=/proc/sys/kernel/random/boot_id'],
    ['--boot_id_file', '/x'],
    ['--machine-id-file=/etc/machine-id'],
    ['--machine_id_file=/etc/machine-id,/var/lib/dbus/machine-id'],
    ['--add_dir_header'],
    ['--alsologtostderr=true'],
    ['--log_backtrace_at=proxier.go:10'],
    ['--log-dir=/var/log'],
    ['--log_file=/var/log/kube-proxy.log'],
    ['--log-file-max-size=100'],
    ['--logtostderr=false'],
    ['--one_output'],
    ['--skip_headers'],
    ['--skip-log-headers'],
    ['--stderrthreshold=WARNING'],
    ['--stderrthreshold=2'],
    ['--show-hidden-metrics-for-version=1.35'],
  ];
  for (const argv of accepted) {
    it(`accepts ${argv.join(' ')}`, () => {
      const result = outcome(argv);
      assert.equal(result.kind, 'run', JSON.stringify(result));
    });
  }

  it('checks their values with upstream types', () => {
    assert.match(JSON.stringify(outcome(['--log_file_max_size=big'])), /strconv\.ParseUint/);
    assert.match(JSON.stringify(outcome(['--stderrthreshold=LOUD'])), /unknown severity/);
    assert.match(
      JSON.stringify(outcome(['--show-hidden-metrics-for-version=1.34'])),
      /previous minor version '1\.35'/,
    );
  });

  it('lists them in --help, marked as no-ops here', () => {
    const help = renderHelp();
    assert.match(help, /--version version\[=true\]/);
    assert.match(help, /--boot_id_file string .*No effect in kube-proxy-ts/);
    assert.match(help, /--log_dir string .*No effect in kube-proxy-ts/);
  });
});
