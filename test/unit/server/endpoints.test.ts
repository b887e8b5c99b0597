// Both servers answer what upstream v1.36's answer (issue 14, items 2, 4 and 5).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configzOf } from '../../../src/config/configz.ts';
import { gateStates } from '../../../src/config/featuregates.ts';
import { registerComponentMetrics, SliMetrics } from '../../../src/metrics/component.ts';
import { createProxyMetrics } from '../../../src/metrics/proxy.ts';
import { ProxyHealth } from '../../../src/server/health.ts';
import { healthzHandler, metricsHandler, serveHttp, type Handler } from '../../../src/server/http.ts';
import { zpagesRoutes } from '../../../src/server/zpages.ts';
import { buildInfo } from '../../../src/util/version.ts';
import { configFrom } from '../config/helpers.ts';

async function withServer(
  host: string,
  handler: Handler,
  body: (port: number) => Promise<void>,
): Promise<void> {
  const server = serveHttp({ name: 'test', host, port: 0, handler });
  try {
    await body(await server.listening);
  } finally {
    await server.close();
  }
}

function metricsServer(profiling: boolean, mode = 'iptables', zpagesOn = true) {
  const metrics = createProxyMetrics({ defaultMetrics: false, mode });
  registerComponentMetrics(metrics.registry, { build: buildInfo(), gates: gateStates({}) });
  return metricsHandler({
    metrics,
    mode,
    configz: () => configzOf(configFrom({ mode: 'nftables', clusterCIDR: '10.244.0.0/16' })),
    slis: new SliMetrics(),
    zpages: zpagesRoutes({
      component: 'kube-proxy',
      flags: () => ({ 'proxy-mode': 'nftables', v: '2' }),
      startTime: new Date(Date.now() - 61_000),
      version: 'v1.36.0+kube-proxy-ts.0.1.0',
      paths: ['/metrics', '/healthz'],
      flagz: zpagesOn,
      statusz: zpagesOn,
    }),
    profiling,
  });
}

describe('healthz server on the default 0.0.0.0 (Go wildcard)', () => {
  it('answers IPv4 and IPv6 clients', async () => {
    const health = new ProxyHealth({ syncPeriodMs: 1000 });
    health.updated('IPv4');
    await withServer('0.0.0.0', healthzHandler(health), async (port) => {
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      assert.equal((await fetch(`http://[::1]:${port}/healthz`)).status, 200);
      assert.equal((await fetch(`http://[::1]:${port}/livez`)).status, 200);
      const other = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(other.status, 404);
      assert.equal(await other.text(), '404 page not found\n');
    });
  });
});

describe('metrics server paths', () => {
  it('serves /metrics with component metrics, [ALPHA] HELP and the le="0" bucket', async () => {
    await withServer('127.0.0.1', metricsServer(false), async (port) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(
        text,
        /# HELP kubeproxy_sync_proxy_rules_duration_seconds \[ALPHA\] SyncProxyRules latency in seconds\n/,
      );
      assert.match(text, /# HELP kubeproxy_network_programming_duration_seconds \[ALPHA\] /);
      assert.match(text, /# HELP kubeproxy_sync_proxy_rules_endpoint_changes_pending \[ALPHA\] /);
      assert.match(text, /\nkubeproxy_sync_proxy_rules_endpoint_changes_pending 0\n/, 'no ip_family label');
      assert.match(
        text,
        /kubernetes_build_info\{[^}]*git_version="v1\.36\.\d+\+kube-proxy-ts\.[^"]+"[^}]*\} 1/,
      );
      assert.match(text, /# HELP kubernetes_feature_enabled \[BETA\] /);
      assert.match(text, /kubernetes_feature_enabled\{name="LoggingAlphaOptions",stage="ALPHA"\} 0/);
      assert.match(text, /registered_metrics_total\{stability_level="ALPHA",deprecated_version=""\} \d+/);
      assert.match(text, /registered_metrics_total\{stability_level="BETA",deprecated_version=""\} \d+/);
    });
  });

  it('has le="0" in network_programming_duration_seconds once observed', async () => {
    const metrics = createProxyMetrics({ defaultMetrics: false });
    metrics.networkProgrammingDuration.observe({ ip_family: 'IPv4' }, 0.3);
    const text = await metrics.registry.metrics();
    assert.match(text, /kubeproxy_network_programming_duration_seconds_bucket\{le="0",ip_family="IPv4"\} 0/);
  });

  it('registers the full/partial histograms only in iptables and nftables mode', async () => {
    for (const [mode, present] of [
      ['iptables', true],
      ['nftables', true],
      ['ipvs', false],
      ['userspace', false],
    ] as const) {
      const text = await createProxyMetrics({ defaultMetrics: false, mode }).registry.metrics();
      assert.equal(text.includes('kubeproxy_sync_full_proxy_rules_duration_seconds'), present, mode);
      assert.equal(text.includes('kubeproxy_sync_partial_proxy_rules_duration_seconds'), present, mode);
    }
  });

  it('serves /healthz, /healthz/ping, ?verbose and records them in /metrics/slis', async () => {
    await withServer('127.0.0.1', metricsServer(false), async (port) => {
      const base = `http://127.0.0.1:${port}`;
      assert.equal(await (await fetch(`${base}/healthz`)).text(), 'ok');
      assert.equal(await (await fetch(`${base}/healthz/ping`)).text(), 'ok');
      assert.equal(
        await (await fetch(`${base}/healthz?verbose`)).text(),
        '[+]ping ok\nhealthz check passed\n',
      );
      const slis = await (await fetch(`${base}/metrics/slis`)).text();
      assert.match(slis, /kubernetes_healthcheck\{name="ping",type="healthz"\} 1/);
      assert.match(slis, /kubernetes_healthchecks_total\{name="ping",type="healthz",status="success"\} 3/);
      assert.match(slis, /# HELP kubernetes_healthcheck \[STABLE\] /);
    });
  });

  it("serves /configz in the internal type's shape", async () => {
    await withServer('127.0.0.1', metricsServer(false), async (port) => {
      const body = (await (await fetch(`http://127.0.0.1:${port}/configz`)).json()) as Record<
        string,
        Record<string, unknown>
      >;
      const config = body['kubeproxy.config.k8s.io'];
      assert.ok(config);
      assert.deepEqual(Object.keys(config).slice(0, 4), [
        'Linux',
        'Windows',
        'FeatureGates',
        'ClientConnection',
      ]);
      assert.equal(config['Mode'], 'nftables');
      assert.equal(config['SyncPeriod'], '30s');
      assert.deepEqual(config['DetectLocal'], {
        BridgeInterface: '',
        ClusterCIDRs: ['10.244.0.0/16'],
        InterfaceNamePrefix: '',
      });
      assert.deepEqual(config['NodePortAddresses'], ['primary']);
      assert.equal('portRange' in config || 'iptables' in config, false);
    });
  });

  it('serves /flagz (text and structured) and /statusz', async () => {
    await withServer('127.0.0.1', metricsServer(false), async (port) => {
      const base = `http://127.0.0.1:${port}`;
      const flagz = await fetch(`${base}/flagz`);
      assert.equal(flagz.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.match(await flagz.text(), /^\nkube-proxy flags\nWarning: .*\n\nproxy-mode=nftables\nv=2\n$/);
      const structured = await fetch(`${base}/flagz`, {
        headers: { Accept: 'application/json;v=v1alpha1;g=config.k8s.io;as=Flagz' },
      });
      assert.deepEqual(((await structured.json()) as { flags: unknown }).flags, {
        'proxy-mode': 'nftables',
        v: '2',
      });
      const statusz = await (await fetch(`${base}/statusz`)).text();
      assert.match(statusz, /Up: 0hr 1min 1sec/);
      assert.match(statusz, /Binary version: v1\.36\.0\+kube-proxy-ts/);
    });
  });

  it('serves no /flagz or /statusz with ComponentFlagz and ComponentStatusz off', async () => {
    await withServer('127.0.0.1', metricsServer(false, 'iptables', false), async (port) => {
      assert.equal((await fetch(`http://127.0.0.1:${port}/flagz`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${port}/statusz`)).status, 404);
    });
  });

  it('serves no profiling paths unless enabled', async () => {
    await withServer('127.0.0.1', metricsServer(false), async (port) => {
      for (const path of ['/debug/pprof/', '/debug/pprof/profile', '/debug/pprof/heap', '/debug/flags/v']) {
        assert.equal((await fetch(`http://127.0.0.1:${port}${path}`)).status, 404, path);
      }
      assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
    });
  });

  it('with profiling: a CPU profile, a heap snapshot and /debug/flags/v', async () => {
    await withServer('127.0.0.1', metricsServer(true), async (port) => {
      const base = `http://127.0.0.1:${port}`;
      assert.match(await (await fetch(`${base}/debug/pprof/`)).text(), /\/debug\/pprof\/profile/);
      const profile = (await (await fetch(`${base}/debug/pprof/profile?seconds=1`)).json()) as {
        nodes: unknown[];
        startTime: number;
        endTime: number;
      };
      assert.ok(profile.nodes.length > 0);
      assert.ok(profile.endTime - profile.startTime >= 900_000, 'about one second, in microseconds');
      assert.equal((await fetch(`${base}/debug/pprof/profile?seconds=abc`)).status, 400);
      const heap = await fetch(`${base}/debug/pprof/heap`);
      assert.equal(heap.status, 200);
      const snapshot = (await heap.json()) as { snapshot: { node_count: number } };
      assert.ok(snapshot.snapshot.node_count > 0);
      assert.equal((await fetch(`${base}/debug/pprof/goroutine`)).status, 404);
      const put = await fetch(`${base}/debug/flags/v`, { method: 'PUT', body: '0' });
      assert.equal(put.status, 200);
      assert.equal(await put.text(), 'successfully set klog.logging.verbosity to 0');
      assert.equal((await fetch(`${base}/debug/flags/v`)).status, 405);
    });
  });
});
