// Issue 14 item 3, end to end: the real kube-proxy asks the API server for protobuf (as upstream
// does by default), the in-repo API server answers its lists and watches in protobuf, and
// traffic follows the Services and EndpointSlices it decoded, through changes that arrive on the
// watch; its rest_client_* metrics say what it did, with upstream's labels.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil } from '../support/netns.ts';
import { endpointSlice, service } from '../support/objects.ts';

const skip = kernelSkipReason();
const PROTOBUF = 'application/vnd.kubernetes.protobuf';
let cluster: Cluster | undefined;
const c = () => {
  if (!cluster) throw new Error('cluster did not start');
  return cluster;
};

const answeredBy = async (ip: string): Promise<string | undefined> => {
  const [outcome] = await c().topology.probe(c().topology.pod('client').ns, {
    host: ip,
    port: 80,
    timeoutMs: 300,
  });
  return outcome?.ok === true ? outcome.name : undefined;
};

function slice(pod: 'a' | 'b') {
  return endpointSlice({
    service: 'web',
    name: 'web-v4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ ip: c().topology.pod(pod).ipv4, node: 'node1' }],
  });
}

before(async () => {
  if (skip) return;
  cluster = await Cluster.start({
    mode: 'nftables',
    tag: 'kppb',
    pods: [
      { name: 'a', node: 'node1' },
      { name: 'b', node: 'node1' },
      { name: 'client', node: 'node1' },
    ],
  });
});

after(async () => {
  await cluster?.destroy();
  await cleanupNetns();
});

test('kube-proxy lists and watches in protobuf, and traffic follows what it decoded', { skip }, async () => {
  await c().api.create(
    service({
      name: 'web',
      clusterIPs: ['10.96.0.20'],
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    }),
  );
  const created = await c().api.create(slice('a'));
  await pollUntil(
    'web to answer from a',
    async () => ((await answeredBy('10.96.0.20')) === 'a' ? true : undefined),
    20_000,
  );
  // A change that arrives on the (protobuf) watch.
  await c().api.update({ ...slice('b'), metadata: { ...created.metadata } });
  await pollUntil(
    'web to answer from b',
    async () => ((await answeredBy('10.96.0.20')) === 'b' ? true : undefined),
    20_000,
  );

  const fromProxy = (await c().api.requests()).filter((r) =>
    (r.headers['user-agent'] ?? '').startsWith('kube-proxy/'),
  );
  const gets = fromProxy.filter((r) => r.method === 'GET');
  assert.ok(
    gets.length >= 6,
    `node, services and slices were listed and watched: ${gets.map((r) => r.url).join(', ')}`,
  );
  for (const r of gets) {
    assert.equal(r.headers['accept'], `${PROTOBUF}, application/json`, r.url);
    assert.ok(r.served.startsWith(PROTOBUF), `${r.url} was answered with ${r.served}`);
  }
  assert.ok(
    gets.some(
      (r) => r.url.startsWith('/apis/discovery.k8s.io/v1/endpointslices?') && r.url.includes('watch=1'),
    ),
  );
  assert.match(
    fromProxy[0]?.headers['user-agent'] ?? '',
    /^kube-proxy\/v\d+\.\d+\.\d+ \(linux\/[a-z0-9]+\) kubernetes\/([0-9a-f]{7}|unknown)$/,
  );

  const metrics = await c().httpGet('http://127.0.0.1:10249/metrics');
  assert.match(
    metrics.body,
    /rest_client_requests_total\{code="200",method="GET",host="127\.0\.0\.1:6443"\} \d+/,
  );
  assert.match(
    metrics.body,
    /rest_client_request_duration_seconds_bucket\{le="0\.005",verb="GET",host="127\.0\.0\.1:6443"\}/,
  );
  assert.match(
    metrics.body,
    /rest_client_rate_limiter_duration_seconds_count\{verb="GET",host="127\.0\.0\.1:6443"\} \d+/,
  );
});
