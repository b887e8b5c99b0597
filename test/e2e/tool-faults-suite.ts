// Issue 15, tool faults, as every mode passes them: the tool that writes the rules fails or
// hangs. What users must see: the rules already in the kernel keep carrying traffic (nothing
// half-applied), the change is retried with back-off, /healthz turns 503 after 2 × syncPeriod, a
// hung tool is killed for lack of progress (not by a fixed deadline), and the change is in the
// kernel about a second after the fault clears. The faults come from wrappers put first in
// kube-proxy's PATH (test/support/fault-tools.ts). Run by test/e2e/faults-tools.test.ts
// (iptables, nftables) and the VM lane (test/vm/lane/ipvs-faults.ts, IPVS).
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { faultTools, type FaultTools } from '../support/fault-tools.ts';
import { Cluster, STANDARD_PODS, type ProxyModeUnderTest } from '../support/cluster.ts';
import { cleanupNetns, pollUntil, TIMEOUT_SCALE } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';

/**
 * Long against the recovery goal: upstream retries a failed sync after a whole syncPeriod, so a
 * recovery within a few seconds of the fault clearing (measured from right after a failure)
 * shows the back-off at work.
 */
const SYNC_PERIOD_S = 10;
/** The proxy's stall limit for rule-writing tools (src/dataplane/common/long-tool.ts). */
const STALL_S = 20;

export interface ToolFaultSetup {
  readonly mode: ProxyModeUnderTest;
  readonly label: string;
  readonly tag: string;
  /**
   * The tools that fail, one at a time (the rest of what the mode runs works); the first also
   * hangs (the stall watchdog is the same for every tool: src/dataplane/common/long-tool.ts).
   */
  readonly tools: readonly [string, ...string[]];
  /** Per tool, a bash condition on its arguments outside which it never fails. */
  readonly onlyWhen?: Readonly<Record<string, string>>;
  /** The flag that sets the mode's syncPeriod (`--iptables-sync-period`, `--ipvs-sync-period`). */
  readonly syncPeriodFlag: string;
  readonly env?: Readonly<Record<string, string>>;
}

export function defineToolFaults(setup: ToolFaultSetup, skip: string | false): void {
  describe(`${setup.label}: tool faults`, { skip }, () => {
    let cluster: Cluster | undefined;
    let faults: FaultTools | undefined;
    const c = () => {
      if (!cluster) throw new Error('cluster did not start');
      return cluster;
    };
    const f = () => {
      if (!faults) throw new Error('no fault tools');
      return faults;
    };
    let next = 0;
    /** A new Service with endpoint a, at 10.96.8.<n>. */
    const addService = async (): Promise<string> => {
      next++;
      const name = `tf-${String(next)}`;
      const ip = `10.96.8.${String(next)}`;
      await c().api.create(
        service({ name, clusterIPs: [ip], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
      );
      const a = c().topology.pod('a');
      await c().api.create(
        endpointSlice({
          service: name,
          ports: [{ name: 'http', port: 8080 }],
          endpoints: [{ ip: a.ipv4, node: a.node, pod: 'a' }],
        }),
      );
      return ip;
    };
    const answers = async (ip: string): Promise<boolean> => {
      const [outcome] = await c().topology.probe(c().topology.pod('client').ns, {
        host: ip,
        port: 80,
        timeoutMs: 300,
      });
      return outcome?.ok === true && outcome.name === 'a';
    };
    const healthz = async () => (await c().httpGet('http://127.0.0.1:10256/healthz')).status;
    const logCount = (pattern: RegExp) =>
      c()
        .logs()
        .filter((line) => pattern.test(line)).length;

    before(async () => {
      faults = faultTools(setup.tools, setup.onlyWhen);
      cluster = await Cluster.start({
        mode: setup.mode,
        tag: setup.tag,
        pods: STANDARD_PODS,
        tcpPorts: [8080],
        args: [`${setup.syncPeriodFlag}=${String(SYNC_PERIOD_S)}s`],
        env: { ...setup.env, PATH: `${faults.dir}:${process.env['PATH'] ?? ''}` },
      });
    });
    after(async () => {
      await cluster?.destroy();
      faults?.remove();
      await cleanupNetns();
    });

    for (const tool of setup.tools)
      test(`a failing ${tool}: old rules keep working, retried with back-off, 503 after 2 × syncPeriod, then recovered`, async (t: TestContext) => {
        const old = await addService();
        await pollUntil('the first Service to answer', async () => ((await answers(old)) ? true : undefined));
        f().set('fail', tool);
        const failedBefore = logCount(/Failed to sync proxy rules/);
        const fresh = await addService();
        const failing = Date.now();
        await pollUntil(
          'three failed, retried syncs',
          () => (logCount(/Failed to sync proxy rules/) >= failedBefore + 3 ? true : undefined),
          15_000,
        );
        assert.ok(
          c()
            .logs()
            .some((line) => /Failed to sync proxy rules/.test(line) && /injected failure/.test(line)),
          'the log says what the tool said',
        );
        assert.equal(await answers(old), true, 'the rules already in the kernel still carry traffic');
        assert.equal(await answers(fresh), false, 'the change is not half-applied');
        await pollUntil('/healthz 503', async () => ((await healthz()) === 503 ? true : undefined), 45_000);
        const unhealthyAfter = (Date.now() - failing) / 1000;
        t.diagnostic(`/healthz 503 ${unhealthyAfter.toFixed(1)} s after the failures began`);
        assert.ok(unhealthyAfter >= 2 * SYNC_PERIOD_S - 1, 'not before 2 × syncPeriod');

        // Clear the fault right after a failure: a retry after a whole syncPeriod would take 10 s.
        const failures = logCount(/Failed to sync proxy rules/);
        await pollUntil('one more failure', () =>
          logCount(/Failed to sync proxy rules/) > failures ? true : undefined,
        );
        f().set('');
        const cleared = Date.now();
        await pollUntil(
          'the change once the tool works again',
          async () => ((await answers(fresh)) ? true : undefined),
          10_000,
          20,
        );
        const recovery = Date.now() - cleared;
        t.diagnostic(`recovered ${String(recovery)} ms after the fault cleared`);
        assert.ok(
          recovery < 6000 * TIMEOUT_SCALE,
          `recovered in ${String(recovery)} ms (goal: about 1 s; syncPeriod ${String(SYNC_PERIOD_S)} s)`,
        );
        await pollUntil('/healthz 200', async () => ((await healthz()) === 200 ? true : undefined), 5000);
      });

    test('a hung tool is killed for lack of progress, never by a fixed deadline, and the retry programs the change', async (t: TestContext) => {
      f().set('hang-once', setup.tools[0]);
      const fresh = await addService();
      const hungAt = Date.now();
      await pollUntil(
        'the hung tool to be killed',
        () =>
          c()
            .logs()
            .some((line) => /made no progress/.test(line))
            ? true
            : undefined,
        (STALL_S + 15) * 1000,
      );
      const killedAfter = (Date.now() - hungAt) / 1000;
      t.diagnostic(`hung tool killed after ${killedAfter.toFixed(1)} s`);
      assert.ok(killedAfter >= STALL_S - 2, 'not before the stall limit');
      const killed = Date.now();
      await pollUntil(
        'the change after the kill',
        async () => ((await answers(fresh)) ? true : undefined),
        10_000,
        20,
      );
      t.diagnostic(`programmed ${String(Date.now() - killed)} ms after the kill`);
    });
  });
}
