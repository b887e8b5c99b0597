// The intake starts before the daemon knows its families: what a dropped family saw must leave
// no trace (problems, pending gauges), and the kept family must hold everything listed so far.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import { Intake } from '../../../src/k8s/intake.ts';
import type { KubeClient } from '../../../src/k8s/client.ts';
import type { Problem } from '../../../src/model/problem.ts';
import { createProxyMetrics } from '../../../src/metrics/proxy.ts';
import { startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { pollUntil } from '../../support/netns.ts';
import { endpointSlice, service } from '../../support/objects.ts';
import { clientFor, FAST } from './helpers.ts';

async function gaugeValues(gauge: {
  get(): Promise<{ values: readonly { labels: object; value: number }[] }>;
}): Promise<string[]> {
  return (await gauge.get()).values.map((v) => `${JSON.stringify(v.labels)}=${v.value}`).sort();
}

describe('Intake', () => {
  let server: FakeApiServer;
  let client: KubeClient;
  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    client = clientFor(server);
  });
  after(async () => {
    client.close();
    await server.close();
  });

  test('lists before the families are known; a dropped family leaves no problem and no gauge', async () => {
    const web = { name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80 }] };
    server.create(service(web));
    server.create(service({ name: 'v6only', clusterIPs: ['fd00::10'], ports: [{ name: 'http', port: 80 }] }));
    // No ipFamilies and an unparseable cluster IP: every family's model reports it.
    const bad: Service = service({ name: 'bad', clusterIPs: ['bogus'], ports: [{ port: 80 }] });
    delete bad.spec?.ipFamilies;
    delete bad.spec?.clusterIPs;
    server.create(bad);
    const node = 'node-a';
    server.create(
      endpointSlice({
        service: 'web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ ip: '10.0.0.5', node }],
      }),
    );
    server.create(
      endpointSlice({
        service: 'v6only',
        family: 'IPv6',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ ip: 'fd00::5', node }],
      }),
    );

    const metrics = createProxyMetrics({ defaultMetrics: false });
    const problems: Problem[] = [];
    let changes = 0;
    const intake = new Intake({
      client,
      nodeName: node,
      proxyStartTimeMs: Date.now(),
      metrics,
      onProblem: (problem) => problems.push(problem),
      tuning: FAST,
    });
    intake.onChange(() => changes++);
    try {
      intake.start();
      let synced = false;
      intake.whenSynced(() => (synced = true));
      await pollUntil('synced', () => (synced ? true : undefined), 5_000, 5);
      assert.equal(changes, 5, 'every event reached the models');
      assert.deepEqual(problems, [], 'held back until the families are known');
      assert.deepEqual(await gaugeValues(metrics.endpointChangesPending), ['{}=0']);

      const [model, ...others] = intake.useFamilies(['IPv4']);
      assert.ok(model);
      assert.equal(others.length, 0);
      // Read through a function: the earlier assertion narrowed `problems` to an empty list.
      const released = (): readonly Problem[] => problems;
      assert.deepEqual(
        released().map((p) => `${p.name} ${p.field}`),
        ['bad spec.clusterIP'],
        'once, for the kept family',
      );
      assert.deepEqual(await gaugeValues(metrics.endpointChangesPending), ['{}=1']);
      assert.deepEqual(
        await gaugeValues(metrics.serviceChangesPending),
        ['{}=1'],
        'web only: v6only is IPv6',
      );
      assert.deepEqual(await gaugeValues(metrics.serviceChangesTotal), ['{}=3']);
      assert.deepEqual(await gaugeValues(metrics.endpointChangesTotal), ['{}=2']);
      const snapshot = model.snapshot();
      assert.equal(snapshot.family, 'IPv4');
      assert.deepEqual([...snapshot.servicePorts.keys()], ['default/web:http/TCP']);
      assert.deepEqual(
        snapshot.servicePorts.get('default/web:http/TCP')?.endpoints.map((ep) => [ep.endpoint, ep.isLocal]),
        [['10.0.0.5:8080', true]],
      );

      // From now on only the kept family counts.
      server.create(
        endpointSlice({
          service: 'v6only',
          name: 'v6only-2',
          family: 'IPv6',
          ports: [{ name: 'http', port: 8080 }],
          endpoints: [{ ip: 'fd00::6', node }],
        }),
      );
      await pollUntil('event seen', () => (changes === 6 ? true : undefined), 5_000, 5);
      assert.deepEqual(await gaugeValues(metrics.endpointChangesPending), ['{}=1']);
      assert.throws(() => intake.useFamilies(['IPv4']), /twice/);
    } finally {
      await intake.stop();
    }
  });
});
