// The ConfigMap's files load with kube-proxy-ts's own loaders, through the exact command line the
// DaemonSet runs, and so does the config.conf kubeadm generates (the "existing ConfigMap works"
// promise of docs/deploy.md).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandLine, type ConfigIO, type ProxyRunOptions } from '../../../src/config/load.ts';
import { SERVICE_ACCOUNT_DIR, loadClientConfig } from '../../../src/k8s/kubeconfig.ts';
import { asArray, asString, at, findObject, loadManifests, parseYamlDocuments } from './manifests.ts';
import type { Json } from './manifests.ts';

const manifests = loadManifests();
const configMap = findObject(manifests, 'ConfigMap', 'kube-proxy');
const data = at(configMap, 'data') as Json;
const container = at(
  findObject(manifests, 'DaemonSet', 'kube-proxy'),
  'spec',
  'template',
  'spec',
  'containers',
  0,
) as Json;

const MOUNT = '/var/lib/kube-proxy';
const NODE = 'Worker-1.Example';
const TOKEN = 'header.payload.signature';
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

/** The pod's view of the files: the ConfigMap keys in its mount, the projected token and CA. */
function podFiles(overrides: Readonly<Record<string, string>> = {}): {
  io: ConfigIO;
  reads: string[];
} {
  const files: Record<string, string> = {
    [`${SERVICE_ACCOUNT_DIR}/token`]: `${TOKEN}\n`,
    [`${SERVICE_ACCOUNT_DIR}/ca.crt`]: CA,
  };
  for (const [key, value] of Object.entries(data)) files[`${MOUNT}/${key}`] = asString(value, key);
  Object.assign(files, overrides);
  const reads: string[] = [];
  return {
    reads,
    io: {
      readFile(path: string): string {
        reads.push(path);
        const text = files[path];
        if (text === undefined) throw new Error(`open ${path}: no such file or directory`);
        return text;
      },
    },
  };
}

/** The container's arguments after the program, with $(NODE_NAME) expanded as the kubelet does. */
function containerArgs(): string[] {
  const command = asArray(container['command'], 'command').map((a, i) => asString(a, `command[${i}]`));
  return command.slice(1).map((arg) => arg.replaceAll('$(NODE_NAME)', NODE));
}

function run(io: ConfigIO): { options: ProxyRunOptions; warnings: string[] } {
  const result = parseCommandLine(containerArgs(), io);
  if (result.kind !== 'run') assert.fail(`expected run, got ${JSON.stringify(result)}`);
  return { options: result.options, warnings: result.warnings };
}

const NODEPORT_WARNING = /^nodePortAddresses is unset/;

describe('ConfigMap kube-proxy: config.conf', () => {
  it('loads through the DaemonSet command line with only the expected warning', () => {
    const { io, reads } = podFiles();
    const { options, warnings } = run(io);
    assert.deepEqual(reads, [`${MOUNT}/config.conf`]);
    assert.equal(options.configFile, `${MOUNT}/config.conf`);
    assert.equal(options.cleanup, false);
    const config = options.config;
    assert.equal(config.mode, 'iptables');
    assert.equal(config.clusterCIDR, '10.244.0.0/16');
    assert.equal(config.clientConnection.kubeconfig, `${MOUNT}/kubeconfig.conf`);
    assert.equal(config.hostnameOverride, NODE.toLowerCase());
    assert.equal(config.healthzBindAddress, '0.0.0.0:10256');
    assert.equal(config.metricsBindAddress, '127.0.0.1:10249');
    // Upstream's default (NodePorts on every local IP) is kept on purpose; it warns at start.
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, NODEPORT_WARNING);
  });

  it('switches to nftables by changing only the mode line, with no warning', () => {
    const text = asString(data['config.conf'], 'config.conf');
    assert.match(text, /^mode: iptables$/m);
    const { io } = podFiles({
      [`${MOUNT}/config.conf`]: text.replace(/^mode: iptables$/m, 'mode: nftables'),
    });
    const { options, warnings } = run(io);
    assert.equal(options.config.mode, 'nftables');
    assert.deepEqual(options.config.nodePortAddresses, ['primary']);
    assert.deepEqual(warnings, []);
  });

  it("accepts the config.conf kubeadm generates (every field, Go's zero values)", () => {
    const { io } = podFiles({ [`${MOUNT}/config.conf`]: KUBEADM_CONFIG });
    const { options, warnings } = run(io);
    const config = options.config;
    // Zero values are defaulted as upstream does.
    assert.equal(config.mode, 'iptables');
    assert.equal(config.iptables.syncPeriod, '30s');
    assert.equal(config.iptables.masqueradeBit, 14);
    assert.equal(config.healthzBindAddress, '0.0.0.0:10256');
    assert.equal(config.clusterCIDR, '10.244.0.0/16');
    assert.equal(config.clientConnection.kubeconfig, `${MOUNT}/kubeconfig.conf`);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, NODEPORT_WARNING);
  });
});

describe('ConfigMap kube-proxy: kubeconfig.conf', () => {
  it("loads with the pod's service-account token and CA, re-readable for rotation", () => {
    const { io, reads } = podFiles();
    const { options } = run(io);
    reads.length = 0;
    const client = loadClientConfig({
      kubeconfig: options.config.clientConnection.kubeconfig,
      master: options.master,
      readFile: (path) => io.readFile(path),
      now: () => 0,
    });
    assert.equal(client.server, 'https://control-plane.example.invalid:6443');
    assert.equal(client.ca?.toString(), CA);
    assert.equal(client.insecureSkipTLSVerify, false);
    assert.equal(client.cert, undefined);
    assert.equal(client.tokenSource?.token(), TOKEN);
    assert.deepEqual(reads.sort(), [
      `${MOUNT}/kubeconfig.conf`,
      `${SERVICE_ACCOUNT_DIR}/ca.crt`,
      `${SERVICE_ACCOUNT_DIR}/token`,
    ]);
  });

  it('names the missing token file when the pod has none (automount disabled)', () => {
    const { io } = podFiles();
    const withoutToken: ConfigIO = {
      readFile: (path) => {
        if (path.endsWith('/token')) throw new Error(`open ${path}: no such file or directory`);
        return io.readFile(path);
      },
    };
    assert.throws(
      () =>
        loadClientConfig({
          kubeconfig: `${MOUNT}/kubeconfig.conf`,
          readFile: (p) => withoutToken.readFile(p),
        }),
      (error: unknown) =>
        error instanceof Error &&
        error.message.includes('tokenFile') &&
        error.message.includes(`${SERVICE_ACCOUNT_DIR}/token`),
    );
  });

  it("is shaped like kubeadm's: one cluster, context and user named default", () => {
    const [doc] = parseYamlDocuments(asString(data['kubeconfig.conf'], 'kubeconfig.conf'), 'kubeconfig.conf');
    assert.equal(at(doc, 'current-context'), 'default');
    assert.deepEqual(at(doc, 'contexts'), [
      { name: 'default', context: { cluster: 'default', namespace: 'default', user: 'default' } },
    ]);
    assert.deepEqual(at(doc, 'users'), [
      { name: 'default', user: { tokenFile: `${SERVICE_ACCOUNT_DIR}/token` } },
    ]);
    assert.equal(at(doc, 'clusters', 0, 'name'), 'default');
    assert.equal(at(doc, 'clusters', 0, 'cluster', 'certificate-authority'), `${SERVICE_ACCOUNT_DIR}/ca.crt`);
  });
});

// What `kubeadm init` puts in the kube-proxy ConfigMap's config.conf (a fully serialised
// v1alpha1 object with Go zero values), with the pod CIDR kubeadm was given.
const KUBEADM_CONFIG = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: ""
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`;
