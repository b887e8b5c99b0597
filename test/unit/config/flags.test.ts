import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderHelp } from '../../../src/config/flags/help.ts';
import { parseFlags } from '../../../src/config/flags/parse.ts';
import { FLAGS } from '../../../src/config/flags/table.ts';
import { parseCommandLine, type ProxyRunOptions } from '../../../src/config/load.ts';
import { noFiles } from './helpers.ts';

function run(argv: readonly string[]): ProxyRunOptions {
  const result = parseCommandLine(argv, noFiles);
  if (result.kind !== 'run') assert.fail(`expected run, got ${result.kind}: ${JSON.stringify(result)}`);
  return result.options;
}

function error(argv: readonly string[]): string {
  const result = parseCommandLine(argv, noFiles);
  if (result.kind !== 'error') assert.fail(`expected an error, got ${result.kind}`);
  return result.message;
}

describe('flag syntax (pflag)', () => {
  it('takes values as --flag=value and --flag value', () => {
    assert.equal(run(['--kubeconfig=/a']).config.clientConnection.kubeconfig, '/a');
    assert.equal(run(['--kubeconfig', '/b']).config.clientConnection.kubeconfig, '/b');
    assert.equal(run(['--kubeconfig=']).config.clientConnection.kubeconfig, '');
  });

  it('takes the next argument as the value even when it starts with a dash', () => {
    assert.equal(run(['--hostname-override', '-node']).config.hostnameOverride, '-node');
  });

  it('reads every verbosity spelling: -v=2, -v 2, -v2, --v=2, --v 2', () => {
    for (const argv of [['-v=2'], ['-v', '2'], ['-v2'], ['--v=2'], ['--v', '2']]) {
      assert.equal(run(argv).config.logging.verbosity, 2, argv.join(' '));
    }
    assert.equal(run(['-v=2', '--v=7']).config.logging.verbosity, 7);
  });

  it('reads booleans as --x, --x=true, --x=false (and Go spellings like =0, =T)', () => {
    assert.equal(run(['--cleanup']).cleanup, true);
    assert.equal(run(['--cleanup=true']).cleanup, true);
    assert.equal(run(['--cleanup=false']).cleanup, false);
    assert.equal(run(['--cleanup=T']).cleanup, true);
    assert.equal(run(['--iptables-localhost-nodeports=0']).config.iptables.localhostNodePorts, false);
    assert.equal(run([]).cleanup, false);
  });

  it('does not take a separate argument for a boolean (like pflag)', () => {
    assert.equal(error(['--cleanup', 'false']), '"kube-proxy" does not take any arguments, got ["false"]');
  });

  it('rejects a bad boolean with pflag wording', () => {
    assert.equal(
      error(['--cleanup=yes']),
      'invalid argument "yes" for "--cleanup" flag: strconv.ParseBool: parsing "yes": invalid syntax',
    );
  });

  it('reads comma lists and appends repeats', () => {
    assert.deepEqual(run(['--nodeport-addresses=10.0.0.0/8,192.168.0.0/16']).config.nodePortAddresses, [
      '10.0.0.0/8',
      '192.168.0.0/16',
    ]);
    assert.deepEqual(
      run(['--nodeport-addresses', '10.0.0.0/8', '--nodeport-addresses', 'fd00::/64']).config
        .nodePortAddresses,
      ['10.0.0.0/8', 'fd00::/64'],
    );
  });

  it('merges repeated --feature-gates', () => {
    const { config } = run(['--feature-gates=A=true,B=false', '--feature-gates', 'B=true, C = false']);
    assert.deepEqual(config.featureGates, { A: true, B: true, C: false });
  });

  it('rejects a malformed feature gate', () => {
    assert.equal(
      error(['--feature-gates=A=maybe']),
      'invalid argument "A=maybe" for "--feature-gates" flag: invalid value of A: maybe, err: ' +
        'strconv.ParseBool: parsing "maybe": invalid syntax',
    );
    assert.match(error(['--feature-gates=A']), /malformed pair "A", expect string=bool/);
  });

  it('reads Go durations and stores them canonically', () => {
    assert.equal(run(['--config-sync-period=60s']).config.configSyncPeriod, '1m0s');
    assert.equal(
      run(['--conntrack-tcp-timeout-established', '12h']).config.conntrack.tcpEstablishedTimeout,
      '12h0m0s',
    );
    assert.equal(
      error(['--iptables-sync-period=abc']),
      'invalid argument "abc" for "--iptables-sync-period" flag: time: invalid duration "abc"',
    );
  });

  it('reads integers like Go (base prefixes, range)', () => {
    assert.equal(run(['--iptables-masquerade-bit=0x1f']).config.iptables.masqueradeBit, 31);
    assert.equal(run(['--oom-score-adj=-500']).config.oomScoreAdj, -500);
    assert.equal(
      error(['--kube-api-burst=lots']),
      'invalid argument "lots" for "--kube-api-burst" flag: strconv.ParseInt: parsing "lots": invalid syntax',
    );
    assert.match(error(['--conntrack-min=9999999999']), /value out of range/);
    assert.equal(run(['--kube-api-qps=2.5']).config.clientConnection.qps, 2.5);
    assert.match(error(['-v=-1']), /^invalid argument "-1" for "-v, --v" flag: /);
  });

  it('checks --bind-address and the server addresses when parsing', () => {
    assert.equal(
      error(['--bind-address=node']),
      'invalid argument "node" for "--bind-address" flag: "node" is not a valid IP address',
    );
    assert.match(error(['--healthz-bind-address=host:1']), /"host" is not a valid IP address/);
    assert.match(error(['--metrics-bind-address=a:b:c']), /is not in a valid format \(ip or ip:port\)/);
  });

  it('accepts _ for - in flag names', () => {
    assert.equal(run(['--hostname_override', 'node-a']).config.hostnameOverride, 'node-a');
  });

  it('reports an unknown flag', () => {
    assert.equal(error(['--foo']), 'unknown flag: --foo');
    assert.equal(error(['--foo=bar']), 'unknown flag: --foo');
    assert.equal(error(['-x']), "unknown shorthand flag: 'x' in -x");
    assert.equal(error(['--no-cleanup']), 'unknown flag: --no-cleanup');
  });

  it('reports a missing value', () => {
    assert.equal(error(['--kubeconfig']), 'flag needs an argument: --kubeconfig');
    assert.equal(error(['-v']), "flag needs an argument: 'v' in -v");
  });

  it('accepts the logging flag family (applied or accepted as no-ops)', () => {
    const { config } = run([
      '--logging-format=json',
      '--log-flush-frequency=10s',
      '--log-json-split-stream=false',
      '--log-json-info-buffer-size=0',
      '--log-text-split-stream=false',
      '--log-text-info-buffer-size=0',
      '--feature-gates=LoggingAlphaOptions=true',
    ]);
    assert.equal(config.logging.format, 'json');
    assert.equal(config.logging.flushFrequency, '10s');
    assert.deepEqual(run(['--vmodule=proxier*=5,runner=2']).config.logging.vmodule, [
      { filePattern: 'proxier*', verbosity: 5 },
      { filePattern: 'runner', verbosity: 2 },
    ]);
    assert.match(error(['--vmodule=nolevel']), /does not have the pattern=N format/);
  });

  it('warns once about each deprecated flag used', () => {
    const result = parseCommandLine(
      ['--healthz-port=10256', '--healthz-port=10256', '--proxy-port-range=1-2'],
      noFiles,
    );
    assert.equal(result.kind, 'run');
    assert.equal(result.warnings.filter((w) => w.includes('--healthz-port')).length, 1);
    // The userspace mode uses it again: not deprecated here.
    assert.ok(!result.warnings.some((w) => w.includes('--proxy-port-range')));
  });

  it('tracks which flags were set explicitly', () => {
    assert.deepEqual(run(['-v=2', '--cleanup', '--cluster-cidr=10.0.0.0/8']).explicitFlags, [
      'cleanup',
      'cluster-cidr',
      'v',
    ]);
    const parsed = parseFlags(['--masquerade-all', '--masquerade-all=false']);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.flags.occurrences.get('masquerade-all'), ['true', 'false']);
  });

  it('lets the last occurrence of a scalar flag win', () => {
    assert.equal(run(['--masquerade-all', '--masquerade-all=false']).config.iptables.masqueradeAll, false);
  });
});

describe('--help', () => {
  it('is returned for --help and -h', () => {
    for (const argv of [['--help'], ['-h'], ['--kubeconfig=/x', '-h']]) {
      const result = parseCommandLine(argv, noFiles);
      assert.equal(result.kind, 'help', argv.join(' '));
    }
  });

  it('lists every flag, sorted by name, with types and defaults', () => {
    const text = renderHelp();
    const listed = [...text.matchAll(/^ {2}(?:-\w, | {4})--([\w-]+)/gm)].map((m) => m[1]);
    const expected = [...FLAGS.map((f) => f.name), 'help'].sort();
    assert.deepEqual(listed, expected);
    assert.match(text, /^ {6}--iptables-sync-period duration +.* \(default 30s\)$/m);
    assert.match(text, /^ {2}-v, --v Level +/m);
    assert.match(text, /^ {6}--cleanup {3,}Remove/m);
    assert.match(text, /^ {6}--healthz-port int32 +.*\(DEPRECATED: use --healthz-bind-address instead\)$/m);
  });

  it('covers every flag of spec 8.3', () => {
    const names = new Set(FLAGS.map((f) => f.name));
    const spec = [
      'config',
      'write-config-to',
      'cleanup',
      'init-only',
      'feature-gates',
      'hostname-override',
      'proxy-mode',
      'config-sync-period',
      'profiling',
      'show-hidden-metrics-for-version',
      'kubeconfig',
      'master',
      'kube-api-content-type',
      'kube-api-qps',
      'kube-api-burst',
      'bind-address',
      'healthz-bind-address',
      'metrics-bind-address',
      'bind-address-hard-fail',
      'nodeport-addresses',
      'iptables-masquerade-bit',
      'masquerade-all',
      'iptables-localhost-nodeports',
      'iptables-sync-period',
      'iptables-min-sync-period',
      'ipvs-sync-period',
      'ipvs-min-sync-period',
      'ipvs-scheduler',
      'ipvs-exclude-cidrs',
      'ipvs-strict-arp',
      'ipvs-tcp-timeout',
      'ipvs-tcpfin-timeout',
      'ipvs-udp-timeout',
      'detect-local-mode',
      'cluster-cidr',
      'pod-bridge-interface',
      'pod-interface-name-prefix',
      'oom-score-adj',
      'conntrack-max-per-core',
      'conntrack-min',
      'conntrack-tcp-timeout-established',
      'conntrack-tcp-timeout-close-wait',
      'conntrack-tcp-be-liberal',
      'conntrack-udp-timeout',
      'conntrack-udp-timeout-stream',
      'healthz-port',
      'metrics-port',
      'proxy-port-range',
      'udp-timeout',
      'v',
      'vmodule',
      'logging-format',
      'log-flush-frequency',
      'log-text-split-stream',
      'log-text-info-buffer-size',
      'log-json-split-stream',
      'log-json-info-buffer-size',
    ];
    assert.deepEqual(
      spec.filter((name) => !names.has(name)),
      [],
    );
  });
});
