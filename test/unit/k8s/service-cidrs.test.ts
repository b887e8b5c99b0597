// ServiceCIDRs through the intake: served, they reach every family's model and ask for a sync;
// on an API server without them (404) the proxy goes on, with one warning, asking again quietly.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Intake } from '../../../src/k8s/intake.ts';
import { SERVICE_CIDRS_PATH } from '../../../src/k8s/watches.ts';
import { createProxyMetrics } from '../../../src/metrics/proxy.ts';
import { startFakeApiServer } from '../../support/apiserver.ts';
import { pollUntil } from '../../support/netns.ts';
import { service } from '../../support/objects.ts';
import { captureLogs, clientFor, FAST, listRequests } from './helpers.ts';

const serviceCIDR = (name: string, cidrs: string[]) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'ServiceCIDR',
  metadata: { name },
  spec: { cidrs },
});

function intakeFor(client: ReturnType<typeof clientFor>, retryMs?: number): Intake {
  return new Intake({
    client,
    nodeName: 'node-a',
    proxyStartTimeMs: Date.now(),
    metrics: createProxyMetrics({ defaultMetrics: false }),
    onProblem: () => undefined,
    tuning: FAST,
    ...(retryMs !== undefined ? { serviceCIDRNotFoundRetryMs: retryMs } : {}),
  });
}

describe('Intake: ServiceCIDRs', () => {
  test('every ServiceCIDR reaches the models of its family; a change asks for a sync', async () => {
    const server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
    const client = clientFor(server);
    server.create(serviceCIDR('kubernetes', ['10.96.0.0/16', 'fd00:10:96::/112']));
    const intake = intakeFor(client);
    let changes = 0;
    intake.onChange(() => changes++);
    try {
      intake.start();
      const [v4, v6] = intake.useFamilies(['IPv4', 'IPv6']);
      assert.ok(v4 && v6);
      await pollUntil('ServiceCIDRs listed', () => (v4.serviceCIDRs.length > 0 ? true : undefined), 5_000, 5);
      assert.deepEqual(v4.serviceCIDRs, ['10.96.0.0/16']);
      assert.deepEqual(v6.serviceCIDRs, ['fd00:10:96::/112']);
      const before = changes;
      server.create(serviceCIDR('extra', ['10.100.0.0/24']));
      await pollUntil('the new one', () => (v4.serviceCIDRs.length === 2 ? true : undefined), 5_000, 5);
      assert.ok(changes > before, 'asked for a sync');
      assert.equal(v4.hasPendingChanges(), true);
      assert.deepEqual(v4.snapshot().serviceCIDRs, ['10.100.0.0/24', '10.96.0.0/16']);
      server.delete('ServiceCIDR', '', 'extra');
      await pollUntil('deleted', () => (v4.serviceCIDRs.length === 1 ? true : undefined), 5_000, 5);
    } finally {
      await intake.stop();
      client.close();
      await server.close();
    }
  });

  test('an API server without ServiceCIDRs: the proxy carries on, warns once, and asks again', async () => {
    const server = await startFakeApiServer({ bookmarkIntervalMs: 0, unservedResources: ['servicecidrs'] });
    const client = clientFor(server);
    server.create(service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80 }] }));
    const logs = captureLogs();
    const intake = intakeFor(client, 50);
    try {
      intake.start();
      let synced = false;
      intake.whenSynced(() => (synced = true));
      await pollUntil('Services and slices synced', () => (synced ? true : undefined), 5_000, 5);
      const [model] = intake.useFamilies(['IPv4']);
      assert.ok(model);
      await pollUntil(
        'three tries',
        () => (listRequests(server, SERVICE_CIDRS_PATH).length >= 3 ? true : undefined),
        5_000,
        5,
      );
      const warnings = logs.lines.filter((line) =>
        line.includes('does not serve networking.k8s.io/v1 ServiceCIDRs'),
      );
      assert.equal(warnings.length, 1, logs.lines.join('\n'));
      assert.deepEqual(model.serviceCIDRs, []);
      assert.equal(model.snapshot().servicePorts.size, 1, 'Services work without ServiceCIDRs');
      assert.ok(!logs.lines.some((line) => line.includes('Failed to list')), 'no error per try');
    } finally {
      logs.restore();
      await intake.stop();
      client.close();
      await server.close();
    }
  });
});
