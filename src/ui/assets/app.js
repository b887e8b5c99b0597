// @ts-check
// The web page of kube-proxy-ts (/ui on the metrics server). No framework: the DOM API only.
// Every name shown comes from API objects other tenants control, so text goes in with
// textContent and attribute setters, never as HTML (the CSP forbids inline script as well).
// Live updates come by Server-Sent Events (/debug/proxy/events); nothing polls.

/** @typedef {{ action: string, because: string, to: string[] }} Traffic */
/**
 * @typedef {{ endpoint: string, node: string, local: boolean, ready: boolean, serving: boolean,
 *   terminating: boolean, eligible: boolean, why: string }} EndpointView
 */
/**
 * @typedef {{ servicePort: string, key: string, family: string, protocol: string, clusterIP: string,
 *   port: number, nodePort: number, externalIPs: string[], loadBalancerIPs: string[],
 *   sourceRanges: string[], internalPolicy: string, externalPolicy: string, affinitySeconds: number,
 *   internal: Traffic, external?: Traffic, status: string, endpoints: EndpointView[] }} ServicePortView
 */
/**
 * @typedef {{ seq: number, family: string, at: string, ok: boolean, full: boolean,
 *   durationSeconds: number, servicePorts: number, changedServices: string[],
 *   changedServicesTotal: number, serviceChanges: number, endpointChanges: number,
 *   details?: Record<string, number | string>, error?: string }} SyncRecord
 */
/**
 * @typedef {{ family: string, counts: { missing: number, unexpected: number, changed: number },
 *   objects: number, read: string, error?: string,
 *   servicePorts: { servicePort: string, frontend: string, effects: string[],
 *     items: { kind: string, where?: string, text?: string }[] }[],
 *   other: { kind: string, where?: string, text?: string }[] }} FamilyVerify
 */
/** @typedef {{ drift: boolean, checkedAt: string, families: FamilyVerify[] }} VerifyReport */

const DEBUG_HEADERS = { 'X-Kube-Proxy-Debug': '1' };
const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
}

/**
 * An element with text content (never HTML) and optional class.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [text]
 * @param {string} [className]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, text, className) {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  if (className) element.className = className;
  return element;
}

/**
 * An SVG element with attributes set one by one.
 * @param {string} tag
 * @param {Record<string, string | number>} attributes
 * @param {string} [text]
 * @returns {SVGElement}
 */
function svg(tag, attributes, text) {
  const element = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * @param {HTMLTableSectionElement | HTMLElement} body
 * @param {(string | Node)[]} cells
 * @returns {HTMLTableRowElement}
 */
function row(body, cells) {
  const tr = el('tr');
  for (const cell of cells) {
    const td = el('td');
    if (typeof cell === 'string') td.textContent = cell;
    else td.append(cell);
    tr.append(td);
  }
  body.append(tr);
  return tr;
}

/**
 * GET a debug route as JSON; throws with the server's error text.
 * @param {string} path
 * @returns {Promise<any>}
 */
async function getJSON(path) {
  const response = await fetch(path, { headers: DEBUG_HEADERS });
  const body = await response.json();
  if (!response.ok) throw new Error(typeof body?.error === 'string' ? body.error : `HTTP ${response.status}`);
  return body;
}

/** @param {HTMLElement} element */
function clear(element) {
  element.replaceChildren();
}

/** @param {string} ip */
function hostPort(ip, /** @type {number} */ port) {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

// ---- state ----------------------------------------------------------------------------------

/** @type {ServicePortView[]} */
let servicePorts = [];
/** @type {string | undefined} */
let selectedKey;

// ---- status bar and rule counts -------------------------------------------------------------

async function renderSummary() {
  const summary = await getJSON('/debug/proxy');
  byId('node').textContent = `node ${summary.node}`;
  byId('mode').textContent = `mode ${summary.mode}`;
  const counts = /** @type {HTMLTableSectionElement} */ (byId('counts').querySelector('tbody'));
  clear(counts);
  /** @type {string[]} */
  const ages = [];
  for (const family of summary.families ?? []) {
    const last = family.lastSync;
    if (last) ages.push(`${family.ipFamily} ${new Date(last.at).toLocaleTimeString()}`);
    row(counts, [el('strong', family.ipFamily), `${family.successfulSyncs} successful syncs`]);
    row(counts, ['service ports applied', String(family.lastApplied?.servicePorts ?? 0)]);
    row(counts, ['endpoints applied', String(family.lastApplied?.endpoints ?? 0)]);
    for (const [name, value] of Object.entries(last ?? {})) {
      if (typeof value === 'number' && !name.endsWith('Seconds')) row(counts, [name, String(value)]);
    }
  }
  byId('last-sync').textContent = ages.length ? `last sync ${ages.join(', ')}` : 'no sync yet';
}

// ---- Services → service ports → endpoints -----------------------------------------------------

async function renderServices() {
  const filter = /** @type {HTMLInputElement} */ (byId('filter')).value;
  const view = await getJSON(`/debug/proxy/services?limit=500&q=${encodeURIComponent(filter)}`);
  servicePorts = view.servicePorts;
  const body = /** @type {HTMLTableSectionElement} */ (byId('services').querySelector('tbody'));
  clear(body);
  for (const sp of servicePorts) {
    const eligible = sp.endpoints.filter((ep) => ep.eligible).length;
    const link = el('a', sp.servicePort);
    link.href = `#service=${encodeURIComponent(sp.key)}`;
    const policies = [`iTP ${sp.internalPolicy}`];
    if (sp.external) policies.push(`eTP ${sp.externalPolicy}`);
    if (sp.affinitySeconds > 0) policies.push(`affinity ${sp.affinitySeconds}s`);
    if (sp.sourceRanges.length) policies.push(`source ranges ${sp.sourceRanges.join(', ')}`);
    const status = el('span', statusText(sp), `status-${sp.status}`);
    const tr = row(body, [
      link,
      sp.protocol,
      sp.clusterIP,
      sp.nodePort ? String(sp.nodePort) : '',
      [...sp.externalIPs, ...sp.loadBalancerIPs].join(', '),
      policies.join(', '),
      `${eligible} / ${sp.endpoints.length}`,
      status,
    ]);
    tr.className = sp.key === selectedKey ? 'selectable selected' : 'selectable';
    tr.dataset.key = sp.key;
    tr.addEventListener('click', () => select(sp.key));
  }
  byId('services-count').textContent = `${view.total} service port${view.total === 1 ? '' : 's'}`;
  if (selectedKey) renderDetail();
}

/** @param {ServicePortView} sp */
function statusText(sp) {
  switch (sp.status) {
    case 'ok':
      return 'OK';
    case 'no-endpoints':
      return 'no endpoints: REJECT';
    case 'no-local-endpoints':
      return 'no local endpoint: DROP (Local policy)';
    default:
      return sp.status;
  }
}

/** @param {string} key */
function select(key) {
  selectedKey = key;
  if (location.hash !== `#service=${encodeURIComponent(key)}`)
    location.hash = `service=${encodeURIComponent(key)}`;
  for (const tr of document.querySelectorAll('#services tbody tr')) {
    tr.classList.toggle('selected', /** @type {HTMLElement} */ (tr).dataset.key === key);
  }
  renderDetail();
}

/** The detail of the selected service port: a three-column graph and the endpoint table. */
function renderDetail() {
  const section = byId('detail-section');
  const sp = servicePorts.find((candidate) => candidate.key === selectedKey);
  if (!sp) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  byId('detail-title').textContent = `${sp.servicePort} (${sp.family})`;
  const external = sp.external ? `; from outside: ${sp.external.action} (${sp.external.because})` : '';
  byId('detail-summary').textContent =
    `Cluster IP traffic: ${sp.internal.action} (${sp.internal.because})${external}`;

  /** @type {string[]} */
  const frontends = [`cluster IP ${hostPort(sp.clusterIP, sp.port)}`];
  if (sp.nodePort) frontends.push(`node port ${sp.nodePort}`);
  for (const ip of sp.externalIPs) frontends.push(`external IP ${hostPort(ip, sp.port)}`);
  for (const ip of sp.loadBalancerIPs) frontends.push(`load balancer ${hostPort(ip, sp.port)}`);
  const endpoints = [...sp.endpoints].sort((a, b) => Number(b.local) - Number(a.local));

  const graph = byId('graph');
  clear(graph);
  const rowHeight = 34;
  const height = Math.max(frontends.length, endpoints.length, 1) * rowHeight + 20;
  const width = 900;
  graph.setAttribute('viewBox', `0 0 ${width} ${height}`);
  graph.setAttribute('width', String(width));
  graph.setAttribute('height', String(height));
  const middleY = height / 2;
  const box = (
    /** @type {number} */ x,
    /** @type {number} */ y,
    /** @type {number} */ w,
    /** @type {string} */ text,
    /** @type {string} */ cls,
  ) => {
    const group = svg('g', { class: cls });
    group.append(svg('rect', { x, y: y - 12, width: w, height: 24, rx: 4, fill: '#fff', stroke: '#57606a' }));
    group.append(svg('text', { x: x + 6, y: y + 4 }, text));
    graph.append(group);
  };
  frontends.forEach((text, i) => {
    const y = 20 + i * rowHeight;
    graph.append(svg('line', { x1: 230, y1: y, x2: 330, y2: middleY, stroke: '#8c959f' }));
    box(10, y, 220, text, 'frontend');
  });
  endpoints.forEach((ep, i) => {
    const y = 20 + i * rowHeight;
    const colour = ep.eligible ? '#1a7f37' : '#b42318';
    graph.append(
      svg('line', {
        x1: 550,
        y1: middleY,
        x2: 600,
        y2: y,
        stroke: colour,
        'stroke-dasharray': ep.eligible ? '0' : '4 3',
      }),
    );
    const group = svg('g', { class: ep.eligible ? 'endpoint eligible' : 'endpoint not-eligible' });
    group.append(
      svg('rect', { x: 600, y: y - 12, width: 290, height: 24, rx: 4, fill: '#fff', stroke: colour }),
    );
    const label = `${ep.endpoint} on ${ep.node || '(no node)'}: ${ep.eligible ? 'eligible' : 'not eligible'}`;
    group.append(svg('text', { x: 606, y: y + 4, fill: colour }, label));
    group.append(svg('title', {}, ep.why));
    graph.append(group);
  });
  box(330, middleY, 220, `${sp.servicePort}/${sp.protocol}`, 'service-port');

  const body = /** @type {HTMLTableSectionElement} */ (byId('detail-endpoints').querySelector('tbody'));
  clear(body);
  for (const ep of endpoints) {
    row(body, [
      ep.endpoint,
      `${ep.node || '(no node)'}${ep.local ? ' (this node)' : ''}`,
      ep.ready ? 'yes' : 'no',
      ep.serving ? 'yes' : 'no',
      ep.terminating ? 'yes' : 'no',
      el('span', ep.eligible ? 'yes' : 'no', ep.eligible ? 'eligible' : 'not-eligible'),
      ep.why,
    ]);
  }
  const form = /** @type {HTMLFormElement} */ (byId('explain-form'));
  const dst = /** @type {HTMLInputElement} */ (form.elements.namedItem('dst'));
  const dport = /** @type {HTMLInputElement} */ (form.elements.namedItem('dport'));
  const proto = /** @type {HTMLSelectElement} */ (form.elements.namedItem('proto'));
  dst.value = sp.clusterIP;
  dport.value = String(sp.port);
  proto.value = sp.protocol.toLowerCase();
}

// ---- explain ----------------------------------------------------------------------------------

/** @param {SubmitEvent} event */
async function onExplain(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  const data = new FormData(form);
  const params = new URLSearchParams();
  for (const name of ['src', 'dst', 'dport', 'proto', 'from', 'kernel']) {
    const value = data.get(name);
    if (typeof value === 'string' && value !== '') params.set(name, value.trim());
  }
  const out = byId('explain-result');
  clear(out);
  out.append(el('p', 'explaining…'));
  try {
    renderExplanation(out, await getJSON(`/debug/proxy/explain?${params.toString()}`));
  } catch (error) {
    clear(out);
    out.append(el('p', `explain failed: ${error instanceof Error ? error.message : String(error)}`, 'error'));
  }
}

/**
 * @param {HTMLElement} out
 * @param {any} e an Explanation (docs/explain.md)
 */
function renderExplanation(out, e) {
  clear(out);
  const verdict = e.verdict;
  const to = verdict.to?.length ? ` to ${verdict.to.join(', ')}` : '';
  const snat =
    verdict.action === 'DNAT' ? (verdict.snat ? ', source masqueraded' : ', client address kept') : '';
  const head = el('p', `${verdict.action}${to}${snat}`);
  head.id = 'verdict';
  out.append(head, el('p', verdict.because));
  out.append(
    el(
      'p',
      `${e.packet.protocol} ${e.packet.src} → ${e.packet.dst}:${e.packet.dport}, from ${e.packet.arrival.from}` +
        ` (${e.packet.arrival.hook}${e.packet.arrival.inferred ? ', inferred' : ''}); matched ${e.match.kind}` +
        `${e.match.servicePort ? ` ${e.match.servicePort}` : ''}`,
    ),
  );
  if (e.decisions.length) {
    out.append(el('h3', 'Decisions'));
    const table = el('table');
    table.id = 'explain-decisions';
    const body = el('tbody');
    for (const d of e.decisions) row(body, [d.step, d.outcome, d.because, d.fields.join(', ')]);
    table.append(body);
    out.append(table);
  }
  if (e.endpoints.length) {
    out.append(el('h3', 'Endpoints'));
    const table = el('table');
    table.id = 'explain-endpoints';
    const body = el('tbody');
    for (const ep of e.endpoints) {
      const tr = row(body, [
        ep.endpoint,
        ep.node || '(no node)',
        ep.ready ? 'ready' : 'not ready',
        el('span', ep.eligible ? 'eligible' : 'not eligible', ep.eligible ? 'eligible' : 'not-eligible'),
        ep.chance !== undefined ? `chance ${Math.round(ep.chance * 1000) / 10}%` : '',
        ep.why ?? '',
      ]);
      tr.dataset.endpoint = ep.endpoint;
    }
    table.append(body);
    out.append(table);
  }
  if (e.path.length) {
    const details = el('details');
    details.open = true;
    details.append(el('summary', `Rule path (${e.pathSyntax ?? 'rules'}, hook by hook)`));
    const list = el('ol');
    list.id = 'explain-path';
    for (const step of e.path) {
      const item = el('li');
      const where = `${step.hook ?? ''}${step.priority !== undefined ? ` ${step.priority}` : ''} ${step.table} ${step.chain}`;
      item.append(el('span', `${step.matched ? '✓' : '✗'} ${where.trim()}: `));
      item.append(el('span', step.rule, 'rule'));
      if (step.element) item.append(el('div', `  @${step.element.set}: ${step.element.text}`, 'rule'));
      if (step.why) item.append(el('div', step.why));
      if (step.inKernel === false) item.append(el('strong', ' MISSING FROM THE KERNEL', 'error'));
      list.append(item);
    }
    details.append(list);
    out.append(details);
  }
  for (const [title, lines] of /** @type {[string, string[]][]} */ ([
    ['Hints', e.hints],
    ['Caveats', e.caveats],
  ])) {
    if (!lines.length) continue;
    out.append(el('h3', title));
    const list = el('ul');
    for (const line of lines) list.append(el('li', line));
    out.append(list);
  }
}

// ---- drift ------------------------------------------------------------------------------------

/** @param {VerifyReport | null} report */
function renderDrift(report) {
  const badge = byId('drift-badge');
  const out = byId('drift');
  clear(out);
  if (!report) {
    badge.textContent = 'not verified yet';
    badge.className = 'badge';
    return;
  }
  document.body.classList.toggle('drift', report.drift);
  badge.textContent = report.drift
    ? 'DRIFT: the kernel differs from the last sync'
    : 'kernel matches the last sync';
  badge.className = report.drift ? 'badge drift' : 'badge ok';
  out.append(el('p', `checked ${new Date(report.checkedAt).toLocaleTimeString()}`));
  for (const family of report.families) {
    const c = family.counts;
    const line = family.error
      ? `${family.family}: could not read the rules: ${family.error}`
      : `${family.family}: ${c.missing} missing, ${c.unexpected} unexpected, ${c.changed} changed (${family.objects} objects read by ${family.read})`;
    out.append(el('p', line, c.missing + c.unexpected + c.changed > 0 || family.error ? 'error' : ''));
    for (const sp of family.servicePorts) {
      const block = el('div', undefined, 'drift-service');
      block.append(el('strong', `${sp.servicePort} ${sp.frontend}`));
      const list = el('ul');
      for (const item of sp.items)
        list.append(el('li', `${item.kind}: ${item.where ?? ''} ${item.text ?? ''}`, 'rule'));
      for (const effect of sp.effects) list.append(el('li', `effect: ${effect}`));
      block.append(list);
      out.append(block);
    }
  }
}

async function verifyNow() {
  const button = /** @type {HTMLButtonElement} */ (byId('verify-button'));
  button.disabled = true;
  try {
    // Report only: the page changes nothing (`kube-proxy verify` without --no-resync repairs).
    renderDrift(await getJSON('/debug/proxy/verify?resync=false'));
  } catch (error) {
    byId('drift').replaceChildren(
      el('p', `verify failed: ${error instanceof Error ? error.message : String(error)}`, 'error'),
    );
  } finally {
    button.disabled = false;
  }
}

// ---- syncs ------------------------------------------------------------------------------------

async function renderSyncs() {
  const view = await getJSON('/debug/proxy/syncs');
  /** @type {SyncRecord[]} */
  const all = view.families.flatMap((/** @type {{ syncs: SyncRecord[] }} */ f) => f.syncs);
  all.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const timeline = byId('timeline');
  clear(timeline);
  const width = 900;
  const height = 80;
  timeline.setAttribute('viewBox', `0 0 ${width} ${height}`);
  timeline.setAttribute('width', String(width));
  timeline.setAttribute('height', String(height));
  const longest = Math.max(0.001, ...all.map((s) => s.durationSeconds));
  const barWidth = Math.max(4, Math.min(24, width / Math.max(all.length, 1) - 2));
  all.forEach((sync, i) => {
    const h = Math.max(3, (sync.durationSeconds / longest) * (height - 16));
    const fill = !sync.ok ? '#b42318' : sync.full ? '#0969da' : '#54aeff';
    const bar = svg('rect', { x: i * (barWidth + 2), y: height - h, width: barWidth, height: h, fill });
    bar.append(svg('title', {}, `#${sync.seq} ${sync.family} ${syncKind(sync)} ${ms(sync.durationSeconds)}`));
    timeline.append(bar);
  });
  timeline.append(svg('text', { x: 0, y: 10 }, 'full (dark), partial (light), failed (red); newest right'));
  const body = /** @type {HTMLTableSectionElement} */ (byId('syncs').querySelector('tbody'));
  clear(body);
  for (const sync of all.slice(-15).reverse()) {
    const changed =
      sync.changedServices.join(', ') +
      (sync.changedServicesTotal > sync.changedServices.length
        ? ` and ${sync.changedServicesTotal - sync.changedServices.length} more`
        : '');
    const what = sync.error
      ? `failed: ${sync.error}`
      : `${changed || 'no Service changed'} (${sync.serviceChanges} Service and ${sync.endpointChanges} endpoint changes; ${sync.servicePorts} service ports)`;
    row(body, [
      String(sync.seq),
      sync.family,
      new Date(sync.at).toLocaleTimeString(),
      syncKind(sync),
      ms(sync.durationSeconds),
      what,
    ]);
  }
}

/** @param {SyncRecord} sync */
function syncKind(sync) {
  return `${sync.full ? 'full' : 'partial'}${sync.ok ? '' : ' (failed)'}`;
}

/** @param {number} seconds */
function ms(seconds) {
  return `${(seconds * 1000).toFixed(1)} ms`;
}

// ---- problems ---------------------------------------------------------------------------------

async function renderProblems() {
  const view = await getJSON('/debug/proxy/problems');
  const list = byId('problems');
  clear(list);
  if (!view.problems.length) list.append(el('li', 'none'));
  for (const line of view.problems) list.append(el('li', line));
}

// ---- live updates -----------------------------------------------------------------------------

/** @type {ReturnType<typeof setTimeout> | undefined} */
let refreshTimer;

/** Coalesces a burst of syncs into one refresh. */
function refreshSoon() {
  if (refreshTimer !== undefined) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = undefined;
    void refreshAll();
  }, 200);
}

async function refreshAll() {
  await Promise.all([renderSummary(), renderServices(), renderSyncs(), renderProblems()]);
}

function connect() {
  const live = byId('live');
  const events = new EventSource('/debug/proxy/events');
  events.addEventListener('open', () => {
    live.textContent = 'live';
  });
  events.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
  });
  events.addEventListener('sync', () => refreshSoon());
  events.addEventListener('verify', (event) => {
    renderDrift(JSON.parse(/** @type {MessageEvent<string>} */ (event).data));
  });
}

function selectFromHash() {
  const match = /^#service=(.+)$/.exec(location.hash);
  if (match?.[1]) select(decodeURIComponent(match[1]));
}

async function start() {
  byId('explain-form').addEventListener(
    'submit',
    (event) => void onExplain(/** @type {SubmitEvent} */ (event)),
  );
  byId('verify-button').addEventListener('click', () => void verifyNow());
  byId('filter').addEventListener('input', () => void renderServices());
  window.addEventListener('hashchange', selectFromHash);
  connect();
  await refreshAll();
  selectFromHash();
  const last = await getJSON('/debug/proxy/verify/last');
  if (last.report) renderDrift(last.report);
  else await verifyNow();
  document.documentElement.dataset.ready = '1';
}

start().catch((error) => {
  document.body.append(
    el('p', `the page failed to load: ${error instanceof Error ? error.message : String(error)}`, 'error'),
  );
  document.documentElement.dataset.ready = 'error';
});
