// Issue 15, tool faults in the iptables and nftables modes: the tool that writes the rules
// (iptables-restore, nft -f) fails or hangs (the suite every mode passes: tool-faults-suite.ts;
// IPVS runs it in the VM lane), or waits for the xtables lock held by another process.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { defineToolFaults } from './tool-faults-suite.ts';
import { Cluster, STANDARD_PODS } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil, stopProcess } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';

const skip = kernelSkipReason();

defineToolFaults(
  {
    mode: 'iptables',
    label: 'iptables (nft backend)',
    tag: 'kpfi',
    tools: ['iptables-nft-restore'],
    syncPeriodFlag: '--iptables-sync-period',
    env: { KUBE_PROXY_IPTABLES_BACKEND: 'nft' },
  },
  skip,
);
defineToolFaults(
  {
    mode: 'nftables',
    syncPeriodFlag: '--iptables-sync-period',
    label: 'nftables',
    tag: 'kpfn',
    tools: ['nft'],
    // Only the transaction (nft -f -) fails or hangs; listings and checks pass. Small changes
    // normally go through a long-lived `nft -i` started before any fault; with the session off,
    // every sync is an `nft -f`, the path full syncs and the session's fallback take
    // (test/e2e/nftables-session.test.ts covers the session's own failures).
    onlyWhen: { nft: '[ "$1" = -f ]' },
    env: { KUBE_PROXY_NFT_SESSION: 'off' },
  },
  skip,
);

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
