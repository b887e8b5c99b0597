// Measures the nftables dataplane at scale in a throwaway network namespace (root only):
// full sync of SERVICES x ENDPOINTS, then single-endpoint changes, each a real `nft -f -`.
// Prints figures; asserts nothing. Usage: node bench/nft-scale.ts [services] [endpoints] [changes]
import { performance } from 'node:perf_hooks';
import { createNftablesProxier } from '../src/dataplane/nftables/proxier.ts';
import { render } from '../src/dataplane/nftables/render.ts';
import type { ProxySnapshot, ServicePortState } from '../src/model/types.ts';
import { cleanupNetns, createNetns, uniquePrefix } from '../test/support/netns.ts';
import { OPTIONS_V4, port, snapshot } from '../test/unit/nftables/fixtures.ts';

const services = Number(process.argv[2] ?? 10_000);
const perService = Number(process.argv[3] ?? 10);
const changes = Number(process.argv[4] ?? 20);

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
  const ports = [...base.servicePorts.values()];
  ports[i] = servicePort(i, generation);
  return snapshot(ports);
}

async function main(): Promise<void> {
  const ns = await createNetns(`${uniquePrefix('kpnb')}node`);
  try {
    const proxier = await createNftablesProxier(OPTIONS_V4, { run: (f, a, o) => ns.exec(f, a, o) });
    const buildStart = performance.now();
    const first = snapshot(Array.from({ length: services }, (_, i) => servicePort(i, 0)));
    const buildMs = performance.now() - buildStart;
    // Render alone (cold: every record computed), outside the proxier.
    const cold = performance.now();
    const dry = render(undefined, first, OPTIONS_V4, true);
    const coldMs = performance.now() - cold;
    const lines = dry.script.split('\n').length;
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
    const times: number[] = [];
    const renders: number[] = [];
    for (let c = 0; c < changes; c++) {
      current = withChange(current, (c * 7919) % services, c + 1);
      const t = performance.now();
      const result = await proxier.sync({ snapshot: current, full: false });
      times.push(performance.now() - t);
      renders.push(result.renderSeconds * 1000);
    }
    times.sort((a, b) => a - b);
    renders.sort((a, b) => a - b);
    const p = (list: number[], q: number): string =>
      (list[Math.floor((list.length - 1) * q)] ?? 0).toFixed(1);
    console.log(
      `one-endpoint change (${changes} runs): p50 ${p(times, 0.5)} ms, p90 ${p(times, 0.9)} ms end to end; ` +
        `render p50 ${p(renders, 0.5)} ms`,
    );
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
  } finally {
    await cleanupNetns();
  }
}

await main();
