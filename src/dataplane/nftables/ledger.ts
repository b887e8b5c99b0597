// Who wants which element. Most elements belong to one service port, but some are shared
// (a cluster IP in @cluster-ips for every port of a Service, a pod IP in @hairpin for every
// Service it backs) and a few can be contested (two Services listing the same external IP and
// port). Each element key keeps its claims; the claim of the smallest service port key wins, so
// the table does not depend on the order in which Services arrived.

export interface Claim {
  readonly owner: string;
  readonly value: string;
  readonly comment: string;
}

type Claims = Claim | Claim[];

/** set name -> element key -> claims. Owned and mutated by the renderer only. */
export type Ledger = Map<string, Map<string, Claims>>;

export function newLedger(): Ledger {
  return new Map();
}

export function effective(claims: Claims | undefined): Claim | undefined {
  if (claims === undefined || !Array.isArray(claims)) return claims;
  return claims[0];
}

function byOwner(a: Claim, b: Claim): number {
  return a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0;
}

export function claim(ledger: Ledger, set: string, key: string, entry: Claim): void {
  let elements = ledger.get(set);
  if (!elements) {
    elements = new Map();
    ledger.set(set, elements);
  }
  const existing = elements.get(key);
  if (existing === undefined) {
    elements.set(key, entry);
  } else if (Array.isArray(existing)) {
    existing.push(entry);
    existing.sort(byOwner);
  } else {
    elements.set(key, [existing, entry].sort(byOwner));
  }
}

export function release(ledger: Ledger, set: string, key: string, owner: string): void {
  const elements = ledger.get(set);
  const existing = elements?.get(key);
  if (!elements || existing === undefined) return;
  if (!Array.isArray(existing)) {
    if (existing.owner === owner) elements.delete(key);
    return;
  }
  const index = existing.findIndex((entry) => entry.owner === owner);
  if (index >= 0) existing.splice(index, 1);
  if (existing.length === 1) elements.set(key, existing[0] as Claim);
  else if (existing.length === 0) elements.delete(key);
}

export function lookup(ledger: Ledger, set: string, key: string): Claim | undefined {
  return effective(ledger.get(set)?.get(key));
}

export function sameElement(a: Claim | undefined, b: Claim | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.value === b.value && a.comment === b.comment;
}
