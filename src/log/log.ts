// klog-compatible logging: the text header `Lmmdd hh:mm:ss.uuuuuu <pid> <file>:<line>] "msg" k="v"`
// or `--logging-format=json` ({"ts","caller","msg","v",...}), gated by -v. Kubernetes operators
// grep for these shapes, so we keep them exact rather than use a generic logger.
//
// Secrets never reach the output: values under keys that name credentials are replaced, and
// callers must never pass a token, key or kubeconfig body as a message.

export type LogFormat = 'text' | 'json';
export type KeyValues = Readonly<Record<string, unknown>>;

interface LogSettings {
  verbosity: number;
  format: LogFormat;
  write: (line: string) => void;
}

const settings: LogSettings = {
  verbosity: 0,
  format: 'text',
  write: (line) => process.stderr.write(line),
};

export function configureLogging(options: {
  verbosity?: number;
  format?: LogFormat;
  write?: (line: string) => void;
}): void {
  if (options.verbosity !== undefined) settings.verbosity = options.verbosity;
  if (options.format !== undefined) settings.format = options.format;
  if (options.write !== undefined) settings.write = options.write;
}

export function verbosity(): number {
  return settings.verbosity;
}

const SECRET_KEY = /token|password|secret|authorization|bearer|client-?key|key-?data|credential/i;
export const REDACTED = '<redacted>';

function sanitize(key: string, value: unknown): unknown {
  if (SECRET_KEY.test(key)) return REDACTED;
  if (value instanceof Error) return value.message;
  if (value instanceof Set) return [...(value as Set<unknown>)];
  if (value instanceof Map) return Object.fromEntries(value as Map<unknown, unknown>);
  return value;
}

/** Go strconv.Quote-like quoting: JSON escaping is the same for everything we log but \u007f. */
function quote(text: string): string {
  return JSON.stringify(text);
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') {
    if (value.includes('\n')) return `<\n\t${value.replaceAll('\n', '\n\t')}\n >`;
    return quote(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  return JSON.stringify(value);
}

/**
 * `file:line` of the code that logged, from raw call sites: asking for `new Error().stack`
 * would format the whole stack, through source maps when they are enabled, for every line.
 * With the built code the file is the emitted `.js` one.
 */
function caller(): string {
  // Saved as a property value and put back unchanged: never called here.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const original = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = 4;
    Error.prepareStackTrace = (_error, frames) => frames;
    const holder: { stack?: NodeJS.CallSite[] } = {};
    // Frames: emit(), the Logger method, then the code that logged.
    Error.captureStackTrace(holder, caller);
    const frame = holder.stack?.[2];
    const file = frame?.getFileName() ?? '?';
    return `${file.slice(file.lastIndexOf('/') + 1)}:${String(frame?.getLineNumber() ?? 0)}`;
  } finally {
    Error.prepareStackTrace = original;
    Error.stackTraceLimit = limit;
  }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function emit(
  severity: 'I' | 'W' | 'E',
  level: number,
  msg: string,
  kv: KeyValues | undefined,
  err?: unknown,
): void {
  const where = caller();
  const now = new Date();
  const pairs: [string, unknown][] = [];
  if (err !== undefined) pairs.push(['err', err instanceof Error ? err.message : JSON.stringify(err)]);
  for (const [key, value] of Object.entries(kv ?? {})) pairs.push([key, sanitize(key, value)]);
  if (settings.format === 'json') {
    const record: Record<string, unknown> = { ts: now.getTime(), caller: where, msg };
    if (severity !== 'E') record['v'] = level;
    for (const [key, value] of pairs) record[key] = value;
    settings.write(`${JSON.stringify(record)}\n`);
    return;
  }
  const header =
    `${severity}${pad(now.getMonth() + 1, 2)}${pad(now.getDate(), 2)} ` +
    `${pad(now.getHours(), 2)}:${pad(now.getMinutes(), 2)}:${pad(now.getSeconds(), 2)}.` +
    `${pad(now.getMilliseconds() * 1000, 6)} ${String(process.pid).padStart(7)} ${where}] `;
  const body = pairs.map(([key, value]) => ` ${key}=${formatValue(value)}`).join('');
  settings.write(`${header}${quote(msg)}${body}\n`);
}

export interface VerboseLogger {
  readonly enabled: boolean;
  info(msg: string, kv?: KeyValues): void;
}

const silent: VerboseLogger = { enabled: false, info: () => undefined };

export const log = {
  info(msg: string, kv?: KeyValues): void {
    emit('I', 0, msg, kv);
  },
  warn(msg: string, kv?: KeyValues): void {
    emit('W', 0, msg, kv);
  },
  error(msg: string, err?: unknown, kv?: KeyValues): void {
    emit('E', 0, msg, kv, err);
  },
  /** `log.v(2).info(...)`: logged only at -v=2 or more. Check `.enabled` before costly work. */
  v(level: number): VerboseLogger {
    if (level > settings.verbosity) return silent;
    return {
      enabled: true,
      info: (msg, kv) => {
        emit('I', level, msg, kv);
      },
    };
  },
};
