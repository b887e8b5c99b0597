// Service -> service ports of one IP family (spec 1.2, 1.7). Pure: the same object always gives
// the same ports and problems.
//
// Validation policy: a Service whose identity, cluster IP, ports, protocols or numeric settings
// do not parse is skipped whole (half a Service would route part of its traffic); a single bad
// externalIP, load-balancer ingress IP or source range is dropped on its own, as upstream ignores
// entries it cannot parse.
import { flat } from '../util/flat.ts';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { IPFamily, Protocol, ServicePort, ServicePortName, SessionAffinity } from './types.ts';
import { describeValue, problemsOf, type Problem } from './problem.ts';
import {
  arrayField,
  field,
  isDNSLabel,
  isIntInRange,
  isPortName,
  isProtocol,
  parseExactIP,
  parseTrimmedCIDR,
  stringField,
  exactList,
} from './validate.ts';

export { formatProblem, type Problem } from './problem.ts';

/** API default of sessionAffinityConfig.clientIP.timeoutSeconds. */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
/** API maximum of sessionAffinityConfig.clientIP.timeoutSeconds (one day). */
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;

// Most Services have no affinity, external IPs, VIPs or source ranges: they share one constant
// each instead of holding an object or empty list of their own (30k of them at 10k Services).
const NO_AFFINITY: SessionAffinity = Object.freeze({ type: 'None' });
const NO_STRINGS: readonly string[] = Object.freeze([]);

function listOf(values: ReadonlySet<string>): readonly string[] {
  return values.size === 0 ? NO_STRINGS : [...values];
}

export interface ServicePortsResult {
  /** Empty when the Service is skipped (headless, ExternalName, no IP of the family, invalid). */
  readonly ports: ServicePort[];
  readonly problems: Problem[];
}

export function makeServicePortName(
  namespace: string,
  name: string,
  portName: string,
  protocol: Protocol,
): ServicePortName {
  // Kept for the life of the Service, once per port: flat (src/util/flat.ts).
  const service = flat(namespace, '/', name);
  return {
    namespace,
    name,
    portName,
    protocol,
    key: flat(service, ':', portName, '/', protocol),
    printable: portName ? flat(service, ':', portName) : service,
    service,
  };
}

/**
 * The raw cluster IP text of the family (spec 1.7), or undefined when the Service has none.
 * `index` names the field the text came from, for problems.
 */
function clusterIPOfFamily(spec: unknown, family: IPFamily): { text: unknown; field: string } | undefined {
  const ipFamilies = arrayField(spec, 'ipFamilies') ?? [];
  if (ipFamilies.length === 0) {
    const text = field(spec, 'clusterIP');
    const parsed = parseExactIP(text);
    // Unparseable: the family is unknown, so report it (in every family's model).
    if (!parsed) return { text, field: 'spec.clusterIP' };
    return parsed.family === family ? { text, field: 'spec.clusterIP' } : undefined;
  }
  const index = ipFamilies.indexOf(family);
  if (index < 0) return undefined;
  const clusterIPs = arrayField(spec, 'clusterIPs') ?? [];
  // ipFamilies longer than clusterIPs: upstream finds no IP for the family and skips silently.
  if (index >= clusterIPs.length) return undefined;
  return { text: clusterIPs[index], field: `spec.clusterIPs[${index}]` };
}

export function servicePortsFromService(svc: Service, family: IPFamily): ServicePortsResult {
  const raw: unknown = svc;
  const spec = field(raw, 'spec');
  const { namespace, name, problems, problem } = problemsOf('Service', raw);
  const skip = (): ServicePortsResult => ({ ports: [], problems });

  // Services that get no rules at all (spec 1.2): decided before validation, so that objects
  // this family never uses do not produce problems here.
  const type = stringField(spec, 'type') ?? 'ClusterIP';
  const specClusterIP = field(spec, 'clusterIP');
  if (type === 'ExternalName') return skip();
  if (specClusterIP === undefined || specClusterIP === '' || specClusterIP === 'None') return skip();
  const clusterIPSource = clusterIPOfFamily(spec, family);
  if (!clusterIPSource) return skip();

  if (!isDNSLabel(namespace)) {
    problem(
      'metadata.namespace',
      `invalid namespace ${describeValue(field(field(raw, 'metadata'), 'namespace'))}`,
    );
    return skip();
  }
  if (!isDNSLabel(name)) {
    problem('metadata.name', `invalid name ${describeValue(field(field(raw, 'metadata'), 'name'))}`);
    return skip();
  }
  const clusterIP = parseExactIP(clusterIPSource.text);
  if (!clusterIP) {
    problem(clusterIPSource.field, `invalid IP ${describeValue(clusterIPSource.text)}`);
    return skip();
  }
  if (clusterIP.family !== family) {
    problem(clusterIPSource.field, `${describeValue(clusterIPSource.text)} is not an ${family} address`);
    return skip();
  }

  const externalTrafficLocal = field(spec, 'externalTrafficPolicy') === 'Local';
  const externalPolicyLocal = (type === 'NodePort' || type === 'LoadBalancer') && externalTrafficLocal;
  const internalPolicyLocal = field(spec, 'internalTrafficPolicy') === 'Local';

  let healthCheckNodePort = 0;
  if (type === 'LoadBalancer' && externalTrafficLocal) {
    const value = field(spec, 'healthCheckNodePort');
    if (value !== undefined && value !== null && !isIntInRange(value, 0, 65535)) {
      problem('spec.healthCheckNodePort', `invalid port ${describeValue(value)}`);
      return skip();
    }
    // 0 or missing: upstream logs and serves no health check; nothing to render.
    healthCheckNodePort = typeof value === 'number' ? value : 0;
  }

  let sessionAffinity: SessionAffinity = NO_AFFINITY;
  if (field(spec, 'sessionAffinity') === 'ClientIP') {
    const timeoutField = 'spec.sessionAffinityConfig.clientIP.timeoutSeconds';
    const value = field(field(field(spec, 'sessionAffinityConfig'), 'clientIP'), 'timeoutSeconds');
    if (value === undefined || value === null) {
      sessionAffinity = { type: 'ClientIP', timeoutSeconds: DEFAULT_AFFINITY_TIMEOUT_SECONDS };
    } else if (isIntInRange(value, 1, MAX_AFFINITY_TIMEOUT_SECONDS)) {
      sessionAffinity = { type: 'ClientIP', timeoutSeconds: value };
    } else {
      problem(
        timeoutField,
        `invalid timeout ${describeValue(value)} (want 1..${MAX_AFFINITY_TIMEOUT_SECONDS})`,
      );
      return skip();
    }
  }

  const externalIPs = familyIPs(arrayField(spec, 'externalIPs') ?? [], family, 'spec.externalIPs', problem);

  const loadBalancerVIPs = new Set<string>();
  const ingress = arrayField(field(field(raw, 'status'), 'loadBalancer'), 'ingress') ?? [];
  ingress.forEach((entry, i) => {
    const ip = field(entry, 'ip');
    if (ip === undefined || ip === null || ip === '') return; // hostname-only ingress
    // ipMode Proxy: the load balancer delivers to the node itself, not to the VIP.
    if (field(entry, 'ipMode') === 'Proxy') return;
    const parsed = parseExactIP(ip);
    if (!parsed) {
      problem(`status.loadBalancer.ingress[${i}].ip`, `invalid IP ${describeValue(ip)}, ignored`);
      return;
    }
    if (parsed.family === family) loadBalancerVIPs.add(parsed.text);
  });

  const sourceRanges = new Set<string>();
  (arrayField(spec, 'loadBalancerSourceRanges') ?? []).forEach((value, i) => {
    const parsed = parseTrimmedCIDR(value);
    if (!parsed) {
      problem(`spec.loadBalancerSourceRanges[${i}]`, `invalid CIDR ${describeValue(value)}, ignored`);
      return;
    }
    if (parsed.family === family) sourceRanges.add(parsed.text);
  });
  // Duplicates are dropped: they would only repeat rules (or collide as nftables set elements).
  const loadBalancerSourceRanges = listOf(sourceRanges);

  const portsValue = field(spec, 'ports');
  if (portsValue !== undefined && portsValue !== null && !Array.isArray(portsValue)) {
    problem('spec.ports', `not a list: ${describeValue(portsValue)}`);
    return skip();
  }
  const vips = listOf(loadBalancerVIPs);
  const ports: ServicePort[] = [];
  const seen = new Set<string>();
  const portList: readonly unknown[] = Array.isArray(portsValue) ? (portsValue as readonly unknown[]) : [];
  for (const [i, entry] of portList.entries()) {
    const at = `spec.ports[${i}]`;
    const portNameValue = field(entry, 'name') ?? '';
    if (typeof portNameValue !== 'string' || !isPortName(portNameValue)) {
      problem(`${at}.name`, `invalid port name ${describeValue(portNameValue)}`);
      return skip();
    }
    // The API server defaults a missing protocol to TCP.
    const protocolValue = field(entry, 'protocol') ?? 'TCP';
    if (!isProtocol(protocolValue)) {
      problem(`${at}.protocol`, `unsupported value ${describeValue(protocolValue)}`);
      return skip();
    }
    const portValue = field(entry, 'port');
    if (!isIntInRange(portValue, 1, 65535)) {
      problem(`${at}.port`, `invalid port ${describeValue(portValue)}`);
      return skip();
    }
    const nodePortValue = field(entry, 'nodePort') ?? 0;
    if (!isIntInRange(nodePortValue, 0, 65535)) {
      problem(`${at}.nodePort`, `invalid port ${describeValue(nodePortValue)}`);
      return skip();
    }
    const id = makeServicePortName(namespace, name, portNameValue, protocolValue);
    if (seen.has(id.key)) {
      problem(`${at}.name`, `duplicate port ${describeValue(portNameValue)}/${protocolValue}`);
      return skip();
    }
    seen.add(id.key);
    ports.push({
      id,
      family,
      clusterIP: clusterIP.text,
      port: portValue,
      nodePort: nodePortValue,
      externalIPs,
      loadBalancerVIPs: vips,
      loadBalancerSourceRanges,
      healthCheckNodePort,
      sessionAffinity,
      externalPolicyLocal,
      internalPolicyLocal,
    });
  }
  return { ports: exactList(ports), problems };
}

function familyIPs(
  values: readonly unknown[],
  family: IPFamily,
  fieldPath: string,
  problem: (field: string, message: string) => void,
): readonly string[] {
  const out = new Set<string>();
  values.forEach((value, i) => {
    const parsed = parseExactIP(value);
    if (!parsed) {
      problem(`${fieldPath}[${i}]`, `invalid IP ${describeValue(value)}, ignored`);
      return;
    }
    // Other-family entries are expected on dual-stack Services: skipped without a problem.
    if (parsed.family === family) out.add(parsed.text);
  });
  return listOf(out);
}
