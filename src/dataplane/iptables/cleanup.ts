// `--cleanup` for the iptables mode (spec 3.11): remove every rule and chain we create, in both
// families and both backends (a node may have run an older kube-proxy on the other one).
// Tolerant: a missing table, chain or tool is nothing to clean, not an error.
import { log } from '../../log/log.ts';
import type { Cleaner } from '../../sync/backend.ts';
import { execTool } from '../../util/exec.ts';
import {
  chooseIptablesBackend,
  iptablesTools,
  type IptablesBackend,
  type IptablesTools,
  type Runner,
} from './backend.ts';
import { parseSave, restore, type SavedTable, type Table } from './apply.ts';
import {
  KUBE_EXTERNAL_SERVICES,
  KUBE_FORWARD,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_CANARY,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
  isServiceChainName,
} from './chains.ts';

// KUBE-MARK-MASQ and KUBE-FIREWALL stay: kubelet and other components use them too.
// KUBE-PROXY-FIREWALL and the canaries go as well; upstream leaves them behind, which only
// leaves empty chains around, so we remove them (deliberate deviation).
const FIXED: Readonly<Record<Table, readonly string[]>> = {
  nat: [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_PROXY_CANARY],
  filter: [
    KUBE_SERVICES,
    KUBE_EXTERNAL_SERVICES,
    KUBE_FORWARD,
    KUBE_NODEPORTS,
    KUBE_PROXY_FIREWALL,
    KUBE_PROXY_CANARY,
  ],
  mangle: [KUBE_PROXY_CANARY],
};

/** The jump or goto target of a saved rule, ignoring text inside quoted comments. */
function ruleTarget(rule: string): string | undefined {
  const unquoted = rule.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  let target: string | undefined;
  for (const match of unquoted.matchAll(/ -[jg] (\S+)/g)) target = match[1];
  return target;
}

/**
 * The restore input that removes our chains from one table: flush them (chain lines), delete
 * every rule elsewhere that jumps into them (our 3.2 jumps and anything else, so -X cannot fail
 * on a reference), then delete them. Undefined when nothing of ours is there.
 */
export function cleanupTableText(table: Table, saved: SavedTable): string | undefined {
  const remove = [...saved.chains].filter(
    (chain) => FIXED[table].includes(chain) || (table === 'nat' && isServiceChainName(chain)),
  );
  if (remove.length === 0) return undefined;
  remove.sort();
  const removed = new Set(remove);
  const lines = [`*${table}`, ...remove.map((chain) => `:${chain} - [0:0]`)];
  for (const rule of saved.rules) {
    const chain = rule.split(' ', 2)[1] ?? '';
    const target = ruleTarget(rule);
    if (!removed.has(chain) && target !== undefined && removed.has(target)) lines.push(`-D${rule.slice(2)}`);
  }
  for (const chain of remove) lines.push(`-X ${chain}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export interface IptablesCleanupReport {
  /** Chains removed, per `backend/family/table`. */
  readonly removed: Readonly<Record<string, number>>;
  /** Restore failures (anything else missing is not an error). */
  readonly errors: readonly string[];
}

async function cleanupOne(
  run: Runner,
  tools: IptablesTools,
  removed: Record<string, number>,
  errors: string[],
): Promise<void> {
  let text: string;
  try {
    // Without -t the legacy tool lists only existing tables, so looking creates nothing.
    text = (await run(tools.save, [], { timeoutMs: 60_000 })).stdout;
  } catch {
    return; // the tool or the family is not there: nothing of ours either
  }
  const tables = parseSave(text);
  for (const table of ['filter', 'nat', 'mangle'] as const) {
    const saved = tables.get(table);
    if (!saved) continue;
    const input = cleanupTableText(table, saved);
    if (input === undefined) continue;
    try {
      await restore(run, tools, input);
      removed[`${tools.backend}/${tools.family}/${table}`] = input
        .split('\n')
        .filter((l) => l.startsWith('-X ')).length;
    } catch (error) {
      errors.push(
        `${tools.backend} ${tools.family} ${table}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}

/** Removes our iptables rules and chains from both families, chosen backend first, then the other. */
export async function cleanupIptables(
  run: Runner = execTool,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<IptablesCleanupReport> {
  const chosen = (await chooseIptablesBackend(run, env)).backend;
  const order: IptablesBackend[] = chosen === 'nft' ? ['nft', 'legacy'] : ['legacy', 'nft'];
  const removed: Record<string, number> = {};
  const errors: string[] = [];
  for (const backend of order) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      await cleanupOne(run, iptablesTools(backend, family), removed, errors);
    }
  }
  log.info('Cleaned up iptables rules', { removed, errors: errors.length });
  for (const error of errors) log.error('iptables cleanup failed', error);
  return { removed, errors };
}

/** The Cleaner for `--cleanup` and mode switches; throws when some restore failed. */
export function iptablesCleaner(run: Runner = execTool): Cleaner {
  return {
    mode: 'iptables',
    cleanup: async () => {
      const report = await cleanupIptables(run);
      if (report.errors.length > 0) throw new Error(`iptables cleanup: ${report.errors.join('; ')}`);
    },
  };
}
