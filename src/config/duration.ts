// Go time.Duration text: the format of every duration in flags and in KubeProxyConfiguration.
// Operators copy values such as "15m0s" or "2h22m" straight from upstream documentation, and
// /configz and --write-config-to must print them back the way Go does, so we parse and format
// exactly as Go's time package (nanosecond integers, the same units, the same String() form).

const NANOSECOND = 1n;
const MICROSECOND = 1000n * NANOSECOND;
const MILLISECOND = 1000n * MICROSECOND;
const SECOND = 1000n * MILLISECOND;
const MINUTE = 60n * SECOND;
const HOUR = 60n * MINUTE;
const MAX_INT64 = (1n << 63n) - 1n;

const UNITS: ReadonlyMap<string, bigint> = new Map([
  ['ns', NANOSECOND],
  ['us', MICROSECOND],
  ['\u00b5s', MICROSECOND], // micro sign
  ['\u03bcs', MICROSECOND], // Greek small letter mu
  ['ms', MILLISECOND],
  ['s', SECOND],
  ['m', MINUTE],
  ['h', HOUR],
]);

function quoted(text: string): string {
  return JSON.stringify(text);
}

function isDigit(ch: string | undefined): boolean {
  return ch !== undefined && ch >= '0' && ch <= '9';
}

/**
 * Parses Go duration text (`300ms`, `-1.5h`, `2h45m`, `0`) into nanoseconds. Throws an Error with
 * Go's wording (`time: invalid duration "x"`) when the text is not one.
 */
export function parseGoDurationNs(text: string): bigint {
  const invalid = (): Error => new Error(`time: invalid duration ${quoted(text)}`);
  let rest = text;
  let negative = false;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    negative = rest.startsWith('-');
    rest = rest.slice(1);
  }
  if (rest === '0') return 0n;
  if (rest === '') throw invalid();
  let total = 0n;
  while (rest !== '') {
    if (!(rest.startsWith('.') || isDigit(rest[0]))) throw invalid();
    let i = 0;
    while (isDigit(rest[i])) i++;
    const whole = rest.slice(0, i);
    rest = rest.slice(i);
    let fraction = '';
    if (rest.startsWith('.')) {
      rest = rest.slice(1);
      let j = 0;
      while (isDigit(rest[j])) j++;
      fraction = rest.slice(0, j);
      rest = rest.slice(j);
    }
    if (whole === '' && fraction === '') throw invalid();
    let u = 0;
    while (u < rest.length && rest[u] !== '.' && !isDigit(rest[u])) u++;
    if (u === 0) throw new Error(`time: missing unit in duration ${quoted(text)}`);
    const unitName = rest.slice(0, u);
    rest = rest.slice(u);
    const unit = UNITS.get(unitName);
    if (unit === undefined)
      throw new Error(`time: unknown unit ${quoted(unitName)} in duration ${quoted(text)}`);
    let value = BigInt(whole === '' ? '0' : whole) * unit;
    if (fraction !== '') value += (BigInt(fraction) * unit) / 10n ** BigInt(fraction.length);
    total += value;
    if (total > MAX_INT64 + (negative ? 1n : 0n)) throw invalid();
  }
  return negative ? -total : total;
}

/** Parses Go duration text into milliseconds (fractional below 1 ms). Throws on junk. */
export function parseGoDuration(text: string): number {
  return Number(parseGoDurationNs(text)) / 1e6;
}

/** `value / 10^digits` as text with trailing zeros (and a bare point) removed, like Go's fmtFrac. */
function withFraction(value: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const whole = value / scale;
  const fraction = (value % scale).toString().padStart(digits, '0').replace(/0+$/, '');
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`;
}

/** Go's Duration.String() for a nanosecond count: `0s`, `100ms`, `1.5s`, `1m0s`, `24h0m0s`. */
export function formatGoDurationNs(ns: bigint): string {
  if (ns === 0n) return '0s';
  const sign = ns < 0n ? '-' : '';
  const u = ns < 0n ? -ns : ns;
  if (u < SECOND) {
    if (u < MICROSECOND) return `${sign}${u}ns`;
    if (u < MILLISECOND) return `${sign}${withFraction(u, 3)}\u00b5s`;
    return `${sign}${withFraction(u, 6)}ms`;
  }
  const seconds = withFraction(u % MINUTE, 9);
  const totalMinutes = u / MINUTE;
  if (totalMinutes === 0n) return `${sign}${seconds}s`;
  const hours = totalMinutes / 60n;
  const minutes = totalMinutes % 60n;
  if (hours === 0n) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${hours}h${minutes}m${seconds}s`;
}

/** Go's Duration.String() for a millisecond count (sub-millisecond parts are kept to the ns). */
export function formatGoDuration(ms: number): string {
  return formatGoDurationNs(BigInt(Math.round(ms * 1e6)));
}

/** Rewrites valid duration text in Go's canonical form ("60s" -> "1m0s"). Throws on junk. */
export function canonicalGoDuration(text: string): string {
  return formatGoDurationNs(parseGoDurationNs(text));
}
