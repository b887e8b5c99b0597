import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { KubeApiError, KubeClient, KubeTimeoutError, packageVersion } from '../../../src/k8s/client.ts';
import { FileTokenSource } from '../../../src/k8s/kubeconfig.ts';
import { startFakeApiServer, type FakeApiServer } from '../../support/apiserver.ts';
import { clientFor, service } from './helpers.ts';

describe('KubeClient over plain HTTP', () => {
  let server: FakeApiServer;
  before(async () => {
    server = await startFakeApiServer({ bookmarkIntervalMs: 0 });
  });
  after(async () => {
    await server.close();
  });

  test("asks for protobuf then JSON, with gzip, upstream's User-Agent shape and the bearer token", async () => {
    const client = clientFor(server, { tokenSource: { token: () => 'tok', invalidate: () => undefined } });
    try {
      server.requests.length = 0;
      const list = (await client.getJSON('/api/v1/nodes')) as { kind: string };
      assert.equal(list.kind, 'NodeList');
      const headers = server.requests[0]?.headers ?? {};
      assert.equal(headers['accept'], 'application/vnd.kubernetes.protobuf, application/json');
      assert.equal(headers['accept-encoding'], 'gzip');
      // kube-proxy/v1.36.0 (linux/amd64) kubernetes/<commit> in upstream.
      assert.match(
        headers['user-agent'] ?? '',
        new RegExp(
          `^kube-proxy/v${packageVersion().replace(/\./g, '\\.')} \\(linux/(amd64|arm64|[a-z0-9]+)\\) kubernetes/([0-9a-f]{7}|unknown)$`,
        ),
      );
      assert.match(packageVersion(), /^\d+\.\d+\.\d+/);
      assert.equal(headers['authorization'], 'Bearer tok');
    } finally {
      client.close();
    }
  });

  test('basic auth when the kubeconfig has username/password', async () => {
    const client = clientFor(server, { basicAuth: { username: 'a', password: 'b' } });
    try {
      server.requests.length = 0;
      await client.getJSON('/api/v1/nodes');
      assert.equal(
        server.requests[0]?.headers['authorization'],
        `Basic ${Buffer.from('a:b').toString('base64')}`,
      );
    } finally {
      client.close();
    }
  });

  test('a 401 makes the token file be re-read for the next request', async () => {
    let token = 'old';
    const source = new FileTokenSource('/token', { readFile: () => token, periodMs: 3_600_000 });
    const client = clientFor(server, { tokenSource: source });
    try {
      await client.getJSON('/api/v1/nodes');
      token = 'new';
      server.faults.failNext(401, 1);
      await assert.rejects(
        client.getJSON('/api/v1/nodes'),
        (e: unknown) => e instanceof KubeApiError && e.statusCode === 401,
      );
      server.requests.length = 0;
      await client.getJSON('/api/v1/nodes');
      assert.equal(server.requests[0]?.headers['authorization'], 'Bearer new');
    } finally {
      client.close();
    }
  });

  test('HTTP errors carry the status code and the Status reason and message', async () => {
    const client = clientFor(server);
    try {
      await assert.rejects(client.getJSON('/api/v1/namespaces/default/services/nope'), (e: unknown) => {
        assert.ok(e instanceof KubeApiError);
        assert.equal(e.statusCode, 404);
        assert.equal(e.reason, 'NotFound');
        assert.match(e.message, /services "nope" not found/);
        return true;
      });
      await assert.rejects(
        client.getJSON('/api/v1/services?watch=1&resourceVersion=999999'),
        (e: unknown) => {
          assert.ok(e instanceof KubeApiError);
          assert.equal(e.statusCode, 504);
          assert.deepEqual(e.causes, ['ResourceVersionTooLarge']);
          return true;
        },
      );
    } finally {
      client.close();
    }
  });

  test('a request that gets no answer fails at its deadline', async () => {
    const client = clientFor(server);
    try {
      server.faults.hangNext(1);
      const t0 = Date.now();
      await assert.rejects(client.getJSON('/api/v1/nodes', { timeoutMs: 100 }), KubeTimeoutError);
      assert.ok(Date.now() - t0 < 2_000);
    } finally {
      client.close();
    }
  });

  test('postJSON creates and returns the object', async () => {
    const client = clientFor(server);
    try {
      const created = (await client.postJSON('/api/v1/namespaces/default/services', service('posted'))) as {
        metadata: { uid: string; resourceVersion: string };
      };
      assert.ok(created.metadata.uid);
      assert.equal(server.get('Service', 'default', 'posted')?.metadata?.uid, created.metadata.uid);
    } finally {
      client.close();
    }
  });

  test('watchStream hands over whole lines and ends when the server ends the stream', async () => {
    const client = clientFor(server);
    try {
      server.create(service('w1'));
      const lines: unknown[] = [];
      const done = client.watchStream('/api/v1/services?watch=1&fieldSelector=metadata.name%3Dw1', {
        idleTimeoutMs: 5_000,
        onEvent: (event) => {
          lines.push(event);
          if (lines.length === 1) server.faults.closeWatches();
        },
      });
      await done;
      assert.equal(lines.length, 1);
      const event = lines[0] as { type: string; object: { metadata: { name: string } } };
      assert.equal(event.type, 'ADDED');
      assert.equal(event.object.metadata.name, 'w1');
    } finally {
      client.close();
    }
  });

  test('watchStream: an abort signal ends it', async () => {
    const client = clientFor(server);
    try {
      const controller = new AbortController();
      const done = client.watchStream('/api/v1/nodes?watch=1', {
        idleTimeoutMs: 5_000,
        signal: controller.signal,
        onEvent: () => undefined,
      });
      setTimeout(() => {
        controller.abort();
      }, 20);
      await assert.rejects(done, (e: unknown) => e instanceof Error && e.name === 'AbortError');
    } finally {
      client.close();
    }
  });
});

function openssl(args: string[], cwd: string): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr}`);
}

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe('KubeClient over TLS', { skip: hasOpenssl ? false : 'openssl is not installed' }, () => {
  let dir: string;
  let server: https.Server;
  let url: string;
  let pem: (name: string) => Buffer;
  const seen: { cn: string }[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kpt-tls-'));
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(
      ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test-ca'],
      dir,
    );
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:kubernetes\n');
    openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kubernetes'], dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        'server.ext',
        '-out',
        'server.crt',
      ],
      dir,
    );
    openssl(
      ['req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=system:kube-proxy'],
      dir,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        'client.csr',
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '2',
        '-out',
        'client.crt',
      ],
      dir,
    );
    pem = (name) => readFileSync(join(dir, name));
    server = https.createServer(
      {
        key: pem('server.key'),
        cert: pem('server.crt'),
        ca: pem('ca.crt'),
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        // Without a client certificate this is an empty object.
        const socket = req.socket;
        const peer = (socket instanceof TLSSocket ? socket.getPeerCertificate() : {}) as {
          subject?: { CN?: unknown };
        };
        seen.push({ cn: typeof peer.subject?.CN === 'string' ? peer.subject.CN : '' });
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"kind":"NodeList","items":[]}');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('CA, tls-server-name and client certificate from the config', async () => {
    const client = new KubeClient({
      server: url,
      ca: pem('ca.crt'),
      cert: pem('client.crt'),
      key: pem('client.key'),
      tlsServerName: 'kubernetes',
      insecureSkipTLSVerify: false,
      source: 'test',
    });
    try {
      seen.length = 0;
      const list = (await client.getJSON('/api/v1/nodes')) as { kind: string };
      assert.equal(list.kind, 'NodeList');
      assert.deepEqual(seen, [{ cn: 'system:kube-proxy' }]);
    } finally {
      client.close();
    }
  });

  test('the server name is verified: without tls-server-name the IP does not match the certificate', async () => {
    const client = new KubeClient({
      server: url,
      ca: pem('ca.crt'),
      insecureSkipTLSVerify: false,
      source: 'test',
    });
    try {
      await assert.rejects(client.getJSON('/api/v1/nodes'), /altnames|IP: 127\.0\.0\.1/);
    } finally {
      client.close();
    }
  });

  test('an unknown CA is refused unless insecure-skip-tls-verify', async () => {
    const strict = new KubeClient({ server: url, insecureSkipTLSVerify: false, source: 'test' });
    const insecure = new KubeClient({ server: url, insecureSkipTLSVerify: true, source: 'test' });
    try {
      await assert.rejects(strict.getJSON('/api/v1/nodes', { timeoutMs: 5_000 }), /certificate/);
      const list = (await insecure.getJSON('/api/v1/nodes')) as { kind: string };
      assert.equal(list.kind, 'NodeList');
    } finally {
      strict.close();
      insecure.close();
    }
  });
});
