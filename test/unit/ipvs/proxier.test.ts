// The IPVS proxier against a fake kernel (fake-kernel.ts): start-up checks and sysctls, syncs
// that write only what changed, graceful termination on its own timer, the stale-server sweep
// and excludeCIDRs, and failures.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cleanupIpvs } from '../../../src/dataplane/ipvs/cleanup.ts';
import { createIpvsProxier, type IpvsProxierOptions } from '../../../src/dataplane/ipvs/proxier.ts';
import { batchFailures } from '../../../src/dataplane/ipvs/host.ts';
import { FakeHost } from '../../../src/host/fake.ts';
import { nodePortAddressesFor } from '../../../src/plan/node-ports.ts';
import { endpointSlice, node, service, type EndpointSpec } from '../../support/objects.ts';
import { modelWith, NODE } from '../conntrack/snapshot.ts';
import { FakeKernel } from './fake-kernel.ts';
import type { ProxyModel } from '../../../src/model/tracker.ts';

const SYSCTLS = {
  'net/ipv4/vs/conntrack': '0',
  'net/ipv4/vs/conn_reuse_mode': '1',
  'net/ipv4/vs/expire_nodest_conn': '0',
  'net/ipv4/vs/expire_quiescent_template': '0',
  'net/ipv4/ip_forward': '1',
  'net/ipv4/conf/all/arp_ignore': '0',
  'net/ipv4/conf/all/arp_announce': '0',
};

const OPTIONS: IpvsProxierOptions = {
  family: 'IPv4',
  scheduler: 'rr',
  masqueradeBit: 14,
  masqueradeAll: false,
  localDetector: { kind: 'cidr', cidr: '10.244.0.0/16' },
  nodePortAddresses: nodePortAddressesFor({ kind: 'all' }, 'IPv4', []),
  randomFully: true,
  backend: 'nft',
  syncPeriodMs: 3_600_000,
};

function setup(extra: Partial<IpvsProxierOptions> = {}, release = '6.1.0-37-amd64') {
  const kernel = new FakeKernel();
  const host = new FakeHost({ sysctls: SYSCTLS });
  const proxier = createIpvsProxier(
    { ...OPTIONS, ...extra },
    { run: kernel.run, sysctl: host.sysctl, kernelRelease: release },
  );
  const model = modelWith('IPv4', []);
  model.setNode(node({ name: NODE, ips: ['192.168.1.10'], podCIDRs: ['10.244.1.0/24'] }));
  return { kernel, host, proxier, model };
}

/** A proxier whose clock the test moves. */
function timed() {
  let clock = 1_000_000;
  const kernel = new FakeKernel();
  const host = new FakeHost({ sysctls: SYSCTLS });
  const proxier = createIpvsProxier(OPTIONS, {
    run: kernel.run,
    sysctl: host.sysctl,
    kernelRelease: '6.1.0-37-amd64',
    now: () => clock,
    random: () => 0,
  });
  const model = modelWith('IPv4', []);
  model.setNode(node({ name: NODE, ips: ['192.168.1.10'], podCIDRs: ['10.244.1.0/24'] }));
  const advance = (ms: number) => {
    clock += ms;
  };
  return { kernel, proxier, model, advance };
}

function web(model: ProxyModel, endpoints: EndpointSpec[], protocol: 'TCP' | 'UDP' = 'TCP'): void {
  model.upsertService(
    service({
      name: 'web',
      type: 'NodePort',
      clusterIPs: ['10.96.0.10'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol }],
    }),
  );
  const slice = endpointSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints });
  model.upsertSlice({ ...slice, ports: (slice.ports ?? []).map((p) => ({ ...p, protocol })) });
}

const A: EndpointSpec = { ip: '10.244.1.5', node: NODE };
const B: EndpointSpec = { ip: '10.244.2.7', node: 'node2' };
const C: EndpointSpec = { ip: '10.244.2.8', node: 'node2' };

function ipvsadmInputs(kernel: FakeKernel): string[] {
  return kernel.inputs.filter((i) => i.file === 'ipvsadm').map((i) => i.input);
}

describe('IPVS proxier start', () => {
  test('sets the IPVS sysctls that differ, probes the scheduler, sets the timeouts', async () => {
    const { kernel, host, proxier } = setup({
      settings: {
        scheduler: 'lc',
        excludeCIDRs: [],
        strictARP: true,
        tcpTimeoutSeconds: 900,
        tcpFinTimeoutSeconds: 0,
        udpTimeoutSeconds: 300,
      },
      scheduler: 'lc',
    });
    await proxier.init();
    assert.deepEqual(host.sysctlWrites, [
      { key: 'net/ipv4/vs/conntrack', value: '1' },
      { key: 'net/ipv4/vs/expire_nodest_conn', value: '1' },
      { key: 'net/ipv4/vs/expire_quiescent_template', value: '1' },
      { key: 'net/ipv4/conf/all/arp_ignore', value: '1' },
      { key: 'net/ipv4/conf/all/arp_announce', value: '2' },
    ]);
    // The probe service was created with the scheduler, then removed.
    assert.deepEqual(ipvsadmInputs(kernel), [
      '-A -t 198.51.100.0:20000 -s lc\n',
      '-D -t 198.51.100.0:20000\n',
    ]);
    assert.equal(kernel.services.size, 0);
    assert.deepEqual(kernel.timeouts, ['900', '0', '300']);
  });

  test('conn_reuse_mode=0 only on kernels from 4.1 to before 5.9', async () => {
    const { host, proxier } = setup({}, '5.4.0-150-generic');
    await proxier.init();
    assert.ok(host.sysctlWrites.some((w) => w.key === 'net/ipv4/vs/conn_reuse_mode' && w.value === '0'));
  });

  test('without ip_vs the error says so', async () => {
    const { kernel, proxier } = setup();
    kernel.ipvsAvailable = false;
    await assert.rejects(
      proxier.init(),
      /can't use the IPVS proxier: the ip_vs kernel modules are missing.*Protocol not available/,
    );
  });

  test('a scheduler that is no module name is refused naming the flag', () => {
    assert.throws(
      () =>
        createIpvsProxier(
          {
            ...OPTIONS,
            settings: {
              scheduler: 'fast est',
              excludeCIDRs: [],
              strictARP: false,
              tcpTimeoutSeconds: 0,
              tcpFinTimeoutSeconds: 0,
              udpTimeoutSeconds: 0,
            },
          },
          { run: new FakeKernel().run },
        ),
      /--ipvs-scheduler \(ipvs.scheduler\): "fast est" is not an IPVS scheduler name/,
    );
  });
});

describe('IPVS proxier syncs', () => {
  test('the first sync creates kube-ipvs0, binds the cluster IP, and programs servers, sets and rules', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A, B]);
    const result = await proxier.sync({ snapshot: model.snapshot(), full: true });
    assert.equal(result.full, true);
    assert.ok(kernel.linkExists);
    assert.deepEqual(kernel.bound(), ['10.96.0.10']);
    assert.equal(
      kernel.save(),
      [
        '-A -t 10.96.0.10:80 -s rr',
        '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1',
        '-a -t 10.96.0.10:80 -r 10.244.2.7:8080 -m -w 1',
        '-A -t 192.168.1.10:30080 -s rr',
        '-a -t 192.168.1.10:30080 -r 10.244.1.5:8080 -m -w 1',
        '-a -t 192.168.1.10:30080 -r 10.244.2.7:8080 -m -w 1',
        '',
      ].join('\n'),
    );
    assert.deepEqual([...(kernel.sets.get('KUBE-CLUSTER-IP') ?? [])], ['10.96.0.10,tcp:80']);
    assert.deepEqual([...(kernel.sets.get('KUBE-NODE-PORT-TCP') ?? [])], ['30080']);
    assert.equal(kernel.sets.size, 17);
    const rules = kernel.inputs.filter((i) => i.file === 'iptables-nft-restore').map((i) => i.input);
    assert.ok(
      rules.some((text) =>
        text.includes(
          '-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT',
        ),
      ),
    );
  });

  test('a change writes only its difference, without reading the kernel or rewriting unchanged rules', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A, B]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    kernel.calls.length = 0;
    kernel.inputs.length = 0;
    web(model, [A, B, C]);
    const result = await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(result.full, false);
    assert.deepEqual(ipvsadmInputs(kernel), [
      '-a -t 10.96.0.10:80 -r 10.244.2.8:8080 -m -w 1\n-a -t 192.168.1.10:30080 -r 10.244.2.8:8080 -m -w 1\n',
    ]);
    assert.ok(
      !kernel.calls.some((call) => call === 'ipvsadm -S -n' || call === 'ipset save'),
      kernel.calls.join('\n'),
    );
    assert.ok(
      !kernel.calls.some((call) => call.includes('iptables-nft-restore')),
      'rules unchanged: no restore',
    );
    // Nothing changed at all: no ipvsadm, ipset or iptables run.
    kernel.calls.length = 0;
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.deepEqual(kernel.calls, ['ip -j addr show']);
  });

  test('a removed TCP real server with connections drains at weight 0 and goes once they end (own timer)', async () => {
    const { kernel, proxier, model } = setup({ gracefulIntervalMs: 20 });
    await proxier.start?.();
    try {
      web(model, [A, B]);
      await proxier.sync({ snapshot: model.snapshot(), full: true });
      kernel.setConnections('-t 10.96.0.10:80', '10.244.2.7:8080', 1, 0);
      web(model, [A]);
      await proxier.sync({ snapshot: model.snapshot(), full: false });
      const clusterIP = kernel.services.get('-t 10.96.0.10:80');
      assert.ok(clusterIP);
      assert.equal(clusterIP.dests.get('10.244.2.7:8080')?.weight, 0, 'drains with weight 0');
      // The NodePort server had no connections: deleted at once.
      assert.equal(kernel.services.get('-t 192.168.1.10:30080')?.dests.has('10.244.2.7:8080'), false);
      assert.deepEqual([...proxier.graceful.keys()], ['10.96.0.10:80/TCP/10.244.2.7:8080']);
      // A later sync leaves the draining server alone.
      await proxier.sync({ snapshot: model.snapshot(), full: false });
      assert.equal(clusterIP.dests.get('10.244.2.7:8080')?.weight, 0);
      kernel.setConnections('-t 10.96.0.10:80', '10.244.2.7:8080', 0, 0);
      const deadline = Date.now() + 5000;
      while (clusterIP.dests.has('10.244.2.7:8080') && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(clusterIP.dests.has('10.244.2.7:8080'), false, 'deleted once its connections ended');
      assert.equal(proxier.graceful.keys().size, 0);
    } finally {
      await proxier.close?.();
    }
  });

  test('a draining real server that comes back is re-added with weight 1', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A, B]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    kernel.setConnections('-t 10.96.0.10:80', '10.244.2.7:8080', 3, 0);
    web(model, [A]);
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    web(model, [A, B]);
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(kernel.services.get('-t 10.96.0.10:80')?.dests.get('10.244.2.7:8080')?.weight, 1);
    assert.equal(proxier.graceful.keys().size, 0);
  });

  test('UDP real servers are deleted at once', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A, B], 'UDP');
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    kernel.setConnections('-u 10.96.0.10:80', '10.244.2.7:8080', 0, 4);
    web(model, [A], 'UDP');
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(kernel.services.get('-u 10.96.0.10:80')?.dests.has('10.244.2.7:8080'), false);
  });

  test('a deleted Service loses its servers, address and set members; foreign servers go unless excluded', async () => {
    const { kernel, proxier, model } = setup({
      settings: {
        scheduler: '',
        excludeCIDRs: ['172.16.0.0/12'],
        strictARP: false,
        tcpTimeoutSeconds: 0,
        tcpFinTimeoutSeconds: 0,
        udpTimeoutSeconds: 0,
      },
    });
    web(model, [A]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    kernel.services.set('-t 172.16.0.1:443', {
      proto: '-t',
      addr: '172.16.0.1:443',
      scheduler: 'wlc',
      persistent: 0,
      flags: '',
      dests: new Map(),
    });
    kernel.services.set('-t 10.1.0.1:443', {
      proto: '-t',
      addr: '10.1.0.1:443',
      scheduler: 'wlc',
      persistent: 0,
      flags: '',
      dests: new Map(),
    });
    model.deleteService(
      service({ name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80 }] }),
    );
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    assert.deepEqual([...kernel.services.keys()], ['-t 172.16.0.1:443']);
    assert.deepEqual(kernel.bound(), []);
    assert.deepEqual([...(kernel.sets.get('KUBE-CLUSTER-IP') ?? [])], []);
  });

  test('service addresses are bound in one ip process; a failing address is named', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A]);
    model.upsertService(
      service({ name: 'api', clusterIPs: ['10.96.0.11'], ports: [{ name: 'http', port: 80 }] }),
    );
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    assert.deepEqual(kernel.bound().sort(), ['10.96.0.10', '10.96.0.11']);
    assert.equal(kernel.calls.filter((c) => c.startsWith('ip -force -batch')).length, 1);
    assert.equal(kernel.calls.filter((c) => c.startsWith('ip addr')).length, 0);
    // What ip -force -batch prints for failing lines: the error, then the line number.
    const stderr =
      'Error: ipv4: Address already assigned.\nCommand failed -:2\nCannot find device "x"\nCommand failed -:3\n';
    assert.deepEqual(batchFailures(stderr, ['10.0.0.1', '10.0.0.2', '10.0.0.3']), [
      { address: '10.0.0.2', error: 'Error: ipv4: Address already assigned.' },
      { address: '10.0.0.3', error: 'Cannot find device "x"' },
    ]);
  });

  test('a failed iptables-restore fails the sync; the next one reads the kernel again', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A]);
    kernel.failRestore = true;
    await assert.rejects(
      proxier.sync({ snapshot: model.snapshot(), full: true }),
      /iptables-nft-restore failed/,
    );
    kernel.calls.length = 0;
    const result = await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(result.full, true);
    assert.ok(kernel.calls.includes('ipvsadm -S -n'));
  });

  test('lines ipvsadm refuses are logged, the sync carries on; the check brings a full sync that repairs', async () => {
    const { kernel, proxier, model, advance } = timed();
    web(model, [A]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    // Someone deletes our service behind our back; our record does not know.
    kernel.services.delete('-t 10.96.0.10:80');
    web(model, [A, B]);
    model.upsertService(
      service({ name: 'api', clusterIPs: ['10.96.0.11'], ports: [{ name: 'http', port: 80 }] }),
    );
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.ok(kernel.services.has('-t 10.96.0.11:80'), 'the other lines were applied');
    assert.ok(kernel.bound().includes('10.96.0.11'));
    advance(5_000);
    assert.equal(await proxier.rulesIntact(), false, 'the check asks for a full sync');
    const repaired = await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(repaired.full, true);
    assert.deepEqual(
      [...(kernel.services.get('-t 10.96.0.10:80')?.dests.keys() ?? [])],
      ['10.244.1.5:8080', '10.244.2.7:8080'],
    );
  });

  test('an ipvsadm that fails as a tool fails the sync after the rest is applied; the retry repairs', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    kernel.failIpvsadm = true;
    model.upsertService(
      service({ name: 'api', clusterIPs: ['10.96.0.11'], ports: [{ name: 'http', port: 80 }] }),
    );
    await assert.rejects(
      proxier.sync({ snapshot: model.snapshot(), full: false }),
      /ipvsadm failed, the virtual servers are not all applied: .*injected failure/,
    );
    assert.ok(kernel.bound().includes('10.96.0.11'), 'the addresses were bound before');
    assert.equal(kernel.services.has('-t 10.96.0.11:80'), false);
    kernel.failIpvsadm = false;
    const repaired = await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(repaired.full, true);
    assert.ok(kernel.services.has('-t 10.96.0.11:80'));
  });

  test('an ipset restore that fails fails the sync before any virtual server; the retry applies all', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    kernel.failIpset = true;
    model.upsertService(
      service({ name: 'api', clusterIPs: ['10.96.0.11'], ports: [{ name: 'http', port: 80 }] }),
    );
    await assert.rejects(proxier.sync({ snapshot: model.snapshot(), full: false }), /injected failure/);
    const inSets = (): boolean =>
      [...kernel.sets.values()].some((members) => [...members].some((m) => m.startsWith('10.96.0.11,')));
    assert.equal(inSets(), false);
    // The rules match the sets, so nothing after the sets is written while they are stale.
    assert.equal(kernel.services.has('-t 10.96.0.11:80'), false);
    assert.ok(kernel.services.has('-t 10.96.0.10:80'), 'the other Service is untouched');
    kernel.failIpset = false;
    const repaired = await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(repaired.full, true);
    assert.ok(inSets(), 'the new cluster IP is in its set');
    assert.ok(kernel.services.has('-t 10.96.0.11:80'));
  });

  test('a drain whose weight 0 ipvsadm could not write is tried again by the next sync', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A, B]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    kernel.setConnections('-t 10.96.0.10:80', '10.244.2.7:8080', 1, 0);
    kernel.failIpvsadm = true;
    web(model, [A]);
    await assert.rejects(proxier.sync({ snapshot: model.snapshot(), full: false }));
    assert.equal(proxier.graceful.keys().size, 0, 'not draining as far as the kernel knows');
    kernel.failIpvsadm = false;
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(kernel.services.get('-t 10.96.0.10:80')?.dests.get('10.244.2.7:8080')?.weight, 0);
    assert.deepEqual([...proxier.graceful.keys()], ['10.96.0.10:80/TCP/10.244.2.7:8080']);
  });

  test('a draining server that comes back while ipvsadm fails gets weight 1 from the retry', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A, B]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    kernel.setConnections('-t 10.96.0.10:80', '10.244.2.7:8080', 3, 0);
    web(model, [A]);
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    kernel.failIpvsadm = true;
    web(model, [A, B]);
    await assert.rejects(proxier.sync({ snapshot: model.snapshot(), full: false }));
    kernel.failIpvsadm = false;
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(kernel.services.get('-t 10.96.0.10:80')?.dests.get('10.244.2.7:8080')?.weight, 1);
  });
});

describe('IPVS integrity check', () => {
  test("kube-ipvs0 made again without this family's addresses (the other family's repair) is found", async () => {
    const { kernel, proxier, model, advance } = timed();
    web(model, [A]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    assert.equal(await proxier.rulesIntact(), true);
    await kernel.run('ip', ['link', 'del', 'kube-ipvs0']);
    await kernel.run('ip', ['link', 'add', 'kube-ipvs0', 'type', 'dummy']);
    advance(60_000);
    assert.equal(await proxier.rulesIntact(), false);
    const repaired = await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(repaired.full, true);
    assert.deepEqual(kernel.bound(), ['10.96.0.10']);
    assert.equal(await proxier.rulesIntact(), true);
  });

  test('a sync that could not bind an address is tried again after 5 s, then less often', async () => {
    const { kernel, proxier, model, advance } = timed();
    web(model, [A]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    // The link goes between two syncs and the next one only adds a Service: its bind fails.
    await kernel.run('ip', ['link', 'del', 'kube-ipvs0']);
    model.upsertService(
      service({ name: 'api', clusterIPs: ['10.96.0.11'], ports: [{ name: 'http', port: 80 }] }),
    );
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    advance(1_000);
    assert.equal(await proxier.rulesIntact(), true, 'not before 5 s');
    advance(4_000);
    assert.equal(await proxier.rulesIntact(), false, 'after 5 s');
    // Still failing (the link is made again, but say the kernel refuses): the retry backs off.
    kernel.refuseBind = true;
    await proxier.sync({ snapshot: model.snapshot(), full: false });
    advance(5_000);
    assert.equal(await proxier.rulesIntact(), true, 'the second retry waits 10 s');
    advance(5_000);
    assert.equal(await proxier.rulesIntact(), false);
    kernel.refuseBind = false;
    const repaired = await proxier.sync({ snapshot: model.snapshot(), full: false });
    assert.equal(repaired.full, true);
    assert.deepEqual(kernel.bound().sort(), ['10.96.0.10', '10.96.0.11']);
    advance(60_000);
    assert.equal(await proxier.rulesIntact(), true);
  });
});

describe('IPVS cleanup', () => {
  test('removes our virtual servers, kube-ipvs0 and the sets; leaves foreign virtual servers', async () => {
    const { kernel, proxier, model } = setup();
    web(model, [A, B]);
    await proxier.sync({ snapshot: model.snapshot(), full: true });
    kernel.services.set('-t 10.1.0.1:443', {
      proto: '-t',
      addr: '10.1.0.1:443',
      scheduler: 'wlc',
      persistent: 0,
      flags: '',
      dests: new Map(),
    });
    const errors = await cleanupIpvs(kernel.run, { KUBE_PROXY_IPTABLES_BACKEND: 'nft' });
    assert.deepEqual(errors, []);
    // The cluster IP (bound on kube-ipvs0) and the NodePort (in our node-port set) were ours.
    assert.deepEqual([...kernel.services.keys()], ['-t 10.1.0.1:443']);
    assert.equal(kernel.linkExists, false);
    assert.equal(kernel.sets.size, 0);
  });
});
