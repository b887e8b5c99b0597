import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter } from 'prom-client';
import { runDaemon } from '../../../src/daemon/daemon.ts';
import type { ModeDefinition } from '../../../src/dataplane/common/mode.ts';
import { FakeHost } from '../../../src/host/fake.ts';
import type { KubeClient } from '../../../src/k8s/client.ts';
import type { IPFamily } from '../../../src/model/types.ts';
import type { Backend } from '../../../src/sync/backend.ts';
import { startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { pollUntil } from '../../support/netns.ts';
import { endpointSlice, node, service } from '../../support/objects.ts';
import { clientFor, FAST } from '../k8s/helpers.ts';

/** A mode whose backends program nothing and record what the daemon did with them. */
function recordingMode() {
  const events: string[] = [];
  const backends: Backend[] = [];
  const mode: ModeDefinition = {
    name: 'recording',
    xtablesOwners: [],
    cleaner: () => ({ mode: 'recording', cleanup: () => Promise.resolve() }),
    setUp: ({ registry }) => {
      new Counter({ name: 'kubeproxy_recording_mode_metric_total', help: 'test', registers: [registry] });
      return {
        supportsFamily: () => Promise.resolve(true),
        createBackend: (family: IPFamily) => {
          const backend: Backend = {
            family,
            mode: 'recording',
            sync: (request) => {
              events.push(`sync ${family}`);
              return Promise.resolve({ full: request.full, renderSeconds: 0, applySeconds: 0 });
            },
            start: () => {
              events.push(`start ${family}`);
              return Promise.resolve();
            },
            close: () => {
              events.push(`close ${family}`);
              return Promise.resolve();
            },
          };
          backends.push(backend);
          return Promise.resolve(backend);
        },
      };
    },
  };
  return { mode, events, backends };
}

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

test('the daemon runs one backend per family, records what was applied, and closes the backends on stop', async () => {
  server.create(node({ name: 'node1', ips: ['192.0.2.11', 'fd00::11'], podCIDRs: ['10.244.1.0/24'] }));
  server.create(service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80 }] }));
  server.create(
    endpointSlice({
      service: 'web',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ ip: '10.244.1.5', node: 'node1' }],
    }),
  );
  const { mode, events } = recordingMode();
  const host = new FakeHost({ ipv6: true });
  const fatal: string[] = [];
  const daemon = await runDaemon({
    mode,
    dataplane: {
      masqueradeBit: 14,
      masqueradeAll: false,
      detectLocalMode: 'ClusterCIDR',
      clusterCIDRs: [],
      bridgeInterface: '',
      interfaceNamePrefix: '',
      // TEST-NET-2 holds no address of the fake host: the service health check servers listen nowhere.
      nodePortAddresses: { kind: 'cidrs', cidrs: ['198.51.100.0/24'] },
      localhostNodePorts: true,
      syncPeriodMs: 30_000,
    },
    nodeName: 'node1',
    client,
    syncPeriodMs: 30_000,
    minSyncPeriodMs: 0,
    healthz: undefined,
    metrics: undefined,
    bindAddressHardFail: false,
    bindAddress: undefined,
    conntrack: {
      maxPerCore: 0,
      min: 0,
      tcpEstablishedTimeoutSeconds: 0,
      tcpCloseWaitTimeoutSeconds: 0,
      tcpBeLiberal: false,
      udpTimeoutSeconds: 0,
      udpStreamTimeoutSeconds: 0,
    },
    oomScoreAdj: -999,
    initOnly: false,
    requirePodCIDRs: false,
    configz: () => ({}),
    onFatal: (message) => fatal.push(message),
    host,
    watchTuning: FAST,
  });
  try {
    assert.deepEqual(
      daemon.syncs.map((sync) => sync.family),
      ['IPv4', 'IPv6'],
    );
    const applied = await pollUntil(
      'the IPv4 service port applied',
      () => {
        const state = daemon.lastApplied('IPv4');
        return state && state.servicePorts.size > 0 ? state : undefined;
      },
      5_000,
      5,
    );
    assert.deepEqual([...applied.servicePorts.keys()], ['default/web:http/TCP']);
    assert.equal(daemon.lastApplied('IPv6')?.servicePorts.size, 0);
    assert.deepEqual(host.oomScoreAdjWrites, [-999]);
    assert.match(
      (await daemon.metrics?.registry.metrics()) ?? '',
      /# TYPE kubeproxy_recording_mode_metric_total counter/,
    );
    assert.deepEqual(events.slice(0, 2).sort(), ['start IPv4', 'start IPv6']);
  } finally {
    await daemon.stop();
  }
  assert.deepEqual(events.slice(-2).sort(), ['close IPv4', 'close IPv6']);
  assert.deepEqual(fatal, []);
});
