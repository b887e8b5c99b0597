// Text fragments whose exact form matters: comments, probabilities and marks. Operators diff
// `iptables-save` output between upstream and us, so the bytes must match upstream's.

/**
 * The longest comment the kernel's comment match stores (XT_MAX_COMMENT_LEN is 256 including
 * the terminating NUL); iptables-restore rejects longer ones, which would fail the whole sync.
 */
export const MAX_COMMENT_LENGTH = 255;

// Characters that can appear in comments built from validated Kubernetes names, IPs and ports.
// Anything else (quotes, backslashes, newlines, other control or non-ASCII characters) could
// end the quoted token or the line in iptables-restore's parser, so it is replaced.
const UNSAFE_COMMENT_CHARS = /[^A-Za-z0-9 ._:/\-[\]>,;=+@()]/g;

/**
 * One `--comment` argument as iptables-restore reads it. Text with a space is double-quoted
 * (upstream writes e.g. `"default/web:http cluster IP"` but a bare `default/web:http`). The text
 * is made safe first, so a hostile name can never add arguments, rules or lines.
 */
export function commentArg(text: string): string {
  let safe = text.replace(UNSAFE_COMMENT_CHARS, '_');
  if (safe.length > MAX_COMMENT_LENGTH) safe = safe.slice(0, MAX_COMMENT_LENGTH);
  if (safe === '') return '_';
  return safe.includes(' ') ? `"${safe}"` : safe;
}

const DECIMALS = 10n;
const SCALE = 10n ** DECIMALS;

/** The exact binary value of a positive finite double, as numerator / 2^shift. */
function exactDouble(value: number): { numerator: bigint; shift: bigint } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  // Normal numbers carry an implicit leading 1; subnormals use exponent 1 without it.
  const mantissa = exponent === 0 ? fraction : fraction | (1n << 52n);
  const power = (exponent === 0 ? 1 : exponent) - 1075;
  if (power >= 0) return { numerator: mantissa << BigInt(power), shift: 0n };
  return { numerator: mantissa, shift: BigInt(-power) };
}

/**
 * `1/k` with exactly 10 decimals, as upstream's `%0.10f` of the double 1.0/k prints it: the
 * exact value of that double rounded to nearest, ties to even. `toFixed(10)` rounds ties up
 * (k = 2048 gives 0.0004882813 where upstream writes 0.0004882812), hence the BigInt route.
 */
export function probability(k: number): string {
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`probability: endpoint count ${k} is not a positive integer`);
  const { numerator, shift } = exactDouble(1 / k);
  const denominator = 1n << shift;
  const scaled = numerator * SCALE;
  let digits = scaled / denominator;
  const twiceRemainder = (scaled % denominator) * 2n;
  if (twiceRemainder > denominator || (twiceRemainder === denominator && digits % 2n === 1n)) digits += 1n;
  const whole = digits / SCALE;
  const decimals = (digits % SCALE).toString().padStart(Number(DECIMALS), '0');
  return `${whole}.${decimals}`;
}

export { masqueradeMark } from '../common/marks.ts';
