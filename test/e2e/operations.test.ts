// Issue 5, what operators see of the real kube-proxy process in a namespace cluster: the metrics
// endpoint after real syncs, service health checks answered to an outside client while endpoints
// change, stale UDP conntrack entries cleaned up (DNS-like clients fail over within a sync), and
// logs (no secret at any verbosity, JSON format).
import { describe, test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, STANDARD_PODS } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil, type Netns } from '../support/netns.ts';
import { UdpClient } from '../support/udp-client-process.ts';
import { endpointSlice, service, type EndpointSpec } from '../support/objects.ts';

const METRICS = 'http://127.0.0.1:10249';

interface HttpAnswer {
  readonly status?: number;
  readonly body?: string;
  readonly contentType?: string | null;
  readonly nosniff?: string | null;
  readonly error?: string;
}

/** One HTTP GET from inside a namespace; connection errors come back as `error` (the errno code). */
async function httpFrom(ns: Netns, url: string): Promise<HttpAnswer> {
  const script =
    'try { const r = await fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }); ' +
    'console.log(JSON.stringify({ status: r.status, body: await r.text(), contentType: r.headers.get("content-type"), ' +
    'nosniff: r.headers.get("x-content-type-options") })); } ' +
    'catch (e) { console.log(JSON.stringify({ error: e.cause?.code ?? e.name })); }';
  const result = await ns.exec(process.execPath, ['--input-type=module', '-e', script, url]);
  return JSON.parse(result.stdout) as HttpAnswer;
}

/** The value of one sample in Prometheus text, or undefined when absent. */
function sample(
  text: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = new Map([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(match[3]);
  }
  return undefined;
}

function defineOperationsSuite(mode: 'iptables' | 'nftables'): void {
  const skip = kernelSkipReason();
  let cluster: Cluster | undefined;
  const c = () => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };
  const ep = (pod: string, extra: Partial<EndpointSpec> = {}): EndpointSpec => {
    const p = c().topology.pod(pod);
    return { ip: p.ipv4, node: p.node, pod, ...extra };
  };
  const metrics = async () => (await c().httpGet(`${METRICS}/metrics`)).body;
  const v4 = { ip_family: 'IPv4' };

  before(async () => {
    if (skip) return;
    cluster = await Cluster.start({
      mode,
      tag: mode === 'iptables' ? 'kpoi' : 'kpon',
      pods: STANDARD_PODS,
      tcpPorts: [8080],
      udpPorts: [5353],
    });
  });

  after(async () => {
    await cluster?.destroy();
    await cleanupNetns();
  });

  test(`${mode}: /metrics moves with real syncs`, { skip }, async (t: TestContext) => {
    const api = c().api;
    const before = await metrics();
    const count = (text: string) =>
      sample(text, 'kubeproxy_sync_proxy_rules_duration_seconds_count', v4) ?? 0;
    const last = (text: string) => sample(text, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', v4) ?? 0;
    const npCount = (text: string) =>
      sample(text, 'kubeproxy_network_programming_duration_seconds_count', v4) ?? 0;
    assert.ok(count(before) >= 1, 'the first sync was observed');
    assert.ok(Math.abs(last(before) - Date.now() / 1000) < 60, 'last_timestamp is a recent epoch time');

    const written = Date.now();
    await api.create(
      service({
        name: 'm-web',
        clusterIPs: ['10.96.5.1'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    await api.create(
      endpointSlice({
        service: 'm-web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [ep('a')],
        triggerTime: new Date(written - 200),
      }),
    );
    const after = await pollUntil('the network programming latency sample', async () => {
      const text = await metrics();
      return npCount(text) > npCount(before) ? text : undefined;
    });
    assert.ok(count(after) > count(before), 'sync duration histogram count went up');
    assert.ok(last(after) > last(before), 'last_timestamp moved');
    assert.ok(last(after) * 1000 >= written - 1000, 'last_timestamp is after the write');
    for (const name of [
      'kubeproxy_sync_proxy_rules_endpoint_changes_total',
      'kubeproxy_sync_proxy_rules_service_changes_total',
    ]) {
      assert.ok((sample(after, name) ?? 0) > (sample(before, name) ?? 0), `${name} moved`);
    }
    const partialOrFull = (text: string) =>
      (sample(text, 'kubeproxy_sync_partial_proxy_rules_duration_seconds_count', v4) ?? 0) +
      (sample(text, 'kubeproxy_sync_full_proxy_rules_duration_seconds_count', v4) ?? 0);
    assert.equal(partialOrFull(after) - partialOrFull(before), count(after) - count(before));
    const np = sample(after, 'kubeproxy_network_programming_duration_seconds_sum', v4) ?? 0;
    const npBefore = sample(before, 'kubeproxy_network_programming_duration_seconds_sum', v4) ?? 0;
    t.diagnostic(`network programming latency sample: ${(np - npBefore).toFixed(3)} s`);
    assert.ok(np - npBefore >= 0.2 && np - npBefore < 30, 'the sample is the time since the trigger');
    // The slice's buckets are upstream's: 0.25 s is the first one.
    assert.match(
      after,
      /kubeproxy_network_programming_duration_seconds_bucket\{le="0.25",ip_family="IPv4"\}/,
    );

    if (mode === 'nftables') {
      assert.match(after, /# TYPE kubeproxy_sync_proxy_rules_nftables_sync_failures_total counter/);
      assert.doesNotMatch(after, /kubeproxy_sync_proxy_rules_iptables_restore_failures_total/);
    }
    if (mode === 'iptables') {
      assert.match(after, /# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter/);
      assert.match(
        after,
        /# TYPE kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total counter/,
      );
      assert.ok((sample(after, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total', v4) ?? 0) === 0);
      assert.ok(
        (sample(after, 'kubeproxy_sync_proxy_rules_iptables_total', { table: 'nat', ...v4 }) ?? 0) > 0,
      );
    }
    assert.match(after, /^process_cpu_seconds_total /m, 'process metrics are exported');
  });

  test(
    `${mode}: no_local_endpoints counts eTP Local services without local endpoints`,
    { skip },
    async () => {
      const api = c().api;
      const gauge = async () =>
        sample(await metrics(), 'kubeproxy_sync_proxy_rules_no_local_endpoints_total', {
          traffic_policy: 'external',
          ...v4,
        }) ?? 0;
      const base = await gauge();
      const slice = (endpoints: EndpointSpec[]) =>
        endpointSlice({ service: 'm-local', ports: [{ name: 'http', port: 8080 }], endpoints });
      await api.create(
        service({
          name: 'm-local',
          type: 'NodePort',
          clusterIPs: ['10.96.5.2'],
          externalTrafficPolicy: 'Local',
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30502 }],
        }),
      );
      await api.create(slice([ep('c')]));
      await pollUntil('no_local_endpoints to count the service', async () =>
        (await gauge()) === base + 1 ? true : undefined,
      );
      await api.update(slice([ep('a'), ep('c')]));
      await pollUntil('no_local_endpoints to drop again', async () =>
        (await gauge()) === base ? true : undefined,
      );
      await api.delete('Service', 'default', 'm-local');
    },
  );

  test(`${mode}: /configz, /proxyMode and /healthz of the metrics server`, { skip }, async () => {
    const configz = await c().httpGet(`${METRICS}/configz`);
    assert.equal(configz.status, 200);
    assert.equal(configz.contentType, 'application/json');
    const body = JSON.parse(configz.body) as Record<string, Record<string, unknown>>;
    const config = body['kubeproxy.config.k8s.io'];
    assert.ok(config, configz.body);
    assert.equal(config['mode'], mode);
    assert.equal(config['metricsBindAddress'], '127.0.0.1:10249');
    assert.equal(config['hostnameOverride'], 'node1');
    const proxyMode = await c().httpGet(`${METRICS}/proxyMode`);
    assert.equal(proxyMode.body, mode);
    assert.equal(proxyMode.contentType, 'text/plain; charset=utf-8');
    assert.equal((await c().httpGet(`${METRICS}/healthz`)).body, 'ok');
  });

  test(
    `${mode}: service health check answers a load balancer while endpoints change`,
    { skip },
    async (t) => {
      const api = c().api;
      const topo = c().topology;
      const url = `http://${topo.node1.ipv4}:32100/healthz`;
      const expected = (count: number) =>
        `{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "hc-local"\n\t},\n\t"localEndpoints": ${String(count)},\n\t"serviceProxyHealthy": true\n}`;
      const slice = (endpoints: EndpointSpec[]) =>
        endpointSlice({ service: 'hc-local', ports: [{ name: 'http', port: 8080 }], endpoints });
      const until = async (what: string, check: (answer: HttpAnswer) => boolean) => {
        const started = Date.now();
        const answer = await pollUntil(what, async () => {
          const a = await httpFrom(topo.external.ns, url);
          return check(a) ? a : undefined;
        });
        t.diagnostic(`${what}: ${String(Date.now() - started)} ms`);
        return answer;
      };

      await api.create(
        service({
          name: 'hc-local',
          type: 'LoadBalancer',
          clusterIPs: ['10.96.6.1'],
          loadBalancerIPs: ['203.0.113.60'],
          externalTrafficPolicy: 'Local',
          healthCheckNodePort: 32100,
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30600 }],
        }),
      );
      await api.create(slice([ep('c')]));
      const none = await until('503 without local endpoints', (a) => a.status === 503);
      assert.equal(none.body, expected(0));
      assert.equal(none.contentType, 'application/json');
      assert.equal(none.nosniff, 'nosniff');

      await api.update(slice([ep('a'), ep('c')]));
      const one = await until('200 with a local endpoint', (a) => a.status === 200);
      assert.equal(one.body, expected(1));
      const loopback = await httpFrom(topo.node1.ns, 'http://127.0.0.1:32100/');
      if (mode === 'iptables')
        assert.equal(loopback.status, 200, 'nodePortAddresses match-all: every address');
      else assert.equal(loopback.error, 'ECONNREFUSED', 'nodePortAddresses primary: the node IP only');

      await api.update(slice([ep('a'), ep('b'), ep('c')]));
      const two = await until('the count follows', (a) => a.body === expected(2));
      assert.equal(two.status, 200);

      await api.update(slice([ep('a', { ready: false, serving: true, terminating: true }), ep('c')]));
      const terminating = await until('503 when the local endpoint terminates', (a) => a.status === 503);
      assert.equal(terminating.body, expected(0));

      await api.delete('Service', 'default', 'hc-local');
      await until('connection refused once the Service is gone', (a) => a.error === 'ECONNREFUSED');
    },
  );

  test(
    `${mode}: a health check port already in use gives a Warning event on the Service`,
    { skip },
    async () => {
      const api = c().api;
      // The healthz server holds 0.0.0.0:10256 in node1: neither an all-address listener (iptables
      // default) nor one on the node IP (nftables default `primary`) can bind that port.
      await api.create(
        service({
          name: 'hc-clash',
          type: 'LoadBalancer',
          clusterIPs: ['10.96.6.2'],
          externalTrafficPolicy: 'Local',
          healthCheckNodePort: 10256,
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30601 }],
        }),
      );
      const event = await pollUntil('a FailedToStartServiceHealthcheck event', async () =>
        (await api.list('Event', 'default')).find(
          (e) => (e as { reason?: string }).reason === 'FailedToStartServiceHealthcheck',
        ),
      );
      const e = event as { type?: string; note?: string; regarding?: { kind?: string; name?: string } };
      assert.equal(e.type, 'Warning');
      assert.deepEqual([e.regarding?.kind, e.regarding?.name], ['Service', 'hc-clash']);
      assert.match(e.note ?? '', /failed to start healthcheck "default\/hc-clash" on port 10256/);
      await c().waitForLog(/Failed to start service health check/);
      await api.delete('Service', 'default', 'hc-clash');
    },
  );

  const dnsService = (name: string, ip: string) =>
    service({
      name,
      clusterIPs: [ip],
      ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }],
    });
  const dnsSlice = (name: string, endpoints: EndpointSpec[]) =>
    endpointSlice({ service: name, ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }], endpoints });
  const conntrackDeleted = async () =>
    sample(await metrics(), 'kubeproxy_conntrack_reconciler_deleted_entries_total', v4) ?? 0;

  test(`${mode}: a DNS-like UDP client follows its endpoint within a sync`, { skip }, async (t) => {
    const api = c().api;
    const deletedBefore = await conntrackDeleted();
    await api.create(dnsService('u-dns', '10.96.7.53'));
    await api.create(dnsSlice('u-dns', [ep('a')]));
    const t0 = Date.now();
    const client = await UdpClient.start(c().topology.pod('client').ns, '10.96.7.53', 53);
    try {
      await client.firstFrom('a', 0, 10_000);
      t.diagnostic(`first answer ${String(Date.now() - t0)} ms`);
      // Pod a stays up and keeps answering: only the conntrack entry could still send traffic there.
      const switched = Date.now();
      await api.update(dnsSlice('u-dns', [ep('b')]));
      const arrived = await client.firstFrom('b', switched, 10_000);
      t.diagnostic(
        `UDP failover (API write to first answer from the new endpoint): ${String(arrived - switched)} ms`,
      );
      assert.ok(arrived - switched < 5000, 'well before any conntrack timeout');
      await pollUntil('a run of answers', () =>
        client.replies.filter((r) => r.t > arrived).length >= 10 ? true : undefined,
      );
      assert.deepEqual(
        [...new Set(client.replies.filter((r) => r.t > arrived).map((r) => r.name))],
        ['b'],
        'every later answer comes from the new endpoint',
      );
    } finally {
      await client.stop();
    }
    assert.ok(
      (await conntrackDeleted()) > deletedBefore,
      'kubeproxy_conntrack_reconciler_deleted_entries_total moved',
    );
    const text = await metrics();
    assert.ok((sample(text, 'kubeproxy_conntrack_reconciler_sync_duration_seconds_count', v4) ?? 0) >= 1);
    await api.delete('Service', 'default', 'u-dns');
  });

  test(`${mode}: a client that sent before the Service existed is not black-holed`, { skip }, async (t) => {
    const api = c().api;
    const node1 = c().topology.node1.ns;
    const client = await UdpClient.start(c().topology.pod('client').ns, '10.96.7.54', 53);
    try {
      // The kernel recorded the flow without DNAT: the reply would come from the service IP itself.
      await pollUntil('the never-DNATed conntrack entry', async () => {
        const listed = await node1.exec('conntrack', ['-L', '-p', 'udp', '-d', '10.96.7.54']);
        return /src=10\.96\.7\.54 dst=10\.244\.1\.\d+ sport=53/.test(listed.stdout) ? true : undefined;
      });
      const created = Date.now();
      await api.create(dnsService('u-late', '10.96.7.54'));
      await api.create(dnsSlice('u-late', [ep('a')]));
      const arrived = await client.firstFrom('a', created, 10_000);
      t.diagnostic(`black hole cleared (API write to first answer): ${String(arrived - created)} ms`);
    } finally {
      await client.stop();
    }
    await api.delete('Service', 'default', 'u-late');
  });

  test(
    `${mode}: a client rejected while the Service had no endpoints gets through once one appears`,
    { skip },
    async (t) => {
      const api = c().api;
      await api.create(dnsService('u-empty', '10.96.7.55'));
      await api.create(dnsSlice('u-empty', []));
      // Wait until the REJECT is in place (a fresh UDP probe is refused), so the client starts in that state.
      await pollUntil('the service without endpoints to be programmed', async () => {
        const [outcome] = await c().topology.probe(c().topology.pod('client').ns, {
          proto: 'udp',
          host: '10.96.7.55',
          port: 53,
          timeoutMs: 300,
        });
        return outcome?.ok === false ? true : undefined;
      });
      const client = await UdpClient.start(c().topology.pod('client').ns, '10.96.7.55', 53);
      try {
        const sent = client.sent;
        await pollUntil('a few datagrams into the REJECT', () =>
          client.sent >= sent + 5 ? true : undefined,
        );
        assert.deepEqual(client.replies, []);
        const added = Date.now();
        await api.update(dnsSlice('u-empty', [ep('b')]));
        const arrived = await client.firstFrom('b', added, 10_000);
        t.diagnostic(
          `first endpoint after REJECT (API write to first answer): ${String(arrived - added)} ms`,
        );
      } finally {
        await client.stop();
      }
      await api.delete('Service', 'default', 'u-empty');
    },
  );

  test(`${mode}: no secret in the logs at --v=10; --logging-format=json`, { skip }, async () => {
    const cl = c();
    const token = 'tok-4f1d2b9e8c7a6d5e';
    const fileToken = 'filetok-9a8b7c6d5e4f3a2b';
    const tokenFile = join(cl.kubeconfigPath, '..', 'token');
    writeFileSync(tokenFile, `${fileToken}\n`);
    writeFileSync(
      cl.kubeconfigPath,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: fake, cluster: {server: "http://127.0.0.1:6443"}}]',
        `users: [{name: kube-proxy, user: {token: ${token}, tokenFile: ${tokenFile}}}]`,
        'contexts: [{name: fake, context: {cluster: fake, user: kube-proxy}}]',
        'current-context: fake',
        '',
      ].join('\n'),
    );
    await cl.stopProxy();
    await cl.startProxy(['--v=10']);
    // Give it work at full verbosity: an API change, a sync, a refused request, new watches.
    await cl.api.faults.failNext(401, 1, 'events');
    await cl.api.faults.closeWatches();
    await cl.api.create(dnsService('l-dns', '10.96.8.53'));
    await cl.api.create(dnsSlice('l-dns', [ep('a')]));
    await cl.waitForLog(/"Service port programmed".*l-dns/);
    await cl.api.delete('Service', 'default', 'l-dns');
    await cl.waitForLog(/"Service removed from the dataplane".*l-dns/);
    const sent = (await cl.api.requests()).map((r) => r.headers['authorization'] ?? '');
    assert.ok(
      sent.some((h) => h === `Bearer ${token}` || h === `Bearer ${fileToken}`),
      'the process did authenticate with the secret',
    );
    const text = cl.logs().join('\n');
    assert.match(text, /"Listed"/, 'verbosity 4 lines are written');
    assert.ok(!text.includes(token), 'the kubeconfig token never appears');
    assert.ok(!text.includes(fileToken), 'the token file content never appears');

    await cl.stopProxy();
    await cl.startProxy(['--logging-format=json', '--v=4']);
    const lines = cl.logs();
    assert.ok(lines.length > 5);
    for (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof entry['ts'], 'number', line);
      assert.match(String(entry['caller']), /^[\w.-]+\.(ts|js):\d+$/, line);
      assert.equal(typeof entry['msg'], 'string', line);
      if ('v' in entry) assert.equal(typeof entry['v'], 'number', line);
    }
    assert.ok(lines.some((l) => (JSON.parse(l) as { msg?: string; v?: number }).v === 2));
    assert.ok(lines.some((l) => (JSON.parse(l) as { msg?: string }).msg === 'Synced proxy rules'));
    assert.ok(!lines.join('\n').includes(token));
  });
}

for (const mode of ['iptables', 'nftables'] as const) {
  describe(mode, () => {
    defineOperationsSuite(mode);
  });
}
