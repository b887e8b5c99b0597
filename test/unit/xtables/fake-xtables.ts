// A small model of the iptables tools of one backend and family, closer to the kernel than the
// iptables proxier test's FakeTools: rules are kept per chain and in order, restore applies each
// table atomically at COMMIT, declaring an existing chain flushes it, -D needs the exact rule and
// -X refuses a chain that is missing or still referenced (so a bad cleanup input fails here as it
// would on a host). Other binaries (the other backend or family) "are not installed".
import { ExecError, type ExecOptions, type ExecResult, inputText } from '../../../src/util/exec.ts';
import type { IptablesTools, Table } from '../../../src/dataplane/xtables/index.ts';

export interface Call {
  readonly file: string;
  readonly args: readonly string[];
  readonly input?: string | undefined;
}

type Chains = Map<string, string[]>;

const BUILTIN: Readonly<Record<Table, readonly string[]>> = {
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};
const TABLE_NAMES: readonly Table[] = ['mangle', 'nat', 'filter'];

function isTable(name: string): name is Table {
  return (TABLE_NAMES as readonly string[]).includes(name);
}

/** argv as iptables-save prints it: arguments with spaces (comments) quoted. */
function ruleText(args: readonly string[]): string {
  return args.map((arg) => (arg.includes(' ') ? `"${arg}"` : arg)).join(' ');
}

function copy(chains: Chains): Chains {
  return new Map([...chains].map(([chain, rules]) => [chain, [...rules]]));
}

function targetOf(rule: string): string | undefined {
  return / -[jg] (\S+)/.exec(` ${rule.replace(/"[^"]*"/g, '""')}`)?.[1];
}

export class FakeXtables {
  readonly calls: Call[] = [];
  readonly tables = new Map<Table, Chains>(
    TABLE_NAMES.map((table) => [table, new Map(BUILTIN[table].map((chain) => [chain, []]))]),
  );
  failSave = false;
  readonly tools: IptablesTools;

  constructor(tools: IptablesTools) {
    this.tools = tools;
  }

  /** The chains of a table (built-in ones first, then the rest sorted), with their rules. */
  dump(table: Table): string {
    const chains = this.tables.get(table) ?? new Map<string, string[]>();
    const builtin = BUILTIN[table];
    const names = [...builtin, ...[...chains.keys()].filter((c) => !builtin.includes(c)).sort()];
    const lines = [`*${table}`];
    for (const name of names) lines.push(`:${name} ${builtin.includes(name) ? 'ACCEPT' : '-'} [0:0]`);
    for (const name of names) for (const rule of chains.get(name) ?? []) lines.push(`-A ${name} ${rule}`);
    lines.push('COMMIT');
    return lines.join('\n');
  }

  /** Every table, as iptables-save prints them. */
  dumpAll(): string {
    return `${TABLE_NAMES.map((table) => this.dump(table)).join('\n')}\n`;
  }

  chains(table: Table): string[] {
    return [...(this.tables.get(table)?.keys() ?? [])]
      .filter((chain) => !BUILTIN[table].includes(chain))
      .sort();
  }

  rules(table: Table, chain: string): readonly string[] {
    return this.tables.get(table)?.get(chain) ?? [];
  }

  run = (file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> => {
    const input = inputText(options?.input);
    this.calls.push({ file, args, input: options?.input === undefined ? undefined : input });
    const fail = (code: number, stderr: string): Promise<ExecResult> =>
      Promise.reject(new ExecError([file, ...args].join(' '), code, '', stderr, `exit status ${code}`));
    const ok = (stdout = ''): Promise<ExecResult> => Promise.resolve({ stdout, stderr: '', code: 0 });
    if (file === this.tools.save) {
      if (this.failSave) return fail(4, 'iptables-save: timed out');
      const table = args.includes('-t') ? args[args.indexOf('-t') + 1] : undefined;
      if (table === undefined) return ok(this.dumpAll());
      return isTable(table) ? ok(`${this.dump(table)}\n`) : fail(1, 'no such table');
    }
    if (file === this.tools.restore) {
      const error = this.restoreNow(input);
      return error === undefined ? ok() : fail(1, `${file}: ${error}\n`);
    }
    if (file !== this.tools.iptables) return fail(127, `${file}: not found`);
    return this.command(args, fail, ok);
  };

  private command(
    args: readonly string[],
    fail: (code: number, stderr: string) => Promise<ExecResult>,
    ok: () => Promise<ExecResult>,
  ): Promise<ExecResult> {
    const tableName = args[args.indexOf('-t') + 1] ?? '';
    const chains = isTable(tableName) ? this.tables.get(tableName) : undefined;
    const at = args.findIndex((a) => ['-N', '-C', '-I', '-A', '-S'].includes(a));
    if (!chains || at < 0) return fail(2, `unexpected ${args.join(' ')}`);
    const chain = args[at + 1] ?? '';
    const rule = ruleText(args.slice(at + 2));
    const rules = chains.get(chain);
    switch (args[at]) {
      case '-N':
        if (rules) return fail(1, 'Chain already exists.');
        chains.set(chain, []);
        return ok();
      case '-S':
        return rules ? ok() : fail(1, 'No chain/target/match by that name.');
      case '-C':
        return rules?.includes(rule)
          ? ok()
          : fail(1, 'Bad rule (does a matching rule exist in that chain?).');
      case '-I':
      case '-A': {
        const target = targetOf(rule);
        if (!rules || (target !== undefined && !chains.has(target) && !/^[A-Z]+$/.test(target))) {
          return fail(2, "Couldn't load target");
        }
        if (args[at] === '-I') rules.unshift(rule);
        else rules.push(rule);
        return ok();
      }
      default:
        return fail(2, `unexpected ${args.join(' ')}`);
    }
  }

  /** Applies a restore input table by table; returns the error message, like the tool's. */
  private restoreNow(input: string): string | undefined {
    let table: Table | undefined;
    let work: Chains | undefined;
    const lines = input.split('\n');
    for (const [index, line] of lines.entries()) {
      const fail = (what: string): string => `line ${index + 1} failed: ${what}`;
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('*')) {
        const name = line.slice(1);
        if (!isTable(name)) return fail(`no table ${name}`);
        table = name;
        work = copy(this.tables.get(name) ?? new Map<string, string[]>());
        continue;
      }
      if (!table || !work) return fail('no table');
      if (line === 'COMMIT') {
        this.tables.set(table, work);
        table = undefined;
        work = undefined;
        continue;
      }
      if (line.startsWith(':')) {
        // With --noflush, declaring a chain creates it or flushes it.
        work.set(line.slice(1, line.indexOf(' ')), []);
        continue;
      }
      const [op = '', chain = '', ...rest] = line.split(' ');
      const rule = rest.join(' ');
      const rules = work.get(chain);
      switch (op) {
        case '-A':
        case '-I': {
          const target = targetOf(rule);
          if (!rules) return fail(`no chain ${chain}`);
          if (target !== undefined && !work.has(target) && !/^[A-Z]+$/.test(target))
            return fail(`no target ${target}`);
          if (op === '-I') rules.unshift(rule);
          else rules.push(rule);
          break;
        }
        case '-D': {
          const at = rules?.indexOf(rule) ?? -1;
          if (!rules || at < 0) return fail(`no rule ${line}`);
          rules.splice(at, 1);
          break;
        }
        case '-X': {
          if (!rules) return fail(`no chain ${chain}`);
          if (rules.length > 0) return fail(`chain ${chain} not empty`);
          for (const [other, otherRules] of work)
            if (otherRules.some((r) => targetOf(r) === chain))
              return fail(`${chain} referenced from ${other}`);
          work.delete(chain);
          break;
        }
        default:
          return fail(`unexpected ${line}`);
      }
    }
    return table === undefined ? undefined : `line ${lines.length} failed: no COMMIT`;
  }
}
