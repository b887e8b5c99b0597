// On the Debian kernel of the VM lane: one cluster whose kube-proxy switches modes
// iptables -> ipvs -> nftables -> iptables (issue 11), with real TCP and SCTP connections after
// each switch, and no leftovers of the mode before. This is also the lane's smoke run of the
// iptables and nftables modes, and the SCTP traffic test of every mode (SCTP is claimed by every
// mode; this machine's own kernel has no SCTP sockets). SCTP endpoints are socat processes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster, STANDARD_PODS, type KernelMode } from '../../support/cluster.ts';
import { cleanupNetns, pollUntil, stopProcess } from '../../support/netns.ts';
import { endpointSlice, service } from '../../support/objects.ts';
import type { ChildProcess } from 'node:child_process';
import { ipvsSkipReason, sctpSkipReason } from './kernel.ts';

const skip = ipvsSkipReason() || sctpSkipReason();
const SCTP_PORT = 9999;
let cluster: Cluster | undefined;
const servers: ChildProcess[] = [];
const c = (): Cluster => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};

/** One SCTP association to host:port from the client pod; the endpoint's name, or undefined. */
async function sctpOnce(host: string, port: number): Promise<string | undefined> {
  const client = c().topology.pod('client').ns;
  try {
    // Read only (-u): SCTP has no half-close, so a client that ended its input would shut the
    // association down before the endpoint's answer arrives.
    const out = await client.exec('socat', ['-T', '3', '-u', `SCTP:${host}:${String(port)}`, '-'], {
      timeoutMs: 30_000,
    });
    return out.stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

async function tcpNames(
  host: string,
  port: number,
  from = c().topology.pod('client').ns,
): Promise<Set<string>> {
  const outcomes = await c().topology.probe(from, { host, port, count: 12 });
  return new Set(outcomes.map((o) => o.name ?? `!${o.error ?? ''}`));
}

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({ mode: 'iptables', tag: 'kpm', pods: STANDARD_PODS, tcpPorts: [8080] });
  for (const pod of ['a', 'c']) {
    const child = c()
      .topology.pod(pod)
      .ns.spawn('socat', [`SCTP-LISTEN:${String(SCTP_PORT)},fork,reuseaddr`, `SYSTEM:echo ${pod}`]);
    servers.push(child);
  }
  const api = c().api;
  const ep = (pod: string) => ({ ip: c().topology.pod(pod).ipv4, node: c().topology.pod(pod).node, pod });
  await api.create(
    service({
      name: 'web',
      type: 'NodePort',
      clusterIPs: ['10.96.0.10'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
    }),
  );
  await api.create(
    endpointSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [ep('a'), ep('c')] }),
  );
  await api.create(
    service({
      name: 'sctp',
      clusterIPs: ['10.96.0.90'],
      ports: [{ name: 'sctp', port: 99, targetPort: SCTP_PORT, protocol: 'SCTP' }],
    }),
  );
  const slice = endpointSlice({
    service: 'sctp',
    ports: [{ name: 'sctp', port: SCTP_PORT }],
    endpoints: [ep('a'), ep('c')],
  });
  await api.create({ ...slice, ports: (slice.ports ?? []).map((p) => ({ ...p, protocol: 'SCTP' })) });
});

after(async () => {
  await Promise.all(servers.map((child) => stopProcess(child, 'SIGKILL')));
  await cluster?.destroy();
  await cleanupNetns();
});

/** What a mode leaves in node1: IPVS virtual servers, kube-ipvs0, nft table, iptables chains. */
async function leftovers(): Promise<{
  ipvs: string;
  link: boolean;
  nft: boolean;
  iptablesChains: boolean;
  ipvsChains: boolean;
}> {
  const ns = c().topology.node1.ns;
  const ipvs = (await ns.exec('ipvsadm', ['-S', '-n'])).stdout.trim();
  const link = await ns.exec('ip', ['link', 'show', 'kube-ipvs0']).then(
    () => true,
    () => false,
  );
  const nft = (await ns.exec('nft', ['list', 'tables'])).stdout.includes('kube-proxy');
  const save =
    (await ns.exec('iptables-nft-save', [])).stdout + (await ns.exec('iptables-legacy-save', [])).stdout;
  return {
    ipvs,
    link,
    nft,
    iptablesChains: /KUBE-SVC-/.test(save),
    ipvsChains: /KUBE-IPVS-FILTER/.test(save),
  };
}

const SEQUENCE: readonly KernelMode[] = ['iptables', 'ipvs', 'nftables', 'iptables'];

for (const [i, mode] of SEQUENCE.entries()) {
  test(
    `step ${String(i + 1)}: ${mode} mode carries TCP and SCTP, leaving nothing of the modes before`,
    { skip },
    async () => {
      if (i > 0) {
        await c().stopProxy();
        await c().restartProxy(mode);
      }
      // Connections may fail while the new mode programs its first syncs: wait until a whole
      // batch succeeds, then traffic must keep flowing.
      await pollUntil(`TCP through the cluster IP in ${mode} mode`, async () => {
        const names = await tcpNames('10.96.0.10', 80);
        return names.size === 2 && names.has('a') && names.has('c') ? names : undefined;
      });
      const seen = await tcpNames('10.96.0.10', 80);
      assert.deepEqual([...seen].sort(), ['a', 'c']);
      const nodePort = await tcpNames(c().topology.node1.ipv4, 30080, c().topology.external.ns);
      assert.ok(
        nodePort.has('a') || nodePort.has('c'),
        `NodePort in ${mode} mode: ${[...nodePort].join(', ')}`,
      );
      const sctp = new Set<string>();
      await pollUntil(`SCTP through the cluster IP in ${mode} mode`, async () => {
        const name = await sctpOnce('10.96.0.90', 99);
        if (name !== undefined) sctp.add(name);
        return sctp.size > 0 ? true : undefined;
      });
      for (let n = 0; n < 6; n++) {
        const name = await sctpOnce('10.96.0.90', 99);
        if (name !== undefined) sctp.add(name);
      }
      assert.ok(
        [...sctp].every((name) => name === 'a' || name === 'c'),
        [...sctp].join(', '),
      );
      // The old mode's rules go once the new mode's first syncs are in: wait for that.
      const left = await pollUntil(`the modes before ${mode} to be cleaned up`, async () => {
        const now = await leftovers();
        const clean =
          mode === 'ipvs'
            ? !now.nft && !now.iptablesChains
            : now.ipvs === '' &&
              !now.link &&
              !now.ipvsChains &&
              (mode === 'nftables' ? !now.iptablesChains : !now.nft);
        return clean ? now : undefined;
      });
      if (mode === 'ipvs') {
        // Upstream's deprecation notice (v1.35), also as a Warning Event on the Node.
        const events = await c().api.list('Event', 'default');
        const notice = events.find((e) => (e as { reason?: string }).reason === 'IPVSDeprecation') as
          | { type?: string; action?: string; note?: string; regarding?: { kind?: string; name?: string } }
          | undefined;
        assert.deepEqual(
          [notice?.type, notice?.action, notice?.regarding?.kind, notice?.regarding?.name],
          ['Warning', 'ProxyModeCheck', 'Node', 'node1'],
        );
        assert.match(notice?.note ?? '', /ipvs proxier is now deprecated/);
        assert.match(left.ipvs, /-A -t 10\.96\.0\.10:80 -s rr/);
        assert.match(left.ipvs, /--sctp-service 10\.96\.0\.90:99/);
        assert.equal(left.nft, false, 'nftables leftovers removed');
        assert.equal(left.iptablesChains, false, 'iptables service chains removed');
      } else {
        assert.equal(left.ipvs, '', 'IPVS virtual servers removed');
        assert.equal(left.link, false, 'kube-ipvs0 removed');
        assert.equal(left.ipvsChains, false, 'IPVS chains removed');
        if (mode === 'nftables') assert.equal(left.iptablesChains, false, 'iptables chains removed');
        else assert.equal(left.nft, false, 'nftables leftovers removed');
      }
      // The cleanup of the mode before took nothing of this one's: iptables and IPVS share chain
      // names (nat KUBE-SERVICES, KUBE-POSTROUTING, ...), and traffic must not wait for a full sync.
      const afterCleanup = await tcpNames('10.96.0.10', 80);
      assert.deepEqual([...afterCleanup].sort(), ['a', 'c'], `${mode} mode after the cleanup`);
    },
  );
}
