// `kube-proxy verify` in iptables mode: the nat and filter tables read back with iptables-save
// (one call per table), restricted to our chains, compared rule by rule in canonical form
// (xtables/canonical.ts) with the full render of the state the last sync applied.
import type { DriftItem, KernelComparison, ModeVerifier } from '../common/verify.ts';
import { chooseIptablesBackend, iptablesTools } from './backend.ts';
import { canonicalRule, ruleArgs, ruleComment, rulesByChain } from '../xtables/canonical.ts';
import { saveTable } from '../xtables/save.ts';
import type { Table } from '../xtables/tools.ts';
import { fullRestoreText } from './explain.ts';

/** Per-service chains we own (stale ones in the kernel are drift too). */
const SERVICE_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP)-[A-Z2-7]{16}$/;
const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
/** `namespace/name:port` (or `namespace/name`) at the start of a comment. */
const SERVICE_PORT = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[-a-z0-9]+)?)(\s|$)/;
const ENDPOINT = /(?:-> |--to-destination )(\S+:\d+)/;

function servicePortOf(args: readonly string[]): string | undefined {
  const comment = ruleComment(args);
  return comment === undefined ? undefined : SERVICE_PORT.exec(comment)?.[1];
}

function endpointOf(args: readonly string[]): string | undefined {
  const text = args.join(' ');
  return ENDPOINT.exec(text)?.[1];
}

/** Multiset difference by canonical text: what `a` has that `b` lacks. */
function missingFrom(a: readonly string[][], b: readonly string[][]): string[][] {
  const counts = new Map<string, number>();
  for (const args of b) {
    const key = canonicalRule(args);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const out: string[][] = [];
  for (const args of a) {
    const key = canonicalRule(args);
    const left = counts.get(key) ?? 0;
    if (left > 0) counts.set(key, left - 1);
    else out.push(args);
  }
  return out;
}

/**
 * The kernel's rules less those that only count: the localhost NodePort rule exists only when
 * the nfacct counter does (iptables/nfacct.ts) and jumps where the general NodePort rule after
 * it would, so the state's render (which cannot know the host's counters) leaves it out.
 */
function withoutCountingRules(chains: Map<string, string[][]>): Map<string, string[][]> {
  const nodePorts = chains.get('KUBE-NODEPORTS');
  if (nodePorts) {
    chains.set(
      'KUBE-NODEPORTS',
      nodePorts.filter((args) => !(args.includes('--nfacct-name') && args.includes('127.0.0.0/8'))),
    );
  }
  return chains;
}

export const iptablesVerifier: ModeVerifier = {
  async confirm({ family, steps, run }) {
    const tools = iptablesTools((await chooseIptablesBackend(run)).backend, family);
    const saved = new Map<string, Map<string, string[][]>>();
    for (const table of ['nat', 'filter'] as const satisfies readonly Table[]) {
      if (steps.some((step) => step.table === table))
        saved.set(table, rulesByChain(await saveTable(run, tools, table)));
    }
    return steps.map((step) => {
      const chains = saved.get(step.table);
      if (!chains) return undefined;
      const want = canonicalRule(ruleArgs(step.rule));
      return (chains.get(step.chain) ?? []).some((args) => canonicalRule(args) === want);
    });
  },

  async compare({ family, snapshot, settings, node, hostAddresses, run }): Promise<KernelComparison> {
    const expectedText = fullRestoreText({ family, snapshot, settings, node, hostAddresses });
    const tools = iptablesTools((await chooseIptablesBackend(run)).backend, family);
    const items: DriftItem[] = [];
    let objects = 0;
    const expectedByTable = new Map<string, Map<string, string[][]>>();
    for (const block of expectedText.split(/^\*/m).slice(1)) {
      expectedByTable.set(block.slice(0, block.indexOf('\n')).trim(), rulesByChain(block));
    }
    for (const table of ['nat', 'filter'] as const satisfies readonly Table[]) {
      const expected = expectedByTable.get(table) ?? new Map<string, string[][]>();
      const kernel = withoutCountingRules(rulesByChain(await saveTable(run, tools, table)));
      // Which service port a chain belongs to: the first of its rules that names one.
      const owner = new Map<string, string>();
      for (const [chain, rules] of expected) {
        const named = rules.map(servicePortOf).find((sp) => sp !== undefined);
        if (named) owner.set(chain, named);
      }
      const ours = new Set([...expected.keys()].filter((chain) => !BUILTIN.has(chain)));
      for (const chain of kernel.keys()) if (SERVICE_CHAIN.test(chain)) ours.add(chain);
      for (const chain of [...ours].sort()) {
        const want = expected.get(chain) ?? [];
        const have = kernel.get(chain);
        objects += want.length + 1;
        const location = `chain ${table} ${chain}`;
        const attribute = (args: readonly string[]) => servicePortOf(args) ?? owner.get(chain);
        if (have === undefined) {
          items.push({ kind: 'missing', location, text: `:${chain}`, servicePort: owner.get(chain) });
          continue;
        }
        if (!expected.has(chain)) {
          const named = have.map(servicePortOf).find((sp) => sp !== undefined);
          items.push({ kind: 'unexpected', location, text: `:${chain}`, servicePort: named });
          continue;
        }
        for (const args of missingFrom(want, have)) {
          items.push({
            kind: 'missing',
            location,
            text: args.join(' '),
            servicePort: attribute(args),
            endpoint: endpointOf(args),
          });
        }
        const extra = missingFrom(have, want);
        for (const args of extra) {
          items.push({
            kind: 'unexpected',
            location,
            text: args.join(' '),
            servicePort: attribute(args),
            endpoint: endpointOf(args),
          });
        }
        // Same rules, another order: iptables takes the first match, so order is meaning.
        if (
          extra.length === 0 &&
          want.length === have.length &&
          want.some((args, i) => canonicalRule(args) !== canonicalRule(have[i] ?? []))
        ) {
          items.push({
            kind: 'changed',
            location,
            text: 'rules in another order',
            servicePort: owner.get(chain),
          });
        }
      }
    }
    return { read: `iptables-save -t nat, -t filter (${tools.save})`, objects, items };
  },
};
