// Snapshot -> one `nft -f -` transaction. Pure: no kernel, no clock, no files.
//
// A full render declares the whole table; a partial render emits only the difference against
// `previous`, our own record of what the last successful transaction wrote (the hot path never
// lists the kernel's table). The record is handed over: after render returns, `previous` is
// spent and only `next` may be used (the proxier keeps `next` on success and forgets both on
// failure, which forces a full render). This keeps a one-endpoint change O(change) instead of
// copying bookkeeping for 100k elements on every sync.
import type { Endpoint, IPFamily, ProxySnapshot, ServicePortState } from '../../model/types.ts';
import { claim, lookup, newLedger, release, sameElement, setOf, type Ledger } from './ledger.ts';
import { dispatchMap, nftFamily, parseClassChain, parseEndpointMap, TABLE, TABLE_COMMENT } from './names.ts';
import { nodePortIPs, optionsFingerprint, type NftablesOptions } from './options.ts';
import {
  buildRecord,
  endpointText,
  nodeFacts,
  slotKey,
  type ChainDef,
  type Children,
  type Element,
  type NodeFacts,
  type ServiceRecord,
} from './service.ts';
import {
  BASE_CHAINS,
  buildSkeleton,
  classChainDef,
  CLUSTER_IPS_CHECK,
  clusterIPsCheckRules,
  type SetDecl,
  type Skeleton,
} from './skeleton.ts';
import { withStableSlots } from './slots.ts';

export interface NftState {
  readonly family: IPFamily;
  readonly fingerprint: string;
  readonly nodeKey: string;
  /** Per service port key: what it contributed. */
  readonly records: Map<string, ServiceRecord>;
  readonly ledger: Ledger;
  /** Endpoint class chain -> number of service ports referencing it. */
  readonly classRefs: Map<string, number>;
  /** Endpoint address in @hairpin -> number of service ports putting it there. */
  readonly hairpinRefs: Map<string, number>;
  /** ProxySnapshot.generation of the snapshot this state was rendered from, if it had one. */
  readonly generation: number | undefined;
  /** The service CIDRs cluster-ips-check drops (joined with ','). */
  readonly serviceCIDRs: string;
  /** The elements of @nodeport-ips (joined with ','); they follow the host's addresses. */
  readonly nodePortIPs: string;
  /** Set when a later render took this state over; a spent state must not be rendered from. */
  readonly handle: { spent: boolean };
}

export interface RenderResult {
  /** Transaction text for `nft -f -`; '' when a partial render found nothing to change. */
  readonly script: string;
  /**
   * The same text in pieces of a few thousand lines, generated while they are read: a full
   * render at 10k Services is 13 MB of text that need never exist as one string (the proxier
   * writes the pieces to nft's stdin). Each call starts over.
   */
  readonly chunks: () => Iterable<string>;
  /** Nothing to apply (a partial render that found no change); cheaper than testing `script`. */
  readonly empty: boolean;
  readonly next: NftState;
  /** Figures for logs and benchmarks. */
  readonly stats: { readonly servicePorts: number; readonly changed: number; readonly elementOps: number };
}

interface Context {
  readonly prefix: string;
  readonly skeleton: Skeleton;
  readonly setOrder: ReadonlyMap<string, number>;
  readonly options: NftablesOptions;
}

const contexts = new WeakMap<NftablesOptions, Context>();
function contextFor(options: NftablesOptions): Context {
  let context = contexts.get(options);
  if (!context) {
    const skeleton = buildSkeleton(options);
    const setOrder = new Map<string, number>();
    skeleton.sets.forEach((set, i) => setOrder.set(set.name, i));
    context = { prefix: `${nftFamily(options.family)} ${TABLE}`, skeleton, setOrder, options };
    contexts.set(options, context);
  }
  return context;
}

function elementText(key: string, entry: Element): string {
  let text = key;
  if (entry.comment) text += ` comment "${entry.comment}"`;
  if (entry.value) text += ` : ${entry.value}`;
  return text;
}

/**
 * One `add|delete element` command per set, one element per line (trailing commas are fine for
 * nft): cheap to build, and nft's error for a bad element points at exactly that line.
 */
function pushElements(
  out: string[],
  verb: string,
  prefix: string,
  set: string,
  items: readonly string[],
): void {
  if (items.length === 0) return;
  out.push(`${verb} element ${prefix} ${set} {`);
  for (const item of items) out.push(`\t${item},`);
  out.push('}');
}

function chainCommand(prefix: string, name: string, comment: string): string {
  return comment ? `add chain ${prefix} ${name} { comment "${comment}" ; }` : `add chain ${prefix} ${name}`;
}

function listOf(lists: Map<string, string[]>, set: string): string[] {
  let list = lists.get(set);
  if (!list) {
    list = [];
    lists.set(set, list);
  }
  return list;
}

function claimAll(ledger: Ledger, record: ServiceRecord): void {
  let lastSet = '';
  let elements = undefined as ReturnType<typeof setOf> | undefined;
  for (const element of record.elements) {
    if (element.set !== lastSet || !elements) {
      lastSet = element.set;
      elements = setOf(ledger, lastSet);
    }
    claim(elements, element);
  }
}

function recordFor(state: ServicePortState, node: NodeFacts, old: ServiceRecord | undefined): ServiceRecord {
  return old && old.state === state && old.nodeKey === node.key ? old : buildRecord(state, node);
}

function count(refs: Map<string, number>, names: readonly string[], delta: 1 | -1): void {
  for (const name of names) {
    const n = (refs.get(name) ?? 0) + delta;
    if (n > 0) refs.set(name, n);
    else refs.delete(name);
  }
}

function hairpinText(ip: string): string {
  return `${ip} . ${ip}`;
}

/** `key . slot : endpoint` lines of a dispatch element's endpoint map elements. */
function pushChildren(list: string[], children: Children): void {
  children.endpoints.forEach((ep, i) => list.push(`${slotKey(children, i)} : ${endpointText(ep)}`));
}

function classDefs(family: IPFamily, names: Iterable<string>): ChainDef[] {
  const out: ChainDef[] = [];
  for (const name of names) {
    const parsed = parseClassChain(name);
    if (parsed) out.push(classChainDef(family, parsed.selector, parsed.count));
  }
  return out.sort((a, b) => compare(a.name, b.name));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Renders one sync. `full` (or no usable `previous`) gives a complete transaction; otherwise
 * only the difference. Throws if `previous` was already spent by an earlier render.
 */
export function render(
  previous: NftState | undefined,
  snapshot: ProxySnapshot,
  options: NftablesOptions,
  full: boolean,
): RenderResult {
  if (previous?.handle.spent)
    throw new Error('nftables render: previous state was already used by a later render');
  if (snapshot.family !== options.family) {
    throw new Error(
      `nftables render: snapshot family ${snapshot.family} differs from proxier family ${options.family}`,
    );
  }
  const context = contextFor(options);
  const node = nodeFacts(options.family, snapshot.node);
  const fingerprint = optionsFingerprint(options);
  const usable =
    previous && previous.fingerprint === fingerprint && previous.family === options.family
      ? previous
      : undefined;
  if (previous) previous.handle.spent = true;
  if (full || !usable) return renderFull(usable, snapshot, context, node, fingerprint);
  return renderPartial(usable, snapshot, context, node);
}

function renderFull(
  previous: NftState | undefined,
  snapshot: ProxySnapshot,
  context: Context,
  node: NodeFacts,
  fingerprint: string,
): RenderResult {
  const { prefix, skeleton, options } = context;
  const records = new Map<string, ServiceRecord>();
  const ledger = newLedger();
  const classRefs = new Map<string, number>();
  const hairpinRefs = new Map<string, number>();
  const affinityChains: ChainDef[] = [];
  for (const [key, state] of snapshot.servicePorts) {
    const record = recordFor(state, node, previous?.records.get(key));
    records.set(key, record);
    claimAll(ledger, record);
    count(classRefs, record.classChains, 1);
    count(hairpinRefs, record.hairpin, 1);
    affinityChains.push(...record.affinityChains);
  }
  const classChains = classDefs(options.family, classRefs.keys());
  // Without a trustworthy record of the kernel (start, after a failure, new options) the table
  // is deleted and rebuilt inside the same transaction: atomic for packets, and it also removes
  // leftovers such as upstream's chain-per-service layout or changed base chain properties.
  const recreate = previous === undefined;
  const out: string[] = [];
  const tableDecl = `add table ${prefix} { comment "${TABLE_COMMENT}" ; }`;
  out.push(tableDecl);
  if (recreate) out.push(`delete table ${prefix}`, tableDecl);

  const allChains: { name: string; comment: string }[] = [];
  for (const chain of BASE_CHAINS) {
    out.push(
      `add chain ${prefix} ${chain.name} { type ${chain.type} hook ${chain.hook} priority ${chain.priority} ; }`,
    );
    allChains.push({ name: chain.name, comment: '' });
  }
  const regular = [
    ...skeleton.chains,
    ...classChains.map((c) => ({ ...c, comment: '' })),
    ...affinityChains.map((c) => ({ ...c, comment: '' })),
  ];
  for (const chain of regular) {
    out.push(chainCommand(prefix, chain.name, chain.comment));
    allChains.push({ name: chain.name, comment: chain.comment });
  }
  if (!recreate) for (const chain of allChains) out.push(`flush chain ${prefix} ${chain.name}`);
  for (const set of skeleton.sets)
    out.push(`add ${set.isMap ? 'map' : 'set'} ${prefix} ${set.name} { ${set.body} }`);
  // The affinity sets keep the clients they remember across full syncs: never flushed.
  if (!recreate)
    for (const set of skeleton.sets)
      if (!set.dynamic) out.push(`flush ${set.isMap ? 'map' : 'set'} ${prefix} ${set.name}`);
  const clusterIPsCheck = clusterIPsCheckRules(options.family, snapshot.serviceCIDRs);
  for (const chain of [...skeleton.baseChains, ...skeleton.chains, ...classChains, ...affinityChains]) {
    const rules = chain.name === CLUSTER_IPS_CHECK ? clusterIPsCheck : chain.rules;
    for (const rule of rules) out.push(`add rule ${prefix} ${chain.name} ${rule}`);
  }
  for (const [set, items] of skeleton.fixedElements) pushElements(out, 'add', prefix, set, items);
  const tail: string[] = [];
  if (previous) {
    // Objects of the previous sync that no Service needs any more (their references are gone:
    // every map was flushed above and refilled without them).
    const keepChains = new Set(allChains.map((c) => c.name));
    const staleChains = new Set<string>([...previous.classRefs.keys()].filter((n) => !keepChains.has(n)));
    for (const record of previous.records.values()) {
      for (const chain of record.affinityChains) if (!keepChains.has(chain.name)) staleChains.add(chain.name);
    }
    for (const name of [...staleChains].sort()) tail.push(`delete chain ${prefix} ${name}`);
  }
  tail.push('');
  let elementOps = hairpinRefs.size;
  for (const elements of ledger.values()) {
    for (const claims of elements.values()) {
      const entry = Array.isArray(claims) ? claims[0] : claims;
      if (entry) elementOps += 1 + (entry.children?.endpoints.length ?? 0);
    }
  }
  const chunks = (): Iterable<string> => fullText(out, prefix, skeleton.sets, ledger, hairpinRefs, tail);
  const next: NftState = {
    family: options.family,
    fingerprint,
    nodeKey: node.key,
    records,
    ledger,
    classRefs,
    hairpinRefs,
    generation: snapshot.generation,
    serviceCIDRs: snapshot.serviceCIDRs.join(','),
    nodePortIPs: nodePortIPs(options).join(','),
    handle: { spent: false },
  };
  return {
    get script() {
      return [...chunks()].join('');
    },
    chunks,
    empty: false,
    next,
    stats: { servicePorts: records.size, changed: records.size, elementOps },
  };
}

function renderPartial(
  previous: NftState,
  snapshot: ProxySnapshot,
  context: Context,
  node: NodeFacts,
): RenderResult {
  const { prefix, setOrder, options } = context;
  const { records, ledger, classRefs, hairpinRefs } = previous;
  const nodeChanged = previous.nodeKey !== node.key;
  // Element keys touched by this sync, with the element as it was before.
  const touched = new Map<string, Map<string, Element | undefined>>();
  const touch = (set: string, key: string): void => {
    let keys = touched.get(set);
    if (!keys) {
      keys = new Map();
      touched.set(set, keys);
    }
    if (!keys.has(key)) keys.set(key, lookup(ledger, set, key));
  };
  const refsBefore = new Map<string, number>();
  const hairpinBefore = new Map<string, number>();
  const noteRefs = (record: ServiceRecord): void => {
    for (const chain of record.classChains)
      if (!refsBefore.has(chain)) refsBefore.set(chain, classRefs.get(chain) ?? 0);
    for (const ip of record.hairpin)
      if (!hairpinBefore.has(ip)) hairpinBefore.set(ip, hairpinRefs.get(ip) ?? 0);
  };
  const newChains: ChainDef[] = [];
  const changedChains: ChainDef[] = [];
  const deleteChains: string[] = [];
  let changed = 0;

  const swap = (key: string, old: ServiceRecord | undefined, next: ServiceRecord | undefined): void => {
    changed++;
    if (old) {
      for (const element of old.elements) {
        touch(element.set, element.key);
        release(ledger.get(element.set), element);
      }
      noteRefs(old);
      count(classRefs, old.classChains, -1);
      count(hairpinRefs, old.hairpin, -1);
    }
    if (next) {
      for (const element of next.elements) {
        touch(element.set, element.key);
        claim(setOf(ledger, element.set), element);
      }
      noteRefs(next);
      count(classRefs, next.classChains, 1);
      count(hairpinRefs, next.hairpin, 1);
      records.set(key, next);
    } else {
      records.delete(key);
    }
    // Affinity chains belong to one service port: diff them by name.
    const oldChains = new Map((old?.affinityChains ?? []).map((c) => [c.name, c]));
    for (const chain of next?.affinityChains ?? []) {
      const before = oldChains.get(chain.name);
      if (!before) newChains.push(chain);
      else if (before.rules.join('\n') !== chain.rules.join('\n')) changedChains.push(chain);
      oldChains.delete(chain.name);
    }
    deleteChains.push(...oldChains.keys());
  };

  // Identity tells what changed: the model reuses unchanged ServicePortState objects. When the
  // snapshot names the keys that changed since the one we rendered last, only those are looked
  // at: at 10k Services a walk over every service port costs more than the rest of the sync.
  const hinted =
    !nodeChanged &&
    snapshot.changedServicePorts !== undefined &&
    snapshot.generation !== undefined &&
    previous.generation === snapshot.generation - 1;
  const visit = (key: string, state: ServicePortState | undefined): void => {
    const old = records.get(key);
    if (!state) {
      if (old) swap(key, old, undefined);
      return;
    }
    if (old && old.state === state && !nodeChanged) return;
    const next = recordFor(state, node, old);
    if (next !== old) swap(key, old, withStableSlots(next, old));
  };
  if (hinted) {
    for (const key of snapshot.changedServicePorts ?? []) visit(key, snapshot.servicePorts.get(key));
  } else {
    for (const [key, state] of snapshot.servicePorts) visit(key, state);
    // Every snapshot key is now in `records`, so anything beyond that count was deleted.
    if (records.size > snapshot.servicePorts.size) {
      for (const key of [...records.keys()]) if (!snapshot.servicePorts.has(key)) visit(key, undefined);
    }
  }

  const createdClasses: string[] = [];
  const deletedClasses: string[] = [];
  for (const [chain, before] of refsBefore) {
    const after = classRefs.get(chain) ?? 0;
    if (before === 0 && after > 0) createdClasses.push(chain);
    if (before > 0 && after === 0) deletedClasses.push(chain);
  }

  const out: string[] = [];
  // What depends on the cluster's service CIDRs and the host's addresses, not on any Service.
  const serviceCIDRs = snapshot.serviceCIDRs.join(',');
  if (serviceCIDRs !== previous.serviceCIDRs) {
    out.push(`flush chain ${prefix} ${CLUSTER_IPS_CHECK}`);
    for (const rule of clusterIPsCheckRules(options.family, snapshot.serviceCIDRs))
      out.push(`add rule ${prefix} ${CLUSTER_IPS_CHECK} ${rule}`);
  }
  const nodePorts = nodePortIPs(options);
  const nodePortsText = nodePorts.join(',');
  if (options.nodePortAddresses.kind === 'ips' && nodePortsText !== previous.nodePortIPs) {
    const before = previous.nodePortIPs === '' ? [] : previous.nodePortIPs.split(',');
    const gone = before.filter((ip) => !nodePorts.includes(ip));
    const added = nodePorts.filter((ip) => !before.includes(ip));
    pushElements(out, 'delete', prefix, 'nodeport-ips', gone);
    pushElements(out, 'add', prefix, 'nodeport-ips', added);
  }
  for (const chain of [
    ...classDefs(options.family, createdClasses),
    ...newChains.sort((a, b) => compare(a.name, b.name)),
  ]) {
    out.push(chainCommand(prefix, chain.name, ''));
    for (const rule of chain.rules) out.push(`add rule ${prefix} ${chain.name} ${rule}`);
  }
  for (const chain of changedChains.sort((a, b) => compare(a.name, b.name))) {
    out.push(`flush chain ${prefix} ${chain.name}`);
    for (const rule of chain.rules) out.push(`add rule ${prefix} ${chain.name} ${rule}`);
  }
  const dels = new Map<string, string[]>();
  const adds = new Map<string, string[]>();
  for (const [set, keys] of touched) {
    for (const [key, before] of keys) {
      const after = lookup(ledger, set, key);
      if (sameElement(before, after)) continue;
      const mainChanged =
        !before || !after || before.value !== after.value || before.comment !== after.comment;
      if (mainChanged && before) listOf(dels, set).push(key);
      if (mainChanged && after) listOf(adds, set).push(elementText(key, after));
      diffChildren(before, after, dels, adds);
    }
  }
  for (const [ip, before] of hairpinBefore) {
    const after = hairpinRefs.get(ip) ?? 0;
    if (before > 0 && after === 0) listOf(dels, 'hairpin').push(hairpinText(ip));
    if (before === 0 && after > 0) listOf(adds, 'hairpin').push(hairpinText(ip));
  }
  const ordered = (lists: Map<string, string[]>): [string, string[]][] =>
    [...lists].sort(
      (a, b) => (setOrder.get(a[0]) ?? 1e9) - (setOrder.get(b[0]) ?? 1e9) || compare(a[0], b[0]),
    );
  const deletes: string[] = [];
  const additions: string[] = [];
  let elementOps = 0;
  for (const [set, list] of ordered(dels)) {
    elementOps += list.length;
    pushElements(deletes, 'delete', prefix, set, list.sort(compare));
  }
  for (const [set, list] of ordered(adds)) {
    elementOps += list.length;
    pushElements(additions, 'add', prefix, set, list.sort(compare));
  }
  out.push(...deletes, ...additions);
  for (const name of [...deletedClasses.sort(compare), ...deleteChains.sort(compare)]) {
    out.push(`delete chain ${prefix} ${name}`);
  }
  if (out.length > 0) out.push('');
  const next: NftState = {
    ...previous,
    nodeKey: node.key,
    generation: snapshot.generation,
    serviceCIDRs,
    nodePortIPs: nodePortsText,
    handle: { spent: false },
  };
  const script = out.join('\n');
  return {
    script,
    chunks: () => [script],
    empty: script === '',
    next,
    stats: { servicePorts: records.size, changed, elementOps },
  };
}

/** Lines per piece of a streamed full render: about 250 KB of text. */
const CHUNK_LINES = 4096;

/**
 * The text of a full render in pieces of about CHUNK_LINES lines, each ending with a newline:
 * `head`, then `add element` commands for every set and map in skeleton order (one element per
 * line; an endpoint map's elements are the children of its selector's dispatch elements), then
 * `tail`. Plain loops and one yield per piece: a generator per line cost half the render.
 */
function* fullText(
  head: readonly string[],
  prefix: string,
  sets: readonly SetDecl[],
  ledger: Ledger,
  hairpinRefs: ReadonlyMap<string, number>,
  tail: readonly string[],
): Generator<string> {
  let lines: string[] = [...head];
  for (const set of sets) {
    const header = `add element ${prefix} ${set.name} {`;
    const start = lines.length;
    lines.push(header);
    let count = 0;
    for (const [key, claims] of ledger.get(set.name) ?? []) {
      const entry = Array.isArray(claims) ? claims[0] : claims;
      if (!entry) continue;
      lines.push(`\t${elementText(key, entry)},`);
      count++;
      if (lines.length >= CHUNK_LINES) {
        yield `${lines.join('\n')}\n`;
        lines = [];
      }
    }
    const parsed = parseEndpointMap(set.name);
    if (parsed) {
      for (const claims of ledger.get(dispatchMap(parsed.selector))?.values() ?? []) {
        const children = (Array.isArray(claims) ? claims[0] : claims)?.children;
        if (children?.set !== set.name) continue;
        const endpoints = children.endpoints;
        for (let i = 0; i < endpoints.length; i++) {
          lines.push(`\t${slotKey(children, i)} : ${endpointText(endpoints[i] as Endpoint)},`);
        }
        count += endpoints.length;
        if (lines.length >= CHUNK_LINES) {
          yield `${lines.join('\n')}\n`;
          lines = [];
        }
      }
    }
    if (set.name === 'hairpin') {
      for (const ip of [...hairpinRefs.keys()].sort(compare)) lines.push(`\t${hairpinText(ip)},`);
      count += hairpinRefs.size;
    }
    if (count === 0) {
      // Nothing was added since the header, so the header is still in this piece.
      lines.length = start;
    } else {
      lines.push('}');
    }
  }
  lines.push(...tail);
  // The tail ends with '' so the text ends with a newline.
  yield lines.join('\n');
}

/** Endpoint map operations between two versions of one dispatch element. */
function diffChildren(
  before: Element | undefined,
  after: Element | undefined,
  dels: Map<string, string[]>,
  adds: Map<string, string[]>,
): void {
  const old = before?.children;
  const next = after?.children;
  if (old === next) return;
  // Slot key -> endpoint text of the new selection, for the keys the old one also had.
  const kept = new Map<string, string>();
  if (old && next && old.set === next.set) {
    next.endpoints.forEach((ep, i) => kept.set(slotKey(next, i), endpointText(ep)));
  }
  if (old) {
    old.endpoints.forEach((ep, i) => {
      const key = slotKey(old, i);
      if (kept.get(key) === endpointText(ep)) kept.delete(key);
      else listOf(dels, old.set).push(key);
    });
  }
  if (next) {
    const list = listOf(adds, next.set);
    next.endpoints.forEach((ep, i) => {
      const key = slotKey(next, i);
      if (!old || old.set !== next.set || kept.has(key)) list.push(`${key} : ${endpointText(ep)}`);
    });
  }
}

/** Plain, sorted view of a state: what the table holds. For tests and debugging. */
export function describeState(state: NftState): {
  servicePorts: string[];
  elements: Record<string, string[]>;
  classChains: string[];
  affinityChains: string[];
} {
  const lists = new Map<string, string[]>();
  for (const [set, keys] of state.ledger) {
    for (const key of keys.keys()) {
      const entry = lookup(state.ledger, set, key);
      if (!entry) continue;
      listOf(lists, set).push(elementText(key, entry));
      if (entry.children) pushChildren(listOf(lists, entry.children.set), entry.children);
    }
  }
  for (const ip of state.hairpinRefs.keys()) listOf(lists, 'hairpin').push(hairpinText(ip));
  const elements: Record<string, string[]> = {};
  for (const [set, items] of [...lists].sort((a, b) => compare(a[0], b[0]))) {
    if (items.length > 0) elements[set] = items.sort(compare);
  }
  const affinityChains: string[] = [];
  for (const record of state.records.values()) {
    for (const chain of record.affinityChains)
      affinityChains.push(`${chain.name}: ${chain.rules.join('; ')}`);
  }
  return {
    servicePorts: [...state.records.keys()].sort(compare),
    elements,
    classChains: [...state.classRefs.keys()].sort(compare),
    affinityChains: affinityChains.sort(compare),
  };
}
