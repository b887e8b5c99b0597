// The nftables mode's rule-integrity check (issue 15: outside interference detected within
// seconds). What nft 1.0.6 can tell us costs very different amounts (10k Services x 10 endpoints
// on the project's test machine, `bench/nft-scale.ts` and scratch runs):
//
// - `nft list chains <family>` reads tables and chains only: ~15 ms whatever the number of
//   Services. It sees a deleted table (`nft delete table`, `nft flush ruleset`) or base chain.
// - `nft -c -f -` (check mode: the kernel prepares the transaction, says whether every object it
//   names is there, and throws it away) with `delete element` lines and `delete rule ... handle N`
//   lines reads the sets' and chains' definitions but not the elements: 25-50 ms at 10k. It sees
//   an emptied map or a deleted element (with the probability of the sample), and any removed
//   rule of the chains a partial sync never rewrites (a flushed hook chain, a deleted jump): the
//   kernel numbers a table's rules from a counter and never reuses a number, so a handle that is
//   still there is the very rule we wrote.
// - Anything that lists rules or elements (`list chain`, `list table`, `get element`) makes nft
//   fetch every set and element of the table first: 0.2 s at 1k Services, 3-4 s at 10k, even
//   with `-t` (which only leaves the elements out of the output). Every check would be most of
//   a core at 10k.
// - `nft monitor` would report every change with the process that made it, but it holds the
//   whole table in memory (27 MiB at 1k Services, 228 MiB at 10k), and while it listens a full
//   sync of 300k elements took 7.5 s instead of 3.2 s and the monitor lost events.
//
// So the chain listing and the check-mode deletions run at every check. The deep look (the whole
// table's rules with their handles, one nft run) learns the handles after every full sync (which
// rewrites those chains), and otherwise runs at every check while it is cheap and else only after
// 50 times its own last duration (common/check-schedule.ts): at most 2 % of a core.
import type { IPFamily } from '../../model/types.ts';
import { ExecError } from '../../util/exec.ts';
import { effective, type Ledger } from './ledger.ts';
import { nftFamily, TABLE } from './names.ts';
import { BASE_CHAINS, CLUSTER_IPS_CHECK, type Skeleton } from './skeleton.ts';
export { CheckSchedule as DeepCheckSchedule } from '../common/check-schedule.ts';

/** Dispatch elements checked at every check. */
export const SAMPLED_ELEMENTS = 4;

/** The chains a working table must have: the hooks, and the dispatch every Service goes through. */
export const REQUIRED_CHAINS: readonly string[] = [...BASE_CHAINS.map((chain) => chain.name), 'services'];

/** The maps whose emptying would send Service traffic nowhere; every check samples them. */
const SAMPLED_MAPS = ['service-ips', 'service-nodeports'] as const;

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

/** A rule of ours by its kernel handle. */
export interface RuleHandle {
  readonly chain: string;
  readonly handle: number;
}

/**
 * The chains a partial sync never rewrites, with the number of rules a full sync writes in each:
 * every hook chain and fixed regular chain except cluster-ips-check (rewritten when the service
 * CIDRs change).
 */
export function staticRuleCounts(skeleton: Skeleton): ReadonlyMap<string, number> {
  const counts = new Map<string, number>();
  for (const chain of [...skeleton.baseChains, ...skeleton.chains])
    if (chain.name !== CLUSTER_IPS_CHECK) counts.set(chain.name, chain.rules.length);
  return counts;
}

/** The deep look: every chain's rules with their handles; `-t` leaves the elements out. */
export function deepListing(family: IPFamily): readonly string[] {
  return ['-a', '-t', 'list', 'table', nftFamily(family), TABLE];
}

const NON_CHAIN_BLOCK =
  /^(set|map|flowtable|counter|quota|limit|secmark|synproxy|ct (helper|timeout|expectation)) \S+ \{( # handle \d+)?$/;

/** The rule handles of each chain in a `nft -a list table` output, in order. */
export function ruleHandlesOf(listing: string): Map<string, number[]> {
  const chains = new Map<string, number[]>();
  let current: number[] | undefined;
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    const chain = /^chain (\S+) \{/.exec(line)?.[1];
    if (chain !== undefined) {
      current = [];
      chains.set(chain, current);
      continue;
    }
    // The end of a chain, or the start of a set, map or named object (`counter x { # handle 9`).
    if (line === '}' || NON_CHAIN_BLOCK.test(line)) {
      current = undefined;
      continue;
    }
    const handle = current ? /# handle (\d+)$/.exec(line)?.[1] : undefined;
    if (handle !== undefined) current?.push(Number(handle));
  }
  return chains;
}

/**
 * Judges the deep listing against what the last full sync wrote: every static chain must hold
 * exactly its rules. Intact: the handles the cheap checks then look for; else what is wrong.
 */
export function judgeDeepListing(
  listing: string,
  expected: ReadonlyMap<string, number>,
):
  | { readonly intact: true; readonly handles: readonly RuleHandle[] }
  | { readonly intact: false; readonly problem: string } {
  const found = ruleHandlesOf(listing);
  const handles: RuleHandle[] = [];
  for (const [chain, count] of expected) {
    const rules = found.get(chain);
    if (rules === undefined) return { intact: false, problem: `chain ${chain} is gone` };
    if (rules.length !== count)
      return {
        intact: false,
        problem: `chain ${chain} holds ${rules.length} rules, kube-proxy wrote ${count}`,
      };
    for (const handle of rules) handles.push({ chain, handle });
  }
  return { intact: true, handles };
}

/**
 * The handles of the fixed chains' rules in the `nft --echo --handle` output of the transaction
 * that wrote them (`add rule ip kube-proxy nat-prerouting jump services # handle 12`);
 * undefined unless every chain's rules are all there.
 */
export function handlesFromEcho(
  echo: string,
  family: IPFamily,
  expected: ReadonlyMap<string, number>,
): readonly RuleHandle[] | undefined {
  const prefix = `add rule ${nftFamily(family)} ${TABLE} `;
  const found = new Map<string, number[]>();
  for (const line of echo.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const chain = line.slice(prefix.length).split(' ', 1)[0] ?? '';
    const handle = /# handle (\d+)$/.exec(line)?.[1];
    if (!expected.has(chain) || handle === undefined) continue;
    const list = found.get(chain) ?? [];
    list.push(Number(handle));
    found.set(chain, list);
  }
  const handles: RuleHandle[] = [];
  for (const [chain, count] of expected) {
    const list = found.get(chain) ?? [];
    if (list.length !== count) return undefined;
    for (const handle of list) handles.push({ chain, handle });
  }
  return handles;
}

/**
 * The input of `nft -c -f -` that fails with "No such file or directory" unless every sampled
 * element and every rule is there: in check mode nothing is deleted, and nft needs only the
 * sets' and chains' definitions.
 */
export function checkModeScript(
  family: IPFamily,
  samples: readonly { readonly set: string; readonly key: string }[],
  rules: readonly RuleHandle[],
): string {
  const table = `${nftFamily(family)} ${TABLE}`;
  return (
    samples.map(({ set, key }) => `delete element ${table} ${set} { ${key} }\n`).join('') +
    rules.map(({ chain, handle }) => `delete rule ${table} ${chain} handle ${handle}\n`).join('')
  );
}

/** nft's answer for a chain, set or element that is not there (the deep check's finding). */
export function isMissing(error: unknown): boolean {
  return error instanceof ExecError && /No such file or directory/.test(error.stderr);
}
