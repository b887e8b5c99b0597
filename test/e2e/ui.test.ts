// The web page (/ui) in a real browser: Debian's Chromium driven by playwright-core, against the
// real kube-proxy in node1 (nftables mode). Loopback is per network namespace, so Chromium runs
// inside node1 (a two-line wrapper around `ip netns exec`); playwright's pipe crosses the
// namespace boundary. The assertions are about what a person sees: the Services appear, an
// explanation names the right endpoints, a new endpoint shows up live, a rule removed by hand
// turns the page red, and names carrying HTML show as text. Screenshots go to test-artifacts/ui/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parseTableJson } from '../../src/dataplane/nftables/verify.ts';
import { Cluster, STANDARD_PODS } from '../support/cluster.ts';
import { cleanupNetns, kernelSkipReason, pollUntil, TIMEOUT_SCALE } from '../support/netns.ts';
import { endpointSlice, service, type EndpointSpec } from '../support/objects.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts', 'ui');
const CHROMIUM = '/usr/bin/chromium';
const PAGE = 'http://127.0.0.1:10249/ui/';
/** A name no API server would accept, which our model must skip, and the page must show as text. */
const HTML_SERVICE_NAME = '<img src=x onerror="document.title=1">evil';
const HTML_NODE_NAME = '<b id="injected">node9</b>';

describe('the web page in a real browser', () => {
  const skip = kernelSkipReason();
  let cluster: Cluster | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let wrapperDir: string | undefined;
  const consoleErrors: string[] = [];
  const c = (): Cluster => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };
  const p = (): Page => {
    if (!page) throw new Error('browser did not start');
    return page;
  };
  const ep = (pod: string): EndpointSpec => {
    const pd = c().topology.pod(pod);
    return { ip: pd.ipv4, node: pd.node, pod };
  };
  const shot = async (name: string): Promise<void> => {
    await p().screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  };

  before(async () => {
    if (skip) return;
    const version = spawnSync(CHROMIUM, ['--version']);
    if (version.error || version.status !== 0) {
      throw new Error(`${CHROMIUM} is missing: make test installs it (Debian package chromium)`);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    cluster = await Cluster.start({ mode: 'nftables', tag: 'kxw', pods: STANDARD_PODS, tcpPorts: [8080] });
    const api = c().api;
    await api.create(
      service({
        name: 'web',
        clusterIPs: ['10.96.0.10'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    await api.create(
      endpointSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [ep('a'), ep('c')] }),
    );
    await api.create(
      service({ name: 'empty', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', port: 80 }] }),
    );
    await api.create(
      service({
        name: 'odd',
        clusterIPs: ['10.96.0.11'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    await api.create(
      endpointSlice({
        service: 'odd',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ ...ep('c'), node: HTML_NODE_NAME }],
      }),
    );
    await api.create(
      service({ name: HTML_SERVICE_NAME, clusterIPs: ['10.96.0.12'], ports: [{ name: 'http', port: 80 }] }),
    );
    await c().waitForLog(/Skipping invalid object.*onerror/, 20_000);

    wrapperDir = mkdtempSync(join(tmpdir(), 'kube-proxy-ts-ui-'));
    const wrapper = join(wrapperDir, 'chromium-in-node1');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${c().topology.node1.ns.name} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    browser = await chromium.launch({
      executablePath: wrapper,
      timeout: 60_000 * TIMEOUT_SCALE,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await cluster?.destroy();
    await cleanupNetns();
    if (wrapperDir) rmSync(wrapperDir, { recursive: true, force: true });
  });

  const loadPage = async (): Promise<void> => {
    const response = await p().goto(PAGE);
    assert.equal(response?.status(), 200);
    const csp = response.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /default-src 'none'/);
    // The page sets data-ready once its first render is done (no sleeping). Waits use locators:
    // the CSP forbids the eval a text expression would need.
    await p()
      .locator('html[data-ready="1"]')
      .waitFor({ state: 'attached', timeout: 20_000 * TIMEOUT_SCALE });
  };

  test('the Services appear, and a new endpoint shows up live', { skip }, async () => {
    await loadPage();
    const web = p().locator('#services tbody tr', { hasText: 'default/web:http' });
    await web.waitFor({ timeout: 10_000 * TIMEOUT_SCALE });
    assert.match(await web.innerText(), /10\.96\.0\.10/);
    assert.match(await web.innerText(), /2 \/ 2/);
    assert.match(await p().locator('#node').innerText(), /node1/);
    assert.match(await p().locator('#mode').innerText(), /nftables/);
    await shot('01-services');

    // The graph: one box per endpoint, eligible ones said so in words.
    await web.locator('a').click();
    await p().locator('#detail-section').waitFor({ state: 'visible' });
    const boxes = p().locator('#graph g.endpoint');
    assert.equal(await boxes.count(), 2);
    assert.match((await boxes.first().textContent()) ?? '', /eligible/);

    // Live: the page learns of the new endpoint by its event stream, without a reload.
    await c().api.update(
      endpointSlice({
        service: 'web',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [ep('a'), ep('b'), ep('c')],
      }),
    );
    await p()
      .locator('#services tbody tr', { hasText: 'default/web:http' })
      .filter({ hasText: '3 / 3' })
      .waitFor({ timeout: 10_000 * TIMEOUT_SCALE });
    assert.equal(await p().locator('#graph g.endpoint').count(), 3);
    assert.ok((await p().locator('#syncs tbody tr').count()) >= 1, 'the sync timeline lists the syncs');
    await shot('02-detail-live');
  });

  test('the explain form shows the endpoints the packet can reach and the rule path', { skip }, async () => {
    await loadPage();
    const client = c().topology.pod('client');
    const form = p().locator('#explain-form');
    await form.locator('[name=src]').fill(client.ipv4);
    await form.locator('[name=dst]').fill('10.96.0.10');
    await form.locator('[name=dport]').fill('80');
    await form.locator('button[type=submit]').click();
    const verdict = p().locator('#verdict');
    await verdict.waitFor({ timeout: 10_000 * TIMEOUT_SCALE });
    const text = await verdict.innerText();
    assert.match(text, /^DNAT to /);
    for (const pod of ['a', 'b', 'c']) assert.ok(text.includes(`${ep(pod).ip}:8080`), `${pod} in ${text}`);
    assert.match(text, /client address kept/);
    assert.equal(await p().locator('#explain-endpoints tbody tr').count(), 3);
    const path = await p().locator('#explain-path').innerText();
    assert.match(path, /service-ips/);
    assert.match(path, /prerouting/);
    await shot('03-explain');

    // A packet to a Service without endpoints is rejected, and the page says so.
    await form.locator('[name=dst]').fill('10.96.0.20');
    await form.locator('button[type=submit]').click();
    await p()
      .locator('#verdict', { hasText: /^REJECT/ })
      .waitFor();
    assert.match(await p().locator('#explain-result').innerText(), /default\/empty:http/);
  });

  test('names that carry HTML show as text, and nothing is injected', { skip }, async () => {
    await loadPage();
    const problems = await p().locator('#problems').innerText();
    assert.ok(problems.includes('<img src=x onerror='), problems);
    const odd = p().locator('#services tbody tr', { hasText: 'default/odd:http' });
    await odd.locator('a').click();
    const graph = await p().locator('#graph').textContent();
    assert.ok(graph?.includes(HTML_NODE_NAME), graph ?? '');
    assert.equal(await p().locator('#injected').count(), 0);
    assert.equal(await p().locator('img').count(), 0);
    assert.notEqual(await p().title(), '1');
    await shot('04-html-names');
  });

  test('a rule removed by hand turns the page red', { skip }, async () => {
    await loadPage();
    assert.equal(await p().locator('body.drift').count(), 0);
    assert.match(await p().locator('#drift-badge').innerText(), /kernel matches/);
    const ns = c().topology.node1.ns;
    const removed = `${ep('c').ip} . 8080`;
    // Any full sync of the proxy's own would write it again: remove, then verify, until seen.
    await pollUntil(
      'the page to show drift',
      async () => {
        const table = parseTableJson(
          (await ns.exec('nft', ['-j', 'list', 'table', 'ip', 'kube-proxy'])).stdout,
        );
        const line = table.sets
          .get('ip-endpoints-tcp')
          ?.find((l) => l.startsWith('10.96.0.10 . 80 . ') && l.endsWith(`: ${removed}`));
        if (line !== undefined) {
          await ns.exec('nft', [
            'delete',
            'element',
            'ip',
            'kube-proxy',
            'ip-endpoints-tcp',
            `{ ${line.slice(0, line.indexOf(' : '))} }`,
          ]);
        }
        await p().locator('#verify-button').click();
        await p().locator('#verify-button:enabled').waitFor();
        return (await p().locator('body.drift').count()) > 0 ? true : undefined;
      },
      30_000,
      500,
    );
    assert.match(await p().locator('#drift-badge').innerText(), /DRIFT/);
    assert.match(await p().locator('#drift').innerText(), /default\/web:http/);
    // What colour a person sees (this test's types have no DOM: the page's global, named).
    const background = await p()
      .locator('body')
      .evaluate(
        (body) =>
          (
            globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }
          ).getComputedStyle(body).backgroundColor,
      );
    assert.equal(background, 'rgb(253, 226, 226)');
    await shot('05-drift');
    assert.deepEqual(consoleErrors, []);
  });

  test('the page answers only a Host that is an IP or localhost', { skip }, async () => {
    const ns = c().topology.node1.ns;
    const status = async (host: string): Promise<string> =>
      (await ns.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Host: ${host}`, PAGE]))
        .stdout;
    assert.equal(await status('evil.example'), '421');
    assert.equal(await status('127.0.0.1:10249'), '200');
    assert.equal(await status('localhost:10249'), '200');
  });
});
