// `--proxy-port-range` / `portRange` (upstream's utilnet.PortRange syntax): the host ports the
// userspace mode may listen on. Pure.

/** An inclusive range of ports, `base` to `base + size - 1`. */
export interface PortRange {
  readonly base: number;
  readonly size: number;
}

/**
 * Parses "", "N", "low-high" or "base+offset" (base to base+offset, inclusive), each within
 * 0-65535. Returns null when the text is not a range; undefined for "let the kernel choose":
 * empty, "0" and "0-0", as upstream's userspace proxier treated an empty range.
 */
export function parsePortRange(text: string): PortRange | undefined | null {
  const value = text.trim();
  if (value === '') return undefined;
  const inRange = (n: number): boolean => Number.isSafeInteger(n) && n >= 0 && n <= 65535;
  let low: number;
  let high: number;
  let match = /^(\d+)-(\d+)$/.exec(value);
  if (match) {
    low = Number(match[1]);
    high = Number(match[2]);
  } else if ((match = /^(\d+)\+(\d+)$/.exec(value))) {
    low = Number(match[1]);
    high = low + Number(match[2]);
  } else if (/^\d+$/.test(value)) {
    low = high = Number(value);
  } else {
    return null;
  }
  if (!inRange(low) || !inRange(high) || low > high) return null;
  if (high === 0) return undefined;
  return { base: low, size: high - low + 1 };
}
