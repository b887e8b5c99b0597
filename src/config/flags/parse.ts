// kube-proxy's command line, parsed with Go pflag semantics (spec 8.3) on top of node:util
// parseArgs (dependencies.md section 4): `--flag=value`, `--flag value`, `-v 2`, `-v=2`, `-v2`,
// booleans as `--x`, `--x=true`, `--x=false` (never `--x false`), comma lists that accumulate over
// repeats, `--feature-gates` pairs that merge, Go durations, `_` accepted for `-` in names, and
// errors in pflag's words ("unknown flag: --foo"). The parser only records which flags were set
// and their raw texts, so callers can apply upstream's precedence against --config.
import { parseArgs } from 'node:util';
import type { FlagDef, FlagState, FlagTarget } from './def.ts';
import { parseGoBool, quote } from './kinds.ts';
import { FLAGS } from './table.ts';

// pflag with WordSepNormalizeFunc: `_` and `-` are the same in a name (klog's flags are
// registered with underscores, --log_dir and --log-dir both work).
const normalize = (name: string): string => name.replaceAll('_', '-');
const BY_NAME: ReadonlyMap<string, FlagDef> = new Map(FLAGS.map((f) => [normalize(f.name), f]));
const BY_SHORTHAND: ReadonlyMap<string, FlagDef> = new Map(
  FLAGS.flatMap((f) => (f.shorthand === undefined ? [] : [[f.shorthand, f] as const])),
);

export interface ParsedFlags {
  /** Raw texts of every explicitly set flag, by canonical name, in command-line order. */
  readonly occurrences: ReadonlyMap<string, readonly string[]>;
  readonly help: boolean;
  /** Deprecation notices for deprecated flags that were used. */
  readonly warnings: readonly string[];
}

export type FlagParseResult =
  { readonly ok: true; readonly flags: ParsedFlags } | { readonly ok: false; readonly error: string };

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parseArgsOptions(): ParseArgsOptions {
  const options: ParseArgsOptions = { help: { type: 'boolean', short: 'h' } };
  for (const f of FLAGS) {
    // A flag with a no-option default takes its value only as `--flag=value`, as pflag does.
    const type = f.isBool || f.noOptDefault !== undefined ? 'boolean' : 'string';
    const name = normalize(f.name);
    options[name] = f.shorthand === undefined ? { type } : { type, short: f.shorthand };
    // pflag normalizes `_` to `-` in names; registering the alias lets parseArgs know its type.
    const alias = name.replaceAll('-', '_');
    if (alias !== name) options[alias] = { type };
  }
  return options;
}

const PARSE_ARGS_OPTIONS = parseArgsOptions();

function display(f: FlagDef): string {
  return f.shorthand === undefined ? `--${f.name}` : `-${f.shorthand}, --${f.name}`;
}

/** Parses argv (without the program name) with pflag rules; the first problem is the error. */
export function parseFlags(argv: readonly string[]): FlagParseResult {
  const { tokens } = parseArgs({
    args: [...argv],
    options: PARSE_ARGS_OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const occurrences = new Map<string, string[]>();
  const positionals: string[] = [];
  const warnings: string[] = [];
  let help = false;
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    if (token.kind === 'option-terminator') continue;
    const short = !token.rawName.startsWith('--');
    const name = token.name.replaceAll('_', '-');
    if (name === 'help') {
      help = token.value === undefined || parseGoBoolOr(token.value, true);
      continue;
    }
    const def = short ? BY_SHORTHAND.get(token.rawName.slice(1)) : BY_NAME.get(name);
    if (def === undefined) {
      const error = short
        ? `unknown shorthand flag: '${token.rawName.slice(1)}' in ${argv[token.index] ?? token.rawName}`
        : `unknown flag: --${token.name}`;
      return { ok: false, error };
    }
    let text = token.value;
    if (text === undefined && def.noOptDefault !== undefined) {
      text = def.noOptDefault;
    } else if (text === undefined) {
      if (!def.isBool) {
        const error = short
          ? `flag needs an argument: '${def.shorthand ?? ''}' in ${token.rawName}`
          : `flag needs an argument: --${def.name}`;
        return { ok: false, error };
      }
      text = 'true';
    } else if (short && token.inlineValue && text.startsWith('=')) {
      // parseArgs reads `-v=2` as the value "=2"; pflag reads "2".
      text = text.slice(1);
    }
    try {
      def.check(text);
    } catch (err) {
      return {
        ok: false,
        error: `invalid argument ${quote(text)} for ${quote(display(def))} flag: ${(err as Error).message}`,
      };
    }
    const seen = occurrences.get(def.name);
    if (seen === undefined) {
      occurrences.set(def.name, [text]);
      if (def.deprecated !== undefined)
        warnings.push(`flag --${def.name} has been deprecated, ${def.deprecated}`);
    } else {
      seen.push(text);
    }
  }
  if (!help && positionals.some((arg) => arg !== '')) {
    return {
      ok: false,
      error: `"kube-proxy" does not take any arguments, got [${positionals.map(quote).join(' ')}]`,
    };
  }
  return { ok: true, flags: { occurrences, help, warnings } };
}

function parseGoBoolOr(text: string, fallback: boolean): boolean {
  try {
    return parseGoBool(text);
  } catch {
    return fallback;
  }
}

/** Applies the explicitly set flags of the given precedence classes, in flag-table order. */
export function applyFlags(
  state: FlagState,
  flags: ParsedFlags,
  targets: ReadonlySet<FlagTarget>,
): FlagState {
  let next = state;
  for (const def of FLAGS) {
    const texts = flags.occurrences.get(def.name);
    if (texts !== undefined && targets.has(def.target)) next = def.applyAll(next, texts);
  }
  return next;
}
