// Strings that are kept for a long time should be built flat. A template literal or `+` makes a
// V8 cons string: a tree of 32-byte cells over the pieces, kept as long as the string is (and
// flattening it later leaves the top cell behind). Array.prototype.join writes one flat string.
// At 10k Services the model and the nftables records keep ~500k such strings: 16 MiB of cells.

/** The pieces concatenated into one flat string. */
export function flat(...parts: readonly (string | number)[]): string {
  return parts.join('');
}

/** A flat copy of a string built some other way (cons strings under 13 characters do not exist). */
export function flatten(text: string): string {
  // Two non-empty pieces: join would hand back a lone piece (or one next to '') unchanged.
  return text.length < 13 ? text : flat(text.slice(0, 1), text.slice(1));
}
