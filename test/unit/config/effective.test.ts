import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveEffective } from '../../../src/config/effective.ts';
import { configFrom } from './helpers.ts';

describe('resolveEffective', () => {
  it('turns the defaults into typed values', () => {
    const e = resolveEffective(configFrom());
    assert.equal(e.mode, 'iptables');
    assert.equal(e.syncPeriodMs, 30_000);
    assert.equal(e.minSyncPeriodMs, 1000);
    assert.equal(e.configSyncPeriodMs, 900_000);
    assert.equal(e.masqueradeBit, 14);
    assert.equal(e.masqueradeAll, false);
    assert.deepEqual(e.healthz, { host: '0.0.0.0', port: 10256 });
    assert.deepEqual(e.metrics, { host: '127.0.0.1', port: 10249 });
    assert.deepEqual(e.nodePortAddresses, { kind: 'all' });
    assert.deepEqual(e.detectLocal, { mode: 'ClusterCIDR', clusterCIDRs: [] });
    assert.deepEqual(e.conntrack, {
      maxPerCore: 32768,
      min: 131072,
      tcpEstablishedTimeoutSeconds: 86400,
      tcpCloseWaitTimeoutSeconds: 3600,
      tcpBeLiberal: false,
      udpTimeoutSeconds: 0,
      udpStreamTimeoutSeconds: 0,
    });
    assert.equal(e.localhostNodePorts, true);
    assert.equal(e.verbosity, 0);
    assert.equal(e.loggingFormat, 'text');
    assert.equal(e.qps, 5);
    assert.equal(e.burst, 10);
    assert.equal(e.oomScoreAdj, -999);
    assert.equal(e.master, '');
  });

  it('takes sync periods and masquerade settings from the active mode', () => {
    const raw = {
      iptables: { syncPeriod: '11s', minSyncPeriod: '1s', masqueradeAll: false, masqueradeBit: 10 },
      nftables: { syncPeriod: '22s', minSyncPeriod: '2s', masqueradeAll: true, masqueradeBit: 20 },
      ipvs: { syncPeriod: '33s', minSyncPeriod: '3s' },
    };
    const ipt = resolveEffective(configFrom({ ...raw, mode: 'iptables' }));
    assert.deepEqual(
      [ipt.syncPeriodMs, ipt.minSyncPeriodMs, ipt.masqueradeAll, ipt.masqueradeBit],
      [11_000, 1000, false, 10],
    );
    const nft = resolveEffective(configFrom({ ...raw, mode: 'nftables' }));
    assert.deepEqual(
      [nft.syncPeriodMs, nft.minSyncPeriodMs, nft.masqueradeAll, nft.masqueradeBit],
      [22_000, 2000, true, 20],
    );
    const ipvs = resolveEffective(configFrom({ ...raw, mode: 'ipvs' }));
    assert.deepEqual(
      [ipvs.syncPeriodMs, ipvs.minSyncPeriodMs, ipvs.masqueradeAll, ipvs.masqueradeBit],
      [33_000, 3000, false, 10],
    );
    // Upstream's userspace mode ran on the iptables sync settings; ours keeps that.
    const userspace = resolveEffective(configFrom({ ...raw, mode: 'userspace' }));
    assert.equal(userspace.mode, 'userspace');
    assert.deepEqual(
      [userspace.syncPeriodMs, userspace.minSyncPeriodMs, userspace.masqueradeAll, userspace.masqueradeBit],
      [11_000, 1000, false, 10],
    );
  });

  it('canonicalizes CIDRs and classifies nodePortAddresses', () => {
    const e = resolveEffective(
      configFrom({ clusterCIDR: '10.244.1.0/16,FD00:10:244::1/56', nodePortAddresses: ['192.168.1.7/24'] }),
    );
    assert.deepEqual(e.clusterCIDRs, ['10.244.0.0/16', 'fd00:10:244::/56']);
    assert.deepEqual(e.detectLocal, {
      mode: 'ClusterCIDR',
      clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'],
    });
    assert.deepEqual(e.nodePortAddresses, { kind: 'cidrs', cidrs: ['192.168.1.0/24'] });
    assert.deepEqual(resolveEffective(configFrom({ mode: 'nftables' })).nodePortAddresses, {
      kind: 'primary',
    });
  });

  it('describes the other local-detection modes', () => {
    assert.deepEqual(resolveEffective(configFrom({ detectLocalMode: 'NodeCIDR' })).detectLocal, {
      mode: 'NodeCIDR',
    });
    assert.deepEqual(
      resolveEffective(
        configFrom({ detectLocalMode: 'BridgeInterface', detectLocal: { bridgeInterface: 'cni0' } }),
      ).detectLocal,
      { mode: 'BridgeInterface', bridgeInterface: 'cni0' },
    );
    assert.deepEqual(
      resolveEffective(
        configFrom({ detectLocalMode: 'InterfaceNamePrefix', detectLocal: { interfaceNamePrefix: 'veth' } }),
      ).detectLocal,
      { mode: 'InterfaceNamePrefix', interfaceNamePrefix: 'veth' },
    );
  });

  it('splits IPv6 server addresses and reports disabled servers as undefined', () => {
    const e = resolveEffective({ ...configFrom({ bindAddress: '::' }), metricsBindAddress: '' });
    assert.deepEqual(e.healthz, { host: '::', port: 10256 });
    assert.equal(e.metrics, undefined);
  });

  it('gives conntrack timeouts in whole seconds and the hostname lower-cased', () => {
    const e = resolveEffective(
      configFrom({
        conntrack: { udpTimeout: '30s', udpStreamTimeout: '2m30.9s' },
        hostnameOverride: ' Node-1 ',
      }),
    );
    assert.equal(e.conntrack.udpTimeoutSeconds, 30);
    assert.equal(e.conntrack.udpStreamTimeoutSeconds, 150);
    assert.equal(e.hostnameOverride, 'node-1');
  });

  it('refuses a configuration that never passed validation', () => {
    assert.throws(
      () => resolveEffective(configFrom({ mode: 'kernelspace' })),
      /mode: unsupported proxy mode "kernelspace"/,
    );
  });
});
