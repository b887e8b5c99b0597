// The deploy/ objects fit together (names, keys, paths, ports) and grant exactly the permissions
// kube-proxy needs (spec 9.4), laid out as kubeadm's kube-proxy DaemonSet is.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENDPOINT_SLICES_PATH, NODES_PATH, SERVICES_PATH } from '../../../src/k8s/watches.ts';
import {
  asArray,
  asString,
  at,
  findObject,
  loadManifests,
  parseYamlDocuments,
  type Json,
} from './manifests.ts';

const manifests = loadManifests();
const daemonSet = findObject(manifests, 'DaemonSet', 'kube-proxy');
const podSpec = at(daemonSet, 'spec', 'template', 'spec') as Json;
const containers = asArray(podSpec['containers'], 'containers') as Json[];
const container = containers[0]!;
const command = asArray(container['command'], 'command').map((a, i) => asString(a, `command[${i}]`));
const volumes = asArray(podSpec['volumes'], 'volumes') as Json[];
const mounts = asArray(container['volumeMounts'], 'volumeMounts') as Json[];

function mountAt(path: string): { mount: Json; volume: Json } {
  const mount = mounts.find((m) => m['mountPath'] === path);
  assert.ok(mount, `no volumeMount at ${path}`);
  const volume = volumes.find((v) => v['name'] === mount['name']);
  assert.ok(volume, `volumeMount ${String(mount['name'])} has no volume`);
  return { mount, volume };
}

function flagValue(name: string): string {
  const prefix = `--${name}=`;
  const arg = command.find((a) => a.startsWith(prefix));
  assert.ok(arg, `the command has no ${prefix}`);
  return arg.slice(prefix.length);
}

describe('DaemonSet kube-proxy', () => {
  it('selects the pods its template labels', () => {
    const selector = at(daemonSet, 'spec', 'selector', 'matchLabels') as Json;
    const labels = at(daemonSet, 'spec', 'template', 'metadata', 'labels') as Json;
    assert.ok(Object.keys(selector).length > 0);
    for (const [key, value] of Object.entries(selector)) assert.equal(labels[key], value, key);
  });

  it("runs as kubeadm's does: host network, privileged, node-critical, every Linux node", () => {
    assert.equal(containers.length, 1);
    assert.equal(podSpec['hostNetwork'], true);
    assert.equal(podSpec['priorityClassName'], 'system-node-critical');
    assert.deepEqual(at(container, 'securityContext'), { privileged: true });
    assert.deepEqual(podSpec['tolerations'], [{ operator: 'Exists' }]);
    assert.deepEqual(podSpec['nodeSelector'], { 'kubernetes.io/os': 'linux' });
    assert.deepEqual(at(daemonSet, 'spec', 'updateStrategy'), { type: 'RollingUpdate' });
  });

  it("uses upstream's command, with the node name from the downward API", () => {
    assert.deepEqual(command, [
      '/usr/local/bin/kube-proxy',
      '--config=/var/lib/kube-proxy/config.conf',
      '--hostname-override=$(NODE_NAME)',
    ]);
    const env = asArray(container['env'], 'env') as Json[];
    const nodeName = env.find((e) => e['name'] === 'NODE_NAME');
    assert.deepEqual(nodeName, {
      name: 'NODE_NAME',
      valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } },
    });
  });

  it('marks the image as a placeholder to replace', () => {
    assert.equal(container['image'], 'ghcr.io/example/kube-proxy-ts:0.1.0');
  });

  it('mounts the xtables lock (FileOrCreate, writable) and /lib/modules (read-only) from the host', () => {
    const lock = mountAt('/run/xtables.lock');
    assert.notEqual(lock.mount['readOnly'], true);
    assert.deepEqual(lock.volume['hostPath'], { path: '/run/xtables.lock', type: 'FileOrCreate' });
    const modules = mountAt('/lib/modules');
    assert.equal(modules.mount['readOnly'], true);
    assert.equal(at(modules.volume, 'hostPath', 'path'), '/lib/modules');
  });

  it('runs as the ServiceAccount deploy/ creates, in the same namespace', () => {
    const name = asString(podSpec['serviceAccountName'], 'serviceAccountName');
    const account = findObject(manifests, 'ServiceAccount', name);
    assert.equal(at(account, 'metadata', 'namespace'), at(daemonSet, 'metadata', 'namespace'));
  });

  it('--config names a key of the ConfigMap mounted at its directory', () => {
    const configPath = flagValue('config');
    const slash = configPath.lastIndexOf('/');
    const { volume } = mountAt(configPath.slice(0, slash));
    const configMapName = asString(at(volume, 'configMap', 'name'), 'configMap.name');
    assert.equal((at(volume, 'configMap') as Json)['items'], undefined, 'items would hide keys');
    const configMap = findObject(manifests, 'ConfigMap', configMapName);
    assert.equal(at(configMap, 'metadata', 'namespace'), at(daemonSet, 'metadata', 'namespace'));
    assert.equal(typeof at(configMap, 'data', configPath.slice(slash + 1)), 'string');
  });

  it("the config's kubeconfig path is the ConfigMap's other key, in the same mount", () => {
    const configMap = findObject(manifests, 'ConfigMap', 'kube-proxy');
    const [config] = parseYamlDocuments(
      asString(at(configMap, 'data', 'config.conf'), 'config.conf'),
      'config.conf',
    );
    const kubeconfig = asString(at(config, 'clientConnection', 'kubeconfig'), 'clientConnection.kubeconfig');
    assert.equal(kubeconfig, '/var/lib/kube-proxy/kubeconfig.conf');
    mountAt('/var/lib/kube-proxy');
    assert.equal(typeof at(configMap, 'data', 'kubeconfig.conf'), 'string');
  });

  it('probes /livez on the port of healthzBindAddress', () => {
    const configMap = findObject(manifests, 'ConfigMap', 'kube-proxy');
    const [config] = parseYamlDocuments(
      asString(at(configMap, 'data', 'config.conf'), 'config.conf'),
      'config.conf',
    );
    const healthz = asString(at(config, 'healthzBindAddress'), 'healthzBindAddress');
    assert.equal(healthz, '0.0.0.0:10256', 'probes reach the pod IP (the node IP): bind all addresses');
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      assert.deepEqual(at(container, probe, 'httpGet'), { path: '/livez', port: 10256 }, probe);
    }
  });

  it('the startup probe outlasts the 5-minute wait for the Node object', () => {
    const period = Number(at(container, 'startupProbe', 'periodSeconds'));
    const failures = Number(at(container, 'startupProbe', 'failureThreshold'));
    assert.ok(period * failures > 300, `${period}s x ${failures}`);
  });
});

// (apiGroup, resource, verb) triples.
function grants(rules: readonly Json[]): Set<string> {
  const out = new Set<string>();
  for (const rule of rules) {
    assert.equal(rule['resourceNames'], undefined, 'kube-proxy rules are not limited to names');
    for (const group of asArray(rule['apiGroups'], 'apiGroups'))
      for (const resource of asArray(rule['resources'], 'resources'))
        for (const verb of asArray(rule['verbs'], 'verbs'))
          out.add(`${String(group)} ${String(resource)} ${String(verb)}`);
  }
  return out;
}

/** `/api/v1/services` -> core group "services"; `/apis/g/v1/r` -> group g "r". */
function groupResource(path: string): string {
  const core = /^\/api\/v1\/([a-z]+)$/.exec(path);
  if (core) return ` ${core[1]!}`;
  const named = /^\/apis\/([a-z0-9.]+)\/v1\/([a-z]+)$/.exec(path);
  assert.ok(named, path);
  return `${named[1]!} ${named[2]!}`;
}

describe('RBAC', () => {
  const role = findObject(manifests, 'ClusterRole', 'system:node-proxier');
  const rules = asArray(role['rules'], 'rules') as Json[];

  it('binds the ServiceAccount kube-proxy to ClusterRole system:node-proxier', () => {
    const binding = findObject(manifests, 'ClusterRoleBinding', 'kube-proxy-ts:node-proxier');
    assert.deepEqual(binding['roleRef'], {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'system:node-proxier',
    });
    const account = findObject(manifests, 'ServiceAccount', 'kube-proxy');
    assert.deepEqual(binding['subjects'], [
      { kind: 'ServiceAccount', name: 'kube-proxy', namespace: at(account, 'metadata', 'namespace') },
    ]);
  });

  it('the optional ClusterRole grants exactly what upstream system:node-proxier does (spec 9.4)', () => {
    const expected = [
      ' services list',
      ' services watch',
      ' endpoints list',
      ' endpoints watch',
      ' nodes get',
      ' nodes list',
      ' nodes watch',
      'discovery.k8s.io endpointslices list',
      'discovery.k8s.io endpointslices watch',
      ' events create',
      ' events patch',
      ' events update',
      'events.k8s.io events create',
      'events.k8s.io events patch',
      'events.k8s.io events update',
      'networking.k8s.io servicecidrs list',
      'networking.k8s.io servicecidrs watch',
    ];
    assert.deepEqual([...grants(rules)].sort(), expected.sort());
  });

  it('covers every collection kube-proxy-ts watches and the events it writes', () => {
    const granted = grants(rules);
    for (const path of [SERVICES_PATH, ENDPOINT_SLICES_PATH, NODES_PATH]) {
      for (const verb of ['list', 'watch']) {
        assert.ok(granted.has(`${groupResource(path)} ${verb}`), `${verb} ${path}`);
      }
    }
    assert.ok(granted.has('events.k8s.io events create'));
  });
});
