// The nftables mode's rule-integrity check (issue 15: outside interference detected within
// seconds). What nft 1.0.6 can tell us costs very different amounts (10k Services x 10 endpoints
// on the project's test machine, `bench/nft-scale.ts` and scratch runs):
//
// - `nft list chains <family>` reads tables and chains only: ~15 ms whatever the number of
//   Services. It sees a deleted table (`nft delete table`, `nft flush ruleset`) or base chain.
// - `nft -c -f -` with `delete element` lines (check mode: the kernel prepares the transaction,
//   says whether every element is there, and throws it away) reads the sets' definitions but
//   not their elements: 20-35 ms at 10k. It sees an emptied map or a deleted element, with the
//   probability of the sample.
// - Anything that lists rules or elements (`list chain`, `get element`) makes nft fetch every
//   set and element of the table first: 0.2 s at 1k Services, 3-3.8 s at 10k. Every check
//   would be most of a core at 10k.
// - `nft monitor` would report every change with the process that made it, but it holds the
//   whole table in memory (27 MiB at 1k Services, 228 MiB at 10k), and while it listens a full
//   sync of 300k elements took 7.5 s instead of 3.2 s and the monitor lost events.
//
// So the chain listing and the element check run at every check, and the deep look (one chain's
// rules, one nft run) at every check too while it is cheap, and otherwise only after 50 times its
// own last duration (common/check-schedule.ts): at most 2 % of a core.
import type { IPFamily } from '../../model/types.ts';
import { ExecError } from '../../util/exec.ts';
import { effective, type Ledger } from './ledger.ts';
import { nftFamily, TABLE } from './names.ts';
import { BASE_CHAINS } from './skeleton.ts';
export { CheckSchedule as DeepCheckSchedule } from '../common/check-schedule.ts';

/** Dispatch elements checked at every check. */
export const SAMPLED_ELEMENTS = 4;

/** The chains a working table must have: the hooks, and the dispatch every Service goes through. */
export const REQUIRED_CHAINS: readonly string[] = [...BASE_CHAINS.map((chain) => chain.name), 'services'];

/** The maps whose emptying would send Service traffic nowhere; every check samples them. */
const SAMPLED_MAPS = ['service-ips', 'service-nodeports'] as const;

/** The deep checks, in turn: a chain and what its listing must contain. */
const DEEP_CHAINS: readonly { readonly chain: string; readonly mustContain: RegExp }[] = [
  { chain: 'nat-prerouting', mustContain: /\bjump services\b/ },
  { chain: 'services', mustContain: /\bvmap @service-ips\b/ },
];

export function cheapListing(family: IPFamily): readonly string[] {
  return ['list', 'chains', nftFamily(family)];
}

/** The chain names of our table in a `nft list chains` output; undefined when the table is absent. */
export function chainsOfTable(listing: string, family: IPFamily): Set<string> | undefined {
  const header = `table ${nftFamily(family)} ${TABLE} {`;
  let inside = false;
  let found = false;
  const chains = new Set<string>();
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('table ')) {
      inside = line === header;
      found ||= inside;
      continue;
    }
    const name = inside ? /^chain (\S+) \{/.exec(line)?.[1] : undefined;
    if (name !== undefined) chains.add(name);
  }
  return found ? chains : undefined;
}

/** Whether the cheap listing shows our table with every required chain. */
export function cheapIntact(listing: string, family: IPFamily): boolean {
  const chains = chainsOfTable(listing, family);
  return chains !== undefined && REQUIRED_CHAINS.every((chain) => chains.has(chain));
}

/** Up to `count` dispatch elements the last transaction wrote, picked with `random` in [0, 1). */
export function sampleElements(
  ledger: Ledger,
  count: number,
  random: () => number,
): { readonly set: string; readonly key: string }[] {
  const sets = SAMPLED_MAPS.filter((set) => (ledger.get(set)?.size ?? 0) > 0);
  const picked: { set: string; key: string }[] = [];
  for (let i = 0; i < count && sets.length > 0; i++) {
    const set = sets[Math.floor(random() * sets.length)] ?? sets[0];
    const claims = set === undefined ? undefined : ledger.get(set);
    if (set === undefined || !claims) continue;
    // A Map has no index: walk to a random position (a few thousand steps at 10k, every minutes).
    let position = Math.floor(random() * claims.size);
    for (const [key, claim] of claims) {
      if (position-- > 0) continue;
      if (effective(claim) !== undefined && !picked.some((p) => p.set === set && p.key === key))
        picked.push({ set, key });
      break;
    }
  }
  return picked;
}

/**
 * The input of `nft -c -f -` that fails with "No such file or directory" unless every sampled
 * element is there: in check mode nothing is deleted, and nft needs only the sets' definitions.
 */
export function elementCheckScript(
  family: IPFamily,
  samples: readonly { readonly set: string; readonly key: string }[],
): string {
  const table = `${nftFamily(family)} ${TABLE}`;
  return samples.map(({ set, key }) => `delete element ${table} ${set} { ${key} }\n`).join('');
}

/** The deep look, chains in turn: the arguments of the listing, and what it must contain. */
export function deepListing(
  family: IPFamily,
  turn: number,
): { readonly args: readonly string[]; readonly mustContain: RegExp } {
  const deep = DEEP_CHAINS[turn % DEEP_CHAINS.length] ?? DEEP_CHAINS[0];
  if (!deep) throw new Error('no deep integrity check defined');
  return { args: ['list', 'chain', nftFamily(family), TABLE, deep.chain], mustContain: deep.mustContain };
}

/** nft's answer for a chain, set or element that is not there (the deep check's finding). */
export function isMissing(error: unknown): boolean {
  return error instanceof ExecError && /No such file or directory/.test(error.stderr);
}
