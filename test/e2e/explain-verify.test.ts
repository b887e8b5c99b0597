// Issue 13's proof against the real kernel, in both modes: `kube-proxy explain` against the
// running proxy names the endpoints that really answer, the verdict and masquerade; `kube-proxy
// verify` finds nothing on a fresh node, reports exactly the Service whose rule was removed by
// hand (and its effect), and the full sync it asks for repairs it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ExecError } from '../../src/util/exec.ts';
import { ruleArgs } from '../../src/dataplane/xtables/canonical.ts';
import { parseTableJson } from '../../src/dataplane/nftables/verify.ts';
import type { Explanation } from '../../src/explain/types.ts';
import type { VerifyReport } from '../../src/verify/verify.ts';
import { Cluster, KUBE_PROXY_BIN, STANDARD_PODS } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';
import { endpointSlice, service, type EndpointSpec } from '../support/objects.ts';

const SERVER = 'http://127.0.0.1:10249';

for (const mode of ['iptables', 'nftables'] as const) {
  describe(`explain and verify against the live proxy: ${mode}`, () => {
    const skip = kernelSkipReason();
    let cluster: Cluster | undefined;
    const c = (): Cluster => {
      if (!cluster) throw new Error('cluster did not start');
      return cluster;
    };
    const ep = (pod: string): EndpointSpec => {
      const p = c().topology.pod(pod);
      return { ip: p.ipv4, node: p.node, pod };
    };

    /** Runs bin/kube-proxy SUBCOMMAND in node1; the exit code is part of the answer. */
    const kubeProxy = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      try {
        const result = await c().topology.node1.ns.exec(KUBE_PROXY_BIN, args, { timeoutMs: 60_000 });
        return { code: 0, stdout: result.stdout, stderr: result.stderr };
      } catch (error) {
        if (!(error instanceof ExecError)) throw error;
        return { code: error.code ?? -1, stdout: error.stdout, stderr: error.stderr };
      }
    };
    const explain = async (args: string[]): Promise<Explanation> => {
      const result = await kubeProxy(['explain', '--server', SERVER, '-o', 'json', ...args]);
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout) as Explanation;
    };
    const verify = async (
      args: string[] = [],
    ): Promise<{ code: number; report: VerifyReport; stdout: string }> => {
      const json = await kubeProxy(['verify', '--server', SERVER, '-o', 'json', ...args]);
      assert.ok(
        json.code === 0 || json.code === 1,
        `verify failed (${json.code}): ${json.stderr}${json.stdout}`,
      );
      return { code: json.code, report: JSON.parse(json.stdout) as VerifyReport, stdout: json.stdout };
    };

    before(async () => {
      if (skip) return;
      cluster = await Cluster.start({
        mode,
        tag: mode === 'iptables' ? 'kxi' : 'kxn',
        pods: STANDARD_PODS,
        tcpPorts: [8080],
      });
      const api = c().api;
      await api.create(
        service({ name: 'empty', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', port: 80 }] }),
      );
      await api.create(
        service({
          name: 'np-local',
          type: 'NodePort',
          clusterIPs: ['10.96.1.81'],
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }],
          externalTrafficPolicy: 'Local',
        }),
      );
      await api.create(
        endpointSlice({
          service: 'np-local',
          ports: [{ name: 'http', port: 8080 }],
          endpoints: [ep('a'), ep('c')],
        }),
      );
      await api.create(
        service({
          name: 'np-cluster',
          type: 'NodePort',
          clusterIPs: ['10.96.1.80'],
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
        }),
      );
      await api.create(
        endpointSlice({
          service: 'np-cluster',
          ports: [{ name: 'http', port: 8080 }],
          endpoints: [ep('a'), ep('c')],
        }),
      );
      await api.create(
        service({
          name: 'web',
          clusterIPs: ['10.96.0.10'],
          ports: [{ name: 'http', port: 80, targetPort: 8080 }],
        }),
      );
      await api.create(
        endpointSlice({
          service: 'web',
          ports: [{ name: 'http', port: 8080 }],
          endpoints: [ep('a'), ep('b'), ep('c')],
        }),
      );
      // The last Service created answers once the sync that programmed all of them is applied.
      await pollUntil('web to be programmed', async () => {
        const e = await explain([
          '--src',
          c().topology.pod('client').ipv4,
          '--dst',
          '10.96.0.10',
          '--dport',
          '80',
        ]);
        return e.verdict.action === 'DNAT' ? e : undefined;
      });
    });
    after(async () => {
      await cluster?.destroy();
      await cleanupNetns();
    });

    test(
      'explain names the endpoints that answer, for a pod, the node and an outside client',
      { skip },
      async () => {
        const client = c().topology.pod('client');
        const web = await explain(['--src', client.ipv4, '--dst', '10.96.0.10', '--dport', '80']);
        assert.equal(web.match.servicePort, 'default/web:http');
        assert.equal(web.packet.arrival.from, 'pod');
        assert.deepEqual(web.verdict.to, [ep('a'), ep('b'), ep('c')].map((e) => `${e.ip}:8080`).sort());
        assert.equal(web.verdict.snat, false);
        assert.equal(web.source.kind, 'live');
        assert.equal(web.source.mode, mode);
        assert.ok(web.path.length > 0);
        // Real connections land on endpoints explain named, and keep the pod's address.
        const outcomes = await c().topology.probe(client.ns, {
          host: '10.96.0.10',
          port: 80,
          count: 12,
          timeoutMs: 2000,
        });
        for (const outcome of outcomes) {
          assert.ok(outcome.ok, outcome.error);
          assert.ok(['a', 'b', 'c'].includes(outcome.name ?? ''), outcome.name);
          assert.equal(outcome.peer?.replace(/:\d+$/, ''), client.ipv4);
        }

        const node1 = c().topology.node1.ipv4;
        const fromNode = await explain(['--src', node1, '--dst', node1, '--dport', '30081']);
        assert.equal(fromNode.packet.arrival.from, 'node');
        assert.equal(fromNode.match.kind, 'nodePort');
        assert.deepEqual(fromNode.verdict.to, [`${ep('a').ip}:8080`, `${ep('c').ip}:8080`].sort());
        assert.equal(fromNode.verdict.snat, true);

        const external = c().topology.external;
        const outside = await explain(['--src', external.ipv4, '--dst', node1, '--dport', '30081']);
        assert.equal(outside.packet.arrival.from, 'external');
        assert.deepEqual(outside.verdict.to, [`${ep('a').ip}:8080`]);
        assert.equal(outside.verdict.snat, false);
        const [answer] = await c().topology.probe(external.ns, { host: node1, port: 30081, timeoutMs: 2000 });
        assert.equal(answer?.name, 'a');
        assert.equal(answer.peer?.replace(/:\d+$/, ''), external.ipv4);

        const cluster = await explain(['--src', external.ipv4, '--dst', node1, '--dport', '30080']);
        assert.deepEqual(cluster.verdict.to, [`${ep('a').ip}:8080`, `${ep('c').ip}:8080`].sort());
        assert.equal(cluster.verdict.snat, true);
        const viaCluster = await c().topology.probe(external.ns, {
          host: node1,
          port: 30080,
          count: 6,
          timeoutMs: 2000,
        });
        for (const outcome of viaCluster) {
          assert.ok(['a', 'c'].includes(outcome.name ?? ''), outcome.error);
          assert.notEqual(outcome.peer, external.ipv4);
        }

        const empty = await explain(['--src', client.ipv4, '--dst', '10.96.0.20', '--dport', '80']);
        assert.equal(empty.verdict.action, 'REJECT');
        const [refused] = await c().topology.probe(client.ns, {
          host: '10.96.0.20',
          port: 80,
          timeoutMs: 2000,
        });
        assert.equal(refused?.ok, false);
      },
    );

    test('verify: no drift on a fresh node', { skip }, async () => {
      const { code, report } = await verify(['--no-resync']);
      assert.equal(code, 0, JSON.stringify(report, null, 2));
      assert.equal(report.drift, false);
      assert.ok(report.families.length >= 1);
      for (const family of report.families) {
        assert.equal(family.error, undefined);
        assert.ok(family.objects > 0);
      }
      const text = await kubeProxy(['verify', '--server', SERVER, '--no-resync']);
      assert.match(text.stdout, /OK: the kernel holds what the last sync applied/);
    });

    test(
      'verify reports exactly the Service whose rule was removed, and the full sync repairs it',
      { skip },
      async () => {
        const ns = c().topology.node1.ns;
        const removed = `${ep('c').ip}:8080`;
        /** Removes endpoint c's rule (iptables) or map element (nftables) of web, when it is there. */
        const removeByHand = async (): Promise<void> => {
          if (mode === 'iptables') {
            const saved = (await ns.exec('iptables-nft-save', ['-t', 'nat'])).stdout;
            const line = saved.split('\n').find((l) => l.includes(`"default/web:http -> ${removed}"`));
            if (line === undefined) return;
            const args = ruleArgs(line);
            args[0] = '-D';
            await ns.exec('iptables-nft', ['-t', 'nat', ...args]);
          } else {
            const table = parseTableJson(
              (await ns.exec('nft', ['-j', 'list', 'table', 'ip', 'kube-proxy'])).stdout,
            );
            const line = table.sets
              .get('ip-endpoints-tcp')
              ?.find(
                (l) => l.startsWith('10.96.0.10 . 80 . ') && l.endsWith(`: ${removed.replace(':', ' . ')}`),
              );
            if (line === undefined) return;
            const key = line.slice(0, line.indexOf(' : '));
            await ns.exec('nft', ['delete', 'element', 'ip', 'kube-proxy', 'ip-endpoints-tcp', `{ ${key} }`]);
          }
        };
        // Any full sync of the proxy's own (a periodic one, an integrity check) writes the rule
        // again: each check below removes it first and is retried if a sync came in between.
        const whileRemoved = <T>(what: string, check: () => Promise<T | undefined>): Promise<T> =>
          pollUntil(what, async () => {
            await removeByHand();
            return check();
          });

        // explain --kernel marks exactly the removed rule or element as missing.
        const confirmed = await whileRemoved('explain --kernel to see the removal', async () => {
          const e = await explain([
            '--kernel',
            '--src',
            c().topology.pod('client').ipv4,
            '--dst',
            '10.96.0.10',
            '--dport',
            '80',
          ]);
          return e.path.some((step) => step.inKernel === false) ? e : undefined;
        });
        const absent = confirmed.path.filter((step) => step.inKernel === false);
        assert.equal(absent.length, 1, JSON.stringify(absent, null, 2));
        assert.ok((absent[0]?.element?.text ?? absent[0]?.rule ?? '').includes(ep('c').ip));
        assert.ok(confirmed.path.some((step) => step.inKernel === true));
        assert.ok(confirmed.hints.some((hint) => hint.includes('missing from the kernel')));

        const drifted = await whileRemoved('verify to see the removal', async () => {
          const result = await verify(['--no-resync']);
          return result.code === 1 ? result : undefined;
        });
        assert.equal(drifted.report.drift, true);
        const ipv4 = drifted.report.families.find((f) => f.family === 'IPv4');
        assert.ok(ipv4);
        assert.deepEqual(
          ipv4.servicePorts.map((sp) => sp.servicePort),
          ['default/web:http'],
          JSON.stringify(drifted.report, null, 2),
        );
        assert.deepEqual(ipv4.other, []);
        assert.deepEqual(ipv4.counts, { missing: 1, unexpected: 0, changed: 0 });
        const web = ipv4.servicePorts[0];
        assert.ok(web);
        assert.ok(web.items.some((i) => i.kind === 'missing' && i.endpoint === removed));
        assert.ok(web.effects.some((e) => e.includes(removed)));
        for (const other of drifted.report.families.filter((f) => f.family !== 'IPv4')) {
          assert.equal(other.counts.missing + other.counts.unexpected + other.counts.changed, 0);
        }
        const text = await whileRemoved('verify (text) to see the removal', async () => {
          const result = await kubeProxy(['verify', '--server', SERVER, '--no-resync']);
          return result.code === 1 ? result : undefined;
        });
        assert.match(text.stdout, /DRIFT {2}1 missing/);
        assert.match(text.stdout, /default\/web:http {3}10\.96\.0\.10:80\/TCP/);
        const metrics = await c().httpGet(`${SERVER}/metrics`);
        assert.match(metrics.body, /kubeproxy_ts_rules_drift_objects\{ip_family="IPv4",kind="missing"\} 1/);

        // Without --no-resync the proxy schedules a full sync, which writes the rule again.
        const repairing = await whileRemoved('verify to ask for a full sync', async () => {
          const result = await verify();
          return result.code === 1 ? result : undefined;
        });
        assert.deepEqual(repairing.report.actions, ['full sync requested for IPv4 (reason: drift)']);
        await pollUntil('the full sync to repair the rules', async () => {
          const again = await verify(['--no-resync']);
          return again.code === 0 ? again : undefined;
        });
        const metricsAfter = await c().httpGet(`${SERVER}/metrics`);
        assert.match(
          metricsAfter.body,
          /kubeproxy_ts_rules_drift_objects\{ip_family="IPv4",kind="missing"\} 0/,
        );
      },
    );

    test(
      'explain --conntrack lists the flows of the tuple and flags those to a removed endpoint',
      { skip },
      async () => {
        const client = c().topology.pod('client');
        const args = ['--conntrack', '--src', client.ipv4, '--dst', '10.96.0.10', '--dport', '80'];
        const outcomes = await c().topology.probe(client.ns, {
          host: '10.96.0.10',
          port: 80,
          count: 12,
          timeoutMs: 2000,
        });
        assert.ok(outcomes.every((o) => o.ok));
        const before = await explain(args);
        const flows = before.conntrack?.flows ?? [];
        assert.equal(before.conntrack?.error, undefined);
        assert.ok(flows.length >= 1, JSON.stringify(before.conntrack));
        for (const flow of flows) {
          assert.equal(flow.stale, false);
          assert.ok(
            before.verdict.to?.includes(flow.endpoint ?? ''),
            `${flow.endpoint ?? ''} is one of the endpoints`,
          );
        }
        // Remove the endpoint one flow went to: that flow keeps it, and explain says it is stale.
        const gone = flows[0]?.endpoint ?? '';
        const remaining = ['a', 'b', 'c'].filter((pod) => `${ep(pod).ip}:8080` !== gone);
        const slice = (pods: string[]) =>
          endpointSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: pods.map(ep) });
        await c().api.update(slice(remaining));
        try {
          const after = await pollUntil('the flow to the removed endpoint to show as stale', async () => {
            const e = await explain(args);
            return e.conntrack?.flows.some((f) => f.stale && f.endpoint === gone) ? e : undefined;
          });
          assert.ok(!after.verdict.to?.includes(gone));
          assert.ok(after.hints.some((hint) => hint.includes(gone) && hint.includes('conntrack -D')));
          const text = await kubeProxy(['explain', '--server', SERVER, ...args]);
          assert.match(text.stdout, /\[STALE: endpoint no longer exists\]/);
        } finally {
          await c().api.update(slice(['a', 'b', 'c']));
          await pollUntil('web to have its three endpoints again', async () => {
            const e = await explain(args.slice(1));
            return e.verdict.to?.length === 3 ? e : undefined;
          });
        }
      },
    );
  });
}

// The userspace mode: explain against the live proxy names the endpoints its listeners connect
// to (always from the node's address), the capture rule and the listener.
describe('explain against the live proxy: userspace', () => {
  const skip = kernelSkipReason();
  let cluster: Cluster | undefined;
  const c = (): Cluster => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };
  const ep = (pod: string): EndpointSpec => {
    const p = c().topology.pod(pod);
    return { ip: p.ipv4, node: p.node, pod };
  };
  const explain = async (args: string[]): Promise<Explanation> => {
    const result = await c().topology.node1.ns.exec(
      KUBE_PROXY_BIN,
      ['explain', '--server', SERVER, '-o', 'json', ...args],
      { timeoutMs: 60_000 },
    );
    return JSON.parse(result.stdout) as Explanation;
  };

  before(async () => {
    if (skip) return;
    cluster = await Cluster.start({ mode: 'userspace', tag: 'kxs', pods: STANDARD_PODS, tcpPorts: [8080] });
    const api = c().api;
    await api.create(
      service({ name: 'empty', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', port: 80 }] }),
    );
    await api.create(
      service({
        name: 'np-local',
        type: 'NodePort',
        clusterIPs: ['10.96.1.81'],
        ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }],
        externalTrafficPolicy: 'Local',
      }),
    );
    await api.create(
      endpointSlice({
        service: 'np-local',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [ep('a'), ep('c')],
      }),
    );
    await api.create(
      service({
        name: 'web',
        clusterIPs: ['10.96.0.10'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    await api.create(
      endpointSlice({
        service: 'web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [ep('a'), ep('b'), ep('c')],
      }),
    );
    await pollUntil('web to be programmed', async () => {
      const e = await explain([
        '--src',
        c().topology.pod('client').ipv4,
        '--dst',
        '10.96.0.10',
        '--dport',
        '80',
      ]);
      return e.verdict.action === 'DNAT' ? e : undefined;
    });
  });
  after(async () => {
    await cluster?.destroy();
    await cleanupNetns();
  });

  test(
    'pod, node and outside clients: the endpoints that answer, the capture rule and the listener',
    { skip },
    async () => {
      const client = c().topology.pod('client');
      const node1 = c().topology.node1.ipv4;
      const web = await explain(['--src', client.ipv4, '--dst', '10.96.0.10', '--dport', '80']);
      assert.equal(web.source.mode, 'userspace');
      assert.equal(web.match.servicePort, 'default/web:http');
      assert.deepEqual(web.verdict.to, [ep('a'), ep('b'), ep('c')].map((e) => `${e.ip}:8080`).sort());
      // The proxy connects to the endpoint itself: the endpoint sees the node, never the pod.
      assert.equal(web.verdict.snat, true);
      assert.ok(
        web.path.some((step) => step.chain === 'KUBE-PORTALS-CONTAINER' && step.rule.includes('10.96.0.10')),
      );
      assert.ok(
        web.path.some((step) => step.table === 'userspace' && step.rule.includes('default/web:http')),
      );
      const outcomes = await c().topology.probe(client.ns, {
        host: '10.96.0.10',
        port: 80,
        count: 9,
        timeoutMs: 2000,
      });
      for (const outcome of outcomes) {
        assert.ok(outcome.ok, outcome.error);
        assert.ok(['a', 'b', 'c'].includes(outcome.name ?? ''), outcome.name);
        assert.notEqual(outcome.peer?.replace(/:\d+$/, ''), client.ipv4);
      }

      const outside = await explain([
        '--src',
        c().topology.external.ipv4,
        '--dst',
        node1,
        '--dport',
        '30081',
      ]);
      assert.equal(outside.match.kind, 'nodePort');
      assert.deepEqual(outside.verdict.to, [`${ep('a').ip}:8080`]);
      const [answer] = await c().topology.probe(c().topology.external.ns, {
        host: node1,
        port: 30081,
        timeoutMs: 2000,
      });
      assert.equal(answer?.name, 'a');

      const fromNode = await explain(['--src', node1, '--dst', node1, '--dport', '30081']);
      assert.equal(fromNode.packet.arrival.from, 'node');
      assert.deepEqual(fromNode.verdict.to, [`${ep('a').ip}:8080`, `${ep('c').ip}:8080`].sort());

      const empty = await explain(['--src', client.ipv4, '--dst', '10.96.0.20', '--dport', '80']);
      assert.equal(empty.verdict.action, 'REJECT');
      const [refused] = await c().topology.probe(client.ns, {
        host: '10.96.0.20',
        port: 80,
        timeoutMs: 2000,
      });
      assert.equal(refused?.ok, false);
    },
  );
});
