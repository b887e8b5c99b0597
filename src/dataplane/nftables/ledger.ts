// Who wants which element. Most elements belong to one service port, but some are shared
// (a cluster IP in @cluster-ips for every port of a Service) and a few can be contested (two Services listing the same external IP and
// port). Each element key keeps its claims; the claim of the smallest service port key wins, so
// the table does not depend on the order in which Services arrived. Claims are the records'
// own Element objects: the bookkeeping allocates nothing per element in the common case.
import type { Children, Element } from './service.ts';

type Claims = Element | Element[];

/** set name -> element key -> claims. Owned and mutated by the renderer only. */
export type Ledger = Map<string, Map<string, Claims>>;

export function newLedger(): Ledger {
  return new Map();
}

export function effective(claims: Claims | undefined): Element | undefined {
  if (claims === undefined || !Array.isArray(claims)) return claims;
  return claims[0];
}

function byOwner(a: Element, b: Element): number {
  return a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0;
}

export function setOf(ledger: Ledger, set: string): Map<string, Claims> {
  let elements = ledger.get(set);
  if (!elements) {
    elements = new Map();
    ledger.set(set, elements);
  }
  return elements;
}

export function claim(elements: Map<string, Claims>, entry: Element): void {
  const existing = elements.get(entry.key);
  if (existing === undefined) {
    elements.set(entry.key, entry);
  } else if (Array.isArray(existing)) {
    existing.push(entry);
    existing.sort(byOwner);
  } else {
    elements.set(entry.key, [existing, entry].sort(byOwner));
  }
}

export function release(elements: Map<string, Claims> | undefined, entry: Element): void {
  const existing = elements?.get(entry.key);
  if (!elements || existing === undefined) return;
  if (!Array.isArray(existing)) {
    if (existing.owner === entry.owner) elements.delete(entry.key);
    return;
  }
  const index = existing.findIndex((other) => other.owner === entry.owner);
  if (index >= 0) existing.splice(index, 1);
  if (existing.length === 1) elements.set(entry.key, existing[0] as Element);
  else if (existing.length === 0) elements.delete(entry.key);
}

export function lookup(ledger: Ledger, set: string, key: string): Element | undefined {
  return effective(ledger.get(set)?.get(key));
}

function sameChildren(a: Children | undefined, b: Children | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.set !== b.set || a.prefix !== b.prefix || a.endpoints.length !== b.endpoints.length)
    return false;
  for (let i = 0; i < a.endpoints.length; i++) {
    const x = a.endpoints[i];
    const y = b.endpoints[i];
    if (x !== y && (x?.ip !== y?.ip || x?.port !== y?.port)) return false;
  }
  return true;
}

/** Same element in the kernel: value and comment, and the same endpoint elements under it. */
export function sameElement(a: Element | undefined, b: Element | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.value === b.value && a.comment === b.comment && sameChildren(a.children, b.children);
}
