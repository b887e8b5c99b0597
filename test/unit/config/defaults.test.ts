import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  appendPortIfNeeded,
  applyDefaults,
  applyPlatformDefaults,
  defaultConfiguration,
} from '../../../src/config/defaults.ts';
import { configFrom } from './helpers.ts';

describe('applyDefaults', () => {
  it('fills every field with the upstream default (spec 8.1)', () => {
    assert.deepEqual(defaultConfiguration(), {
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      featureGates: {},
      clientConnection: {
        kubeconfig: '',
        acceptContentTypes: '',
        contentType: 'application/vnd.kubernetes.protobuf',
        qps: 5,
        burst: 10,
      },
      logging: {
        format: 'text',
        flushFrequency: '5s',
        verbosity: 0,
        vmodule: [],
        options: {
          text: { splitStream: false, infoBufferSize: '0' },
          json: { splitStream: false, infoBufferSize: '0' },
        },
      },
      hostnameOverride: '',
      bindAddress: '0.0.0.0',
      healthzBindAddress: '0.0.0.0:10256',
      metricsBindAddress: '127.0.0.1:10249',
      bindAddressHardFail: false,
      enableProfiling: false,
      showHiddenMetricsForVersion: '',
      mode: '',
      iptables: {
        masqueradeBit: 14,
        masqueradeAll: false,
        localhostNodePorts: true,
        syncPeriod: '30s',
        minSyncPeriod: '1s',
      },
      ipvs: {
        syncPeriod: '30s',
        minSyncPeriod: '0s',
        scheduler: '',
        excludeCIDRs: [],
        strictARP: false,
        tcpTimeout: '0s',
        tcpFinTimeout: '0s',
        udpTimeout: '0s',
      },
      nftables: { masqueradeBit: 14, masqueradeAll: false, syncPeriod: '30s', minSyncPeriod: '1s' },
      winkernel: {
        networkName: '',
        sourceVip: '',
        enableDSR: false,
        rootHnsEndpointName: '',
        forwardHealthCheckVip: false,
      },
      detectLocalMode: '',
      detectLocal: { bridgeInterface: '', interfaceNamePrefix: '' },
      clusterCIDR: '',
      nodePortAddresses: [],
      oomScoreAdj: -999,
      conntrack: {
        maxPerCore: 32768,
        min: 131072,
        tcpEstablishedTimeout: '24h0m0s',
        tcpCloseWaitTimeout: '1h0m0s',
        tcpBeLiberal: false,
        udpTimeout: '0s',
        udpStreamTimeout: '0s',
      },
      configSyncPeriod: '15m0s',
      portRange: '',
      udpIdleTimeout: '250ms',
      windowsRunAsService: false,
    });
  });

  it('treats zero in plain (non-pointer) fields as unset, like upstream', () => {
    const c = applyDefaults({
      iptables: { syncPeriod: '0s', minSyncPeriod: '0s' },
      nftables: { syncPeriod: '0s', minSyncPeriod: '0s' },
      ipvs: { syncPeriod: '0s' },
      configSyncPeriod: '0s',
      clientConnection: { qps: 0, burst: 0 },
    });
    assert.equal(c.iptables.syncPeriod, '30s');
    assert.equal(c.iptables.minSyncPeriod, '1s');
    assert.equal(c.nftables.minSyncPeriod, '1s');
    assert.equal(c.ipvs.syncPeriod, '30s');
    assert.equal(c.configSyncPeriod, '15m0s');
    assert.equal(c.clientConnection.qps, 5);
    assert.equal(c.clientConnection.burst, 10);
  });

  it('keeps an explicit zero in pointer fields (masqueradeBit, conntrack, oomScoreAdj)', () => {
    const c = applyDefaults({
      iptables: { masqueradeBit: 0, localhostNodePorts: false },
      nftables: { masqueradeBit: 0 },
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      oomScoreAdj: 0,
    });
    assert.equal(c.iptables.masqueradeBit, 0);
    assert.equal(c.iptables.localhostNodePorts, false);
    assert.equal(c.nftables.masqueradeBit, 0);
    assert.deepEqual(
      [
        c.conntrack.maxPerCore,
        c.conntrack.min,
        c.conntrack.tcpEstablishedTimeout,
        c.conntrack.tcpCloseWaitTimeout,
      ],
      [0, 0, '0s', '0s'],
    );
    assert.equal(c.oomScoreAdj, 0);
  });

  it('treats null like an absent field', () => {
    assert.deepEqual(
      applyDefaults({ iptables: null, mode: null, oomScoreAdj: null }),
      defaultConfiguration(),
    );
  });

  it('writes durations in canonical Go form', () => {
    const c = applyDefaults({ configSyncPeriod: '60s', iptables: { syncPeriod: '1h' } });
    assert.equal(c.configSyncPeriod, '1m0s');
    assert.equal(c.iptables.syncPeriod, '1h0m0s');
  });

  it('appends the default port to bind addresses without one', () => {
    const c = applyDefaults({ healthzBindAddress: '10.0.0.1', metricsBindAddress: 'fd00::1' });
    assert.equal(c.healthzBindAddress, '10.0.0.1:10256');
    assert.equal(c.metricsBindAddress, '[fd00::1]:10249');
    assert.equal(applyDefaults({ healthzBindAddress: '10.0.0.1:8080' }).healthzBindAddress, '10.0.0.1:8080');
  });

  it('uses the IPv6 server defaults only when bindAddress is IPv6', () => {
    const v6 = applyDefaults({ bindAddress: 'fd00::10' });
    assert.equal(v6.healthzBindAddress, '[::]:10256');
    assert.equal(v6.metricsBindAddress, '[::1]:10249');
    const v4 = applyDefaults({ bindAddress: '10.0.0.10' });
    assert.equal(v4.healthzBindAddress, '0.0.0.0:10256');
    assert.equal(v4.metricsBindAddress, '127.0.0.1:10249');
  });

  it('takes logging.flushFrequency as a duration string or a number of nanoseconds', () => {
    assert.equal(applyDefaults({ logging: { flushFrequency: 2_000_000_000 } }).logging.flushFrequency, '2s');
    assert.equal(applyDefaults({ logging: { flushFrequency: 0 } }).logging.flushFrequency, '5s');
    assert.equal(applyDefaults({ logging: { flushFrequency: '10s' } }).logging.flushFrequency, '10s');
  });

  it('appendPortIfNeeded leaves host:port and junk alone', () => {
    assert.equal(appendPortIfNeeded('1.2.3.4', 80), '1.2.3.4:80');
    assert.equal(appendPortIfNeeded('::', 80), '[::]:80');
    assert.equal(appendPortIfNeeded('[::]:81', 80), '[::]:81');
    assert.equal(appendPortIfNeeded('junk', 80), 'junk');
  });
});

describe('applyPlatformDefaults', () => {
  it('defaults mode to iptables and detectLocalMode to ClusterCIDR', () => {
    const c = applyPlatformDefaults(defaultConfiguration());
    assert.equal(c.mode, 'iptables');
    assert.equal(c.detectLocalMode, 'ClusterCIDR');
  });

  it('defaults nodePortAddresses to ["primary"] in nftables mode only', () => {
    assert.deepEqual(configFrom({ mode: 'nftables' }).nodePortAddresses, ['primary']);
    assert.deepEqual(configFrom({ mode: 'iptables' }).nodePortAddresses, []);
    assert.deepEqual(configFrom({ mode: 'ipvs' }).nodePortAddresses, []);
    assert.deepEqual(configFrom({}).nodePortAddresses, []);
    assert.deepEqual(configFrom({ mode: 'nftables', nodePortAddresses: ['10.0.0.0/8'] }).nodePortAddresses, [
      '10.0.0.0/8',
    ]);
  });

  it('keeps explicit choices', () => {
    const c = configFrom({ mode: 'ipvs', detectLocalMode: 'NodeCIDR' });
    assert.equal(c.mode, 'ipvs');
    assert.equal(c.detectLocalMode, 'NodeCIDR');
  });
});
