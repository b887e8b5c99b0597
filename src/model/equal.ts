// Structural equality of parsed model values (plain objects, arrays, primitives), as the model's
// change detection needs it. Cheaper than hashing JSON text: nothing is serialised or kept, and
// objects that are the same reference (the common case for unchanged parts) cost one comparison.
// A property that is undefined counts as absent, as it would in JSON. Pure.

export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const left = a as Readonly<Record<string, unknown>>;
  const right = b as Readonly<Record<string, unknown>>;
  for (const key in left) {
    if (Object.hasOwn(left, key) && !sameValue(left[key], Object.hasOwn(right, key) ? right[key] : undefined))
      return false;
  }
  for (const key in right) {
    if (Object.hasOwn(right, key) && !Object.hasOwn(left, key) && right[key] !== undefined) return false;
  }
  return true;
}
