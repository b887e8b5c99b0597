// The nftables mode's rule-integrity check (issue 15: outside interference detected within
// seconds). What nft 1.0.6 can tell us costs very different amounts:
//
// - `nft list chains <family>` reads tables and chains only: ~15 ms whatever the number of
//   Services. It sees a deleted table (`nft delete table`, `nft flush ruleset`) or base chain.
// - Anything about rules or elements (`list chain`, `get element`) makes nft fetch every set
//   and element of the table first: 0.2 s at 1k Services, 2.6-3.5 s at 10k on the project's
//   test machine. Every 5 s that would be most of a core at 10k.
// - `nft monitor` would report every change with the process that made it, but it holds the
//   whole table in memory (27 MiB at 1k Services, 228 MiB at 10k), and while it listens a full
//   sync of 300k elements took 7.5 s instead of 3.2 s and the monitor lost events.
//
// So the cheap listing runs at every check, and the deep one (one chain's rules plus a sample of
// dispatch elements, one nft run) at every check too while it is cheap, and otherwise only after
// DEEP_COST_FACTOR times its own last duration: at most 1/DEEP_COST_FACTOR of a core.
import type { IPFamily } from '../../model/types.ts';
import { ExecError } from '../../util/exec.ts';
import { effective, type Ledger } from './ledger.ts';
import { nftFamily, TABLE } from './names.ts';
import { BASE_CHAINS } from './skeleton.ts';

/** The deep check waits this many times its own last duration (2 % of a core at most). */
export const DEEP_COST_FACTOR = 50;
/** Dispatch elements looked up by one deep check. */
export const SAMPLED_ELEMENTS = 4;

/** The chains a working table must have: the hooks, and the dispatch every Service goes through. */
export const REQUIRED_CHAINS: readonly string[] = [...BASE_CHAINS.map((chain) => chain.name), 'services'];

/** The maps whose emptying would send Service traffic nowhere; the deep check samples them. */
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
 * The deep check's `nft -f -` input: one chain listing, then the sampled elements. nft 1.0.6
 * takes only one `list` per input (a second fails as if the chain did not exist), but `get
 * element` lines after it work; all of them share one fetch of the table.
 */
export function deepScript(
  family: IPFamily,
  turn: number,
  samples: readonly { readonly set: string; readonly key: string }[],
): { readonly script: string; readonly mustContain: RegExp } {
  const deep = DEEP_CHAINS[turn % DEEP_CHAINS.length] ?? DEEP_CHAINS[0];
  if (!deep) throw new Error('no deep integrity check defined');
  const table = `${nftFamily(family)} ${TABLE}`;
  const lines = [`list chain ${table} ${deep.chain}`];
  for (const { set, key } of samples) lines.push(`get element ${table} ${set} { ${key} }`);
  return { script: `${lines.join('\n')}\n`, mustContain: deep.mustContain };
}

/** nft's answer for a chain, set or element that is not there (the deep check's finding). */
export function isMissing(error: unknown): boolean {
  return error instanceof ExecError && /No such file or directory/.test(error.stderr);
}

/** Chooses when the deep check runs: always while it is cheap, else after a multiple of its cost. */
export class DeepCheckSchedule {
  #lastEnd = Number.NEGATIVE_INFINITY;
  #lastMs = 0;
  #turn = 0;
  readonly #factor: number;

  constructor(factor = DEEP_COST_FACTOR) {
    this.#factor = factor;
  }

  /** Whether a deep check is due at `now` (ms). */
  due(now: number): boolean {
    return now - this.#lastEnd >= this.#factor * this.#lastMs;
  }

  /** Which chain the next deep check lists. */
  get turn(): number {
    return this.#turn;
  }

  /** Records a deep check that ran from `start` to `end` (ms). */
  ran(start: number, end: number): void {
    this.#lastEnd = end;
    this.#lastMs = Math.max(0, end - start);
    this.#turn++;
  }

  /** After a repair (a full sync rewrote everything) the next check looks deep again at once. */
  reset(): void {
    this.#lastEnd = Number.NEGATIVE_INFINITY;
  }

  /** The earliest time the next deep check may run (for logs and tests). */
  get nextDueAt(): number {
    return this.#lastEnd + this.#factor * this.#lastMs;
  }
}
