import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  parseCommandLine,
  resolveEffective,
  type ConfigIO,
  type ProxyRunOptions,
} from '../../../src/config/load.ts';
import { HEADER, filesIO, noFiles } from './helpers.ts';

const FILE = '/etc/kube-proxy/config.yaml';

function runWith(
  argv: readonly string[],
  io: ConfigIO = noFiles,
): { options: ProxyRunOptions; warnings: string[] } {
  const result = parseCommandLine(argv, io);
  if (result.kind !== 'run') assert.fail(`expected run, got ${result.kind}: ${JSON.stringify(result)}`);
  return { options: result.options, warnings: result.warnings };
}

function withFile(body: string, argv: readonly string[] = []): ProxyRunOptions {
  return runWith(['--config', FILE, ...argv], filesIO({ [FILE]: HEADER + body })).options;
}

function errorOf(argv: readonly string[], io: ConfigIO = noFiles): string {
  const result = parseCommandLine(argv, io);
  if (result.kind !== 'error') assert.fail(`expected an error, got ${result.kind}`);
  return result.message;
}

describe('precedence without --config', () => {
  it('flags override the defaults', () => {
    const { config } = runWith([
      '--proxy-mode=nftables',
      '--cluster-cidr=10.244.0.0/16',
      '--masquerade-all',
      '--conntrack-max-per-core=0',
    ]).options;
    assert.equal(config.mode, 'nftables');
    assert.equal(config.clusterCIDR, '10.244.0.0/16');
    assert.equal(config.iptables.masqueradeAll, true);
    assert.equal(config.nftables.masqueradeAll, true);
    assert.equal(config.conntrack.maxPerCore, 0);
  });

  it('--iptables-sync-period and --iptables-min-sync-period apply to nftables mode too', () => {
    const { config } = runWith([
      '--proxy-mode=nftables',
      '--iptables-sync-period=10s',
      '--iptables-min-sync-period=0s',
    ]).options;
    const effective = resolveEffective(config);
    assert.equal(effective.syncPeriodMs, 10_000);
    assert.equal(effective.minSyncPeriodMs, 0);
  });

  it('--ipvs-* periods apply in ipvs mode, --iptables-* ones do not', () => {
    const { config } = runWith([
      '--proxy-mode=ipvs',
      '--ipvs-sync-period=20s',
      '--iptables-sync-period=5s',
    ]).options;
    assert.equal(resolveEffective(config).syncPeriodMs, 20_000);
  });

  it('the deprecated port flags fill in or disable the server addresses', () => {
    let { config } = runWith([
      '--healthz-bind-address=10.0.0.1',
      '--metrics-port=9999',
      '--metrics-bind-address=::1',
    ]).options;
    assert.equal(config.healthzBindAddress, '10.0.0.1:10256');
    assert.equal(config.metricsBindAddress, '[::1]:9999');
    ({ config } = runWith(['--healthz-port=0', '--metrics-port=0']).options);
    assert.equal(config.healthzBindAddress, '');
    assert.equal(config.metricsBindAddress, '');
    ({ config } = runWith(['--healthz-bind-address=10.0.0.1:1234', '--healthz-port=99']).options);
    assert.equal(config.healthzBindAddress, '10.0.0.1:1234');
  });

  it('an empty --bind-address keeps the default, as upstream', () => {
    assert.equal(runWith(['--bind-address=']).options.config.bindAddress, '0.0.0.0');
  });

  it('reports invalid flag values as field errors naming the value', () => {
    assert.equal(
      errorOf(['--iptables-masquerade-bit=32']),
      'invalid configuration: iptables.masqueradeBit: Invalid value: 32: must be within the range [0, 31]',
    );
    assert.equal(
      errorOf(['--oom-score-adj=5000', '--proxy-mode=kernelspace']),
      'invalid configuration:\n' +
        '  mode: Invalid value: "kernelspace": must be iptables,ipvs,nftables,userspace or blank (blank means the ' +
        'best-available proxy [currently iptables])\n' +
        '  oomScoreAdj: Invalid value: 5000: must be within the range [-1000, 1000]',
    );
  });
});

describe('precedence with --config', () => {
  it('the file replaces the configuration and other config flags are ignored', () => {
    const options = withFile('mode: ipvs\nclusterCIDR: 10.0.0.0/8\n', [
      '--proxy-mode=nftables',
      '--cluster-cidr=192.168.0.0/16',
      '--kubeconfig=/flag/kubeconfig',
      '--masquerade-all',
      '--feature-gates=Foo=true',
      '--healthz-port=0',
    ]);
    assert.equal(options.config.mode, 'ipvs');
    assert.equal(options.config.clusterCIDR, '10.0.0.0/8');
    assert.equal(options.config.clientConnection.kubeconfig, '');
    assert.equal(options.config.iptables.masqueradeAll, false);
    assert.deepEqual(options.config.featureGates, {});
    assert.equal(options.config.healthzBindAddress, '0.0.0.0:10256');
    assert.equal(options.configFile, FILE);
  });

  it('explicitly set logging flags override the file', () => {
    const body = 'logging:\n  verbosity: 2\n  format: json\n  flushFrequency: 1s\n';
    let { config } = withFile(body, ['-v=5', '--logging-format=text', '--log-flush-frequency=3s']);
    assert.equal(config.logging.verbosity, 5);
    assert.equal(config.logging.format, 'text');
    assert.equal(config.logging.flushFrequency, '3s');
    ({ config } = withFile(body));
    assert.equal(config.logging.verbosity, 2);
    assert.equal(config.logging.format, 'json');
  });

  it('-v applies even when the file has no logging section', () => {
    assert.equal(withFile('mode: iptables\n', ['--v=4']).config.logging.verbosity, 4);
  });

  it('--vmodule entries come before the file ones', () => {
    const { config } = withFile('logging:\n  vmodule:\n  - filePattern: a\n    verbosity: 1\n', [
      '--vmodule=b=2',
    ]);
    assert.deepEqual(config.logging.vmodule, [
      { filePattern: 'b', verbosity: 2 },
      { filePattern: 'a', verbosity: 1 },
    ]);
  });

  it('a non-empty --hostname-override overrides the file, trimmed and lower-cased', () => {
    assert.equal(
      withFile('hostnameOverride: from-file\n', ['--hostname-override= Node-A ']).config.hostnameOverride,
      'node-a',
    );
    assert.equal(
      withFile('hostnameOverride: from-file\n', ['--hostname-override=']).config.hostnameOverride,
      'from-file',
    );
    assert.equal(withFile('hostnameOverride: from-file\n').config.hostnameOverride, 'from-file');
    assert.equal(
      errorOf(['--config', FILE, '--hostname-override=  '], filesIO({ [FILE]: HEADER })),
      'empty hostname-override is invalid',
    );
  });

  it('--master, --cleanup, --init-only and --write-config-to still apply', () => {
    const options = withFile('mode: nftables\n', [
      '--master=https://10.0.0.1:6443',
      '--cleanup',
      '--init-only',
      '--write-config-to=/tmp/out.yaml',
    ]);
    assert.equal(options.master, 'https://10.0.0.1:6443');
    assert.equal(options.cleanup, true);
    assert.equal(options.initOnly, true);
    assert.equal(options.writeConfigTo, '/tmp/out.yaml');
    assert.equal(resolveEffective(options.config, options.master).master, 'https://10.0.0.1:6443');
  });

  it('defaults nodePortAddresses to primary for an nftables file, and keeps an explicit list', () => {
    assert.deepEqual(withFile('mode: nftables\n').config.nodePortAddresses, ['primary']);
    assert.deepEqual(withFile('mode: nftables\nnodePortAddresses: [10.0.0.0/8]\n').config.nodePortAddresses, [
      '10.0.0.0/8',
    ]);
    assert.deepEqual(withFile('mode: iptables\n').config.nodePortAddresses, []);
  });

  it("loads an installer's ConfigMap with stale fields, reporting each one (issue 14)", () => {
    const { options, warnings } = runWith(
      ['--config', FILE],
      filesIO({
        [FILE]: `${HEADER}mode: iptables\nudpIdleTimeout: 0s\nresourceContainer: ""\nconntrack:\n  max: 0\n  maxPerCore: 0\nsomeFieldFromV1_40: true\n`,
      }),
    );
    assert.deepEqual(options.ignoredConfigFields, [
      'conntrack.max',
      'resourceContainer',
      'someFieldFromV1_40',
      'udpIdleTimeout',
    ]);
    assert.equal(options.config.conntrack.maxPerCore, 0);
    // The legacy field falls back to its default instead of failing "must be greater than 0".
    assert.equal(options.config.udpIdleTimeout, '250ms');
    for (const field of options.ignoredConfigFields) {
      assert.ok(
        warnings.some((w) => w.includes(FILE) && w.includes(`"${field}"`)),
        `a warning names ${field}: ${warnings.join('; ')}`,
      );
    }
  });

  it('keeps udpIdleTimeout in userspace mode, where it is read', () => {
    const { options } = runWith(
      ['--config', FILE],
      filesIO({ [FILE]: `${HEADER}mode: userspace\nudpIdleTimeout: 2s\n` }),
    );
    assert.deepEqual(options.ignoredConfigFields, []);
    assert.equal(options.config.udpIdleTimeout, '2s');
  });

  it('still rejects a mistyped field, naming the file, the field and any unknown one', () => {
    const error = errorOf(
      ['--config', FILE],
      filesIO({ [FILE]: `${HEADER}mode: nftables\nbogus: 1\noomScoreAdj: "x"\n` }),
    );
    assert.match(error, new RegExp(FILE.replaceAll('/', '\\/')));
    assert.match(error, /bogus: unknown field/);
    assert.match(error, /oomScoreAdj: Invalid value/);
  });

  it('fails with the file name and the problem', () => {
    assert.equal(
      errorOf(['--config', '/missing.yaml']),
      'failed to read config file "/missing.yaml": open /missing.yaml: no such file or directory',
    );
    assert.equal(
      errorOf(['--config', FILE], filesIO({ [FILE]: `${HEADER}mode: a\nmode: b\n` })),
      `failed to load config file "${FILE}": yaml: line 4, column 1: Map keys must be unique`,
    );
    assert.equal(
      errorOf(['--config', FILE], filesIO({ [FILE]: `${HEADER}conntrack:\n  min: -5\n` })),
      'invalid configuration: conntrack.min: Invalid value: -5: must be greater than or equal to 0',
    );
  });
});
