// EndpointSlice -> validated slice data of one IP family, and the merge of a Service's slices
// into endpoint lists per service port (spec 1.3, 1.4). Pure.
import { flat } from '../util/flat.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import type { Endpoint, IPFamily, Protocol, ServiceName } from './types.ts';
import { describeValue, problemsOf, type Problem } from './problem.ts';
import {
  arrayField,
  compareStrings,
  exactList,
  field,
  isDNSLabel,
  isDNSSubdomain,
  isIntInRange,
  isPortName,
  isProtocol,
  parseExactIP,
  sortedUnique,
  stringField,
} from './validate.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

export interface SlicePort {
  readonly name: string;
  readonly protocol: Protocol;
  readonly port: number;
}

/** One endpoint of a slice, before it is paired with a port. */
export interface SliceEndpoint {
  /** Canonical addresses[0]. */
  readonly ip: string;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName: string;
  /** Sorted, unique; undefined when absent or empty (upstream treats both as "no hints"). */
  readonly zoneHints: readonly string[] | undefined;
  readonly nodeHints: readonly string[] | undefined;
}

export interface ParsedEndpointSlice {
  /** `namespace/sliceName`. */
  readonly key: string;
  /** `namespace/<kubernetes.io/service-name label>`. */
  readonly service: ServiceName;
  readonly ports: readonly SlicePort[];
  readonly endpoints: readonly SliceEndpoint[];
  /** last-change-trigger-time annotation in epoch ms; not part of the slice's effect. */
  readonly triggerTimeMs: number | undefined;
}

export interface EndpointSliceResult {
  /** Undefined when the slice does not concern this family's model (or is unusable). */
  readonly slice: ParsedEndpointSlice | undefined;
  readonly problems: Problem[];
}

/** `namespace/name` of a slice (or Service) as given, for delete handling; undefined if unusable. */
export function objectKey(obj: unknown): string | undefined {
  const metadata = field(obj, 'metadata');
  const namespace = stringField(metadata, 'namespace');
  const name = stringField(metadata, 'name');
  return namespace !== undefined && name !== undefined ? flat(namespace, '/', name) : undefined;
}

// Go's time.RFC3339 layout as the API server writes it; fractional seconds are accepted on parse.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** RFC 3339 text to epoch milliseconds, or undefined when it is not a valid timestamp. */
export function parseRFC3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls over out-of-range fields (Feb 30 -> Mar 2); such text is not a valid time.
  const check = new Date(utc);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return undefined;
  }
  let offsetMinutes = 0;
  if (zone !== undefined && zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const millis = frac ? Math.floor(Number(`0${frac}`) * 1000) : 0;
  return utc - offsetMinutes * 60_000 + millis;
}

function hintNames(hints: unknown, list: string): string[] | undefined {
  const entries = arrayField(hints, list);
  // Most endpoints carry no hints: no lists to build for them.
  if (entries === undefined || entries.length === 0) return undefined;
  const names = entries
    .map((entry) => field(entry, 'name'))
    .filter((name): name is string => typeof name === 'string');
  return names.length > 0 ? sortedUnique(names) : undefined;
}

export function parseEndpointSlice(input: EndpointSlice, family: IPFamily): EndpointSliceResult {
  const raw: unknown = input;
  const metadata = field(raw, 'metadata');
  const { namespace, name, problems, problem } = problemsOf('EndpointSlice', raw);
  const none = (): EndpointSliceResult => ({ slice: undefined, problems });

  // Slices for other families or FQDN slices belong to nobody here; unlabelled slices are not
  // managed for a Service. Both are ignored silently, as upstream does.
  if (field(raw, 'addressType') !== family) return none();
  const serviceLabel = field(field(metadata, 'labels'), SERVICE_NAME_LABEL);
  if (serviceLabel === undefined || serviceLabel === null || serviceLabel === '') return none();

  if (!isDNSLabel(namespace)) {
    problem(
      'metadata.namespace',
      `invalid namespace ${describeValue(field(field(raw, 'metadata'), 'namespace'))}`,
    );
    return none();
  }
  if (!isDNSSubdomain(name)) {
    problem('metadata.name', `invalid name ${describeValue(field(field(raw, 'metadata'), 'name'))}`);
    return none();
  }
  if (typeof serviceLabel !== 'string' || !isDNSLabel(serviceLabel)) {
    problem(`metadata.labels[${SERVICE_NAME_LABEL}]`, `invalid Service name ${describeValue(serviceLabel)}`);
    return none();
  }

  const ports: SlicePort[] = [];
  const seenPorts = new Set<string>();
  (arrayField(raw, 'ports') ?? []).forEach((entry, i) => {
    const at = `ports[${i}]`;
    const portName = field(entry, 'name');
    const portValue = field(entry, 'port');
    // A nil name or a nil/zero port ("all ports") is legal API data that kube-proxy ignores.
    if (portName === undefined || portName === null) return;
    if (portValue === undefined || portValue === null || portValue === 0) return;
    if (typeof portName !== 'string' || !isPortName(portName)) {
      problem(`${at}.name`, `invalid port name ${describeValue(portName)}, port ignored`);
      return;
    }
    const protocol = field(entry, 'protocol') ?? 'TCP';
    if (!isProtocol(protocol)) {
      problem(`${at}.protocol`, `unsupported value ${describeValue(protocol)}, port ignored`);
      return;
    }
    if (!isIntInRange(portValue, 1, 65535)) {
      problem(`${at}.port`, `invalid port ${describeValue(portValue)}, port ignored`);
      return;
    }
    const portKey = `${portName}/${protocol}`;
    if (seenPorts.has(portKey)) {
      problem(`${at}.name`, `duplicate port ${describeValue(portName)}/${protocol}, ignored`);
      return;
    }
    seenPorts.add(portKey);
    ports.push({ name: portName, protocol, port: portValue });
  });

  const endpoints: SliceEndpoint[] = [];
  (arrayField(raw, 'endpoints') ?? []).forEach((entry, i) => {
    const addresses = arrayField(entry, 'addresses') ?? [];
    if (addresses.length === 0) return; // nothing to route to; upstream skips these too
    const address = addresses[0];
    const parsed = parseExactIP(address);
    if (!parsed) {
      problem(`endpoints[${i}].addresses[0]`, `invalid IP ${describeValue(address)}, endpoint ignored`);
      return;
    }
    if (parsed.family !== family) {
      problem(
        `endpoints[${i}].addresses[0]`,
        `${describeValue(address)} is not an ${family} address, endpoint ignored`,
      );
      return;
    }
    const conditions = field(entry, 'conditions');
    const hints = field(entry, 'hints');
    endpoints.push({
      ip: parsed.text,
      // nil ready/serving mean true, nil terminating means false (spec 1.4).
      ready: field(conditions, 'ready') !== false,
      serving: field(conditions, 'serving') !== false,
      terminating: field(conditions, 'terminating') === true,
      nodeName: stringField(entry, 'nodeName') ?? '',
      zoneHints: hintNames(hints, 'forZones'),
      nodeHints: hintNames(hints, 'forNodes'),
    });
  });

  let triggerTimeMs: number | undefined;
  const trigger = field(field(metadata, 'annotations'), TRIGGER_TIME_ANNOTATION);
  if (trigger !== undefined && trigger !== null) {
    triggerTimeMs = typeof trigger === 'string' ? parseRFC3339(trigger) : undefined;
    if (triggerTimeMs === undefined) {
      problem(
        `metadata.annotations[${TRIGGER_TIME_ANNOTATION}]`,
        `invalid time ${describeValue(trigger)}, ignored`,
      );
    }
  }

  return {
    slice: {
      key: flat(namespace, '/', name),
      service: flat(namespace, '/', serviceLabel),
      ports: exactList(ports),
      endpoints: exactList(endpoints),
      triggerTimeMs,
    },
    problems,
  };
}

/** Key of a service port within its Service, as slices and Service ports are matched. */
export function portMatchKey(portName: string, protocol: Protocol): string {
  return flat(portName, '/', protocol);
}

export function compareEndpoints(a: Endpoint, b: Endpoint): number {
  return compareStrings(a.endpoint, b.endpoint);
}

/** The endpoints one slice gives one of its ports: sorted, duplicates resolved as in a merge. */
export interface SlicePortEndpoints {
  /** portMatchKey of the port. */
  readonly port: string;
  readonly endpoints: readonly Endpoint[];
}

/**
 * What the model keeps of a slice: its endpoints already paired with its ports, as the Endpoint
 * objects the snapshot hands out. Keeping these instead of the parsed slice means one object per
 * endpoint and port, not two, and a Service with one slice (the usual case) needs no merge.
 */
export interface SliceEndpoints {
  readonly key: string;
  readonly service: ServiceName;
  readonly ports: readonly SlicePortEndpoints[];
  readonly triggerTimeMs: number | undefined;
}

/**
 * joinHostPort's text as one flat string. A template literal makes a cons string, which the
 * first comparison (sorting) flattens into a second string while the cons cell stays: 70 bytes
 * instead of 40 for each of the hundreds of thousands of endpoints the model keeps.
 */
function endpointString(ip: string, port: number): string {
  return ip.includes(':') ? ['[', ip, ']:', port].join('') : [ip, port].join(':');
}

/** A duplicate `ip:port` replaces the one kept so far only when it is not terminating and that one is. */
function replaces(candidate: Endpoint | SliceEndpoint, kept: Endpoint | undefined): boolean {
  return kept === undefined || (kept.terminating && !candidate.terminating);
}

/**
 * Sorted by endpoint string, one per `ip:port`. The sort is stable, so the copies of one
 * endpoint stay in slice order and `replaces` picks among them as a merge would; without
 * duplicates (the usual case) this is just the sort.
 */
function sortedDistinct(endpoints: Endpoint[]): Endpoint[] {
  endpoints.sort(compareEndpoints);
  let duplicates = false;
  for (let i = 1; i < endpoints.length && !duplicates; i++)
    duplicates = endpoints[i]?.endpoint === endpoints[i - 1]?.endpoint;
  if (!duplicates) return endpoints;
  const kept: Endpoint[] = [];
  for (const ep of endpoints) {
    const last = kept.at(-1);
    if (last?.endpoint !== ep.endpoint) kept.push(ep);
    else if (replaces(ep, last)) kept[kept.length - 1] = ep;
  }
  return exactList(kept);
}

/** Pairs a slice's endpoints with its ports; `nodeName` (this node) decides which are local. */
export function sliceEndpoints(slice: ParsedEndpointSlice, nodeName: string): SliceEndpoints {
  const ports = slice.ports.map((port): SlicePortEndpoints => {
    const all = slice.endpoints.map((ep): Endpoint => ({
      ip: ep.ip,
      port: port.port,
      endpoint: endpointString(ep.ip, port.port),
      ready: ep.ready,
      serving: ep.serving,
      terminating: ep.terminating,
      nodeName: ep.nodeName,
      isLocal: ep.nodeName !== '' && ep.nodeName === nodeName,
      zoneHints: ep.zoneHints,
      nodeHints: ep.nodeHints,
    }));
    return { port: portMatchKey(port.name, port.protocol), endpoints: sortedDistinct(all) };
  });
  return { key: slice.key, service: slice.service, ports, triggerTimeMs: slice.triggerTimeMs };
}

/**
 * Merges the slices of one Service into endpoint lists keyed by portMatchKey (spec 1.3).
 * Duplicate `ip:port` across slices: a non-terminating copy beats a terminating one; otherwise
 * the first in slice-key order wins, so the result does not depend on event order.
 * Lists are sorted by endpoint string in plain string order; a single slice's lists are
 * returned as they are.
 */
export function mergeSliceEndpoints(slices: Iterable<SliceEndpoints>): Map<string, readonly Endpoint[]> {
  const ordered = [...slices].sort((a, b) => compareStrings(a.key, b.key));
  const result = new Map<string, readonly Endpoint[]>();
  const only = ordered.length === 1 ? ordered[0] : undefined;
  if (only) {
    for (const port of only.ports) result.set(port.port, port.endpoints);
    return result;
  }
  const byPort = new Map<string, Map<string, Endpoint>>();
  for (const slice of ordered) {
    for (const port of slice.ports) {
      let byEndpoint = byPort.get(port.port);
      if (!byEndpoint) {
        byEndpoint = new Map();
        byPort.set(port.port, byEndpoint);
      }
      for (const ep of port.endpoints) {
        if (replaces(ep, byEndpoint.get(ep.endpoint))) byEndpoint.set(ep.endpoint, ep);
      }
    }
  }
  for (const [port, byEndpoint] of byPort) result.set(port, [...byEndpoint.values()].sort(compareEndpoints));
  return result;
}

/** mergeSliceEndpoints over parsed slices. */
export function mergeEndpointSlices(
  slices: Iterable<ParsedEndpointSlice>,
  nodeName: string,
): Map<string, readonly Endpoint[]> {
  return mergeSliceEndpoints([...slices].map((slice) => sliceEndpoints(slice, nodeName)));
}
