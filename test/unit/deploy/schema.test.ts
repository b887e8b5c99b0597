// Every object in deploy/ is a valid Kubernetes API object (apiVersion/kind known, every field in
// the schema with the right type), and the checker itself rejects what the API server would.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DEPLOY_DIR,
  KUSTOMIZATION,
  asArray,
  at,
  deployYamlFiles,
  describeManifest,
  findObject,
  isRecord,
  loadManifests,
  parseYamlDocuments,
  schemaProblems,
  type Json,
} from './manifests.ts';

const OPTIONAL_FILES = new Set(['clusterrole-node-proxier.yaml']);

describe('deploy/ manifests against the Kubernetes API schemas', () => {
  const manifests = loadManifests();

  it('has the objects the deployment needs', () => {
    const kinds = manifests.map((m) => `${String(m.object['apiVersion'])} ${String(m.object['kind'])}`);
    assert.deepEqual([...new Set(kinds)].sort(), [
      'apps/v1 DaemonSet',
      'rbac.authorization.k8s.io/v1 ClusterRole',
      'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
      'v1 ConfigMap',
      'v1 ServiceAccount',
    ]);
  });

  for (const manifest of manifests) {
    it(`${describeManifest(manifest)} is valid`, async () => {
      assert.deepEqual(await schemaProblems(manifest.object), []);
    });
  }

  it('namespaced objects are in kube-system, cluster-scoped ones have no namespace', () => {
    const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding']);
    for (const m of manifests) {
      const meta = at(m.object, 'metadata');
      assert.ok(isRecord(meta));
      const expected = clusterScoped.has(String(m.object['kind'])) ? undefined : 'kube-system';
      assert.equal(meta['namespace'], expected, describeManifest(m));
    }
  });
});

describe('kustomization.yaml', () => {
  const [kustomization] = parseYamlDocuments(
    readFileSync(join(DEPLOY_DIR, KUSTOMIZATION), 'utf8'),
    KUSTOMIZATION,
  );

  it('lists every manifest except the optional ClusterRole, each an existing file', () => {
    assert.ok(isRecord(kustomization));
    assert.equal(kustomization['apiVersion'], 'kustomize.config.k8s.io/v1beta1');
    assert.equal(kustomization['kind'], 'Kustomization');
    const resources = asArray(kustomization['resources'], 'resources');
    const expected = deployYamlFiles().filter((f) => f !== KUSTOMIZATION && !OPTIONAL_FILES.has(f));
    assert.deepEqual([...resources].sort(), expected);
  });
});

describe('the schema checker', () => {
  const manifests = loadManifests();
  const daemonSet = (): Json => structuredClone(findObject(manifests, 'DaemonSet', 'kube-proxy'));

  function container(ds: Json): Json {
    const c = at(ds, 'spec', 'template', 'spec', 'containers', 0);
    assert.ok(isRecord(c));
    return c;
  }

  it('rejects a field of the wrong type, naming it', async () => {
    const ds = daemonSet();
    const podSpec = at(ds, 'spec', 'template', 'spec');
    assert.ok(isRecord(podSpec));
    podSpec['hostNetwork'] = 'true';
    const problems = await schemaProblems(ds);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /spec\/template\/spec\/hostNetwork must be boolean/);
  });

  it('rejects a value outside an enum', async () => {
    const ds = daemonSet();
    const volume = at(ds, 'spec', 'template', 'spec', 'volumes', 1, 'hostPath');
    assert.ok(isRecord(volume));
    volume['type'] = 'FileOrCreat';
    const problems = await schemaProblems(ds);
    assert.match(
      problems.join('\n'),
      /volumes\/1\/hostPath\/type must be equal to one of the allowed values/,
    );
  });

  it('rejects a missing required field', async () => {
    const ds = daemonSet();
    delete container(ds)['name'];
    assert.match((await schemaProblems(ds)).join('\n'), /containers\/0 must have required property '?name'?/);
  });

  it('rejects misspelled fields at any depth, naming their path', async () => {
    const ds = daemonSet();
    container(ds)['imagePullPolicyy'] = 'Always';
    const mount = at(container(ds), 'volumeMounts', 2);
    assert.ok(isRecord(mount));
    mount['readOnlyy'] = true;
    const spec = at(ds, 'spec');
    assert.ok(isRecord(spec));
    spec['updateStrategyy'] = {};
    assert.deepEqual(await schemaProblems(ds), [
      'spec.template.spec.containers[0].volumeMounts[2].readOnlyy: unknown field',
      'spec.template.spec.containers[0].imagePullPolicyy: unknown field',
      'spec.updateStrategyy: unknown field',
    ]);
  });

  it('accepts any key in maps (labels, ConfigMap data) but not beside them', async () => {
    const cm = structuredClone(findObject(manifests, 'ConfigMap', 'kube-proxy'));
    const data = at(cm, 'data');
    assert.ok(isRecord(data));
    data['any-key.conf'] = 'x';
    const meta = at(cm, 'metadata');
    assert.ok(isRecord(meta));
    meta['labels'] = { 'example.com/anything': 'yes' };
    assert.deepEqual(await schemaProblems(cm), []);
    cm['datta'] = {};
    assert.deepEqual(await schemaProblems(cm), ['datta: unknown field']);
  });

  it('rejects unknown kinds, unknown versions, and non-top-level types', async () => {
    assert.deepEqual(await schemaProblems({ apiVersion: 'apps/v1', kind: 'DaemonSett' }), [
      'unknown apiVersion/kind: apps/v1 DaemonSett',
    ]);
    assert.deepEqual(await schemaProblems({ apiVersion: 'apps/v9', kind: 'DaemonSet' }), [
      'unknown apiVersion/kind: apps/v9 DaemonSet',
    ]);
    assert.deepEqual(await schemaProblems({ apiVersion: 'v1', kind: 'PodSpec' }), [
      'v1 PodSpec is not a top-level API object',
    ]);
    assert.deepEqual(await schemaProblems({ apiVersion: 'v1', kind: '../v1/Pod' }), [
      'kind "../v1/Pod" is malformed',
    ]);
    assert.deepEqual(await schemaProblems({ kind: 'Pod' }), ['apiVersion and kind must be set (strings)']);
  });

  it('rejects a kind under the wrong API group', async () => {
    const role = structuredClone(findObject(manifests, 'ClusterRole', 'system:node-proxier'));
    role['apiVersion'] = 'v1';
    assert.deepEqual(await schemaProblems(role), ['unknown apiVersion/kind: v1 ClusterRole']);
  });
});
