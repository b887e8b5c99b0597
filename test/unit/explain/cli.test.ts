// `kube-proxy explain` from manifests, from a state dump and from a running proxy's metrics
// server, and the debug routes' guards: what a user types and what they read back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { PROCESS_IO, runExplain, type CliIO } from '../../../src/cli/explain.ts';
import { main } from '../../../src/cli/main.ts';
import { dumpOf } from '../../../src/explain/dump.ts';
import { explain } from '../../../src/explain/engine.ts';
import { explainRoutes } from '../../../src/explain/routes.ts';
import type { Explanation } from '../../../src/explain/types.ts';
import { createProxyMetrics } from '../../../src/metrics/proxy.ts';
import { debugRoutesHandler, hostAllowed } from '../../../src/server/debug-routes.ts';
import { metricsHandler, serveHttp } from '../../../src/server/http.ts';
import { endpointSlice, node, service } from '../../support/objects.ts';
import { CLUSTERS } from '../flows/clusters.ts';
import { stateOfCluster } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'kp-explain-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], io: Partial<CliIO> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runExplain(argv, {
    ...PROCESS_IO,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    ...io,
  });
  return { code, stdout, stderr };
}

const manifests = [
  node({ name: 'node-a', ips: ['192.168.0.10'], podCIDRs: ['10.244.1.0/24'] }),
  service({
    name: 'web',
    type: 'NodePort',
    clusterIPs: ['10.96.0.10'],
    ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
    externalTrafficPolicy: 'Local',
  }),
  endpointSlice({
    service: 'web',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [
      { ip: '10.244.1.5', node: 'node-a' },
      { ip: '10.244.2.7', node: 'node-b' },
    ],
  }),
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other' } },
];

describe('kube-proxy explain -f', () => {
  const file = join(dir, 'cluster.yaml');
  writeFileSync(file, manifests.map((m) => stringify(m)).join('---\n'));
  const listDir = join(dir, 'list');
  mkdirSync(listDir);
  writeFileSync(
    join(listDir, 'all.json'),
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }),
  );
  writeFileSync(join(listDir, 'notes.txt'), 'not a manifest');

  test('a node port under eTP=Local from outside: the local endpoint, as JSON', async () => {
    const result = await run([
      '-f',
      file,
      '--cluster-cidr=10.244.0.0/16',
      '--proxy-mode',
      'nftables',
      '--src',
      '198.51.100.20',
      '--dst',
      '192.168.0.10',
      '--dport',
      '30080',
      '-o',
      'json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const e = JSON.parse(result.stdout) as Explanation;
    assert.equal(e.source.mode, 'nftables');
    assert.equal(e.source.node, 'node-a');
    assert.equal(e.match.kind, 'nodePort');
    assert.deepEqual(e.verdict.to, ['10.244.1.5:8080']);
    assert.equal(e.verdict.snat, false);
    assert.match(result.stderr, /ignoring "ConfigMap" "other"/);
  });

  test('a directory of Lists, text output, the mode from --mode', async () => {
    const result = await run([
      '-f',
      listDir,
      '--mode',
      'iptables',
      '--src',
      '10.244.1.9',
      '--dst',
      '10.96.0.10',
      '--dport',
      '80',
      '--cluster-cidr',
      '10.244.0.0/16',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Service {4}default\/web:http {3}\(clusterIP\)$/m);
    assert.match(
      result.stdout,
      /^Verdict {4}DNAT to 10\.244\.1\.5:8080 or 10\.244\.2\.7:8080, client address kept$/m,
    );
    assert.match(result.stdout, /-A KUBE-SERVICES .*-d 10\.96\.0\.10 .*-j KUBE-SVC-/);
  });

  test('bad input: a clear message and exit code 1', async () => {
    const missing = await run(['-f', file, '--dst', '10.96.0.10', '--dport', '80']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^Error: --src is required$/m);
    const badPort = await run(['-f', file, '--src', '10.0.0.1', '--dst', '10.96.0.10', '--dport', '80x']);
    assert.match(badPort.stderr, /--dport "80x" is not a port number/);
    const positional = await run(['web', '--src', '10.0.0.1']);
    assert.match(positional.stderr, /explain takes no positional arguments, got "web"/);
    const badFlag = await run([
      '-f',
      file,
      '--src',
      '10.0.0.1',
      '--dst',
      '10.96.0.10',
      '--dport',
      '80',
      '--no-such',
    ]);
    assert.equal(badFlag.code, 1);
    assert.match(badFlag.stderr, /no-such/);
    const twoSources = await run([
      '-f',
      file,
      '--state',
      file,
      '--src',
      '1.1.1.1',
      '--dst',
      '1.1.1.2',
      '--dport',
      '1',
    ]);
    assert.match(twoSources.stderr, /give one source of state/);
    const kernelOffline = await run([
      '-f',
      file,
      '--kernel',
      '--src',
      '1.1.1.1',
      '--dst',
      '1.1.1.2',
      '--dport',
      '1',
    ]);
    assert.match(kernelOffline.stderr, /--kernel needs the running proxy/);
  });

  test('the upstream command line is unchanged: positional arguments are still refused', async () => {
    assert.equal(await main(['foo']), 1);
  });
});

describe('kube-proxy explain --state', () => {
  test('a dump replays the node: the same explanation as on the state it was written from', async () => {
    const state = stateOfCluster(CLUSTERS.v4, 'nftables');
    const file = join(dir, 'dump.yaml');
    writeFileSync(file, stringify(dumpOf(state, { generatedAt: new Date(0) })));
    for (const query of [
      { src: '10.244.1.9', dst: '10.96.0.10', dport: 80 },
      { src: '192.0.2.100', dst: '192.168.0.10', dport: 30081 },
      { src: '192.0.2.100', dst: '192.168.0.10', dport: 30083 },
    ]) {
      const result = await run([
        '--state',
        file,
        '--src',
        query.src,
        '--dst',
        query.dst,
        '--dport',
        String(query.dport),
        '-o',
        'json',
      ]);
      assert.equal(result.code, 0, result.stderr);
      const replayed = JSON.parse(result.stdout) as Explanation;
      const original = explain(state, query);
      assert.deepEqual({ ...replayed, source: undefined }, { ...original, source: undefined });
      assert.equal(replayed.source.kind, 'dump');
    }
  });

  test('a tampered dump is refused, naming the field', async () => {
    const state = stateOfCluster(CLUSTERS.v4, 'iptables');
    const dump = dumpOf(state, { generatedAt: new Date(0) });
    const bad = structuredClone(dump);
    const first = bad.families[0]?.servicePorts[0];
    assert.ok(first);
    first.clusterIP = '10.96.0.010';
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify(bad));
    const result = await run(['--state', file, '--src', '10.0.0.1', '--dst', '10.96.0.10', '--dport', '80']);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /not a ProxyStateDump: families\.0\.servicePorts\.0\.clusterIP: not a canonical IP address/,
    );
  });
});

describe('kube-proxy explain --server and the debug routes', async () => {
  const state = stateOfCluster(CLUSTERS.v4, 'nftables');
  const server = serveHttp({
    name: 'metrics',
    host: '127.0.0.1',
    port: 0,
    handler: metricsHandler({
      metrics: createProxyMetrics(),
      mode: 'nftables',
      configz: () => ({}),
      routes: debugRoutesHandler(explainRoutes({ state: () => state })),
    }),
  });
  const port = await server.listening;
  after(() => server.close());

  function get(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  test('the CLI against the live server gives the engine answer', async () => {
    const result = await run([
      '--server',
      `http://127.0.0.1:${port}`,
      '--src',
      '10.244.1.9',
      '--dst',
      '10.96.0.10',
      '--dport',
      '80',
      '-o',
      'json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      JSON.parse(result.stdout),
      JSON.parse(JSON.stringify(explain(state, { src: '10.244.1.9', dst: '10.96.0.10', dport: 80 }))),
    );
  });

  test('a bad query is a 400 the CLI prints; an unreachable proxy is named', async () => {
    const bad = await run([
      '--server',
      `http://127.0.0.1:${port}`,
      '--src',
      '10.0.0.1',
      '--dst',
      'fd00::1',
      '--dport',
      '80',
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /a packet has one family/);
    const down = await run([
      '--server',
      'http://127.0.0.1:1',
      '--src',
      '10.0.0.1',
      '--dst',
      '10.0.0.2',
      '--dport',
      '80',
    ]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach kube-proxy at http:\/\/127\.0\.0\.1:1/);
  });

  test('guards: the debug header, the Host header; the state dump has no secrets', async () => {
    const noHeader = await get('/debug/proxy/state', { Host: `127.0.0.1:${port}` });
    assert.equal(noHeader.status, 403);
    const rebinding = await get('/debug/proxy/state', { Host: 'evil.example', 'X-Kube-Proxy-Debug': '1' });
    assert.equal(rebinding.status, 421);
    const dump = await get('/debug/proxy/state', { Host: `localhost:${port}`, 'X-Kube-Proxy-Debug': '1' });
    assert.equal(dump.status, 200);
    const body = JSON.parse(dump.body) as { kind: string; families: { servicePorts: unknown[] }[] };
    assert.equal(body.kind, 'ProxyStateDump');
    assert.equal(body.families[0]?.servicePorts.length, state.families[0]?.servicePorts.size);
    assert.doesNotMatch(dump.body, /token|kubeconfig|annotations|managedFields/i);
    assert.equal(hostAllowed('[::1]:10249'), true);
    assert.equal(hostAllowed('kube-proxy.example:10249'), false);
  });
});
