// Stable endpoint slots. A class chain picks `numgen random mod M` and reads slot i of the
// service's endpoint map, so which endpoint sits in which slot does not matter to the traffic;
// it matters to the cost of a change. Rendering each selection in endpoint order would shift
// every slot after an endpoint that sorts differently (one replaced pod rewrote all ten slots of
// a Service, times every map it appears in); keeping the survivors where they were makes a
// one-endpoint change one slot per map.
import type { Endpoint } from '../../model/types.ts';
import { endpointText, type Element, type ServiceRecord } from './service.ts';

/**
 * `next` reordered so that every value also present in `before` keeps its slot when that slot
 * still exists; the others fill the free slots in their own order. Undefined when that order is
 * `next` itself. Values are `address . port` texts; duplicates are matched one for one.
 */
export function alignSlots(before: readonly string[], next: readonly string[]): string[] | undefined {
  const wanted = new Map<string, number>();
  for (const value of next) wanted.set(value, (wanted.get(value) ?? 0) + 1);
  const slots: (string | undefined)[] = new Array<string | undefined>(next.length).fill(undefined);
  const limit = Math.min(before.length, next.length);
  for (let i = 0; i < limit; i++) {
    const value = before[i] as string;
    const count = wanted.get(value) ?? 0;
    if (count === 0) continue;
    slots[i] = value;
    wanted.set(value, count - 1);
  }
  let free = 0;
  for (const value of next) {
    const count = wanted.get(value) ?? 0;
    if (count === 0) continue;
    wanted.set(value, count - 1);
    while (slots[free] !== undefined) free++;
    slots[free] = value;
  }
  const aligned = slots as string[];
  return aligned.every((value, i) => value === next[i]) ? undefined : aligned;
}

/**
 * `next` with the endpoint slots of each dispatch element aligned to the same element in `old`
 * (same map and key): what a partial sync should write instead of `next`. Returns `next` itself
 * when nothing moves.
 */
export function withStableSlots(next: ServiceRecord, old: ServiceRecord | undefined): ServiceRecord {
  if (!old) return next;
  const previous = new Map<string, readonly Endpoint[]>();
  for (const element of old.elements) {
    if (element.children) previous.set(`${element.set} ${element.key}`, element.children.endpoints);
  }
  if (previous.size === 0) return next;
  let elements: Element[] | undefined;
  next.elements.forEach((element, i) => {
    const children = element.children;
    const before = children ? previous.get(`${element.set} ${element.key}`) : undefined;
    if (!children || !before) return;
    const endpoints = reorder(before, children.endpoints);
    if (!endpoints) return;
    elements ??= [...next.elements];
    elements[i] = { ...element, children: { ...children, endpoints } };
  });
  return elements ? { ...next, elements } : next;
}

/** `next` endpoints in the slot order alignSlots gives their texts; undefined when unchanged. */
function reorder(before: readonly Endpoint[], next: readonly Endpoint[]): Endpoint[] | undefined {
  const texts = next.map(endpointText);
  const order = alignSlots(before.map(endpointText), texts);
  if (!order) return undefined;
  const byText = new Map<string, Endpoint[]>();
  next.forEach((ep, i) => {
    const text = texts[i] as string;
    byText.set(text, [...(byText.get(text) ?? []), ep]);
  });
  return order.map((text) => byText.get(text)?.shift() as Endpoint);
}
