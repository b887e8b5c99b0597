import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import {
  FileTokenSource,
  KubeconfigError,
  loadClientConfig,
  type LoadClientConfigOptions,
} from '../../../src/k8s/kubeconfig.ts';
import { captureLogs } from './helpers.ts';

/** An in-memory file system: readFile throws ENOENT-like errors for missing paths. */
function files(initial: Record<string, string>): {
  fs: Map<string, string>;
  readFile: (p: string) => string;
} {
  const fs = new Map(Object.entries(initial));
  return {
    fs,
    readFile: (p) => {
      const text = fs.get(p);
      if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      return text;
    },
  };
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

function kubeconfig(
  cluster: Record<string, unknown>,
  user: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c1', cluster }],
    users: [{ name: 'u1', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c1', user: 'u1' } }],
    'current-context': 'ctx',
    ...extra,
  });
}

function load(text: string, more: Record<string, string> = {}, opts: Partial<LoadClientConfigOptions> = {}) {
  const { readFile } = files({ '/etc/kp/kubeconfig': text, ...more });
  return loadClientConfig({ kubeconfig: '/etc/kp/kubeconfig', readFile, ...opts });
}

function throwsNaming(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof KubeconfigError, `expected KubeconfigError, got ${String(error)}`);
    for (const part of parts) {
      if (typeof part === 'string')
        assert.ok(error.message.includes(part), `"${error.message}" should name ${part}`);
      else assert.match(error.message, part);
    }
    return true;
  });
}

describe('kubeconfig', () => {
  test('server, inline token and CA data from the current context', () => {
    const cfg = load(
      kubeconfig(
        {
          server: 'https://10.0.0.1:6443/',
          'certificate-authority-data': b64('CA PEM'),
          'tls-server-name': 'kubernetes',
        },
        { token: 'secret-token' },
      ),
    );
    assert.equal(cfg.server, 'https://10.0.0.1:6443');
    assert.equal(cfg.ca?.toString(), 'CA PEM');
    assert.equal(cfg.tlsServerName, 'kubernetes');
    assert.equal(cfg.insecureSkipTLSVerify, false);
    assert.equal(cfg.tokenSource?.token(), 'secret-token');
    assert.equal(cfg.source, 'kubeconfig /etc/kp/kubeconfig (context ctx)');
    assert.ok(!JSON.stringify(cfg).includes('secret-token'), 'the token is not a plain enumerable field');
  });

  test('the current context picks cluster and user among several', () => {
    const text = stringify({
      clusters: [
        { name: 'a', cluster: { server: 'https://a:6443' } },
        { name: 'b', cluster: { server: 'https://b:6443', 'insecure-skip-tls-verify': true } },
      ],
      users: [
        { name: 'ua', user: { token: 'ta' } },
        { name: 'ub', user: { token: 'tb' } },
      ],
      contexts: [
        { name: 'one', context: { cluster: 'a', user: 'ua' } },
        { name: 'two', context: { cluster: 'b', user: 'ub' } },
      ],
      'current-context': 'two',
    });
    const cfg = load(text);
    assert.equal(cfg.server, 'https://b:6443');
    assert.equal(cfg.insecureSkipTLSVerify, true);
    assert.equal(cfg.tokenSource?.token(), 'tb');
  });

  test('certificate files resolve against the kubeconfig directory; data fields win over files', () => {
    const cfg = load(
      kubeconfig(
        { server: 'https://k:6443', 'certificate-authority': 'pki/ca.crt' },
        { 'client-certificate': '/abs/client.crt', 'client-key': 'client.key' },
      ),
      { '/etc/kp/pki/ca.crt': 'CA', '/abs/client.crt': 'CERT', '/etc/kp/client.key': 'KEY' },
    );
    assert.equal(cfg.ca?.toString(), 'CA');
    assert.equal(cfg.cert?.toString(), 'CERT');
    assert.equal(cfg.key?.toString(), 'KEY');
    assert.equal(cfg.tokenSource, undefined);

    const data = load(
      kubeconfig(
        {
          server: 'https://k:6443',
          'certificate-authority-data': b64('CA2'),
          'certificate-authority': 'missing.crt',
        },
        { 'client-certificate-data': b64('CERT2'), 'client-key-data': b64('KEY2') },
      ),
    );
    assert.equal(data.ca?.toString(), 'CA2');
    assert.equal(data.cert?.toString(), 'CERT2');
    assert.equal(data.key?.toString(), 'KEY2');
  });

  test('tokenFile (relative) is read at load and re-read after rotation, at most once a period or after invalidate()', () => {
    let now = 0;
    const { fs, readFile } = files({
      '/etc/kp/kubeconfig': kubeconfig(
        { server: 'https://k:6443' },
        { tokenFile: 'sa/token', token: 'ignored' },
      ),
      '/etc/kp/sa/token': 'first\n',
    });
    const cfg = loadClientConfig({ kubeconfig: '/etc/kp/kubeconfig', readFile, now: () => now });
    const source = cfg.tokenSource;
    assert.ok(source instanceof FileTokenSource);
    assert.equal(source.path, '/etc/kp/sa/token');
    assert.equal(source.token(), 'first', 'tokenFile wins over an inline token, trailing newline trimmed');
    fs.set('/etc/kp/sa/token', 'second');
    now = 59_000;
    assert.equal(source.token(), 'first', 'cached within the minute');
    now = 60_001;
    assert.equal(source.token(), 'second', 're-read after a minute');
    fs.set('/etc/kp/sa/token', 'third');
    source.invalidate();
    assert.equal(source.token(), 'third', 're-read at once after a 401');
  });

  test('a token file that vanishes keeps the last token and logs without the token', () => {
    let now = 0;
    const { fs, readFile } = files({ '/t': 'tok-abc' });
    const source = new FileTokenSource('/t', { readFile, now: () => now });
    assert.equal(source.token(), 'tok-abc');
    fs.delete('/t');
    now = 120_000;
    const logs = captureLogs();
    try {
      assert.equal(source.token(), 'tok-abc');
    } finally {
      logs.restore();
    }
    assert.equal(logs.lines.length, 1);
    assert.match(logs.lines[0] ?? '', /Cannot re-read the bearer token file/);
    assert.ok(!(logs.lines[0] ?? '').includes('tok-abc'));
  });

  test('--master overrides the server; a bare host:port gets https when TLS is configured', () => {
    const text = kubeconfig(
      { server: 'https://k:6443', 'certificate-authority-data': b64('CA') },
      { token: 't' },
    );
    assert.equal(
      load(text, {}, { master: 'https://other:443' }).server,
      'https://other',
      'default port dropped',
    );
    assert.equal(load(text, {}, { master: 'other:6443' }).server, 'https://other:6443');
    const cfg = loadClientConfig({ master: '127.0.0.1:8080' });
    assert.equal(cfg.server, 'http://127.0.0.1:8080', 'no kubeconfig, no TLS: plain http as client-go');
    assert.equal(cfg.tokenSource, undefined);
    assert.equal(cfg.source, '--master');
  });

  test('a kubeconfig without current-context works with --master', () => {
    const text = stringify({ users: [{ name: 'u', user: { token: 't' } }] });
    assert.equal(load(text, {}, { master: 'http://10.1.1.1:8080' }).server, 'http://10.1.1.1:8080');
    throwsNaming(() => load(text), 'current-context', '/etc/kp/kubeconfig');
  });

  test('basic auth from username/password', () => {
    const cfg = load(kubeconfig({ server: 'https://k' }, { username: 'admin', password: 'pw' }));
    assert.deepEqual(cfg.basicAuth, { username: 'admin', password: 'pw' });
  });

  test('errors name the file and the field', () => {
    throwsNaming(() => load(kubeconfig({}, {})), '/etc/kp/kubeconfig', 'clusters["c1"].cluster.server');
    throwsNaming(
      () => load(kubeconfig({ server: 'ftp://x' }, {})),
      'clusters["c1"].cluster.server',
      'ftp://x',
    );
    throwsNaming(() => load(kubeconfig({ server: 'not a url' }, {})), 'clusters["c1"].cluster.server');
    throwsNaming(
      () => load(kubeconfig({ server: 'https://k', 'certificate-authority-data': '@@not base64@@' }, {})),
      'clusters["c1"].cluster.certificate-authority-data',
      'base64',
    );
    throwsNaming(
      () => load(kubeconfig({ server: 'https://k', 'certificate-authority': 'nope.crt' }, {})),
      'clusters["c1"].cluster.certificate-authority',
      '/etc/kp/nope.crt',
    );
    throwsNaming(
      () => load(kubeconfig({ server: 'https://k', 'insecure-skip-tls-verify': 'yes' }, {})),
      'insecure-skip-tls-verify',
    );
    throwsNaming(
      () => load(kubeconfig({ server: 'https://k' }, { 'client-certificate-data': b64('C') })),
      'users["u1"].user',
      'client-key',
    );
    throwsNaming(
      () => load(kubeconfig({ server: 'https://k' }, { tokenFile: '/var/run/none' })),
      'users["u1"].user.tokenFile',
      '/var/run/none',
    );
    throwsNaming(
      () => load(kubeconfig({ server: 'https://k' }, {}, { 'current-context': 'missing' })),
      'contexts has no entry named "missing"',
    );
    throwsNaming(() => load('clusters: [unclosed'), '/etc/kp/kubeconfig', 'invalid YAML');
    throwsNaming(
      () => loadClientConfig({ kubeconfig: '/nowhere', readFile: files({}).readFile }),
      '/nowhere',
    );
  });

  test('a bad exec stanza and auth-provider plugins are rejected, naming the field', () => {
    throwsNaming(
      () =>
        load(
          kubeconfig(
            { server: 'https://k' },
            { exec: { command: 'aws', apiVersion: 'client.authentication.k8s.io/v1' } },
          ),
        ),
      'users["u1"].user.exec.interactiveMode',
      'required',
    );
    throwsNaming(
      () =>
        load(
          kubeconfig(
            { server: 'https://k' },
            { exec: { command: 'aws', apiVersion: 'client.authentication.k8s.io/v1alpha1' } },
          ),
        ),
      'users["u1"].user.exec.apiVersion',
      'not supported',
    );
    throwsNaming(
      () => load(kubeconfig({ server: 'https://k' }, { 'auth-provider': { name: 'oidc' } })),
      'auth-provider',
      'not supported',
    );
  });

  test('error messages never contain a token', () => {
    try {
      load(kubeconfig({ server: 'https://k' }, { token: 'tok-xyz', username: 'u' }));
      assert.fail('expected an error');
    } catch (error) {
      assert.ok(error instanceof KubeconfigError);
      assert.ok(!error.message.includes('tok-xyz'));
    }
  });
});

describe('in-cluster configuration', () => {
  const sa = '/test/sa';
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

  test('used when neither kubeconfig nor master is given: env, token and CA from the service account dir', () => {
    let now = 0;
    const { fs, readFile } = files({ [`${sa}/token`]: 'sa-token-1', [`${sa}/ca.crt`]: 'CLUSTER CA' });
    const cfg = loadClientConfig({ env, readFile, serviceAccountDir: sa, now: () => now });
    assert.equal(cfg.server, 'https://10.96.0.1');
    assert.equal(cfg.ca?.toString(), 'CLUSTER CA');
    assert.equal(cfg.source, 'in-cluster');
    assert.equal(cfg.tokenSource?.token(), 'sa-token-1');
    fs.set(`${sa}/token`, 'sa-token-2');
    now = 61_000;
    assert.equal(cfg.tokenSource.token(), 'sa-token-2', 'projected tokens rotate');
  });

  test('IPv6 service host is bracketed', () => {
    const { readFile } = files({ [`${sa}/token`]: 't', [`${sa}/ca.crt`]: 'CA' });
    const cfg = loadClientConfig({
      env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' },
      readFile,
      serviceAccountDir: sa,
    });
    assert.equal(cfg.server, 'https://[fd00::1]:6443');
  });

  test('outside a cluster or without a token: a clear error', () => {
    const { readFile } = files({});
    throwsNaming(
      () => loadClientConfig({ env: {}, readFile, serviceAccountDir: sa }),
      'KUBERNETES_SERVICE_HOST',
    );
    throwsNaming(
      () => loadClientConfig({ env, readFile, serviceAccountDir: sa }),
      'service account token',
      `${sa}/token`,
    );
  });

  test('a missing CA is logged and the system roots are used', () => {
    const { readFile } = files({ [`${sa}/token`]: 't' });
    const logs = captureLogs();
    try {
      const cfg = loadClientConfig({ env, readFile, serviceAccountDir: sa });
      assert.equal(cfg.ca, undefined);
    } finally {
      logs.restore();
    }
    assert.ok(logs.lines.some((l) => l.includes('cannot read the cluster CA') && l.includes(`${sa}/ca.crt`)));
  });
});
