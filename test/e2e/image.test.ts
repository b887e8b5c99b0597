// Issue 17's proof for the container image (release/kube-proxy-ts-image.tar from `make image`):
// it holds the tools the proxy drives and nothing it does not need, and, unpacked and run as the
// DaemonSet in deploy/ runs it (test/e2e/image-pod.ts), it serves traffic to Services in the test
// cluster. The tests follow docs/deploy.md's steps as far as a machine without a cluster allows:
// replace the running kube-proxy by the image (A: swap the image), switch to nftables through the
// ConfigMap, and go back to the previous kube-proxy. The "previous kube-proxy" is bin/kube-proxy
// from this checkout standing in for upstream's (same chains, tables and flags); upstream's binary
// cannot be fetched here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { parse } from 'yaml';
import { Cluster } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil, stopProcess, type Netns } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';
import {
  daemonSetPodCommand,
  pathInRoot,
  projectConfigMap,
  readDaemonSet,
  unpackImage,
  type UnpackedImage,
} from './image-pod.ts';
import { IMAGE_ARCHIVE, missingArtifact, ROOT } from './release-support.ts';

const skip = kernelSkipReason() || missingArtifact(IMAGE_ARCHIVE, 'image');
const DAEMONSET = join(ROOT, 'deploy', 'daemonset.yaml');
const CONFIGMAP = join(ROOT, 'deploy', 'configmap.yaml');

let image: UnpackedImage | undefined;
let cluster: Cluster | undefined;
let pod: ChildProcess | undefined;
let podLog: string[] = [];
const scratch: (() => void)[] = [];
const img = () => {
  if (!image) throw new Error('image not unpacked');
  return image;
};
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};

before(async () => {
  if (skip) return;
  const started = Date.now();
  image = unpackImage(IMAGE_ARCHIVE);
  process.stdout.write(`# image unpacked in ${String(Date.now() - started)} ms\n`);
  cluster = await Cluster.start({
    mode: 'iptables',
    tag: 'kim',
    pods: [
      { name: 'a', node: 'node1' },
      { name: 'client', node: 'node1' },
      { name: 'c', node: 'node2' },
    ],
    tcpPorts: [8080],
  });
  await addService('web', '10.96.0.10', ['a', 'c']);
  await waitServed('10.96.0.10', ['a', 'c']);
});

after(async () => {
  if (pod) await stopProcess(pod).catch(() => undefined);
  await cluster?.destroy();
  await cleanupNetns();
  image?.remove();
  for (const remove of scratch) remove();
});

async function addService(name: string, ip: string, pods: readonly string[]): Promise<void> {
  const t = c().topology;
  await c().api.create(
    service({ name, clusterIPs: [ip], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
  );
  await c().api.create(
    endpointSlice({
      service: name,
      ports: [{ name: 'http', port: 8080 }],
      endpoints: pods.map((p) => ({ ip: t.pod(p).ipv4, node: t.pod(p).node, pod: p })),
    }),
  );
}

/** Which endpoints answer `count` connections from the client pod. */
async function answering(ip: string, count = 12): Promise<string[]> {
  const outcomes = await c().topology.probe(c().topology.pod('client').ns, {
    host: ip,
    port: 80,
    count,
    timeoutMs: 500,
  });
  return [...new Set(outcomes.map((o) => o.name ?? `!${o.error ?? ''}`))].sort();
}

async function waitServed(ip: string, names: readonly string[]): Promise<void> {
  const want = JSON.stringify([...names].sort());
  await pollUntil(
    `${ip} served by ${want}`,
    async () => (JSON.stringify(await answering(ip)) === want ? true : undefined),
    30_000,
    100,
  );
}

/** The ConfigMap in deploy/ with its REPLACE values filled in for the test cluster. */
function configMapData(mode: 'iptables' | 'nftables'): Record<string, string> {
  const cm = parse(readFileSync(CONFIGMAP, 'utf8')) as { data: Record<string, string> };
  const config = cm.data['config.conf'];
  const kubeconfig = cm.data['kubeconfig.conf'];
  assert.ok(config && kubeconfig, 'config.conf and kubeconfig.conf in deploy/configmap.yaml');
  assert.match(config, /^clusterCIDR: .*$/m);
  assert.match(config, /^mode: iptables$/m);
  assert.match(kubeconfig, /server: https:\/\/control-plane\.example\.invalid:6443/);
  return {
    'config.conf':
      config
        .replace(/^clusterCIDR: .*$/m, 'clusterCIDR: 10.244.0.0/16,fd00:10:244::/48')
        .replace(/^mode: iptables$/m, `mode: ${mode}`) +
      // The test's node is a network namespace, where the machine-wide nf_conntrack_max cannot
      // (and must not) be changed: leave it alone, as the other kernel tests do.
      '\nconntrack:\n  maxPerCore: 0\n',
    // The in-repo API server speaks plain HTTP on node1's loopback.
    'kubeconfig.conf': kubeconfig
      .replace('https://control-plane.example.invalid:6443', 'http://127.0.0.1:6443')
      .replace(/^\s*certificate-authority: .*\n/m, ''),
  };
}

/** Starts the DaemonSet's pod from the image in node1 (hostNetwork), like the kubelet would. */
function startPod(mode: 'iptables' | 'nftables'): void {
  const configMap = projectConfigMap(configMapData(mode));
  const serviceAccount = projectConfigMap({ token: 'test-token', namespace: 'kube-system', 'ca.crt': '' });
  // Empty stand-ins for hostPath directories this machine lacks (it has no /lib/modules).
  const hostPaths = projectConfigMap({});
  scratch.push(configMap.remove, serviceAccount.remove, hostPaths.remove);
  const [program, ...args] = daemonSetPodCommand({
    spec: readDaemonSet(DAEMONSET),
    image: img(),
    nodeName: 'node1',
    configMapDirs: { 'kube-proxy': configMap.dir },
    serviceAccountDir: serviceAccount.dir,
    scratchDir: hostPaths.dir,
  });
  podLog = [];
  const child = c().topology.node1.ns.spawn(program, args);
  child.stderr?.on('data', (chunk: Buffer) => podLog.push(...chunk.toString().split('\n').filter(Boolean)));
  pod = child;
}

async function stopPod(): Promise<void> {
  if (pod) await stopProcess(pod);
  pod = undefined;
}

/** The DaemonSet's startup probe, as the kubelet sends it (the pod has the node's address). */
async function waitStarted(): Promise<void> {
  const probe = readDaemonSet(DAEMONSET).container.startupProbe?.httpGet;
  assert.ok(probe, 'the DaemonSet has an HTTP startup probe');
  const url = `http://${c().topology.node1.ipv4}:${String(probe.port)}${probe.path}`;
  await pollUntil(
    `the pod's startup probe ${url}`,
    async () => {
      if (pod?.exitCode !== null) throw new Error(`the pod exited: ${podLog.slice(-20).join('\n')}`);
      return (await c().httpGet(url)).status === 200 ? true : undefined;
    },
    30_000,
    200,
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\npod log:\n${podLog.slice(-30).join('\n')}`);
  });
}

async function debugProxy(): Promise<{ mode: string; families: { lastSync?: { backend?: string } }[] }> {
  return JSON.parse((await c().httpGet('http://127.0.0.1:10249/debug/proxy')).body) as {
    mode: string;
    families: { lastSync?: { backend?: string } }[];
  };
}

async function natHasKubeChains(ns: Netns): Promise<boolean> {
  for (const save of ['iptables-legacy-save', 'iptables-nft-save']) {
    const out = await ns.exec(save, ['-t', 'nat']).catch(() => ({ stdout: '' }));
    if (out.stdout.includes(':KUBE-SERVICES')) return true;
  }
  return false;
}

async function hasNftTable(ns: Netns): Promise<boolean> {
  return (await ns.exec('nft', ['list', 'tables'])).stdout.includes('table ip kube-proxy');
}

/** A file of the image, symlinks followed inside the image (the machine may lack the tool). */
const fileIn = (path: string) => {
  const full = pathInRoot(img().rootfs, path);
  return existsSync(full) && statSync(full).isFile();
};

test(
  'the image holds the proxy and its tools, and no compilers, package caches or Node.js',
  { skip },
  (t) => {
    const root = img().rootfs;
    assert.deepEqual(img().args, ['/usr/local/bin/kube-proxy'], 'the entrypoint is the single executable');
    assert.ok(img().env.some((e) => e.startsWith('PATH=') && e.includes('/usr/sbin')));
    for (const tool of [
      'usr/local/bin/kube-proxy',
      'usr/sbin/iptables-legacy-restore',
      'usr/sbin/iptables-nft-restore',
      'usr/sbin/ip6tables-legacy-save',
      'usr/sbin/ip6tables-nft-save',
      'usr/sbin/nft',
      'usr/sbin/conntrack',
      'usr/sbin/ipset',
      'usr/sbin/ipvsadm',
      'usr/sbin/sysctl',
      'usr/bin/ip',
      'usr/sbin/modprobe',
    ]) {
      assert.ok(fileIn(tool), `${tool} in the image`);
    }
    // Each runs in the image: its libraries are there (no /proc or network needed for these).
    for (const argv of [
      ['/usr/local/bin/kube-proxy', '--version'],
      ['iptables-legacy', '--version'],
      ['iptables-nft', '--version'],
      ['nft', '--version'],
      ['conntrack', '--version'],
      ['ip', '-V'],
      ['sysctl', '--version'],
      ['modprobe', '--version'],
    ]) {
      const run = spawnSync('chroot', [root, '/usr/bin/env', '-i', ...img().env, ...argv], {
        encoding: 'utf8',
      });
      assert.equal(run.status, 0, `${argv.join(' ')} in the image: ${run.stderr}`);
    }
    for (const absent of [
      'usr/bin/gcc',
      'usr/bin/cc',
      'usr/bin/g++',
      'usr/bin/make',
      'usr/bin/node',
      'usr/local/bin/node',
    ]) {
      assert.ok(!existsSync(pathInRoot(root, absent)), `no ${absent} in the image`);
    }
    assert.deepEqual(
      readdirSync(join(root, 'var/cache/apt')).filter((f) => f !== 'archives'),
      [],
      'no apt caches',
    );
    assert.deepEqual(
      readdirSync(join(root, 'var/lib/apt/lists')).filter((f) => f !== 'partial'),
      [],
      'no apt lists',
    );
    const size = statSync(IMAGE_ARCHIVE).size;
    t.diagnostic(`image archive ${(size / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(size < 300 * 2 ** 20, `image archive ${String(size)} bytes`);
  },
);

test('the DaemonSet in deploy/ runs this image', () => {
  const container = readDaemonSet(DAEMONSET).container;
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
    .version;
  assert.match(container.image, new RegExp(`/kube-proxy-ts:${version.replaceAll('.', '\\.')}$`));
  assert.deepEqual(container.command?.[0], '/usr/local/bin/kube-proxy');
});

test(
  "docs/deploy.md A: the running kube-proxy is replaced by the image's pod; Services keep working and new ones are programmed",
  { skip },
  async () => {
    const before = await debugProxy();
    const backend = before.families[0]?.lastSync?.backend;
    // The old pod goes: the rules stay, so traffic keeps flowing while no proxy runs.
    await c().stopProxy();
    assert.deepEqual(await answering('10.96.0.10'), ['a', 'c']);
    startPod('iptables');
    await waitStarted();
    assert.equal((await c().httpGet('http://127.0.0.1:10249/proxyMode')).body, 'iptables');
    // The image's iptables commands detected the backend the previous proxy's rules use.
    const now = await debugProxy();
    assert.equal(now.families[0]?.lastSync?.backend, backend, JSON.stringify(now));
    assert.deepEqual(await answering('10.96.0.10'), ['a', 'c']);
    await addService('web2', '10.96.0.11', ['c']);
    await waitServed('10.96.0.11', ['c']);
  },
);

test(
  'docs/deploy.md: switching to nftables in the ConfigMap and restarting moves the rules',
  { skip },
  async () => {
    await stopPod();
    startPod('nftables');
    await waitStarted();
    assert.equal((await c().httpGet('http://127.0.0.1:10249/proxyMode')).body, 'nftables');
    await waitServed('10.96.0.11', ['c']);
    assert.deepEqual(await answering('10.96.0.10'), ['a', 'c']);
    const node1 = c().topology.node1.ns;
    assert.ok(await hasNftTable(node1), 'the nftables table is there');
    await pollUntil('the iptables KUBE-* chains removed', async () =>
      (await natHasKubeChains(node1)) ? undefined : true,
    );
  },
);

test(
  'docs/deploy.md: going back to the previous kube-proxy takes the rules over again',
  { skip },
  async () => {
    await stopPod();
    await c().restartProxy('iptables');
    // Until this mode's first sync is in and the nftables table is cleaned up, the table the pod
    // left carries some of the traffic as it last knew it (docs/reliability.md, restarts).
    await waitServed('10.96.0.10', ['a', 'c']);
    await waitServed('10.96.0.11', ['c']);
    const node1 = c().topology.node1.ns;
    assert.ok(await natHasKubeChains(node1));
    await pollUntil('the nftables table removed', async () =>
      (await hasNftTable(node1)) ? undefined : true,
    );
  },
);
