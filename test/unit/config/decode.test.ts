import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeConfig, type DecodeResult } from '../../../src/config/schema.ts';
import { HEADER } from './helpers.ts';

function decodeOk(text: string): Extract<DecodeResult, { ok: true }> {
  const result = decodeConfig(text);
  if (!result.ok) assert.fail(`expected success, got: ${result.error}`);
  return result;
}

function decodeError(text: string): string {
  const result = decodeConfig(text);
  if (result.ok) assert.fail('expected a decoding error');
  return result.error;
}

describe('decodeConfig', () => {
  it('decodes a YAML file into the raw shape', () => {
    const { raw, warnings } = decodeOk(
      `${HEADER}mode: nftables\nclusterCIDR: 10.244.0.0/16\niptables:\n  masqueradeBit: 10\n  syncPeriod: 1m\n`,
    );
    assert.equal(raw.mode, 'nftables');
    assert.equal(raw.clusterCIDR, '10.244.0.0/16');
    assert.equal(raw.iptables?.masqueradeBit, 10);
    assert.equal(raw.iptables.syncPeriod, '1m');
    assert.deepEqual(warnings, []);
  });

  it('accepts JSON, which is YAML', () => {
    const { raw } = decodeOk(
      '{"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration", "mode": "ipvs",' +
        ' "conntrack": {"maxPerCore": 0}}',
    );
    assert.equal(raw.mode, 'ipvs');
    assert.equal(raw.conntrack?.maxPerCore, 0);
  });

  it('reads YAML 1.1 scalars as Go yaml.v2 does', () => {
    const { raw } = decodeOk(
      `${HEADER}iptables:\n  masqueradeAll: yes\n  localhostNodePorts: off\nconntrack:\n  min: 010\n`,
    );
    assert.equal(raw.iptables?.masqueradeAll, true);
    assert.equal(raw.iptables.localhostNodePorts, false);
    assert.equal(raw.conntrack?.min, 8);
  });

  it('decodes leniently past unknown and legacy fields, naming every ignored path (issue 14)', () => {
    const { raw, warnings, ignoredFields } = decodeOk(
      `${HEADER}mode: nftables\nfoo: 1\nresourceContainer: /kube-proxy\niptables:\n  bar: true\n  masqueradeBit: 3\nconntrack:\n  max: 0\n  min: 5\n`,
    );
    assert.equal(raw.mode, 'nftables');
    assert.equal(raw.iptables?.masqueradeBit, 3);
    assert.equal(raw.conntrack?.min, 5);
    assert.deepEqual(ignoredFields, ['conntrack.max', 'foo', 'iptables.bar', 'resourceContainer']);
    assert.equal(warnings.length, 4);
    assert.match(warnings.join('\n'), /unknown field "iptables\.bar" ignored/);
  });

  it('fails on a wrongly typed field, naming the path and the value (and any unknown field)', () => {
    const error = decodeError(`${HEADER}foo: 1\niptables:\n  masqueradeBit: "14"\n`);
    assert.match(error, /iptables\.masqueradeBit: Invalid value: "14": expected a number/);
    assert.match(error, /foo: unknown field/);
  });

  it('rejects a number where Go expects a string', () => {
    assert.equal(
      decodeError(`${HEADER}hostnameOverride: 123\n`),
      'hostnameOverride: Invalid value: 123: expected a string',
    );
  });

  it('rejects a value that does not fit int32', () => {
    assert.equal(
      decodeError(`${HEADER}oomScoreAdj: 2147483648\n`),
      'oomScoreAdj: Invalid value: 2147483648: must fit in a 32-bit signed integer',
    );
    assert.equal(
      decodeError(`${HEADER}oomScoreAdj: 1.5\n`),
      'oomScoreAdj: Invalid value: 1.5: expected an integer',
    );
  });

  it('rejects a duration that is not Go duration text', () => {
    assert.equal(
      decodeError(`${HEADER}iptables:\n  syncPeriod: "30"\n`),
      'iptables.syncPeriod: Invalid value: "30": time: missing unit in duration "30"',
    );
    assert.equal(
      decodeError(`${HEADER}configSyncPeriod: 30\n`),
      'configSyncPeriod: Invalid value: 30: expected a string',
    );
  });

  it('rejects a list item of the wrong type with its index', () => {
    assert.equal(
      decodeError(`${HEADER}nodePortAddresses: [10.0.0.0/8, 5]\n`),
      'nodePortAddresses[1]: Invalid value: 5: expected a string',
    );
  });

  it('rejects a non-boolean feature gate', () => {
    assert.equal(
      decodeError(`${HEADER}featureGates:\n  Foo: maybe\n`),
      'featureGates.Foo: Invalid value: "maybe": expected true or false',
    );
  });

  it('rejects duplicate keys with their line', () => {
    const error = decodeError(`${HEADER}mode: iptables\nmode: nftables\n`);
    assert.match(error, /^yaml: line 4, column 1: Map keys must be unique/);
  });

  it('reports malformed YAML with its line', () => {
    const error = decodeError(`${HEADER}iptables:\n  masqueradeBit: [1\nmode: x\n`);
    assert.match(error, /^yaml: line \d+, column \d+: /);
    assert.equal(
      decodeError(`${HEADER}mode: "unterminated\n`),
      'yaml: line 4, column 1: Missing closing "quote',
    );
  });

  it('requires the right apiVersion and kind', () => {
    assert.equal(
      decodeError('kind: KubeProxyConfiguration\nmode: iptables\n'),
      'apiVersion: Required value: must be "kubeproxy.config.k8s.io/v1alpha1"',
    );
    assert.equal(
      decodeError('apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n'),
      'apiVersion: Unsupported value: "kubeproxy.config.k8s.io/v1alpha2": supported values: ' +
        '"kubeproxy.config.k8s.io/v1alpha1"',
    );
    assert.equal(
      decodeError('apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n'),
      'kind: Unsupported value: "KubeletConfiguration": supported values: "KubeProxyConfiguration"',
    );
  });

  it('rejects an empty file, a scalar and several documents', () => {
    assert.equal(decodeError(''), 'the file is empty');
    assert.match(decodeError('just text\n'), /expected a mapping/);
    assert.match(decodeError(`${HEADER}---\n${HEADER}`), /one document/);
  });

  it('keeps timestamp-looking strings as strings, as yaml.v2 does', () => {
    assert.equal(decodeOk(`${HEADER}hostnameOverride: 2001-12-14\n`).raw.hostnameOverride, '2001-12-14');
  });

  it('accepts the logging section upstream writes (numbers for flushFrequency and quantities)', () => {
    const { raw } = decodeOk(
      `${HEADER}logging:\n  flushFrequency: 0\n  options:\n    json:\n      infoBufferSize: "0"\n` +
        `    text:\n      infoBufferSize: 0\n  verbosity: 0\n`,
    );
    assert.equal(raw.logging?.flushFrequency, 0);
    assert.equal(raw.logging.options?.text?.infoBufferSize, 0);
  });
});
