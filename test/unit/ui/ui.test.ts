// The web page's server side without a browser or root: the services view says which endpoints
// are eligible and why, the page routes carry the CSP and answer only loopback (or the allowed
// CIDRs) with an IP or localhost Host, the event stream is bounded and delivers events, and the
// flag that allows more peers is checked.
import assert from 'node:assert/strict';
import { get, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { parseCommandLine } from '../../../src/config/load.ts';
import { sortObjects, stateFromManifests } from '../../../src/explain/manifests.ts';
import { debugRoutesHandler } from '../../../src/server/debug-routes.ts';
import { serveHttp } from '../../../src/server/http.ts';
import { EventHub } from '../../../src/ui/events.ts';
import { ProblemLog, uiRoutes } from '../../../src/ui/routes.ts';
import { CONTENT_SECURITY_POLICY, loadAssets, pageRoutes } from '../../../src/ui/static.ts';
import { servicesView } from '../../../src/ui/views.ts';
import { endpointSlice, node, service } from '../../support/objects.ts';
import { settingsFor } from '../explain/fixtures.ts';

const state = stateFromManifests(
  sortObjects(
    [
      node({ name: 'node1', ips: ['192.168.0.10'], podCIDRs: ['10.244.1.0/24'], zone: 'a' }),
      service({
        name: 'web',
        clusterIPs: ['10.96.0.10'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
      endpointSlice({
        service: 'web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [
          { ip: '10.244.1.5', node: 'node1' },
          { ip: '10.244.2.5', node: 'node2' },
          { ip: '10.244.2.6', node: 'node2', ready: false, serving: false },
        ],
      }),
      service({
        name: 'local',
        type: 'NodePort',
        clusterIPs: ['10.96.0.11'],
        externalTrafficPolicy: 'Local',
        ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
      }),
      endpointSlice({
        service: 'local',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ ip: '10.244.2.5', node: 'node2' }],
      }),
      service({ name: 'empty', clusterIPs: ['10.96.0.12'], ports: [{ name: 'http', port: 80 }] }),
    ],
    'test',
  ),
  {
    nodeName: 'node1',
    mode: 'nftables',
    settings: settingsFor(['10.244.0.0/16'], { kind: 'primary' }),
    from: 'test',
  },
).state;

describe('the services view', () => {
  test('each endpoint is eligible or not, with the reason; each port has its status', () => {
    const view = servicesView(state, { q: '', offset: 0, limit: 100 });
    assert.deepEqual(
      view.servicePorts.map((sp) => [sp.servicePort, sp.status]),
      [
        ['default/empty:http', 'no-endpoints'],
        ['default/local:http', 'no-local-endpoints'],
        ['default/web:http', 'ok'],
      ],
    );
    const web = view.servicePorts.find((sp) => sp.name === 'web');
    assert.ok(web);
    assert.deepEqual(
      web.endpoints.map((ep) => [ep.endpoint, ep.eligible, ep.why]),
      [
        ['10.244.1.5:8080', true, 'ready'],
        ['10.244.2.5:8080', true, 'ready'],
        ['10.244.2.6:8080', false, 'not ready'],
      ],
    );
    assert.equal(web.internal.action, 'DNAT');
    const local = view.servicePorts.find((sp) => sp.name === 'local');
    assert.ok(local);
    assert.equal(local.external?.action, 'DROP');
    assert.equal(local.internal.action, 'DNAT');
  });

  test('filters by name, address or endpoint, and pages', () => {
    assert.deepEqual(
      servicesView(state, { q: '10.244.1.5', offset: 0, limit: 100 }).servicePorts.map((sp) => sp.name),
      ['web'],
    );
    const page = servicesView(state, { q: '', offset: 1, limit: 1 });
    assert.equal(page.total, 3);
    assert.deepEqual(
      page.servicePorts.map((sp) => sp.name),
      ['local'],
    );
  });
});

/** Calls the handler with a request from `peer` and captures what it writes. */
async function call(
  handler: ReturnType<typeof debugRoutesHandler>,
  path: string,
  { peer = '127.0.0.1', host = '127.0.0.1:10249', debug = true } = {},
): Promise<{ handled: boolean; status: number; headers: Record<string, string>; body: string }> {
  let status = 0;
  let headers: Record<string, string> = {};
  let body = '';
  const req = {
    url: path,
    method: 'GET',
    socket: { remoteAddress: peer },
    headers: { host, ...(debug ? { 'x-kube-proxy-debug': '1' } : {}) },
  } as unknown as IncomingMessage;
  const res = {
    setHeader: () => undefined,
    writeHead: (code: number, h?: Record<string, string>) => {
      status = code;
      headers = h ?? {};
    },
    end: (chunk?: string | Buffer) => {
      body = chunk === undefined ? '' : chunk.toString();
    },
  } as unknown as ServerResponse;
  const handled = await handler(req, res);
  return { handled, status, headers, body };
}

describe('the page and its routes', () => {
  const routes = uiRoutes({
    state: () => state,
    syncs: [],
    problems: () => ['x'],
    lastVerify: () => undefined,
  });
  const pages = pageRoutes(loadAssets());

  test('the page is served with the CSP; scripts and styles only from this origin', async () => {
    const handler = debugRoutesHandler(routes, pages);
    const page = await call(handler, '/ui/', { debug: false });
    assert.equal(page.status, 200);
    assert.equal(page.headers['Content-Security-Policy'], CONTENT_SECURITY_POLICY);
    assert.match(CONTENT_SECURITY_POLICY, /script-src 'self'/);
    assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe/);
    assert.match(page.body, /<script type="module" src="\/ui\/app.js"><\/script>/);
    assert.equal(
      (await call(handler, '/ui/app.js', { debug: false })).headers['Content-Type'],
      'text/javascript; charset=utf-8',
    );
    // The data routes still want the debug header; the page's fetches send it.
    assert.equal((await call(handler, '/debug/proxy/services', { debug: false })).status, 403);
    const services = await call(handler, '/debug/proxy/services?limit=2');
    assert.equal((JSON.parse(services.body) as { servicePorts: unknown[] }).servicePorts.length, 2);
    assert.equal((await call(handler, '/debug/proxy/services?limit=x')).status, 400);
    assert.equal((await call(handler, '/nothing')).handled, false);
  });

  test('only loopback peers by default, more with allowed CIDRs; the Host must be an IP or localhost', async () => {
    const loopbackOnly = debugRoutesHandler(routes, pages);
    assert.equal(
      (await call(loopbackOnly, '/ui/', { peer: '10.1.2.3', host: '10.0.0.1:10249' })).status,
      404,
    );
    assert.equal((await call(loopbackOnly, '/ui/', { peer: '::ffff:127.0.0.1' })).status, 200);
    assert.equal((await call(loopbackOnly, '/ui/', { host: 'evil.example' })).status, 421);
    assert.equal((await call(loopbackOnly, '/ui/', { host: 'localhost:10249' })).status, 200);
    const wider = debugRoutesHandler(routes, pages, { allowedCIDRs: ['10.0.0.0/8'] });
    assert.equal((await call(wider, '/ui/', { peer: '10.1.2.3', host: '10.0.0.1:10249' })).status, 200);
    assert.equal((await call(wider, '/ui/', { peer: '192.168.1.1', host: '10.0.0.1:10249' })).status, 404);
    assert.throws(
      () => debugRoutesHandler(routes, pages, { allowedCIDRs: ['nope'] }),
      /"nope" is not a CIDR/,
    );
  });

  test('--debug-handlers-allowed-cidrs is parsed and checked', () => {
    const io = { readFile: () => '' };
    const ok = parseCommandLine(['--debug-handlers-allowed-cidrs=10.0.0.0/8,fd00::/8'], io);
    assert.equal(ok.kind, 'run');
    assert.deepEqual(ok.options.debugAllowedCIDRs, ['10.0.0.0/8', 'fd00::/8']);
    const bad = parseCommandLine(['--debug-handlers-allowed-cidrs=10.0.0.0/8,everyone'], io);
    assert.equal(bad.kind, 'error');
    assert.match(bad.message, /"everyone" for "--debug-handlers-allowed-cidrs"/);
  });

  test('the problem log keeps each line once, newest last, bounded', () => {
    const log = new ProblemLog(2);
    log.add('a');
    log.add('b');
    log.add('a');
    log.add('c');
    assert.deepEqual(log.list(), ['a', 'c']);
  });
});

describe('the event stream', () => {
  test('delivers published events, and refuses clients beyond the limit', async () => {
    const hub = new EventHub({ maxClients: 1 });
    const server = serveHttp({
      name: 'events-test',
      host: '127.0.0.1',
      port: 0,
      handler: (req, res) => {
        void debugRoutesHandler({}, { '/debug/proxy/events': hub.route })(req, res);
      },
    });
    try {
      const port = await server.listening;
      const url = `http://127.0.0.1:${port}/debug/proxy/events`;
      const first = await new Promise<IncomingMessage>((resolve, reject) => {
        get(url, resolve).on('error', reject);
      });
      assert.equal(first.statusCode, 200);
      assert.equal(first.headers['content-type'], 'text/event-stream; charset=utf-8');
      const received = new Promise<string>((resolve) => {
        let text = '';
        first.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('event: sync')) resolve(text);
        });
      });
      const second = await new Promise<IncomingMessage>((resolve, reject) => {
        request(url, resolve).on('error', reject).end();
      });
      assert.equal(second.statusCode, 429);
      second.resume();
      hub.publish('sync', { seq: 7, name: '<b>x</b>' });
      const text = await received;
      assert.match(text, /event: sync\ndata: \{"seq":7,"name":"<b>x<\/b>"\}\n\n/);
      first.destroy();
    } finally {
      hub.close();
      await server.close();
    }
  });
});
