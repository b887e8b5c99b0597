// The packet mark every mode uses to ask for masquerade: bit `masqueradeBit` (default 14). One
// helper, so iptables, nftables and IPVS rules (and the explainer's read of them) agree on it.

/** `1 << bit` as upstream writes it in both iptables and nftables rules: `0x` and 8 hex digits. */
export function masqueradeMark(bit: number): string {
  if (!Number.isInteger(bit) || bit < 0 || bit > 31) throw new Error(`masqueradeBit ${bit} is not in 0..31`);
  return `0x${(2 ** bit).toString(16).padStart(8, '0')}`;
}
