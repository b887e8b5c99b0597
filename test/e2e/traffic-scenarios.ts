// What users see, for any proxy mode: real TCP and UDP through the rules the real kube-proxy
// process writes, in a namespace cluster (test/support/topology.ts). Each scenario asserts which
// endpoint answered and which source address it saw. Issue 3 and issue 4 list these cases.
// The userspace mode passes the same scenarios with its own, documented differences: its
// connection to an endpoint leaves from the node, so no endpoint ever sees the client's address;
// a Service without endpoints resets an accepted connection (ECONNRESET, not ECONNREFUSED); and a
// dropped connection is closed without an answer instead of timing out.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, STANDARD_PODS, type ProxyModeUnderTest } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';
import { endpointSlice, service, type EndpointSpec } from '../support/objects.ts';
import type { ProbeOptions, ProbeOutcome } from '../support/topology.ts';
import type { Netns } from '../support/netns.ts';

const NODE1_GW = '10.244.1.1';
const NODE1_GW6 = 'fd00:10:244:1::1';
const TAGS: Readonly<Record<ProxyModeUnderTest, string>> = {
  iptables: 'kpi',
  nftables: 'kpn',
  userspace: 'kpu',
  ipvs: 'kpv',
};

/** A second run of a mode's suite with other flags (e.g. the userspace mode's address capture). */
export interface SuiteVariant {
  /** Shown in every test title after the mode; none when the variant only adds tests. */
  readonly label?: string;
  readonly args: readonly string[];
  /** Namespace name tag (unique per file). */
  readonly tag: string;
  /** Extra environment of kube-proxy, as ClusterOptions.env. */
  readonly env?: Readonly<Record<string, string>>;
  /** Another kube-proxy program (e.g. the release's single executable), as ClusterOptions.proxyCommand. */
  readonly proxyCommand?: readonly [string, ...string[]];
  /** Tests of what only this variant does, on the same cluster. */
  readonly extra?: (cluster: () => Cluster, skip: string | false) => void;
}

/**
 * The suite for one mode. `skipReason` overrides the usual root check (the IPVS suite needs a
 * kernel with IPVS: the VM lane's).
 */
export function defineTrafficSuite(
  mode: ProxyModeUnderTest,
  variant?: SuiteVariant,
  skipReason: string | false = kernelSkipReason(),
): void {
  const skip = skipReason;
  const title = variant?.label ? `${mode} (${variant.label})` : mode;
  /** The proxy itself connects to endpoints (userspace): they see the node, never the client. */
  const proxied = mode === 'userspace';
  let cluster: Cluster | undefined;
  const c = () => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };
  const ep = (pod: string, extra: Partial<EndpointSpec> = {}): EndpointSpec => {
    const p = c().topology.pod(pod);
    return { ip: p.ipv4, node: p.node, pod, ...extra };
  };
  const probe = (from: Netns, options: ProbeOptions): Promise<ProbeOutcome[]> =>
    c().topology.probe(from, options);
  /** The address an endpoint sees for a client the kernel modes masquerade to the node. */
  const nodeSource = (o: ProbeOutcome) => (o.name === 'c' ? c().topology.node1.ipv4 : NODE1_GW);
  /** The address an endpoint sees for a client the kernel modes do not masquerade. */
  const keptSource = (o: ProbeOutcome, client: string) => (proxied ? nodeSource(o) : client);
  /** Connections that a rule drops: they time out, or (userspace) close with no endpoint's answer. */
  const assertDropped = (outcomes: readonly ProbeOutcome[], what: string) => {
    for (const o of outcomes) {
      if (proxied) assert.equal(o.name, undefined, `${what}: no endpoint answers: ${JSON.stringify(o)}`);
      else assert.equal(o.error, 'ETIMEDOUT', `${what}: ${JSON.stringify(o)}`);
    }
  };
  const names = (outcomes: readonly ProbeOutcome[]) =>
    new Set(outcomes.map((o) => o.name ?? `!${o.error ?? ''}`));
  /** Polls until one probe succeeds: the rules for everything created before are then in place. */
  const waitReachable = (from: Netns, host: string, port: number, proto: 'tcp' | 'udp' = 'tcp') =>
    pollUntil(`${host}:${String(port)}/${proto} to answer`, async () => {
      const [outcome] = await probe(from, { host, port, proto, timeoutMs: 300 });
      return outcome?.ok ? outcome : undefined;
    });

  before(async () => {
    if (skip) return;
    cluster = await Cluster.start({
      mode,
      tag: variant?.tag ?? TAGS[mode],
      ...(variant ? { args: variant.args } : {}),
      ...(variant?.proxyCommand ? { proxyCommand: variant.proxyCommand } : {}),
      ...(variant?.env ? { env: variant.env } : {}),
      pods: STANDARD_PODS,
      tcpPorts: [8080],
      udpPorts: [5353],
    });
    const api = c().api;
    // Services whose tests expect failure come first: once a later Service answers, the sync
    // that programmed it has programmed these too.
    await api.create(
      service({ name: 'empty', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', port: 80 }] }),
    );
    for (const [name, nodePort, policy, pods] of [
      ['np-cluster', 30080, 'Cluster', ['a', 'c']],
      ['np-local', 30081, 'Local', ['a', 'c']],
      ['np-remote', 30082, 'Local', ['c']],
    ] as const) {
      await api.create(
        service({
          name,
          type: 'NodePort',
          clusterIPs: [`10.96.1.${String(nodePort - 30000)}`],
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort }],
          externalTrafficPolicy: policy,
        }),
      );
      await api.create(
        endpointSlice({
          service: name,
          ports: [{ name: 'http', port: 8080 }],
          endpoints: pods.map((p) => ep(p)),
        }),
      );
    }
    for (const [name, vip, range, nodePort] of [
      ['lb-deny', '203.0.113.11', '10.0.0.0/8', 30091],
      ['lb-allow', '203.0.113.10', '192.0.2.100/32', 30090],
    ] as const) {
      await api.create(
        service({
          name,
          type: 'LoadBalancer',
          clusterIPs: [`10.96.2.${String(nodePort - 30000)}`],
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort }],
          loadBalancerIPs: [vip],
          loadBalancerSourceRanges: [range],
        }),
      );
      await api.create(
        endpointSlice({ service: name, ports: [{ name: 'http', port: 8080 }], endpoints: [ep('a')] }),
      );
    }
    const clusterIPService = async (name: string, ip: string, endpoints: EndpointSpec[], extra = {}) => {
      await api.create(
        service({ name, clusterIPs: [ip], ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...extra }),
      );
      await api.create(endpointSlice({ service: name, ports: [{ name: 'http', port: 8080 }], endpoints }));
    };
    await clusterIPService('sticky', '10.96.0.50', [ep('a'), ep('b'), ep('c')], {
      sessionAffinityTimeoutSeconds: 600,
    });
    await clusterIPService('itp', '10.96.0.60', [ep('a'), ep('c')], { internalTrafficPolicy: 'Local' });
    await clusterIPService('term', '10.96.0.70', [
      ep('a', { ready: false, serving: true, terminating: true }),
      ep('b', { ready: false, serving: false, terminating: true }),
    ]);
    await clusterIPService('topo', '10.96.0.80', [
      ep('a', { zones: ['zone-a'] }),
      ep('b', { zones: ['zone-b'] }),
      ep('c', { zones: ['zone-b'] }),
    ]);
    await api.create(
      service({
        name: 'dns',
        clusterIPs: ['10.96.0.53'],
        ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }],
      }),
    );
    await api.create(
      endpointSlice({
        service: 'dns',
        ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
        endpoints: [ep('a'), ep('b')],
      }),
    );
    const a = c().topology.pod('a');
    const b = c().topology.pod('b');
    await api.create(
      service({
        name: 'web6',
        clusterIPs: ['fd00:10:96::10'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    await api.create(
      endpointSlice({
        service: 'web6',
        family: 'IPv6',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [
          { ip: a.ipv6, node: 'node1' },
          { ip: b.ipv6, node: 'node1' },
        ],
      }),
    );
    await clusterIPService('web', '10.96.0.10', [ep('a'), ep('b'), ep('c')]);
    await waitReachable(c().topology.pod('client').ns, '10.96.0.10', 80);
  });

  after(async () => {
    await cluster?.destroy();
    await cleanupNetns();
  });

  test(
    `${title}: ClusterIP balances over every ready endpoint; pod traffic keeps its source`,
    { skip },
    async () => {
      const client = c().topology.pod('client');
      const outcomes = await probe(client.ns, { host: '10.96.0.10', port: 80, count: 40 });
      assert.ok(
        outcomes.every((o) => o.ok),
        JSON.stringify(outcomes.filter((o) => !o.ok)),
      );
      assert.deepEqual([...names(outcomes)].sort(), ['a', 'b', 'c']);
      assert.ok(
        outcomes.every((o) => o.peer === keptSource(o, client.ipv4)),
        `pod -> service is not masqueraded: ${JSON.stringify(outcomes.map((o) => o.peer))}`,
      );
    },
  );

  test(`${title}: node-local and off-cluster clients of a ClusterIP are masqueraded`, { skip }, async () => {
    const t = c().topology;
    for (const from of [t.node1.ns, t.external.ns]) {
      const outcomes = await probe(from, { host: '10.96.0.10', port: 80, count: 20 });
      assert.ok(
        outcomes.every((o) => o.ok),
        JSON.stringify(outcomes),
      );
      for (const o of outcomes) {
        // Local pods see the node's address on their veth; node2's pod sees node1's LAN address.
        assert.equal(o.peer, nodeSource(o), `from ${from.name}: ${JSON.stringify(o)}`);
      }
    }
  });

  test(`${title}: UDP to a ClusterIP reaches the endpoints`, { skip }, async () => {
    const client = c().topology.pod('client');
    await waitReachable(client.ns, '10.96.0.53', 53, 'udp');
    const outcomes = await probe(client.ns, { proto: 'udp', host: '10.96.0.53', port: 53, count: 20 });
    assert.ok(outcomes.every((o) => o.ok));
    assert.deepEqual([...names(outcomes)].sort(), ['a', 'b']);
  });

  test(`${title}: a Service without endpoints is rejected at once, not timed out`, { skip }, async () => {
    const [outcome] = await probe(c().topology.pod('client').ns, {
      host: '10.96.0.20',
      port: 80,
      timeoutMs: 3000,
    });
    assert.equal(outcome?.ok, false);
    // The kernel answers the SYN with a reset; the userspace proxy resets the connection it accepted.
    assert.equal(outcome.error, proxied ? 'ECONNRESET' : 'ECONNREFUSED');
    assert.ok(outcome.ms < 1000, `took ${String(outcome.ms)} ms`);
  });

  test(
    `${title}: NodePort with externalTrafficPolicy Cluster reaches any endpoint, masqueraded`,
    { skip },
    async () => {
      const t = c().topology;
      const outcomes = await probe(t.external.ns, { host: t.node1.ipv4, port: 30080, count: 30 });
      assert.ok(
        outcomes.every((o) => o.ok),
        JSON.stringify(outcomes.filter((o) => !o.ok)),
      );
      assert.deepEqual([...names(outcomes)].sort(), ['a', 'c']);
      assert.ok(
        outcomes.every((o) => o.peer !== t.external.ipv4),
        'the client address is masqueraded',
      );
    },
  );

  test(
    `${title}: NodePort with externalTrafficPolicy Local reaches only local endpoints, source kept`,
    { skip },
    async () => {
      const t = c().topology;
      const outcomes = await probe(t.external.ns, { host: t.node1.ipv4, port: 30081, count: 20 });
      assert.ok(
        outcomes.every((o) => o.ok),
        JSON.stringify(outcomes.filter((o) => !o.ok)),
      );
      assert.deepEqual([...names(outcomes)], ['a']);
      assert.ok(
        outcomes.every((o) => o.peer === keptSource(o, t.external.ipv4)),
        'the client address is preserved',
      );
    },
  );

  test(
    // IPVS does not drop: it falls back to the remote endpoint (upstream), whose reply with the
    // pod's source bypasses this node, so the client still never gets a connection.
    `${title}: NodePort with externalTrafficPolicy Local ${mode === 'ipvs' ? 'fails' : 'is dropped'} on a node without local endpoints`,
    { skip },
    async () => {
      const t = c().topology;
      const outcomes = await probe(t.external.ns, {
        host: t.node1.ipv4,
        port: 30082,
        count: 2,
        timeoutMs: 1000,
      });
      assert.equal(outcomes.length, 2);
      assertDropped(outcomes, 'no local endpoint');
    },
  );

  test(`${title}: LoadBalancer IP honours loadBalancerSourceRanges`, { skip }, async (t: TestContext) => {
    const topo = c().topology;
    const allowed = await probe(topo.external.ns, { host: '203.0.113.10', port: 80, count: 3 });
    assert.deepEqual(
      allowed.map((o) => o.name),
      ['a', 'a', 'a'],
    );
    const denied = await probe(topo.external.ns, {
      host: '203.0.113.11',
      port: 80,
      count: 1,
      timeoutMs: 1000,
    });
    assert.equal(denied.length, 1);
    assertDropped(denied, 'a source outside the ranges');
    t.diagnostic(`allowed connect ${String(allowed[0]?.ms)} ms`);
  });

  test(`${title}: session affinity ClientIP keeps a client on one endpoint`, { skip }, async () => {
    const client = c().topology.pod('client');
    const outcomes = await probe(client.ns, { host: '10.96.0.50', port: 80, count: 15 });
    assert.ok(outcomes.every((o) => o.ok));
    assert.equal(names(outcomes).size, 1, JSON.stringify(outcomes.map((o) => o.name)));
  });

  test(
    `${title}: internalTrafficPolicy Local sends pod traffic only to local endpoints`,
    { skip },
    async () => {
      const outcomes = await probe(c().topology.pod('client').ns, {
        host: '10.96.0.60',
        port: 80,
        count: 15,
      });
      assert.deepEqual([...names(outcomes)], ['a']);
    },
  );

  test(
    `${title}: with no ready endpoint, serving terminating endpoints take the traffic`,
    { skip },
    async () => {
      const outcomes = await probe(c().topology.pod('client').ns, {
        host: '10.96.0.70',
        port: 80,
        count: 10,
      });
      assert.deepEqual([...names(outcomes)], ['a']);
    },
  );

  test(`${title}: topology hints keep traffic in the node's zone`, { skip }, async () => {
    const outcomes = await probe(c().topology.pod('client').ns, { host: '10.96.0.80', port: 80, count: 15 });
    assert.deepEqual([...names(outcomes)], ['a']);
  });

  test(`${title}: an IPv6 ClusterIP balances over IPv6 endpoints`, { skip }, async () => {
    const client = c().topology.pod('client');
    await waitReachable(client.ns, 'fd00:10:96::10', 80);
    const outcomes = await probe(client.ns, { host: 'fd00:10:96::10', port: 80, count: 20 });
    assert.ok(outcomes.every((o) => o.ok));
    assert.deepEqual([...names(outcomes)].sort(), ['a', 'b']);
    assert.ok(
      outcomes.every((o) => o.peer === (proxied ? NODE1_GW6 : client.ipv6)),
      JSON.stringify(outcomes),
    );
  });

  test(`${title}: changes through the API reach the dataplane`, { skip }, async (t: TestContext) => {
    const api = c().api;
    const client = c().topology.pod('client').ns;
    const timed = async (what: string, check: () => Promise<boolean>) => {
      const started = Date.now();
      await pollUntil(what, async () => ((await check()) ? true : undefined), 15_000, 20);
      t.diagnostic(`${what}: ${String(Date.now() - started)} ms from API write to traffic`);
    };
    const seen = async () => names(await probe(client, { host: '10.96.0.10', port: 80, count: 12 }));
    await api.update(
      endpointSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [ep('a'), ep('b')] }),
    );
    await timed('endpoint removed', async () => {
      const s = await seen();
      return !s.has('c') && s.has('a') && s.has('b');
    });
    await api.update(
      endpointSlice({
        service: 'web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [ep('a'), ep('b'), ep('c')],
      }),
    );
    await timed('endpoint added', async () => (await seen()).has('c'));
    await api.delete('Service', 'default', 'web');
    await timed('service deleted', async () => {
      const [outcome] = await probe(client, { host: '10.96.0.10', port: 80, timeoutMs: 300 });
      return outcome?.ok === false;
    });
  });

  test(`${title}: /healthz is healthy and /metrics counts the syncs`, { skip }, async () => {
    const healthz = await c().httpGet('http://127.0.0.1:10256/healthz');
    assert.equal(healthz.status, 200);
    assert.match(healthz.body, /"nodeEligible": true/);
    const metrics = await c().httpGet('http://127.0.0.1:10249/metrics');
    assert.match(metrics.body, /kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]/);
    assert.equal((await c().httpGet('http://127.0.0.1:10249/proxyMode')).body, mode);
    const debug = JSON.parse((await c().httpGet('http://127.0.0.1:10249/debug/proxy')).body) as {
      mode: string;
      families: { ipFamily: string; successfulSyncs: number; lastSync?: { backend?: string } }[];
    };
    assert.equal(debug.mode, mode);
    assert.deepEqual(debug.families.map((f) => f.ipFamily).sort(), ['IPv4', 'IPv6']);
    assert.ok(debug.families.every((f) => f.successfulSyncs > 0));
    if (mode === 'iptables') {
      // The backend in use is visible without reading logs (issue 3).
      assert.ok(
        debug.families.every((f) => f.lastSync?.backend === 'nft' || f.lastSync?.backend === 'legacy'),
      );
    }
  });

  // After the shared scenarios: they may stop the proxy.
  variant?.extra?.(c, skip);
}
