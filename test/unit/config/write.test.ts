import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { defaultConfiguration } from '../../../src/config/defaults.ts';
import { formatGoDurationNs } from '../../../src/config/duration.ts';
import { parseCommandLine } from '../../../src/config/load.ts';
import { decodeConfig, type RawKubeProxyConfiguration } from '../../../src/config/schema.ts';
import type { KubeProxyConfiguration } from '../../../src/config/types.ts';
import { renderConfigYAML } from '../../../src/config/write.ts';
import { configFrom, filesIO } from './helpers.ts';

function reread(config: KubeProxyConfiguration): KubeProxyConfiguration {
  const decoded = decodeConfig(renderConfigYAML(config));
  if (!decoded.ok) assert.fail(decoded.error);
  assert.deepEqual(decoded.warnings, []);
  return configFrom(decoded.raw);
}

describe('renderConfigYAML', () => {
  it('writes apiVersion, kind and every field, keys sorted, durations in Go form', () => {
    const text = renderConfigYAML(configFrom());
    assert.match(text, /^apiVersion: kubeproxy\.config\.k8s\.io\/v1alpha1$/m);
    assert.match(text, /^kind: KubeProxyConfiguration$/m);
    const topLevel = [...text.matchAll(/^(\w+):/gm)].map((m) => m[1]);
    assert.deepEqual(topLevel, Object.keys(defaultConfiguration()).sort());
    assert.match(text, /^configSyncPeriod: 15m0s$/m);
    assert.match(text, /^ {2}tcpEstablishedTimeout: 24h0m0s$/m);
    assert.match(text, /^ {2}syncPeriod: 30s$/m);
    assert.match(text, /^ {2}minSyncPeriod: 1s$/m);
    assert.match(text, /^mode: iptables$/m);
  });

  it('round-trips the defaults of every mode', () => {
    for (const mode of ['iptables', 'nftables', 'ipvs']) {
      const config = configFrom({ mode });
      assert.deepEqual(reread(config), config);
    }
  });

  it('quotes strings that YAML 1.1 would read as something else', () => {
    const config = {
      ...configFrom(),
      hostnameOverride: 'yes',
      portRange: '10:20',
      showHiddenMetricsForVersion: '1.35',
    };
    assert.deepEqual(reread(config), config);
  });

  it('--write-config-to output loads back through --config to the same configuration', () => {
    const flags = [
      '--proxy-mode=nftables',
      '--cluster-cidr=10.244.0.0/16',
      '-v=3',
      '--hostname-override=Node-A',
    ];
    const first = parseCommandLine([...flags, '--write-config-to=/out.yaml'], filesIO({}));
    assert.equal(first.kind, 'run');
    const second = parseCommandLine(
      ['--config=/out.yaml'],
      filesIO({ '/out.yaml': renderConfigYAML(first.options.config) }),
    );
    assert.equal(second.kind, 'run');
    assert.deepEqual(second.options.config, first.options.config);
  });

  it('parse(render(x)) equals x for generated configurations', () => {
    const tricky = fc.constantFrom(
      '',
      'yes',
      'on',
      'No',
      'null',
      '~',
      '10:20',
      '0',
      '010',
      '0x1F',
      '1e3',
      '.inf',
      'true',
      'a: b',
      '- x',
      '#c',
      ' lead',
      'trail ',
      'multi\nline',
      '"q"',
      "'",
      'ümlaut',
      '2001-12-14',
      '*a',
      '&a',
      '!tag',
      '{}',
      '[]',
      '%x',
      '@x',
      '`x',
      '<<',
    );
    const text = fc.oneof(tricky, fc.string({ maxLength: 12 }));
    const duration = fc.bigInt({ min: -(10n ** 14n), max: 10n ** 14n }).map(formatGoDurationNs);
    const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    const bool = fc.boolean();
    const list = fc.array(text, { maxLength: 3 });
    const opt = { requiredKeys: [] as never[] };
    const raw: fc.Arbitrary<RawKubeProxyConfiguration> = fc.record(
      {
        featureGates: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), bool, { maxKeys: 3 }),
        clientConnection: fc.record(
          {
            kubeconfig: text,
            acceptContentTypes: text,
            contentType: text,
            qps: fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
            burst: int32,
          },
          opt,
        ),
        logging: fc.record(
          {
            format: text,
            flushFrequency: duration,
            verbosity: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
            vmodule: fc.array(fc.record({ filePattern: text, verbosity: fc.nat() }), { maxLength: 2 }),
            options: fc.record(
              {
                text: fc.record(
                  { splitStream: bool, infoBufferSize: fc.constantFrom('0', '1Ki', '2M') },
                  opt,
                ),
                json: fc.record({ splitStream: bool, infoBufferSize: fc.constantFrom('0', '64Ki') }, opt),
              },
              opt,
            ),
          },
          opt,
        ),
        hostnameOverride: text,
        bindAddress: fc.constantFrom('0.0.0.0', '::', '10.1.2.3', 'fd00::1', 'junk'),
        healthzBindAddress: fc.constantFrom('', '1.2.3.4', '[::1]:99', 'junk', '0.0.0.0:10256'),
        metricsBindAddress: fc.constantFrom('', '127.0.0.1', 'fd00::5', '1.2.3.4:1'),
        bindAddressHardFail: bool,
        enableProfiling: bool,
        showHiddenMetricsForVersion: text,
        mode: fc.constantFrom('', 'iptables', 'nftables', 'ipvs', 'bogus'),
        iptables: fc.record(
          {
            masqueradeBit: int32,
            masqueradeAll: bool,
            localhostNodePorts: bool,
            syncPeriod: duration,
            minSyncPeriod: duration,
          },
          opt,
        ),
        ipvs: fc.record(
          {
            syncPeriod: duration,
            minSyncPeriod: duration,
            scheduler: text,
            excludeCIDRs: list,
            strictARP: bool,
            tcpTimeout: duration,
            tcpFinTimeout: duration,
            udpTimeout: duration,
          },
          opt,
        ),
        nftables: fc.record(
          { masqueradeBit: int32, masqueradeAll: bool, syncPeriod: duration, minSyncPeriod: duration },
          opt,
        ),
        winkernel: fc.record(
          {
            networkName: text,
            sourceVip: text,
            enableDSR: bool,
            rootHnsEndpointName: text,
            forwardHealthCheckVip: bool,
          },
          opt,
        ),
        detectLocalMode: text,
        detectLocal: fc.record({ bridgeInterface: text, interfaceNamePrefix: text }, opt),
        clusterCIDR: text,
        nodePortAddresses: list,
        oomScoreAdj: int32,
        conntrack: fc.record(
          {
            maxPerCore: int32,
            min: int32,
            tcpEstablishedTimeout: duration,
            tcpCloseWaitTimeout: duration,
            tcpBeLiberal: bool,
            udpTimeout: duration,
            udpStreamTimeout: duration,
          },
          opt,
        ),
        configSyncPeriod: duration,
        portRange: text,
        windowsRunAsService: bool,
      },
      opt,
    );
    fc.assert(
      fc.property(raw, (r) => {
        const config = configFrom(r);
        assert.deepEqual(reread(config), config);
      }),
      { numRuns: 150 },
    );
  });
});
