// `kube-proxy verify` in nftables mode: our table read back with one `nft -j list table`, its
// set and map elements compared (semantically: set, key, comment, value) with the table a full
// sync of the last applied state leaves, and its chains by name and rule count. Rule text is
// not compared: `nft list` prints constants in its own way (docs/nftables-layout.md).
// Endpoint maps are compared without their numgen slot numbers (a partial sync keeps an
// endpoint in its slot where a fresh render numbers them in order), and their slots are
// checked to be dense, since a hole means connections that find no endpoint. Affinity sets are
// dynamic and skipped.
import { isMissing } from './integrity.ts';
import { joinHostPort } from '../../util/ip.ts';
import type { DriftItem, KernelComparison, ModeVerifier } from '../common/verify.ts';
import type { ServicePort } from '../../model/types.ts';
import { fullTable } from './explain.ts';
import { dump, splitConcat } from './fake.ts';

type Json = null | string | number | boolean | Json[] | { [key: string]: Json };

/** An element (or key, or value) of `nft -j` output in the text form the renderer writes. */
export function elementText(value: Json): string {
  if (typeof value === 'string' || typeof value === 'number') return String(value);
  if (Array.isArray(value) || value === null || typeof value !== 'object') return JSON.stringify(value);
  const concat = value['concat'];
  if (Array.isArray(concat)) return concat.map(elementText).join(' . ');
  const prefix = value['prefix'];
  if (prefix && typeof prefix === 'object' && !Array.isArray(prefix))
    return `${elementText(prefix['addr'] ?? null)}/${elementText(prefix['len'] ?? null)}`;
  for (const verb of ['goto', 'jump'] as const) {
    const target = value[verb];
    if (target && typeof target === 'object' && !Array.isArray(target))
      return `${verb} ${elementText(target['target'] ?? null)}`;
  }
  if ('drop' in value) return 'drop';
  if ('accept' in value) return 'accept';
  if ('return' in value) return 'return';
  const elem = value['elem'];
  if (elem && typeof elem === 'object' && !Array.isArray(elem)) {
    const comment = elem['comment'];
    return `${elementText(elem['val'] ?? null)}${typeof comment === 'string' ? ` comment "${comment}"` : ''}`;
  }
  return JSON.stringify(value);
}

interface ReadBack {
  readonly sets: Map<string, string[]>;
  readonly chains: Map<string, number>;
}

/** Our table as the kernel lists it: elements per set and map, rule counts per chain. */
export function parseTableJson(text: string): ReadBack {
  const listing = JSON.parse(text) as { nftables?: Record<string, Json>[] };
  const sets = new Map<string, string[]>();
  const chains = new Map<string, number>();
  for (const item of listing.nftables ?? []) {
    const set = (item['set'] ?? item['map']) as { name?: string; elem?: Json[] } | undefined;
    if (set?.name !== undefined) {
      sets.set(
        set.name,
        (set.elem ?? []).map((element) =>
          Array.isArray(element)
            ? `${elementText(element[0] as Json)} : ${elementText(element[1] as Json)}`
            : elementText(element),
        ),
      );
    }
    const chain = item['chain'] as { name?: string } | undefined;
    if (chain?.name !== undefined && !chains.has(chain.name)) chains.set(chain.name, 0);
    const rule = item['rule'] as { chain?: string } | undefined;
    if (rule?.chain !== undefined) chains.set(rule.chain, (chains.get(rule.chain) ?? 0) + 1);
  }
  return { sets, chains };
}

const ENDPOINT_MAP = /-endpoints-/;

/** `key . slot : value` without the slot; other elements as they are. */
function withoutSlot(set: string, line: string): string {
  return ENDPOINT_MAP.test(set) ? line.replace(/ \. \d+ : /, ' : ') : line;
}

function splitElement(line: string): { key: string; value: string } {
  const at = line.indexOf(' : ');
  const head = at < 0 ? line : line.slice(0, at);
  return { key: head.replace(/ comment "[^"]*"$/, ''), value: at < 0 ? '' : line.slice(at + 3) };
}

function missing(a: readonly string[], b: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const x of b) counts.set(x, (counts.get(x) ?? 0) + 1);
  return a.filter((x) => {
    const left = counts.get(x) ?? 0;
    if (left > 0) counts.set(x, left - 1);
    return left === 0;
  });
}

export const nftablesVerifier: ModeVerifier = {
  // One check-mode deletion per quoted element (`nft -c -f -`: the kernel prepares it and throws
  // it away): it fails with "No such file or directory" when the element is not there. nft then
  // reads the sets' definitions only: 25-40 ms at 10k Services, where `nft get element` fetched
  // every element of the table first (3 s). The quoted elements are map elements as the kernel
  // lists them, exact keys. Rules are not checked: `nft list` spells them its own way.
  async confirm({ family, steps, run }) {
    const nftFamily = family === 'IPv4' ? 'ip' : 'ip6';
    const out: (boolean | undefined)[] = [];
    for (const step of steps) {
      if (!step.element) {
        out.push(undefined);
        continue;
      }
      const key = splitElement(step.element.text).key;
      try {
        await run('nft', ['-c', '-f', '-'], {
          input: `delete element ${nftFamily} kube-proxy ${step.element.set} { ${key} }\n`,
          timeoutMs: 10_000,
        });
        out.push(true);
      } catch (error) {
        if (!isMissing(error)) throw error;
        out.push(false);
      }
    }
    return out;
  },

  async compare(input): Promise<KernelComparison> {
    const { family, snapshot, run } = input;
    const nftFamily = family === 'IPv4' ? 'ip' : 'ip6';
    const expected = dump(fullTable(input));
    const kernel = parseTableJson(
      (await run('nft', ['-j', 'list', 'table', nftFamily, 'kube-proxy'], { timeoutMs: 60_000 })).stdout,
    );
    const ports: ServicePort[] = [...snapshot.servicePorts.values()].map((s) => s.servicePort);
    const attribute = (line: string): string | undefined => {
      const comment = / comment "([^"]*)"/.exec(line)?.[1];
      if (comment !== undefined && /^[^\s]+\/[^\s]+$/.test(comment)) return comment;
      const parts = splitConcat(splitElement(line).key);
      const sp = ports.find(
        (p) =>
          ([p.clusterIP, ...p.externalIPs, ...p.loadBalancerVIPs].some((ip) => parts.includes(ip)) &&
            parts.includes(String(p.port))) ||
          (p.nodePort !== 0 &&
            parts.includes(String(p.nodePort)) &&
            parts.includes(p.id.protocol.toLowerCase())),
      );
      return sp?.id.printable;
    };
    const endpointOf = (set: string, line: string): string | undefined => {
      if (!ENDPOINT_MAP.test(set)) return undefined;
      const [ip, port] = splitConcat(splitElement(line).value);
      return ip !== undefined && port !== undefined ? joinHostPort(ip, Number(port)) : undefined;
    };
    const items: DriftItem[] = [];
    let objects = 0;
    const prefix = `${nftFamily} kube-proxy`;
    const setNames = new Set([...Object.keys(expected.sets), ...kernel.sets.keys()]);
    for (const name of [...setNames].sort()) {
      if (name.startsWith('affinity-')) continue;
      const location = `set ${name}`;
      const want = expected.sets[name];
      const have = kernel.sets.get(name);
      if (want === undefined || have === undefined) {
        items.push({
          kind: want === undefined ? 'unexpected' : 'missing',
          location,
          text: `set ${prefix} ${name}`,
        });
        continue;
      }
      objects += want.length;
      const wantCmp = want.map((line) => withoutSlot(name, line));
      const haveCmp = have.map((line) => withoutSlot(name, line));
      for (const line of missing(wantCmp, haveCmp)) {
        items.push({
          kind: 'missing',
          location,
          text: line,
          servicePort: attribute(line),
          endpoint: endpointOf(name, line),
        });
      }
      for (const line of missing(haveCmp, wantCmp)) {
        items.push({
          kind: 'unexpected',
          location,
          text: line,
          servicePort: attribute(line),
          endpoint: endpointOf(name, line),
        });
      }
      if (ENDPOINT_MAP.test(name)) {
        // numgen picks slot 0..n-1: a hole is a share of new connections that finds no endpoint.
        const slots = new Map<string, number[]>();
        for (const line of have) {
          const match = / \. (\d+) : /.exec(line);
          if (!match) continue;
          const key = line.slice(0, match.index);
          slots.set(key, [...(slots.get(key) ?? []), Number(match[1])]);
        }
        for (const [key, numbers] of slots) {
          const sorted = [...numbers].sort((a, b) => a - b);
          if (sorted.some((n, i) => n !== i)) {
            items.push({
              kind: 'changed',
              location,
              text: `${key}: slots ${sorted.join(', ')} are not 0..${sorted.length - 1}`,
              servicePort: attribute(`${key} . 0 : x`),
            });
          }
        }
      }
    }
    const chainNames = new Set([...Object.keys(expected.chains), ...kernel.chains.keys()]);
    for (const name of [...chainNames].sort()) {
      const want = expected.chains[name]?.length;
      const have = kernel.chains.get(name);
      objects += 1;
      const location = `chain ${prefix} ${name}`;
      if (want === undefined) items.push({ kind: 'unexpected', location, text: `chain ${name}` });
      else if (have === undefined) items.push({ kind: 'missing', location, text: `chain ${name}` });
      else if (want !== have)
        items.push({
          kind: 'changed',
          location,
          text: `chain ${name}: ${want} rules written, the kernel has ${have}`,
        });
    }
    return {
      read: `nft -j list table ${prefix} (${[...kernel.sets.values()].reduce((n, s) => n + s.length, 0)} elements, ${kernel.chains.size} chains)`,
      objects,
      items,
    };
  },
};
