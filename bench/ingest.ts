// How kube-proxy takes in the cluster state, without a kernel: the real daemon (node lookup,
// reflectors, models, sync loops) against the in-repo API server in its own process, with a
// backend that programs nothing. Prints the time from start to the first sync (what the bench's
// "before the first sync" measures, minus process start-up), the live heap after a full GC and
// the RSS; optionally writes a heap snapshot. Needs no root.
//
//   node --expose-gc bench/ingest.ts --size 44000 [--endpoints 10] [--affinity 0.03]
//        [--heap-snapshot FILE] [--hold-ms 0]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { runDaemon } from '../src/daemon/daemon.ts';
import type { ModeDefinition } from '../src/dataplane/common/mode.ts';
import { FakeHost } from '../src/host/fake.ts';
import { KubeClient } from '../src/k8s/client.ts';
import { configureLogging } from '../src/log/log.ts';
import type { IPFamily } from '../src/model/types.ts';
import type { Backend, SyncRequest, SyncResult } from '../src/sync/backend.ts';
import { node as nodeObject } from '../test/support/objects.ts';
import { generateWorkload, manifestJSON } from './workload.ts';

const API_SERVER = new URL('../test/support/apiserver-main.ts', import.meta.url).pathname;

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/** Starts the API server process with the manifest; resolves with its URL and a stop function. */
async function startApi(manifest: string): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, [API_SERVER, '--objects', manifest], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.startsWith('listening ')) resolve(line.slice('listening '.length));
    });
    child.once('exit', (code) => reject(new Error(`ingest: API server exited with ${String(code)}`)));
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '10000' },
      endpoints: { type: 'string', default: '10' },
      affinity: { type: 'string', default: '0.03' },
      'heap-snapshot': { type: 'string' },
      'hold-ms': { type: 'string', default: '0' },
      'write-manifest': { type: 'string' },
    },
    strict: true,
  });
  const workloadOptions = {
    services: Number(values.size),
    endpointsPerService: Number(values.endpoints),
    seed: 1,
    affinity: Number(values.affinity),
  };
  if (values['write-manifest'] !== undefined) {
    writeFileSync(values['write-manifest'], manifestJSON(generateWorkload(workloadOptions).objects));
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'kp-ingest-'));
  const manifest = join(dir, 'workload.json');
  // In a child process, so that this one's heap and RSS hold only what the proxy keeps.
  const writer = spawnSync(
    process.execPath,
    [new URL(import.meta.url).pathname, ...process.argv.slice(2), '--write-manifest', manifest],
    { stdio: 'inherit' },
  );
  if (writer.status !== 0) throw new Error('ingest: writing the workload failed');
  const api = await startApi(manifest);
  const client = new KubeClient({ server: api.url, insecureSkipTLSVerify: false, source: 'ingest bench' });
  await client.postJSON(
    '/api/v1/nodes',
    nodeObject({ name: 'node1', ips: ['10.0.0.1', 'fd00::1'], podCIDRs: ['10.244.1.0/24'] }),
  );
  configureLogging({ verbosity: 2, format: 'json', write: () => undefined });

  const firstSync = new Map<IPFamily, number>();
  let allSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => (allSynced = resolve));
  const backend = (family: IPFamily): Backend => ({
    family,
    mode: 'nftables',
    sync: (request: SyncRequest): Promise<SyncResult> => {
      if (!firstSync.has(family)) {
        firstSync.set(family, performance.now());
        if (request.snapshot.servicePorts.size === 0 && family === 'IPv4')
          throw new Error('ingest: the first IPv4 snapshot is empty');
        if (firstSync.size === 2) allSynced();
      }
      return Promise.resolve({ full: request.full, renderSeconds: 0, applySeconds: 0 });
    },
  });

  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  const mode: ModeDefinition = {
    name: 'nftables',
    xtablesOwners: [],
    cleaner: () => ({ mode: 'nftables', cleanup: () => Promise.resolve() }),
    setUp: () => ({
      supportsFamily: () => Promise.resolve(true),
      createBackend: (family) => Promise.resolve(backend(family)),
    }),
  };
  const daemon = await runDaemon({
    mode,
    dataplane: {
      masqueradeBit: 14,
      masqueradeAll: false,
      detectLocalMode: 'ClusterCIDR',
      clusterCIDRs: [],
      bridgeInterface: '',
      interfaceNamePrefix: '',
      // TEST-NET-1 holds no local address: the service health check servers listen nowhere.
      nodePortAddresses: { kind: 'cidrs', cidrs: ['192.0.2.0/24'] },
      localhostNodePorts: true,
      syncPeriodMs: 3_600_000,
    },
    nodeName: 'node1',
    client,
    syncPeriodMs: 3_600_000,
    minSyncPeriodMs: 100,
    healthz: undefined,
    metrics: undefined,
    bindAddressHardFail: false,
    bindAddress: undefined,
    conntrack: {
      maxPerCore: 0,
      min: 0,
      tcpEstablishedTimeoutSeconds: 0,
      tcpCloseWaitTimeoutSeconds: 0,
      tcpBeLiberal: false,
      udpTimeoutSeconds: 0,
      udpStreamTimeoutSeconds: 0,
    },
    host: new FakeHost({ sysctls: {}, ipv6: true }),
    oomScoreAdj: undefined,
    initOnly: false,
    requirePodCIDRs: false,
    configz: () => ({}),
    onFatal: (message) => {
      throw new Error(`ingest: fatal: ${message}`);
    },
  });
  await synced;
  const v4 = (firstSync.get('IPv4') ?? NaN) - started;
  const v6 = (firstSync.get('IPv6') ?? NaN) - started;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  await new Promise((resolve) => setTimeout(resolve, Number(values['hold-ms'])));
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heap = process.memoryUsage();
  process.stdout.write(
    `ingest ${values.size} Services x ${values.endpoints}: first IPv4 sync called after ${v4.toFixed(0)} ms, ` +
      `IPv6 after ${v6.toFixed(0)} ms; heap used ${mib(heap.heapUsed)} MiB${gc ? ' (after a full GC)' : ' (no --expose-gc)'}, ` +
      `rss ${mib(heap.rss)} MiB (peak ${mib(peakRss)}, ${mib(rssBefore)} before start)\n`,
  );
  if (values['heap-snapshot'] !== undefined)
    process.stdout.write(`heap snapshot: ${writeHeapSnapshot(values['heap-snapshot'])}\n`);
  await daemon.stop();
  client.close();
  api.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `ingest: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
