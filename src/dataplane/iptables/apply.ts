// The side effects of the iptables mode: iptables-restore, iptables-save, and the few single
// commands upstream runs around them (jump rules, canaries). Every call goes through a Runner,
// so tests run the same code inside a network namespace.
import type { IPFamily } from '../../model/types.ts';
import { ExecError, inSlices } from '../../util/exec.ts';
import { cidrContains, parseCIDR, parseIP } from '../../util/ip.ts';
import type { IptablesTools, Runner } from './backend.ts';
import {
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_CANARY,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
} from './chains.ts';

export type Table = 'filter' | 'nat' | 'mangle';

/** `-w 5 -W 100000`: wait up to 5 s for the xtables lock, polling every 100 ms. */
export const WAIT_ARGS: readonly string[] = ['-w', '5', '-W', '100000'];
export const RESTORE_ARGS: readonly string[] = [...WAIT_ARGS, '--noflush', '--counters'];

/** A jump from a built-in chain into ours (spec 3.2), as argv for `-C` / `-I` / `-D`. */
export interface JumpRule {
  readonly table: Table;
  readonly chain: string;
  readonly target: string;
  readonly args: readonly string[];
}

function jumps(
  table: Table,
  chains: readonly string[],
  target: string,
  comment: string | undefined,
  extra: readonly string[] = [],
): JumpRule[] {
  const commentArgs = comment === undefined ? [] : ['-m', 'comment', '--comment', comment];
  return chains.map((chain) => ({ table, chain, target, args: [...extra, ...commentArgs, '-j', target] }));
}

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];

/**
 * In the order upstream ensures them; each missing one is prepended, so the final order in a
 * built-in chain is the reverse of this list.
 */
export const JUMP_RULES: readonly JumpRule[] = [
  ...jumps(
    'filter',
    ['INPUT', 'FORWARD'],
    KUBE_EXTERNAL_SERVICES,
    'kubernetes externally-visible service portals',
    NEW,
  ),
  ...jumps('filter', ['INPUT'], KUBE_NODEPORTS, 'kubernetes health check service ports'),
  ...jumps('filter', ['FORWARD', 'OUTPUT'], KUBE_SERVICES, 'kubernetes service portals', NEW),
  ...jumps('filter', ['FORWARD'], KUBE_FORWARD, 'kubernetes forwarding rules'),
  ...jumps(
    'filter',
    ['INPUT', 'OUTPUT', 'FORWARD'],
    KUBE_PROXY_FIREWALL,
    'kubernetes load balancer firewall',
    NEW,
  ),
  ...jumps('nat', ['OUTPUT', 'PREROUTING'], KUBE_SERVICES, 'kubernetes service portals'),
  ...jumps('nat', ['POSTROUTING'], KUBE_POSTROUTING, 'kubernetes postrouting rules'),
  // kubelet's chain: jumps are shared with kubelet and stay on cleanup.
  ...jumps('filter', ['INPUT', 'OUTPUT'], KUBE_FIREWALL, undefined),
];

function isExitCode(error: unknown, code: number): boolean {
  return error instanceof ExecError && error.code === code;
}

/** Creates a chain unless it exists (`-N` exits 1 for an existing chain). */
export async function ensureChain(
  run: Runner,
  tools: IptablesTools,
  table: Table,
  chain: string,
): Promise<void> {
  try {
    await run(tools.iptables, [...WAIT_ARGS, '-t', table, '-N', chain]);
  } catch (error) {
    if (!isExitCode(error, 1)) throw error;
  }
}

/** Prepends a rule unless an identical one exists (`-C` exits 1 when it does not). */
export async function ensureRule(
  run: Runner,
  tools: IptablesTools,
  table: Table,
  chain: string,
  args: readonly string[],
): Promise<void> {
  try {
    await run(tools.iptables, [...WAIT_ARGS, '-t', table, '-C', chain, ...args]);
    return;
  } catch (error) {
    if (!isExitCode(error, 1)) throw error;
  }
  await run(tools.iptables, [...WAIT_ARGS, '-t', table, '-I', chain, ...args]);
}

/** Whether a chain exists; any failure counts as "no" (the caller then resyncs in full). */
export async function chainExists(
  run: Runner,
  tools: IptablesTools,
  table: Table,
  chain: string,
): Promise<boolean> {
  try {
    await run(tools.iptables, [...WAIT_ARGS, '-t', table, '-S', chain]);
    return true;
  } catch {
    return false;
  }
}

/** One table of an `iptables-save` dump: the chains it declares and its rule lines. */
export interface SavedTable {
  readonly chains: Set<string>;
  readonly rules: string[];
}

/** Splits a whole `iptables-save` dump (every table) into its tables. */
export function parseSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: new Set(), rules: [] };
      tables.set(line.slice(1).trim(), current);
    } else if (!current) {
      continue;
    } else if (line.startsWith(':')) {
      const end = line.indexOf(' ');
      current.chains.add(end < 0 ? line.slice(1) : line.slice(1, end));
    } else if (line.startsWith('-A ')) {
      current.rules.push(line);
    }
  }
  return tables;
}

/**
 * Whether a jump rule is in a dump: a rule of its chain jumping to its target, with its comment
 * and its conntrack state match. (iptables-save reorders and re-quotes match arguments, so the
 * text is compared by these parts rather than as a whole.)
 */
export function hasJumpRule(saved: ReadonlyMap<string, SavedTable>, jump: JumpRule): boolean {
  const comment = jump.args[jump.args.indexOf('--comment') + 1];
  const wantsNew = jump.args.includes('--ctstate');
  return (saved.get(jump.table)?.rules ?? []).some(
    (line) =>
      line.startsWith(`-A ${jump.chain} `) &&
      (line.endsWith(` -j ${jump.target}`) || line.includes(` -j ${jump.target} `)) &&
      (!jump.args.includes('--comment') || (comment !== undefined && line.includes(comment))) &&
      (!wantsNew || /--ctstate NEW\b/.test(line)),
  );
}

/** Tables holding a canary chain, in the order they are ensured. */
export const CANARY_TABLES: readonly Table[] = ['mangle', 'nat', 'filter'];

/**
 * iptables-restore input (for `--noflush`) that creates the canaries and jump targets missing
 * from `saved` and prepends the missing jump rules, in upstream's order; '' when nothing is
 * missing. The same result as upstream's `-N` / `-C` / `-I` calls, in one process instead of
 * up to 31, each of which would take the xtables lock and read its whole table. Only missing
 * chains are declared: declaring an existing one would flush it.
 */
export function missingBaseText(saved: ReadonlyMap<string, SavedTable>): string {
  const chains = new Map<Table, string[]>(CANARY_TABLES.map((table) => [table, []]));
  const rules = new Map<Table, string[]>(CANARY_TABLES.map((table) => [table, []]));
  const declare = (table: Table, chain: string): void => {
    const declared = chains.get(table);
    if (declared && !saved.get(table)?.chains.has(chain) && !declared.includes(chain)) declared.push(chain);
  };
  for (const table of CANARY_TABLES) declare(table, KUBE_PROXY_CANARY);
  for (const jump of JUMP_RULES) {
    declare(jump.table, jump.target);
    if (!hasJumpRule(saved, jump)) {
      // The arguments are constants; only the comments have spaces.
      const args = jump.args.map((arg) => (arg.includes(' ') ? `"${arg}"` : arg));
      rules.get(jump.table)?.push(`-I ${jump.chain} ${args.join(' ')}`);
    }
  }
  let text = '';
  for (const table of CANARY_TABLES) {
    const declared = chains.get(table) ?? [];
    const inserted = rules.get(table) ?? [];
    if (declared.length === 0 && inserted.length === 0) continue;
    text += `*${table}\n${declared.map((chain) => `:${chain} - [0:0]\n`).join('')}`;
    text += `${inserted.map((rule) => `${rule}\n`).join('')}COMMIT\n`;
  }
  return text;
}

/** Chain names declared in `iptables-save` output (`:NAME POLICY [p:b]`). */
export function chainsInSave(text: string): Set<string> {
  const chains = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) {
      const end = line.indexOf(' ');
      chains.add(end < 0 ? line.slice(1) : line.slice(1, end));
    }
  }
  return chains;
}

/** Every table at once: one read of the kernel instead of one per check. */
export async function saveAll(run: Runner, tools: IptablesTools): Promise<string> {
  return (await run(tools.save, [], { timeoutMs: 60_000 })).stdout;
}

export async function saveTable(run: Runner, tools: IptablesTools, table: Table): Promise<string> {
  return (await run(tools.save, ['-t', table], { timeoutMs: 60_000 })).stdout;
}

/** The input lines around `line` (1-based), numbered, for an error message. */
export function linesAround(text: string, line: number, radius = 1): string {
  const lines = text.split('\n');
  const from = Math.max(1, line - radius);
  const to = Math.min(lines.length, line + radius);
  const out: string[] = [];
  for (let n = from; n <= to; n++)
    out.push(`${n === line ? '>' : ' '}${String(n).padStart(6)}: ${lines[n - 1] ?? ''}`);
  return out.join('\n');
}

export class RestoreError extends Error {
  readonly tool: string;
  readonly stderr: string;
  /** 1-based line of the input the tool complained about, when it said. */
  readonly line: number | undefined;
  constructor(tool: string, stderr: string, line: number | undefined, context: string, reason: string) {
    super(
      `${tool} failed: ${stderr.trim() || reason}${line !== undefined ? `\ninput around line ${line}:\n${context}` : ''}`,
    );
    this.name = 'RestoreError';
    this.tool = tool;
    this.stderr = stderr;
    this.line = line;
  }
}

/**
 * Pipes the text to `<backend>-restore --noflush`. Each table is committed atomically, so on
 * failure the previous rules of that table are still in place.
 */
export async function restore(run: Runner, tools: IptablesTools, text: string): Promise<void> {
  try {
    // In slices: at 10k Services the text is tens of MB, and one Buffer of it doubles the peak.
    await run(tools.restore, RESTORE_ARGS, { input: inSlices(text), timeoutMs: 300_000 });
  } catch (error) {
    const stderr = error instanceof ExecError ? error.stderr : '';
    const reason = error instanceof Error ? error.message : String(error);
    const match = /line:?\s+(\d+)/i.exec(stderr);
    const line = match ? Number(match[1]) : undefined;
    throw new RestoreError(
      tools.restore,
      stderr,
      line,
      line === undefined ? '' : linesAround(text, line),
      reason,
    );
  }
}

interface IpAddrJson {
  readonly addr_info?: readonly { readonly family?: string; readonly local?: string }[];
}

/** Local addresses of the family inside the CIDRs, in `ip -j addr` order, deduplicated. */
export async function localAddressesIn(
  run: Runner,
  family: IPFamily,
  cidrTexts: readonly string[],
): Promise<string[]> {
  const cidrs = cidrTexts.flatMap((text) => parseCIDR(text) ?? []);
  const result = await run('ip', ['-j', 'addr', 'show']);
  const links = JSON.parse(result.stdout) as readonly IpAddrJson[];
  const out: string[] = [];
  for (const link of links) {
    for (const info of link.addr_info ?? []) {
      const ip = parseIP(info.local ?? '');
      if (!ip || ip.family !== family || out.includes(ip.text)) continue;
      if (cidrs.some((cidr) => cidrContains(cidr, ip))) out.push(ip.text);
    }
  }
  return out;
}
