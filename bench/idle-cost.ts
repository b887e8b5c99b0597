// What the rule-integrity checks cost an idle node (issue 15, goal 1): kube-proxy runs with a few
// hundred Services and nothing changes for a minute; the CPU time of the process and of the
// tools it ran (reaped children: /proc/<pid>/stat fields cutime and cstime) over that minute, per
// mode. Run as root: node bench/idle-cost.ts [--seconds 60] [--services 200] [--modes iptables,nftables,userspace]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Cluster, STANDARD_PODS } from '../test/support/cluster.ts';
import { cleanupNetns, IS_ROOT, pollUntil } from '../test/support/netns.ts';
import { endpointSlice, service } from '../test/support/objects.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    services: { type: 'string', default: '200' },
    modes: { type: 'string', default: 'iptables,nftables,userspace' },
  },
});
const seconds = Number(values.seconds);
const services = Number(values.services);
const TICK_MS = 10; // USER_HZ 100

/** CPU ms of the process itself and of its reaped children. */
function cpu(pid: number): { self: number; children: number } {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return { self: ((f[11] ?? 0) + (f[12] ?? 0)) * TICK_MS, children: ((f[13] ?? 0) + (f[14] ?? 0)) * TICK_MS };
}

async function measure(mode: 'iptables' | 'nftables' | 'userspace'): Promise<string> {
  const cluster = await Cluster.start({ mode, tag: 'kpic', pods: STANDARD_PODS, tcpPorts: [8080] });
  try {
    const a = cluster.topology.pod('a');
    for (let i = 0; i < services; i++) {
      const name = `idle-${String(i)}`;
      await cluster.api.create(
        service({
          name,
          clusterIPs: [`10.96.${String(10 + Math.floor(i / 250))}.${String(1 + (i % 250))}`],
          ports: [{ name: 'http', port: 80, targetPort: 8080 }],
        }),
      );
      await cluster.api.create(
        endpointSlice({
          service: name,
          ports: [{ name: 'http', port: 8080 }],
          endpoints: [{ ip: a.ipv4, node: a.node }],
        }),
      );
    }
    const last = `10.96.${String(10 + Math.floor((services - 1) / 250))}.${String(1 + ((services - 1) % 250))}`;
    await pollUntil(
      'the last Service',
      async () => {
        const [o] = await cluster.topology.probe(cluster.topology.pod('client').ns, {
          host: last,
          port: 80,
          timeoutMs: 300,
        });
        return o?.ok ? true : undefined;
      },
      60_000,
    );
    const pid = cluster.proxyPid;
    if (pid === undefined) throw new Error('no kube-proxy');
    const before = cpu(pid);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const after = cpu(pid);
    const self = ((after.self - before.self) * 60) / seconds;
    const tools = ((after.children - before.children) * 60) / seconds;
    return `| ${mode} | ${String(services)} | ${self.toFixed(0)} | ${tools.toFixed(0)} | ${(((self + tools) / 60_000) * 100).toFixed(2)} % |`;
  } finally {
    await cluster.destroy();
  }
}

if (!IS_ROOT) {
  process.stderr.write('idle-cost: needs root\n');
  process.exit(2);
}
try {
  const rows: string[] = [];
  const MODES = ['iptables', 'nftables', 'userspace'] as const;
  for (const mode of MODES) if (values.modes.split(',').includes(mode)) rows.push(await measure(mode));
  process.stdout.write(
    `| mode | Services | proxy CPU ms/min | tools CPU ms/min | of one core |\n|---|---|---|---|---|\n${rows.join('\n')}\n`,
  );
} finally {
  await cleanupNetns();
}
