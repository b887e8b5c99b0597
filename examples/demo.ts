// `make demo`: a small sandbox cluster in network namespaces, the real kube-proxy (iptables mode)
// against the in-repo API server, and real curl requests to a Service's cluster IP.
// Everything lives in namespaces named with a unique prefix and is removed on exit (also Ctrl-C).
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import { readManifests } from '../test/support/apiserver-main.ts';
import { Cluster } from '../test/support/cluster.ts';
import { cleanupNetns, IS_ROOT, pollUntil } from '../test/support/netns.ts';
import type { KubeObj } from '../test/support/apiserver.ts';

const EXAMPLES = fileURLToPath(new URL('.', import.meta.url));
const bold = (text: string) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const step = (text: string) => process.stdout.write(`\n${bold(`==> ${text}`)}\n`);
const show = (text: string) => process.stdout.write(`${text.trimEnd()}\n`);

if (!IS_ROOT) {
  process.stderr.write(
    'make demo needs root: it creates network namespaces and programs iptables in them.\n',
  );
  process.exit(1);
}

step('Building a sandbox: node1 with pods web-1, web-2, web-3 and a client pod (network namespaces)');
const cluster = await Cluster.start({
  mode: 'iptables',
  tag: 'kpdemo',
  pods: [
    { name: 'web-1', node: 'node1' },
    { name: 'web-2', node: 'node1' },
    { name: 'web-3', node: 'node1' },
    { name: 'client', node: 'node1' },
  ],
  tcpPorts: [],
  httpPorts: [8080],
});

try {
  const t = cluster.topology;
  show(`namespaces: ${[t.node1.ns.name, ...[...t.pods.values()].map((p) => p.ns.name)].join(' ')}`);
  show('kube-proxy is running in node1:');
  show(
    `  ${['bin/kube-proxy', '--proxy-mode=iptables', '--kubeconfig=…', '--hostname-override=node1', '--cluster-cidr=10.244.0.0/16,…'].join(' ')}`,
  );

  step('Creating the objects in examples/web.yaml through the API (Service web, EndpointSlice with 2 pods)');
  const objects = readManifests(join(EXAMPLES, 'web.yaml'));
  for (const object of objects) {
    await cluster.api.create(object);
    show(
      `  created ${object.kind ?? '?'} ${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`,
    );
  }

  const curl = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const result = await t.pod('client').ns.exec('curl', ['-s', '--max-time', '2', 'http://10.96.0.10/']);
      show(`  client$ curl http://10.96.0.10/  →  ${result.stdout.trim()}`);
    }
  };
  await pollUntil('the Service to answer', async () => {
    const r = await t
      .pod('client')
      .ns.exec('curl', ['-s', '--max-time', '1', 'http://10.96.0.10/'])
      .catch(() => undefined);
    return r?.stdout.includes('hello') ? true : undefined;
  });
  step('curl the ClusterIP 10.96.0.10 from the client pod: answers come from different pods');
  await curl(6);

  step('Scaling: adding web-3 (10.244.1.13) to the EndpointSlice');
  const slice = objects.find((o) => o.kind === 'EndpointSlice') as (KubeObj & EndpointSlice) | undefined;
  if (!slice) throw new Error('examples/web.yaml has no EndpointSlice');
  const scaled: EndpointSlice = {
    ...slice,
    endpoints: [
      ...slice.endpoints,
      {
        addresses: ['10.244.1.13'],
        conditions: { ready: true },
        nodeName: 'node1',
        targetRef: { kind: 'Pod', name: 'web-3' },
      },
    ],
  };
  const started = Date.now();
  await cluster.api.update(scaled);
  await pollUntil('web-3 to answer', async () => {
    const r = await t.pod('client').ns.exec('curl', ['-s', '--max-time', '1', 'http://10.96.0.10/']);
    return r.stdout.includes('web-3') ? true : undefined;
  });
  show(`  web-3 answered ${String(Date.now() - started)} ms after the API write`);
  await curl(6);

  step('The rules kube-proxy wrote for default/web (iptables-save -t nat in node1)');
  const save = await t.node1.ns.exec('iptables-save', ['-t', 'nat']);
  const lines = save.stdout.split('\n');
  const svcJump = lines.find(
    (l) => l.startsWith('-A KUBE-SERVICES') && l.includes('default/web:http cluster IP'),
  );
  const svcChain = /-j (KUBE-SVC-\w+)/.exec(svcJump ?? '')?.[1] ?? '';
  const sepChains = new Set(
    lines
      .filter((l) => l.startsWith(`-A ${svcChain} `))
      .map((l) => /-j (KUBE-SEP-\w+)/.exec(l)?.[1])
      .filter(Boolean),
  );
  show(`  ${svcJump ?? '(no KUBE-SERVICES rule found)'}`);
  for (const line of lines.filter((l) => l.startsWith(`-A ${svcChain} `))) show(`  ${line}`);
  for (const line of lines.filter((l) => [...sepChains].some((sep) => l.startsWith(`-A ${String(sep)} `))))
    show(`  ${line}`);

  step('kube-proxy health and metrics (from inside node1)');
  show(`  /healthz → ${(await cluster.httpGet('http://127.0.0.1:10256/healthz')).body}`);
  const metrics = (await cluster.httpGet('http://127.0.0.1:10249/metrics')).body;
  for (const line of metrics
    .split('\n')
    .filter((l) => /^kubeproxy_sync_proxy_rules_(duration_seconds_count|last_timestamp_seconds)/.test(l))) {
    show(`  ${line}`);
  }

  step('kube-proxy log (at --v=2), last lines');
  for (const line of cluster
    .logs()
    .filter((l) => /Synced proxy rules|Service port programmed/.test(l))
    .slice(-4))
    show(`  ${line}`);
} finally {
  step('Removing the sandbox');
  await cluster.destroy();
  await cleanupNetns();
  show('  done: every namespace of the demo is gone');
}
