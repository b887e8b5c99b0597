// The proxy modes at the configuration level: every Linux mode (iptables, nftables, ipvs,
// userspace) passes flags, the file, defaulting and validation, and the ipvs section decodes,
// defaults and validates as upstream's. Whether a mode can run is the CLI's call: the last tests
// check the registry the program consults: every mode, ipvs included, runs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandLine, resolveEffective, type ProxyRunOptions } from '../../../src/config/load.ts';
import { PROXY_MODES } from '../../../src/config/types.ts';
import { MODES } from '../../../src/dataplane/modes.ts';
import { HEADER, filesIO, noFiles } from './helpers.ts';

const FILE = '/etc/kube-proxy/config.yaml';

function run(argv: readonly string[], files: Readonly<Record<string, string>> = {}): ProxyRunOptions {
  const result = parseCommandLine(argv, Object.keys(files).length === 0 ? noFiles : filesIO(files));
  if (result.kind !== 'run') assert.fail(`expected run, got ${result.kind}: ${JSON.stringify(result)}`);
  return result.options;
}

function errorOf(argv: readonly string[], files: Readonly<Record<string, string>>): string {
  const result = parseCommandLine(argv, filesIO(files));
  if (result.kind !== 'error') assert.fail(`expected an error, got ${result.kind}`);
  return result.message;
}

describe('proxy modes in the configuration', () => {
  it('lists the four Linux modes, sorted as upstream prints them', () => {
    assert.deepEqual(PROXY_MODES, ['iptables', 'ipvs', 'nftables', 'userspace']);
  });

  for (const mode of PROXY_MODES) {
    it(`accepts ${mode} from --proxy-mode and from the file`, () => {
      assert.equal(run([`--proxy-mode=${mode}`]).config.mode, mode);
      assert.equal(run(['--config', FILE], { [FILE]: `${HEADER}mode: ${mode}\n` }).config.mode, mode);
      assert.equal(resolveEffective(run([`--proxy-mode=${mode}`]).config).mode, mode);
    });
  }

  it('blank means iptables', () => {
    assert.equal(run(['--proxy-mode=']).config.mode, 'iptables');
    assert.equal(run(['--config', FILE], { [FILE]: `${HEADER}mode: ""\n` }).config.mode, 'iptables');
  });
});

describe('the ipvs section', () => {
  const IPVS_BLOCK =
    'mode: ipvs\n' +
    'ipvs:\n' +
    '  scheduler: lc\n' +
    '  syncPeriod: 45s\n' +
    '  minSyncPeriod: 2s\n' +
    '  excludeCIDRs: [10.9.0.0/16, "fd00::/64"]\n' +
    '  strictARP: true\n' +
    '  tcpTimeout: 15m\n' +
    '  tcpFinTimeout: 2m\n' +
    '  udpTimeout: 300s\n';

  it('decodes every field, with durations in Go canonical form', () => {
    const { config } = run(['--config', FILE], { [FILE]: HEADER + IPVS_BLOCK });
    assert.deepEqual(config.ipvs, {
      scheduler: 'lc',
      syncPeriod: '45s',
      minSyncPeriod: '2s',
      excludeCIDRs: ['10.9.0.0/16', 'fd00::/64'],
      strictARP: true,
      tcpTimeout: '15m0s',
      tcpFinTimeout: '2m0s',
      udpTimeout: '5m0s',
    });
    const effective = resolveEffective(config);
    assert.deepEqual([effective.syncPeriodMs, effective.minSyncPeriodMs], [45_000, 2000]);
    assert.deepEqual(effective.ipvs, {
      scheduler: 'lc',
      excludeCIDRs: ['10.9.0.0/16', 'fd00::/64'],
      strictARP: true,
      tcpTimeoutSeconds: 900,
      tcpFinTimeoutSeconds: 120,
      udpTimeoutSeconds: 300,
    });
  });

  it('gets the same values from the --ipvs-* flags', () => {
    const { config } = run([
      '--proxy-mode=ipvs',
      '--ipvs-scheduler=lc',
      '--ipvs-sync-period=45s',
      '--ipvs-min-sync-period=2s',
      '--ipvs-exclude-cidrs=10.9.0.0/16',
      '--ipvs-exclude-cidrs=fd00::/64',
      '--ipvs-strict-arp',
      '--ipvs-tcp-timeout=15m',
      '--ipvs-tcpfin-timeout=2m',
      '--ipvs-udp-timeout=300s',
    ]);
    assert.deepEqual(config, run(['--config', FILE], { [FILE]: HEADER + IPVS_BLOCK }).config);
  });

  it('defaults as upstream: 30s sync, 0s min sync, no scheduler (rr at start), kernel timeouts', () => {
    const { config } = run(['--config', FILE], { [FILE]: `${HEADER}mode: ipvs\nipvs: {}\n` });
    assert.deepEqual(config.ipvs, {
      scheduler: '',
      syncPeriod: '30s',
      minSyncPeriod: '0s',
      excludeCIDRs: [],
      strictARP: false,
      tcpTimeout: '0s',
      tcpFinTimeout: '0s',
      udpTimeout: '0s',
    });
    // ipvs mode shares nodePortAddresses' "every local IP" default with iptables.
    assert.deepEqual(config.nodePortAddresses, []);
  });

  it('rejects mistyped and unknown fields with their path', () => {
    assert.match(
      errorOf(['--config', FILE], { [FILE]: `${HEADER}ipvs:\n  strictARP: maybe\n` }),
      /ipvs\.strictARP: Invalid value: "maybe": expected true or false/,
    );
    assert.match(
      errorOf(['--config', FILE], { [FILE]: `${HEADER}ipvs:\n  excludeCIDRs: 10.0.0.0/8\n` }),
      /ipvs\.excludeCIDRs: Invalid value: "10\.0\.0\.0\/8": expected a list/,
    );
    assert.match(
      errorOf(['--config', FILE], { [FILE]: `${HEADER}ipvs:\n  tcpTimeout: 5\n` }),
      /ipvs\.tcpTimeout: Invalid value: 5/,
    );
    assert.match(
      errorOf(['--config', FILE], { [FILE]: `${HEADER}ipvs:\n  schedular: rr\n  strictARP: maybe\n` }),
      /ipvs\.schedular: unknown field/,
    );
  });

  it('validates the section in ipvs mode, naming each bad field', () => {
    const bad = `${HEADER}mode: ipvs\nipvs:\n  minSyncPeriod: 1m\n  syncPeriod: 30s\n  udpTimeout: -1s\n  excludeCIDRs: [10.0.0.1]\n`;
    assert.equal(
      errorOf(['--config', FILE], { [FILE]: bad }),
      'invalid configuration:\n' +
        '  ipvs.syncPeriod: Invalid value: 30s: must be greater than or equal to ipvs.minSyncPeriod (1m0s)\n' +
        '  ipvs.udpTimeout: Invalid value: -1s: must be greater than or equal to 0\n' +
        '  ipvs.excludeCIDRs[0]: Invalid value: "10.0.0.1": must be a valid CIDR',
    );
  });
});

describe('the kube-proxy program and the modes it runs', () => {
  it('ipvs passes the mode check: the registry runs it', () => {
    assert.equal(MODES.ipvs.unavailable, undefined);
    assert.equal(MODES.ipvs.name, 'ipvs');
    assert.equal(resolveEffective(run(['--proxy-mode=ipvs']).config).mode, 'ipvs');
  });

  it('userspace passes the mode check: the registry runs it', () => {
    // Running the program past the mode check would clean up other modes' rules on this host,
    // so the accepted case is checked at the registry the CLI consults (and end to end, inside
    // network namespaces, by the userspace e2e tests).
    assert.equal(MODES.userspace.unavailable, undefined);
    assert.equal(MODES.userspace.name, 'userspace');
    assert.equal(resolveEffective(run(['--proxy-mode=userspace']).config).mode, 'userspace');
  });
});
