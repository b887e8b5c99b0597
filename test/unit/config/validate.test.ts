import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RawKubeProxyConfiguration } from '../../../src/config/schema.ts';
import { formatFieldError, validateConfig } from '../../../src/config/validate.ts';
import { configFrom } from './helpers.ts';

function messages(raw: RawKubeProxyConfiguration): string[] {
  return validateConfig(configFrom(raw)).errors.map(formatFieldError);
}

/** One rule, one case: exactly this message and nothing else. */
function rejects(raw: RawKubeProxyConfiguration, expected: string): void {
  assert.deepEqual(messages(raw), [expected]);
}

function accepts(raw: RawKubeProxyConfiguration): void {
  assert.deepEqual(messages(raw), []);
}

describe('validateConfig (spec 8.2)', () => {
  it('accepts the defaults of every mode', () => {
    accepts({});
    accepts({ mode: 'iptables' });
    accepts({ mode: 'nftables' });
    accepts({ mode: 'ipvs' });
    accepts({ mode: 'userspace' });
  });

  describe('iptables', () => {
    it('masqueradeBit within [0, 31]', () => {
      rejects(
        { iptables: { masqueradeBit: 32 } },
        'iptables.masqueradeBit: Invalid value: 32: must be within the range [0, 31]',
      );
      rejects(
        { iptables: { masqueradeBit: -1 } },
        'iptables.masqueradeBit: Invalid value: -1: must be within the range [0, 31]',
      );
      accepts({ iptables: { masqueradeBit: 0 } });
      accepts({ iptables: { masqueradeBit: 31 } });
    });

    it('syncPeriod > 0', () => {
      rejects(
        { iptables: { syncPeriod: '-1s' } },
        'iptables.syncPeriod: Invalid value: -1s: must be greater than 0',
      );
    });

    it('minSyncPeriod >= 0', () => {
      rejects(
        { iptables: { minSyncPeriod: '-1s' } },
        'iptables.minSyncPeriod: Invalid value: -1s: must be greater than or equal to 0',
      );
    });

    it('syncPeriod >= minSyncPeriod', () => {
      rejects(
        { iptables: { syncPeriod: '1s', minSyncPeriod: '5s' } },
        'iptables.syncPeriod: Invalid value: 1s: must be greater than or equal to iptables.minSyncPeriod (5s)',
      );
      accepts({ iptables: { syncPeriod: '5s', minSyncPeriod: '5s' } });
    });
  });

  describe('nftables (validated in nftables mode)', () => {
    it('masqueradeBit within [0, 31]', () => {
      rejects(
        { mode: 'nftables', nftables: { masqueradeBit: 40 } },
        'nftables.masqueradeBit: Invalid value: 40: must be within the range [0, 31]',
      );
      accepts({ mode: 'iptables', nftables: { masqueradeBit: 40 } });
    });

    it('sync periods', () => {
      rejects(
        { mode: 'nftables', nftables: { syncPeriod: '-5s' } },
        'nftables.syncPeriod: Invalid value: -5s: must be greater than 0',
      );
      rejects(
        { mode: 'nftables', nftables: { minSyncPeriod: '-5s' } },
        'nftables.minSyncPeriod: Invalid value: -5s: must be greater than or equal to 0',
      );
      rejects(
        { mode: 'nftables', nftables: { syncPeriod: '10s', minSyncPeriod: '1m' } },
        'nftables.syncPeriod: Invalid value: 10s: must be greater than or equal to nftables.minSyncPeriod (1m0s)',
      );
    });
  });

  describe('ipvs (validated in ipvs mode)', () => {
    it('sync periods', () => {
      rejects(
        { mode: 'ipvs', ipvs: { syncPeriod: '-1s' } },
        'ipvs.syncPeriod: Invalid value: -1s: must be greater than 0',
      );
      rejects(
        { mode: 'ipvs', ipvs: { minSyncPeriod: '-1s' } },
        'ipvs.minSyncPeriod: Invalid value: -1s: must be greater than or equal to 0',
      );
      rejects(
        { mode: 'ipvs', ipvs: { syncPeriod: '1s', minSyncPeriod: '2s' } },
        'ipvs.syncPeriod: Invalid value: 1s: must be greater than or equal to ipvs.minSyncPeriod (2s)',
      );
    });

    it('timeouts >= 0', () => {
      rejects(
        { mode: 'ipvs', ipvs: { tcpTimeout: '-1s' } },
        'ipvs.tcpTimeout: Invalid value: -1s: must be greater than or equal to 0',
      );
      rejects(
        { mode: 'ipvs', ipvs: { tcpFinTimeout: '-1s' } },
        'ipvs.tcpFinTimeout: Invalid value: -1s: must be greater than or equal to 0',
      );
      rejects(
        { mode: 'ipvs', ipvs: { udpTimeout: '-1s' } },
        'ipvs.udpTimeout: Invalid value: -1s: must be greater than or equal to 0',
      );
    });

    it('excludeCIDRs are CIDRs', () => {
      rejects(
        { mode: 'ipvs', ipvs: { excludeCIDRs: ['10.0.0.0/8', '10.1.2.3'] } },
        'ipvs.excludeCIDRs[1]: Invalid value: "10.1.2.3": must be a valid CIDR',
      );
      accepts({ mode: 'iptables', ipvs: { excludeCIDRs: ['junk'] } });
    });
  });

  describe('conntrack', () => {
    it('counts >= 0', () => {
      rejects(
        { conntrack: { maxPerCore: -1 } },
        'conntrack.maxPerCore: Invalid value: -1: must be greater than or equal to 0',
      );
      rejects(
        { conntrack: { min: -1 } },
        'conntrack.min: Invalid value: -1: must be greater than or equal to 0',
      );
    });

    it('timeouts >= 0', () => {
      for (const field of [
        'tcpEstablishedTimeout',
        'tcpCloseWaitTimeout',
        'udpTimeout',
        'udpStreamTimeout',
      ]) {
        rejects(
          { conntrack: { [field]: '-1m' } },
          `conntrack.${field}: Invalid value: -1m0s: must be greater than or equal to 0`,
        );
      }
    });
  });

  it('oomScoreAdj within [-1000, 1000]', () => {
    rejects(
      { oomScoreAdj: 1001 },
      'oomScoreAdj: Invalid value: 1001: must be within the range [-1000, 1000]',
    );
    rejects(
      { oomScoreAdj: -1001 },
      'oomScoreAdj: Invalid value: -1001: must be within the range [-1000, 1000]',
    );
    accepts({ oomScoreAdj: -1000 });
  });

  it('mode is iptables, ipvs, nftables, userspace or blank', () => {
    // kernelspace is upstream's Windows mode: never valid on Linux.
    rejects(
      { mode: 'kernelspace' },
      'mode: Invalid value: "kernelspace": must be iptables,ipvs,nftables,userspace or blank ' +
        '(blank means the best-available proxy [currently iptables])',
    );
    // Mode names are case-sensitive, as upstream compares them.
    assert.match(messages({ mode: 'IPVS' })[0] ?? '', /^mode: Invalid value: "IPVS"/);
  });

  it('the ipvs section is validated in ipvs mode only, as upstream', () => {
    const bad = {
      ipvs: { syncPeriod: '-1s', tcpTimeout: '-1s', excludeCIDRs: ['junk'] },
    };
    for (const mode of ['iptables', 'nftables', 'userspace']) accepts({ ...bad, mode });
    assert.deepEqual(messages({ ...bad, mode: 'ipvs' }), [
      'ipvs.syncPeriod: Invalid value: -1s: must be greater than 0',
      'ipvs.tcpTimeout: Invalid value: -1s: must be greater than or equal to 0',
      'ipvs.excludeCIDRs[0]: Invalid value: "junk": must be a valid CIDR',
    ]);
  });

  it('any ipvs scheduler name is valid (upstream checks it at start since v1.27)', () => {
    accepts({ mode: 'ipvs', ipvs: { scheduler: 'mh' } });
    accepts({ mode: 'ipvs', ipvs: { scheduler: 'some-future-scheduler' } });
  });

  it('userspace mode runs on the iptables settings, so those are validated', () => {
    rejects(
      { mode: 'userspace', iptables: { syncPeriod: '1s', minSyncPeriod: '2s' } },
      'iptables.syncPeriod: Invalid value: 1s: must be greater than or equal to iptables.minSyncPeriod (2s)',
    );
  });

  it('clientConnection.burst >= 0', () => {
    rejects(
      { clientConnection: { burst: -1 } },
      'clientConnection.burst: Invalid value: -1: must be greater than or equal to 0',
    );
  });

  it('configSyncPeriod > 0', () => {
    rejects({ configSyncPeriod: '-1s' }, 'configSyncPeriod: Invalid value: -1s: must be greater than 0');
  });

  it('bindAddress is an IP', () => {
    rejects(
      { bindAddress: 'node-1' },
      'bindAddress: Invalid value: "node-1": not a valid textual representation of an IP address',
    );
    accepts({ bindAddress: 'fd00::1' });
  });

  it('healthzBindAddress, if set, is IP:port with port 1-65535', () => {
    rejects(
      { healthzBindAddress: 'node:10256' },
      'healthzBindAddress: Invalid value: "node": must be a valid IP',
    );
    rejects(
      { healthzBindAddress: '0.0.0.0:0' },
      'healthzBindAddress: Invalid value: "0": must be a valid port',
    );
    rejects(
      { healthzBindAddress: '0.0.0.0:65536' },
      'healthzBindAddress: Invalid value: "65536": must be a valid port',
    );
    rejects(
      { healthzBindAddress: '1.2.3.4:80:90' },
      'healthzBindAddress: Invalid value: "1.2.3.4:80:90": must be IP:port',
    );
    accepts({ healthzBindAddress: '[::1]:80' });
    assert.deepEqual(validateConfig({ ...configFrom(), healthzBindAddress: '' }).errors, []);
  });

  it('metricsBindAddress is IP:port with port 1-65535 (empty disables)', () => {
    rejects(
      { metricsBindAddress: 'localhost:10249' },
      'metricsBindAddress: Invalid value: "localhost": must be a valid IP',
    );
    rejects(
      { metricsBindAddress: '127.0.0.1:abc' },
      'metricsBindAddress: Invalid value: "abc": must be a valid port',
    );
    assert.deepEqual(validateConfig({ ...configFrom(), metricsBindAddress: '' }).errors, []);
  });

  it('portRange is parseable', () => {
    rejects(
      { portRange: 'abc' },
      'portRange: Invalid value: "abc": must be a valid port range (e.g. 300-2000)',
    );
    rejects(
      { portRange: '2000-300' },
      'portRange: Invalid value: "2000-300": must be a valid port range (e.g. 300-2000)',
    );
    accepts({ portRange: '300-2000' });
    accepts({ portRange: '300+100' });
  });

  it('udpIdleTimeout must be greater than 0 (0 is defaulted to 250ms first, as upstream)', () => {
    rejects({ udpIdleTimeout: '-1s' }, 'udpIdleTimeout: Invalid value: -1s: must be greater than 0');
    accepts({ udpIdleTimeout: '0s' });
    accepts({ udpIdleTimeout: '1ms' });
    accepts({ mode: 'iptables', udpIdleTimeout: '30s' });
  });

  it('showHiddenMetricsForVersion is empty or the previous minor version', () => {
    rejects(
      { showHiddenMetricsForVersion: '1.20' },
      'showHiddenMetricsForVersion: Invalid value: "1.20": must be empty or the previous minor version \'1.35\' ' +
        '(no other version is allowed)',
    );
    accepts({ showHiddenMetricsForVersion: '1.35' });
  });

  it('nodePortAddresses are CIDRs or exactly ["primary"]', () => {
    rejects(
      { nodePortAddresses: ['10.0.0.0/8', 'eth0'] },
      'nodePortAddresses[1]: Invalid value: "eth0": must be a valid CIDR',
    );
    rejects(
      { nodePortAddresses: ['primary', '10.0.0.0/8'] },
      "nodePortAddresses[0]: Invalid value: \"primary\": can't use both 'primary' and CIDRs",
    );
    accepts({ nodePortAddresses: ['primary'] });
    accepts({ nodePortAddresses: ['10.0.0.0/8', 'fd00::/64'] });
  });

  it('detectLocalMode is a known mode', () => {
    rejects(
      { detectLocalMode: 'PodCIDR' },
      'detectLocalMode: Unsupported value: "PodCIDR": supported values: "ClusterCIDR", "NodeCIDR", ' +
        '"BridgeInterface", "InterfaceNamePrefix"',
    );
    accepts({ detectLocalMode: 'NodeCIDR' });
  });

  it('interface modes need a non-empty name', () => {
    rejects(
      { detectLocalMode: 'BridgeInterface' },
      'detectLocal.bridgeInterface: Invalid value: "": must not be empty',
    );
    rejects(
      { detectLocalMode: 'InterfaceNamePrefix' },
      'detectLocal.interfaceNamePrefix: Invalid value: "": must not be empty',
    );
    accepts({ detectLocalMode: 'BridgeInterface', detectLocal: { bridgeInterface: 'cni0' } });
    accepts({ detectLocalMode: 'InterfaceNamePrefix', detectLocal: { interfaceNamePrefix: 'veth' } });
  });

  it('clusterCIDR is one CIDR or an IPv4+IPv6 pair', () => {
    rejects(
      { clusterCIDR: '10.244.0.0' },
      'clusterCIDR: Invalid value: "10.244.0.0": must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)',
    );
    rejects(
      { clusterCIDR: '10.244.0.0/16,10.245.0.0/16' },
      'clusterCIDR: Invalid value: "10.244.0.0/16,10.245.0.0/16": must be a valid DualStack CIDR ' +
        '(e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)',
    );
    rejects(
      { clusterCIDR: '10.0.0.0/8,fd00::/48,10.1.0.0/16' },
      'clusterCIDR: Invalid value: "10.0.0.0/8,fd00::/48,10.1.0.0/16": only one CIDR allowed or a valid ' +
        'DualStack CIDR (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)',
    );
    accepts({ clusterCIDR: '10.244.0.0/16,fd00:10:244::/56' });
    accepts({ clusterCIDR: 'fd00:10:244::/56' });
  });

  describe('logging', () => {
    it('format is text or json', () => {
      rejects({ logging: { format: 'xml' } }, 'logging.format: Invalid value: "xml": Unsupported log format');
      accepts({ logging: { format: 'json' } });
    });

    it('verbosity fits int32', () => {
      rejects(
        { logging: { verbosity: 3_000_000_000 } },
        'logging.verbosity: Invalid value: 3000000000: Must be <= 2147483647',
      );
    });

    it('vmodule only with text, with valid patterns', () => {
      rejects(
        { logging: { format: 'json', vmodule: [{ filePattern: 'proxier*', verbosity: 4 }] } },
        'logging.vmodule: Forbidden: Only supported for text log format',
      );
      rejects(
        { logging: { vmodule: [{ filePattern: '', verbosity: 4 }] } },
        'logging.vmodule[0]: Required value: File pattern must not be empty',
      );
      rejects(
        { logging: { vmodule: [{ filePattern: 'a=b', verbosity: 4 }] } },
        'logging.vmodule[0]: Invalid value: "a=b": File pattern must not contain equal sign or comma',
      );
      accepts({ logging: { vmodule: [{ filePattern: 'proxier*', verbosity: 4 }] } });
    });

    it('alpha stream options need the LoggingAlphaOptions gate', () => {
      rejects(
        { logging: { options: { json: { splitStream: true } } } },
        'logging.options.json.splitStream: Forbidden: Feature LoggingAlphaOptions is disabled',
      );
      rejects(
        { logging: { options: { text: { infoBufferSize: '1Ki' } } } },
        'logging.options.text.infoBufferSize: Forbidden: Feature LoggingAlphaOptions is disabled',
      );
      accepts({
        featureGates: { LoggingAlphaOptions: true },
        logging: { options: { json: { splitStream: true, infoBufferSize: '1Ki' } } },
      });
    });
  });

  it('reports every problem at once', () => {
    assert.equal(messages({ oomScoreAdj: 5000, iptables: { masqueradeBit: 99 }, mode: 'x' }).length, 3);
  });
});

describe('validateConfig warnings (non-fatal)', () => {
  function warningsOf(raw: RawKubeProxyConfiguration): readonly string[] {
    const result = validateConfig(configFrom(raw));
    assert.deepEqual(result.errors, []);
    return result.warnings;
  }

  it('unknown feature gates are a warning, not an error', () => {
    assert.ok(
      warningsOf({ featureGates: { NoSuchGate: true } }).includes(
        'unrecognized feature gate: NoSuchGate (ignored)',
      ),
    );
  });

  it('suggests --nodeport-addresses primary when nodePortAddresses is unset', () => {
    assert.ok(warningsOf({}).some((w) => w.includes('--nodeport-addresses primary')));
    assert.ok(!warningsOf({ mode: 'nftables' }).some((w) => w.includes('nodePortAddresses')));
    assert.ok(
      !warningsOf({ nodePortAddresses: ['10.0.0.0/8'] }).some((w) => w.includes('nodePortAddresses')),
    );
  });

  it('notes ClusterCIDR detection without a clusterCIDR, and the deprecated ipvs mode', () => {
    assert.ok(warningsOf({}).some((w) => w.includes('clusterCIDR is empty')));
    assert.ok(!warningsOf({ clusterCIDR: '10.0.0.0/8' }).some((w) => w.includes('clusterCIDR is empty')));
    assert.ok(warningsOf({ mode: 'ipvs' }).some((w) => w.includes('ipvs proxy mode is deprecated')));
  });
});
