import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROXY_MODES } from '../../../src/config/types.ts';
import { MODES, otherModes } from '../../../src/dataplane/modes.ts';
import { countedBackend as countedIptables } from '../../../src/dataplane/iptables/mode.ts';
import { registerIptablesMetrics } from '../../../src/dataplane/iptables/metrics.ts';
import type { IptablesProxier } from '../../../src/dataplane/iptables/proxier.ts';
import type { RenderCounts } from '../../../src/dataplane/iptables/render.ts';
import { countedBackend as countedNftables } from '../../../src/dataplane/nftables/mode.ts';
import { registerNftablesMetrics } from '../../../src/dataplane/nftables/metrics.ts';
import type { DataplaneSettings } from '../../../src/dataplane/common/settings.ts';
import type { ToolRunner } from '../../../src/dataplane/common/mode.ts';
import { ExecError } from '../../../src/util/exec.ts';
import { createProxyMetrics } from '../../../src/metrics/proxy.ts';
import { createRegistry } from '../../../src/metrics/registry.ts';
import type { Backend, SyncRequest } from '../../../src/sync/backend.ts';
import type { ProxySnapshot } from '../../../src/model/types.ts';

const settings: DataplaneSettings = {
  masqueradeBit: 14,
  masqueradeAll: false,
  detectLocalMode: 'ClusterCIDR',
  clusterCIDRs: [],
  bridgeInterface: '',
  interfaceNamePrefix: '',
  nodePortAddresses: { kind: 'all' },
  localhostNodePorts: true,
  syncPeriodMs: 30_000,
};

const snapshot = {} as ProxySnapshot;
const request = (full: boolean): SyncRequest => ({ snapshot, full });

test('every mode the configuration accepts is registered, under its own name', () => {
  for (const mode of PROXY_MODES) assert.equal(MODES[mode].name, mode);
  assert.deepEqual(
    otherModes('iptables').map((mode) => mode.name),
    Object.keys(MODES).filter((name) => name !== 'iptables'),
  );
});

test('every mode runs: none is refused by the CLI', () => {
  for (const mode of Object.values(MODES)) assert.equal(mode.unavailable, undefined, mode.name);
});

test('the ipvs cleaner on a host without IPVS tools, sets or link has nothing to do and does not fail', async () => {
  const calls: string[] = [];
  const run: ToolRunner = (file, args) => {
    calls.push([file, ...args].join(' '));
    if (file.includes('iptables') && args.length === 0)
      return Promise.resolve({ stdout: '', stderr: '', code: 0 });
    return Promise.reject(new ExecError(`${file} ${args.join(' ')}`, null, '', '', `spawn ${file} ENOENT`));
  };
  await MODES.ipvs.cleaner(run).cleanup();
  // No sets and no kube-ipvs0: the IPVS mode never ran, and the chains it shares with the
  // iptables mode are not its to remove (an iptables-mode restart keeps them).
  assert.deepEqual(calls, ['ipset save', 'ip -j addr show dev kube-ipvs0', 'ip link show kube-ipvs0']);
});

test('each mode registers only its own metrics, next to the core ones', async () => {
  const iptables = createProxyMetrics({ defaultMetrics: false });
  MODES.iptables.setUp({ registry: iptables.registry, settings });
  const nftables = createProxyMetrics({ defaultMetrics: false });
  MODES.nftables.setUp({ registry: nftables.registry, settings });
  const ipt = await iptables.registry.metrics();
  const nft = await nftables.registry.metrics();
  for (const text of [ipt, nft])
    assert.match(text, /# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram/);
  assert.match(ipt, /# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter/);
  const ipvs = createProxyMetrics({ defaultMetrics: false });
  MODES.ipvs.setUp({ registry: ipvs.registry, settings });
  // Upstream counts failed iptables-restore runs of the IPVS mode under the iptables name.
  assert.match(
    await ipvs.registry.metrics(),
    /# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter/,
  );
  assert.match(ipt, /# TYPE kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total counter/);
  assert.match(ipt, /# TYPE kubeproxy_sync_proxy_rules_iptables_total gauge/);
  assert.match(ipt, /# TYPE kubeproxy_sync_proxy_rules_iptables_last gauge/);
  assert.doesNotMatch(ipt, /nftables/);
  assert.match(nft, /# TYPE kubeproxy_sync_proxy_rules_nftables_sync_failures_total counter/);
  assert.match(nft, /# TYPE kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total counter/);
  assert.doesNotMatch(nft, /iptables/);
});

function fakeIptables(outcomes: ('ok' | 'fail')[]): IptablesProxier {
  const counts = {
    filterRules: 7,
    natRulesTotal: 40,
    natRulesWritten: 12,
  } as RenderCounts;
  return {
    family: 'IPv4',
    mode: 'iptables',
    init: () => Promise.reject(new Error('unused')),
    info: () => undefined,
    rulesIntact: () => Promise.resolve(true),
    sync: (req) =>
      outcomes.shift() === 'fail'
        ? Promise.reject(new Error('iptables-restore failed'))
        : Promise.resolve({ full: req.full, renderSeconds: 0, applySeconds: 0, counts }),
  };
}

test('the iptables backend counts its failures (partial ones apart) and sets its rule gauges from the counts', async () => {
  const registry = createRegistry({ defaultMetrics: false });
  const metrics = registerIptablesMetrics(registry);
  const backend: Backend = countedIptables(fakeIptables(['fail', 'ok', 'fail']), metrics);
  assert.equal(backend.postSyncHooks?.conntrackCleanup, true);
  assert.equal(await backend.rulesIntact?.(), true);
  // The first sync is full whatever was asked: its failure is not a partial one.
  await assert.rejects(backend.sync(request(false)));
  await backend.sync(request(false));
  await assert.rejects(backend.sync(request(false)));
  const text = await registry.metrics();
  assert.match(text, /kubeproxy_sync_proxy_rules_iptables_restore_failures_total\{ip_family="IPv4"\} 2/);
  assert.match(
    text,
    /kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total\{ip_family="IPv4"\} 1/,
  );
  assert.match(text, /kubeproxy_sync_proxy_rules_iptables_total\{table="filter",ip_family="IPv4"\} 7/);
  assert.match(text, /kubeproxy_sync_proxy_rules_iptables_total\{table="nat",ip_family="IPv4"\} 40/);
  assert.match(text, /kubeproxy_sync_proxy_rules_iptables_last\{table="filter",ip_family="IPv4"\} 7/);
  assert.match(text, /kubeproxy_sync_proxy_rules_iptables_last\{table="nat",ip_family="IPv4"\} 12/);
});

test('the nftables backend counts its failures', async () => {
  const registry = createRegistry({ defaultMetrics: false });
  const metrics = registerNftablesMetrics(registry);
  let fail = true;
  const backend = countedNftables(
    {
      family: 'IPv6',
      mode: 'nftables',
      sync: (req) =>
        fail
          ? Promise.reject(new Error('nft -f - failed'))
          : Promise.resolve({ full: req.full, renderSeconds: 0, applySeconds: 0 }),
    },
    metrics,
  );
  assert.equal(backend.postSyncHooks?.conntrackCleanup, true);
  await assert.rejects(backend.sync(request(true)), /nft -f - failed/);
  fail = false;
  await backend.sync(request(false));
  const text = await registry.metrics();
  assert.match(text, /kubeproxy_sync_proxy_rules_nftables_sync_failures_total\{ip_family="IPv6"\} 1/);
});
