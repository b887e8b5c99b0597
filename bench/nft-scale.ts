// Measures the nftables dataplane at scale in a throwaway network namespace (root only):
// full sync of SERVICES x ENDPOINTS, then single-endpoint changes, first each through a fresh
// `nft -f -`, then through the long-lived `nft -i` session the daemon uses (issue 16, goal 3): the
// proxier's own share of one change, without the API server and the watch. Prints figures;
// asserts nothing. Usage: node bench/nft-scale.ts [services] [endpoints] [changes] [piece sizes]
import { spawn } from 'node:child_process';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { createNftablesProxier, type NftablesProxierDeps } from '../src/dataplane/nftables/proxier.ts';
import { NftSession } from '../src/dataplane/nftables/session.ts';
import { render } from '../src/dataplane/nftables/render.ts';
import type { ProxySnapshot, ServicePortState } from '../src/model/types.ts';
import { cleanupNetns, createNetns, uniquePrefix } from '../test/support/netns.ts';
import { OPTIONS_V4, port, snapshot } from '../test/unit/nftables/fixtures.ts';

const services = Number(process.argv[2] ?? 10_000);
const perService = Number(process.argv[3] ?? 10);
const changes = Number(process.argv[4] ?? 20);
/** Service ports per transaction of the first sync in pieces to compare with one transaction. */
const pieceSizes = (process.argv[5] ?? '500,1000,2000,5000').split(',').map(Number);

function ipv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
}
const CLUSTER_BASE = (172 << 24) | (30 << 16);
const POD_BASE = (10 << 24) | (128 << 16);

function servicePort(i: number, generation: number): ServicePortState {
  return port({
    name: `svc-${i}`,
    clusterIP: ipv4(CLUSTER_BASE + i),
    port: 80,
    endpoints: Array.from({ length: perService }, (_, e) => ({
      ip: ipv4(POD_BASE + i * perService + ((e + generation) % (perService + 1))),
      local: e === 0,
    })),
  });
}

function withChange(base: ProxySnapshot, i: number, generation: number): ProxySnapshot {
  // Replaced by key: the snapshot's map is in key order, not in Service number order.
  const changed = servicePort(i, generation);
  const ports = new Map(base.servicePorts);
  ports.set(changed.servicePort.id.key, changed);
  // Only this Service changed, and the model's hint names its port (the fixture marks every
  // Service changed and gives no hint, which makes a renderer walk the whole table).
  return {
    ...snapshot([...ports.values()]),
    changedServices: new Set([changed.servicePort.id.service]),
    generation: (base.generation ?? 0) + 1,
    changedServicePorts: new Set([changed.servicePort.id.key]),
  };
}

/** The endpoint IP that `next` has and `base` had not (withChange replaces one). */
function addedEndpoint(base: ProxySnapshot, next: ProxySnapshot): string {
  for (const [key, state] of next.servicePorts) {
    if (base.servicePorts.get(key) === state) continue;
    const had = new Set(base.servicePorts.get(key)?.endpoints.map((e) => e.ip));
    const added = state.endpoints.find((e) => !had.has(e.ip));
    if (added) return added.ip;
  }
  throw new Error('bench: the change added no endpoint');
}

/** Polls `read` every millisecond until it gives a value or `ms` pass. */
async function waitFor<T>(read: () => T | undefined, ms: number): Promise<T | undefined> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = read();
    if (value !== undefined || performance.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function main(): Promise<void> {
  const ns = await createNetns(`${uniquePrefix('kpnb')}node`);
  try {
    // The session is looked up at each partial sync, so one proxier (one record of the table)
    // measures both ways of committing a change.
    const sessionInNs = (): NftSession =>
      new NftSession(() =>
        spawn('ip', ['netns', 'exec', ns.name, 'nft', '-i'], { stdio: ['pipe', 'ignore', 'pipe'] }),
      );
    const deps: { -readonly [K in keyof NftablesProxierDeps]: NftablesProxierDeps[K] } = {
      run: (f, a, o) => ns.exec(f, a, o),
    };
    const proxier = await createNftablesProxier(OPTIONS_V4, deps);
    const buildStart = performance.now();
    const first: ProxySnapshot = {
      ...snapshot(Array.from({ length: services }, (_, i) => servicePort(i, 0))),
      generation: 0,
    };
    const buildMs = performance.now() - buildStart;
    // Render alone (cold: every record computed), outside the proxier.
    const cold = performance.now();
    const dry = render(undefined, first, OPTIONS_V4, true);
    const coldMs = performance.now() - cold;
    const lines = dry.script.split('\n').length;
    // The first sync into a kernel without our table: one transaction, then in pieces of
    // several sizes (pieces.ts), each into an emptied table, with each nft's peak memory.
    const peaks: number[] = [];
    const timed = (f: string, a: readonly string[], o?: Parameters<typeof ns.exec>[2]) =>
      f === 'nft' && a[0] === '-f'
        ? ns.exec('/usr/bin/time', ['-f', 'maxrss=%M', f, ...a], o).then((result) => {
            peaks.push(Number(/maxrss=(\d+)/.exec(result.stderr)?.[1] ?? 0) / 1024);
            return result;
          })
        : ns.exec(f, a, o);
    for (const size of [Infinity, ...pieceSizes]) {
      await ns.exec('nft', ['delete', 'table', 'ip', 'kube-proxy']).catch(() => undefined);
      peaks.length = 0;
      const cold = await createNftablesProxier(OPTIONS_V4, { run: timed, firstSyncPiece: size });
      const t = performance.now();
      const result = await cold.sync({ snapshot: first, full: true });
      console.log(
        `first sync into an empty kernel, ${size === Infinity ? 'one transaction' : `pieces of ${String(size)} service ports`}: ` +
          `${(performance.now() - t).toFixed(0)} ms (render ${(result.renderSeconds * 1000).toFixed(0)} ms, ` +
          `nft ${(result.applySeconds * 1000).toFixed(0)} ms; ${String(peaks.length)} nft runs, ` +
          `the largest nft peak ${Math.max(...peaks).toFixed(0)} MiB)`,
      );
    }
    const start = performance.now();
    const full = await proxier.sync({ snapshot: first, full: true });
    const fullMs = performance.now() - start;
    console.log(
      `full sync ${services} services x ${perService} endpoints: ${fullMs.toFixed(0)} ms end to end ` +
        `(render ${(full.renderSeconds * 1000).toFixed(0)} ms, nft ${(full.applySeconds * 1000).toFixed(0)} ms; ` +
        `script ${lines} lines, ${(dry.script.length / 1e6).toFixed(1)} MB; cold render alone ${coldMs.toFixed(0)} ms; ` +
        `building the snapshot ${buildMs.toFixed(0)} ms)`,
    );
    let current = first;
    let generation = 0;
    const steps = new Map<number, number>();
    const p = (list: readonly number[], q: number): string =>
      ([...list].sort((a, b) => a - b)[Math.floor((list.length - 1) * q)] ?? 0).toFixed(1);
    // What explains the slow changes: this process's garbage collections, and how late the
    // kernel's notification (what bench/run.ts times a change by) arrives after the commit.
    const gcs: { start: number; end: number }[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries())
        gcs.push({ start: entry.startTime, end: entry.startTime + entry.duration });
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const monitor = ns.spawn('nft', ['monitor', 'new', 'elements']);
    const notified: { at: number; text: string }[] = [];
    if (monitor.stdout)
      createInterface({ input: monitor.stdout }).on('line', (text) => {
        notified.push({ at: performance.now(), text });
      });
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const way of ['fresh nft -f', 'nft -i session'] as const) {
      if (way === 'nft -i session') deps.session = sessionInNs;
      const times: number[] = [];
      const renders: number[] = [];
      const quiet: number[] = [];
      const lags: number[] = [];
      let withGc = 0;
      for (let c = 0; c < changes; c++) {
        generation++;
        const before = current;
        // One step of that Service's own rotation: exactly one endpoint replaced.
        const which = (generation * 7919) % services;
        const step = (steps.get(which) ?? 0) + 1;
        steps.set(which, step);
        current = withChange(current, which, step);
        const added = addedEndpoint(before, current);
        notified.length = 0;
        const t = performance.now();
        const result = await proxier.sync({ snapshot: current, full: false });
        const done = performance.now();
        times.push(done - t);
        renders.push(result.renderSeconds * 1000);
        if (gcs.some((gc) => gc.end > t && gc.start < done)) withGc++;
        else quiet.push(done - t);
        const needle = `: ${added} . `;
        const seen = await waitFor(() => notified.find((line) => line.text.includes(needle))?.at, 2000);
        if (seen !== undefined) lags.push(seen - done);
      }
      console.log(
        `one-endpoint change through ${way} (${changes} runs): p50 ${p(times, 0.5)} ms, ` +
          `p90 ${p(times, 0.9)} ms, p99 ${p(times, 0.99)} ms, max ${p(times, 1)} ms end to end; ` +
          `render p50 ${p(renders, 0.5)} ms; ${withGc} overlapped a garbage collection of this ` +
          `process, the others p99 ${p(quiet, 0.99)} ms; nft monitor's notification came ` +
          `${p(lags, 0.5)} ms (p50) / ${p(lags, 0.99)} ms (p99) after the sync returned ` +
          `(${lags.length} of ${changes} seen)`,
      );
    }
    gcObserver.disconnect();
    monitor.kill();
    // Ends the session's `nft -i` (the namespace's removal would not, and this process would wait
    // for the child); later partial syncs in this script go through a fresh `nft -f` again.
    await proxier.close?.();
    delete deps.session;
    // What a do-nothing `nft` costs through the same path (process starts, `ip netns exec`).
    const bare: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      await ns.exec('nft', ['--version']);
      bare.push(performance.now() - t);
    }
    bare.sort((a, b) => a - b);
    console.log(
      `bare 'ip netns exec nft --version': p50 ${p(bare, 0.5)} ms (process start overhead inside the above)`,
    );
    const again = performance.now();
    const periodic = await proxier.sync({ snapshot: current, full: true });
    console.log(
      `periodic full sync (table kept): ${(performance.now() - again).toFixed(0)} ms ` +
        `(render ${(periodic.renderSeconds * 1000).toFixed(0)} ms)`,
    );
    // The rule-integrity check every 5 s (issue 15): what it costs at this size.
    const checks: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      if (!(await proxier.rulesIntact?.())) throw new Error('integrity check failed on an untouched table');
      checks.push(performance.now() - t);
    }
    console.log(
      `integrity check (5 runs, the first deep): ${checks.map((ms) => ms.toFixed(0)).join(', ')} ms`,
    );
    const chains = await ns.exec('nft', ['list', 'chains', 'ip']);
    console.log(`chains in table: ${chains.stdout.split('\n').filter((l) => l.includes('chain ')).length}`);
    // Tampering the element check sees at once, whatever the size (the deep look is not due).
    await ns.exec('nft', ['flush', 'map', 'ip', 'kube-proxy', 'service-ips']);
    const tampered = performance.now();
    const seen = await proxier.rulesIntact?.();
    console.log(
      `after 'nft flush map ip kube-proxy service-ips' the next check says intact=${String(seen)} ` +
        `in ${(performance.now() - tampered).toFixed(0)} ms`,
    );
    // A removed jump: the first check after the repairing full sync learns the rules' handles
    // (one listing of the table), the checks after it delete them in check mode.
    await proxier.sync({ snapshot: current, full: true });
    const learn = performance.now();
    if (!(await proxier.rulesIntact?.())) throw new Error('integrity check failed after the repair');
    const learnMs = performance.now() - learn;
    const listing = (await ns.exec('nft', ['-a', 'list', 'chain', 'ip', 'kube-proxy', 'nat-prerouting']))
      .stdout;
    const handle = /jump services # handle (\d+)/.exec(listing)?.[1];
    if (handle === undefined) throw new Error(`no jump in nat-prerouting:\n${listing}`);
    await ns.exec('nft', ['delete', 'rule', 'ip', 'kube-proxy', 'nat-prerouting', 'handle', handle]);
    const removed = performance.now();
    const jumpSeen = await proxier.rulesIntact?.();
    console.log(
      `after the repair the first check (learning the fixed rules' handles) took ${learnMs.toFixed(0)} ms; ` +
        `after 'nft delete rule' of the jump into services the next check says intact=${String(jumpSeen)} ` +
        `in ${(performance.now() - removed).toFixed(0)} ms`,
    );
  } finally {
    await cleanupNetns();
  }
}

await main();
