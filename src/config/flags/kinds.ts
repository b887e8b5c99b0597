// pflag value kinds: how one flag's text is parsed, how repeats combine and how a default shows
// in --help. Each mirrors the Go type upstream registers (pflag's string, bool, int32, float32,
// duration and StringSlice; klog's Level and vmodule; component-base's MapStringBool; a resource
// quantity; net.IP; kube-proxy's IP-or-IP:port), with Go's parse errors in Go's words.
import { parseIP } from '../../util/ip.ts';
import { canonicalGoDuration } from '../duration.ts';
import { splitHostPort } from '../hostport.ts';
import type { VModuleItem } from '../types.ts';

export interface Kind<V> {
  readonly typeName: string;
  readonly isBool: boolean;
  /** pflag's NoOptDefVal: the value of `--flag` given without `=value` (only `--flag=value` sets one). */
  readonly noOptDefault?: string;
  parse(text: string): V;
  /** How repeats combine: lists append, maps merge, scalars take the last. */
  merge(previous: V, next: V): V;
  show(value: V): string;
}

function last<V>(_previous: V, next: V): V {
  return next;
}

export function quote(text: string): string {
  return JSON.stringify(text);
}

/** Go strconv.ParseBool. */
export function parseGoBool(text: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  throw new Error(`strconv.ParseBool: parsing ${quote(text)}: invalid syntax`);
}

/** Go strconv.ParseInt(text, 0, bits) for signed 32-bit or unsigned 31-bit values. */
function parseGoInt(text: string, min: number, max: number, fn: string): number {
  const match = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (match === null) throw new Error(`${fn}: parsing ${quote(text)}: invalid syntax`);
  const digits = match[2] ?? '';
  const body = /^0[0-7]+$/.test(digits) ? `0o${digits.slice(1)}` : digits;
  const magnitude = Number(body);
  const value = match[1] === '-' ? -magnitude : magnitude;
  if (value < min || value > max) throw new Error(`${fn}: parsing ${quote(text)}: value out of range`);
  return value;
}

export const stringKind: Kind<string> = {
  typeName: 'string',
  isBool: false,
  parse: (text) => text,
  merge: last,
  show: (v) => (v === '' ? '' : quote(v)),
};

export function namedString(typeName: string): Kind<string> {
  return { ...stringKind, typeName };
}

export const boolKind: Kind<boolean> = {
  typeName: '',
  isBool: true,
  parse: parseGoBool,
  merge: last,
  show: (v) => (v ? 'true' : ''),
};

export const int32Kind: Kind<number> = {
  typeName: 'int32',
  isBool: false,
  parse: (text) => parseGoInt(text, -(2 ** 31), 2 ** 31 - 1, 'strconv.ParseInt'),
  merge: last,
  show: (v) => (v === 0 ? '' : String(v)),
};

export const levelKind: Kind<number> = {
  typeName: 'Level',
  isBool: false,
  parse: (text) => parseGoInt(text, 0, 2 ** 31 - 1, 'strconv.ParseUint'),
  merge: last,
  show: (v) => (v === 0 ? '' : String(v)),
};

export const float32Kind: Kind<number> = {
  typeName: 'float32',
  isBool: false,
  parse: (text) => {
    if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) {
      throw new Error(`strconv.ParseFloat: parsing ${quote(text)}: invalid syntax`);
    }
    return Number(text);
  },
  merge: last,
  show: (v) => (v === 0 ? '' : String(v)),
};

/** Values stay Go duration text, in canonical form. */
export const durationKind: Kind<string> = {
  typeName: 'duration',
  isBool: false,
  parse: canonicalGoDuration,
  merge: last,
  show: (v) => (v === '0s' ? '' : v),
};

/** pflag StringSlice: comma-separated, repeats append, the first use replaces the default. */
export const stringsKind: Kind<readonly string[]> = {
  typeName: 'strings',
  isBool: false,
  parse: (text) => (text === '' ? [] : text.split(',')),
  merge: (previous, next) => [...previous, ...next],
  show: (v) => (v.length === 0 ? '' : `[${v.join(',')}]`),
};

/** component-base MapStringBool: `A=true,B=false`, repeats merge. */
export const gatesKind: Kind<Readonly<Record<string, boolean>>> = {
  typeName: 'mapStringBool',
  isBool: false,
  parse: (text) => {
    const gates: Record<string, boolean> = {};
    for (const item of text.split(',')) {
      if (item === '') continue;
      const eq = item.indexOf('=');
      if (eq < 0) throw new Error(`malformed pair ${quote(item)}, expect string=bool`);
      const key = item.slice(0, eq).trim();
      const raw = item.slice(eq + 1).trim();
      try {
        gates[key] = parseGoBool(raw);
      } catch (err) {
        throw new Error(`invalid value of ${key}: ${raw}, err: ${(err as Error).message}`, { cause: err });
      }
    }
    return gates;
  },
  merge: (previous, next) => ({ ...previous, ...next }),
  show: () => '',
};

export const vmoduleKind: Kind<readonly VModuleItem[]> = {
  typeName: 'pattern=N,...',
  isBool: false,
  parse: (text) => {
    if (text === '') return [];
    return text.split(',').map((item) => {
      const eq = item.lastIndexOf('=');
      if (eq < 0) throw new Error(`${quote(item)} does not have the pattern=N format`);
      const verbosity = parseGoInt(item.slice(eq + 1), 0, 2 ** 31 - 1, 'strconv.ParseUint');
      return { filePattern: item.slice(0, eq), verbosity };
    });
  },
  merge: (previous, next) => [...previous, ...next],
  show: () => '',
};

const QUANTITY = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;

export const quantityKind: Kind<string> = {
  typeName: 'quantity',
  isBool: false,
  parse: (text) => {
    if (!QUANTITY.test(text)) throw new Error('must be a resource quantity such as 0, 64Ki or 1M');
    return text;
  },
  merge: last,
  show: (v) => (v === '0' ? '' : v),
};

/** An IP address; upstream ignores an empty value and keeps the default. */
export const ipKind: Kind<string> = {
  typeName: 'ip',
  isBool: false,
  parse: (text) => {
    if (text !== '' && parseIP(text) === undefined)
      throw new Error(`${quote(text)} is not a valid IP address`);
    return text;
  },
  merge: last,
  show: (v) => (v === '' ? '' : quote(v)),
};

/** `IP` or `IP:port` (the port then comes from the deprecated port flags); empty disables. */
export const ipPortKind: Kind<string> = {
  typeName: 'ipport',
  isBool: false,
  parse: (text) => {
    if (text === '' || parseIP(text) !== undefined) return text;
    const parts = splitHostPort(text);
    if (parts === undefined) throw new Error(`${quote(text)} is not in a valid format (ip or ip:port)`);
    if (parseIP(parts.host) === undefined) throw new Error(`${quote(parts.host)} is not a valid IP address`);
    const port = /^\d+$/.test(parts.port) ? Number(parts.port) : NaN;
    if (!(port >= 0 && port <= 65535)) throw new Error(`${quote(parts.port)} is not a valid number`);
    return text;
  },
  merge: last,
  show: (v) => (v === '' ? '' : quote(v)),
};

/** Go strconv.ParseUint(text, 0, 64), as klog's log_file_max_size. */
export const uint64Kind: Kind<number> = {
  typeName: 'uint',
  isBool: false,
  parse: (text) => parseGoInt(text, 0, Number.MAX_SAFE_INTEGER, 'strconv.ParseUint'),
  merge: last,
  show: (v) => (v === 0 ? '' : String(v)),
};

const SEVERITIES = ['INFO', 'WARNING', 'ERROR', 'FATAL'] as const;

/** klog's severity (stderrthreshold): a name or its number 0-3. */
export const severityKind: Kind<string> = {
  typeName: 'severity',
  isBool: false,
  parse: (text) => {
    const upper = text.toUpperCase();
    if ((SEVERITIES as readonly string[]).includes(upper)) return upper;
    if (/^[0-3]$/.test(text)) return SEVERITIES[Number(text)] ?? 'INFO';
    throw new Error(`unknown severity ${quote(text)}`);
  },
  merge: last,
  show: (v) => v,
};

/** klog's traceLocation (log_backtrace_at): empty, or `file.go:line`. */
export const traceLocationKind: Kind<string> = {
  typeName: 'traceLocation',
  isBool: false,
  parse: (text) => {
    if (text === '' || text === ':0') return text;
    if (!/^[^:]+\.go:\d+$/.test(text)) throw new Error('syntax error: expect file.go:234');
    return text;
  },
  merge: last,
  show: (v) => quote(v),
};

/**
 * component-base's --version: `--version` alone means true; `raw` prints every build field;
 * `vX.Y.Z…` sets the reported version (and does not exit).
 */
export const versionKind: Kind<string> = {
  typeName: 'version[=true]',
  isBool: false,
  noOptDefault: 'true',
  parse: (text) => {
    if (text === 'raw' || /^v\d+\.\d+\.\d+/.test(text)) return text;
    try {
      return parseGoBool(text) ? 'true' : 'false';
    } catch {
      throw new Error(`invalid version flag value ${quote(text)}: use true, false, raw or vX.Y.Z`);
    }
  },
  merge: last,
  show: (v) => (v === 'false' ? '' : v),
};
