// Issue 15, tool faults: the tool that writes the rules (iptables-restore, nft -f) fails, hangs,
// or waits for the xtables lock held by another process. What users must see: the rules already
// in the kernel keep carrying traffic (nothing half-applied), the change is retried with
// back-off, /healthz turns 503 after 2 × syncPeriod, a hung tool is killed for lack of progress
// (not by a fixed deadline), and the change is in the kernel about a second after the fault
// clears. The faults come from wrappers put first in kube-proxy's PATH; each reads a control
// file: `fail` (exit 1), `hang-once` (the next run blocks forever, later ones pass), or nothing
// (run the real tool).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { Cluster, STANDARD_PODS } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil, stopProcess } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';

const skip = kernelSkipReason();
const SYNC_PERIOD_S = 3;
/** The proxy's stall limit for rule-writing tools (src/dataplane/common/long-tool.ts). */
const STALL_S = 20;

/** A wrapper script for `tool` that obeys the control file, else runs the real tool. */
function wrapper(real: string, control: string, onlyWhen: string): string {
  return [
    '#!/bin/bash',
    `if ${onlyWhen}; then`,
    `  case "$(cat ${control} 2>/dev/null)" in`,
    '    fail) cat >/dev/null; echo "injected failure" >&2; exit 1 ;;',
    // Blocked without using CPU, like a tool stuck in the kernel or on a lock.
    `    hang-once) : > ${control}; exec sleep 3600 ;;`,
    '  esac',
    'fi',
    `exec ${real} "$@"`,
    '',
  ].join('\n');
}

/** A directory of wrappers for the given tools; returns it and the control file. */
function faultTools(tools: readonly string[], onlyWhen: Readonly<Record<string, string>> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'kpft-'));
  const control = join(dir, 'fault');
  writeFileSync(control, '');
  for (const tool of tools) {
    const real = execFileSync('bash', ['-c', `command -v ${tool}`], {
      env: { PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` },
    })
      .toString()
      .trim();
    const path = join(dir, tool);
    writeFileSync(path, wrapper(real, control, onlyWhen[tool] ?? 'true'));
    chmodSync(path, 0o755);
  }
  return {
    dir,
    set: (fault: '' | 'fail' | 'hang-once') => writeFileSync(control, fault),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

interface Setup {
  readonly mode: 'iptables' | 'nftables';
  readonly label: string;
  readonly tag: string;
  readonly tools: readonly string[];
  readonly onlyWhen?: Readonly<Record<string, string>>;
  readonly env?: Readonly<Record<string, string>>;
}

function defineToolFaults(setup: Setup): void {
  describe(`${setup.label}: tool faults`, { skip }, () => {
    let cluster: Cluster | undefined;
    let faults: ReturnType<typeof faultTools> | undefined;
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
        args: [`--iptables-sync-period=${String(SYNC_PERIOD_S)}s`],
        env: { ...setup.env, PATH: `${faults.dir}:${process.env['PATH'] ?? ''}` },
      });
    });
    after(async () => {
      await cluster?.destroy();
      faults?.remove();
      await cleanupNetns();
    });

    test('a failing tool: old rules keep working, retried with back-off, 503 after 2 × syncPeriod, then recovered', async (t: TestContext) => {
      const old = await addService();
      await pollUntil('the first Service to answer', async () => ((await answers(old)) ? true : undefined));
      f().set('fail');
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
      await pollUntil('/healthz 503', async () => ((await healthz()) === 503 ? true : undefined), 20_000);
      const unhealthyAfter = (Date.now() - failing) / 1000;
      t.diagnostic(`/healthz 503 ${unhealthyAfter.toFixed(1)} s after the failures began`);
      assert.ok(unhealthyAfter >= 2 * SYNC_PERIOD_S - 1, 'not before 2 × syncPeriod');

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
      assert.ok(recovery < 3000, `recovered in ${String(recovery)} ms (goal: about 1 s)`);
      await pollUntil('/healthz 200', async () => ((await healthz()) === 200 ? true : undefined), 5000);
    });

    test('a hung tool is killed for lack of progress, never by a fixed deadline, and the retry programs the change', async (t: TestContext) => {
      f().set('hang-once');
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

defineToolFaults({
  mode: 'iptables',
  label: 'iptables (nft backend)',
  tag: 'kpfi',
  tools: ['iptables-nft-restore'],
  env: { KUBE_PROXY_IPTABLES_BACKEND: 'nft' },
});
defineToolFaults({
  mode: 'nftables',
  label: 'nftables',
  tag: 'kpfn',
  tools: ['nft'],
  // Only the transaction (nft -f -) fails or hangs; listings and checks pass.
  onlyWhen: { nft: '[ "$1" = -f ]' },
});

describe('iptables (legacy backend): the xtables lock held by another process', { skip }, () => {
  let cluster: Cluster | undefined;
  let holder: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'kpfl-'));
  const lockFile = join(dir, 'xtables.lock');
  const c = () => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };
  before(async () => {
    writeFileSync(lockFile, '');
    cluster = await Cluster.start({
      mode: 'iptables',
      tag: 'kpfl',
      pods: STANDARD_PODS,
      tcpPorts: [8080],
      // The lock file is ours alone: the machine's own /run/xtables.lock is never touched.
      env: { KUBE_PROXY_IPTABLES_BACKEND: 'legacy', XTABLES_LOCKFILE: lockFile },
    });
  });
  after(async () => {
    if (holder) await stopProcess(holder, 'SIGKILL');
    await cluster?.destroy();
    rmSync(dir, { recursive: true, force: true });
    await cleanupNetns();
  });

  test('a change waits while the lock is held and is programmed about a second after it is released', async (t: TestContext) => {
    // One process holds the lock: bash opens the file, locks it, then becomes `sleep` with the
    // descriptor still open; killing that PID releases the lock.
    holder = spawn('bash', ['-c', 'exec 9>"$0"; flock -x 9; exec sleep 3600', lockFile], { stdio: 'ignore' });
    await pollUntil('the lock to be held', () => {
      try {
        execFileSync('flock', ['-n', '-x', lockFile, 'true']);
        return undefined;
      } catch {
        return true;
      }
    });
    const failedBefore = c()
      .logs()
      .filter((l) => /Failed to sync proxy rules/.test(l)).length;
    await c().api.create(
      service({
        name: 'locked',
        clusterIPs: ['10.96.8.200'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    const a = c().topology.pod('a');
    await c().api.create(
      endpointSlice({
        service: 'locked',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ ip: a.ipv4, node: a.node, pod: 'a' }],
      }),
    );
    await pollUntil(
      'a sync that failed on the lock',
      () =>
        c()
          .logs()
          .filter((l) => /Failed to sync proxy rules/.test(l)).length > failedBefore
          ? true
          : undefined,
      20_000,
    );
    assert.ok(
      c()
        .logs()
        .some((l) => /xtables lock/i.test(l)),
      'the log names the lock',
    );
    await stopProcess(holder, 'SIGKILL');
    holder = undefined;
    const released = Date.now();
    await pollUntil(
      'the change after the lock is released',
      async () => {
        const [outcome] = await c().topology.probe(c().topology.pod('client').ns, {
          host: '10.96.8.200',
          port: 80,
          timeoutMs: 300,
        });
        return outcome?.ok ? true : undefined;
      },
      15_000,
      20,
    );
    const recovery = Date.now() - released;
    t.diagnostic(`programmed ${String(recovery)} ms after the lock was released`);
    // The tool waits up to 5 s for the lock (-w 5) before it gives up, and the retry follows.
    assert.ok(recovery < 7000, `${String(recovery)} ms`);
  });
});
