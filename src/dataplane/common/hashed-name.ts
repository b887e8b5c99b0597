// Names derived from Kubernetes names by hashing: iptables' KUBE-SVC-/KUBE-SEP- chains (spec
// 3.3) and nftables' affinity chains. Upstream's formula in both: upper-case RFC 4648 base32
// (no padding) of the SHA-256 of the UTF-8 text, cut to a length. A node switched between
// upstream and us keeps the same chain names only if this is exact.
import { createHash } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The first `length` characters (at most 51) of base32(sha256(utf8(text))). */
export function hashedName(text: string, length: number): string {
  const digest = createHash('sha256').update(text, 'utf8').digest();
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of digest) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32.charAt((buffer >> bits) & 31);
      if (out.length === length) return out;
    }
  }
  return out;
}
