// The state dump (GET /debug/proxy/state, `explain --state FILE`): one node's view as the proxy
// holds it, so a support engineer can replay the node's decisions anywhere. It carries only
// what the model keeps (validated service ports and endpoints, the node's zone, addresses and
// pod CIDRs, the dataplane settings): no kubeconfig, token, annotation or raw object. Reading a
// dump validates every field, since a dump is a file someone handed over.
import { z } from 'zod';
import type { DataplaneSettings } from '../dataplane/common/settings.ts';
import { ZONE_LABEL } from '../model/node.ts';
import type { Endpoint, EndpointSelection, IPFamily, ServicePort, ServicePortState } from '../model/types.ts';
import { makeServicePortName } from '../model/service.ts';
import { isDNSLabel, isPortName } from '../model/validate.ts';
import { joinHostPort, parseCIDR, parseIP } from '../util/ip.ts';
import type { ExplainFamily, ExplainState } from './state.ts';

export const DUMP_API_VERSION = 'debug.kube-proxy-ts/v1alpha1';

const ip = z.string().refine((text) => parseIP(text)?.text === text, 'not a canonical IP address');
const cidr = z.string().refine((text) => parseCIDR(text)?.text === text, 'not a canonical CIDR');
const port = z.number().int().min(0).max(65535);
const protocol = z.enum(['TCP', 'UDP', 'SCTP']);
const family = z.enum(['IPv4', 'IPv6']);
const name = z.string().max(253);
const label = z.string().refine(isDNSLabel, 'not a DNS label');
const portName = z.string().refine((text) => text === '' || isPortName(text), 'not a port name');

const endpointSchema = z.strictObject({
  ip,
  port: port.min(1),
  ready: z.boolean(),
  serving: z.boolean(),
  terminating: z.boolean(),
  nodeName: name,
  isLocal: z.boolean(),
  zoneHints: z.array(name).optional(),
  nodeHints: z.array(name).optional(),
});

const servicePortSchema = z.strictObject({
  namespace: label,
  name: label,
  portName,
  protocol,
  clusterIP: ip,
  port: port.min(1),
  nodePort: port,
  externalIPs: z.array(ip),
  loadBalancerVIPs: z.array(ip),
  loadBalancerSourceRanges: z.array(cidr),
  healthCheckNodePort: port,
  sessionAffinityTimeoutSeconds: z.number().int().min(0),
  externalPolicyLocal: z.boolean(),
  internalPolicyLocal: z.boolean(),
  endpoints: z.array(endpointSchema),
  /** The selection the proxy made, by endpoint (`ip:port`). */
  selection: z.strictObject({
    clusterEndpoints: z.array(z.string()),
    localEndpoints: z.array(z.string()),
    allReachable: z.array(z.string()),
    hasAnyEndpoints: z.boolean(),
  }),
});

const nodePortAddressesSchema = z.union([
  z.strictObject({ kind: z.literal('all') }),
  z.strictObject({ kind: z.literal('primary') }),
  z.strictObject({ kind: z.literal('cidrs'), cidrs: z.array(cidr) }),
]);

const dumpSchema = z.strictObject({
  apiVersion: z.literal(DUMP_API_VERSION),
  kind: z.literal('ProxyStateDump'),
  metadata: z.strictObject({
    generatedAt: z.string(),
    node: name,
    mode: z.string().max(32),
    version: z.string().max(64).optional(),
  }),
  config: z.strictObject({
    masqueradeBit: z.number().int().min(0).max(31),
    masqueradeAll: z.boolean(),
    detectLocalMode: z.enum(['ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix']),
    clusterCIDRs: z.array(cidr),
    bridgeInterface: z.string().max(15),
    interfaceNamePrefix: z.string().max(15),
    nodePortAddresses: nodePortAddressesSchema,
    localhostNodePorts: z.boolean(),
  }),
  families: z.array(
    z.strictObject({
      family,
      generation: z.number().int().optional(),
      node: z.strictObject({
        name,
        zone: name,
        podCIDRs: z.array(cidr),
        nodeIPs: z.array(ip),
      }),
      hostAddresses: z.array(ip),
      serviceCIDRs: z.array(cidr).optional(),
      lastSync: z.record(z.string(), z.unknown()).optional(),
      servicePorts: z.array(servicePortSchema),
      skipped: z.array(z.strictObject({ service: name, reason: z.string(), addresses: z.array(z.string()) })),
    }),
  ),
});

export type ProxyStateDump = z.infer<typeof dumpSchema>;
type DumpedServicePort = z.infer<typeof servicePortSchema>;

function dumpServicePort(state: ServicePortState): DumpedServicePort {
  const sp = state.servicePort;
  const names = (list: readonly Endpoint[]): string[] => list.map((ep) => ep.endpoint);
  return {
    namespace: sp.id.namespace,
    name: sp.id.name,
    portName: sp.id.portName,
    protocol: sp.id.protocol,
    clusterIP: sp.clusterIP,
    port: sp.port,
    nodePort: sp.nodePort,
    externalIPs: [...sp.externalIPs],
    loadBalancerVIPs: [...sp.loadBalancerVIPs],
    loadBalancerSourceRanges: [...sp.loadBalancerSourceRanges],
    healthCheckNodePort: sp.healthCheckNodePort,
    sessionAffinityTimeoutSeconds:
      sp.sessionAffinity.type === 'ClientIP' ? sp.sessionAffinity.timeoutSeconds : 0,
    externalPolicyLocal: sp.externalPolicyLocal,
    internalPolicyLocal: sp.internalPolicyLocal,
    endpoints: state.endpoints.map((ep) => ({
      ip: ep.ip,
      port: ep.port,
      ready: ep.ready,
      serving: ep.serving,
      terminating: ep.terminating,
      nodeName: ep.nodeName,
      isLocal: ep.isLocal,
      ...(ep.zoneHints ? { zoneHints: [...ep.zoneHints] } : {}),
      ...(ep.nodeHints ? { nodeHints: [...ep.nodeHints] } : {}),
    })),
    selection: {
      clusterEndpoints: names(state.selection.clusterEndpoints),
      localEndpoints: names(state.selection.localEndpoints),
      allReachable: names(state.selection.allReachable),
      hasAnyEndpoints: state.selection.hasAnyEndpoints,
    },
  };
}

/** The dump of a state; `lastSync` per family is what /debug/proxy shows of the last sync. */
export function dumpOf(
  state: ExplainState,
  meta: {
    readonly generatedAt: Date;
    readonly version?: string;
    readonly lastSync?: (family: IPFamily) => Record<string, unknown> | undefined;
  },
): ProxyStateDump {
  const s = state.settings;
  return {
    apiVersion: DUMP_API_VERSION,
    kind: 'ProxyStateDump',
    metadata: {
      generatedAt: meta.generatedAt.toISOString(),
      node: state.node,
      mode: state.mode,
      ...(meta.version !== undefined ? { version: meta.version } : {}),
    },
    config: {
      masqueradeBit: s.masqueradeBit,
      masqueradeAll: s.masqueradeAll,
      detectLocalMode: s.detectLocalMode,
      clusterCIDRs: [...s.clusterCIDRs],
      bridgeInterface: s.bridgeInterface,
      interfaceNamePrefix: s.interfaceNamePrefix,
      nodePortAddresses:
        s.nodePortAddresses.kind === 'cidrs'
          ? { kind: 'cidrs', cidrs: [...s.nodePortAddresses.cidrs] }
          : { kind: s.nodePortAddresses.kind },
      localhostNodePorts: s.localhostNodePorts,
    },
    families: state.families.map((f) => {
      const lastSync = meta.lastSync?.(f.family);
      return {
        family: f.family,
        ...(f.generation !== undefined ? { generation: f.generation } : {}),
        node: {
          name: f.node.name,
          zone: f.node.zone,
          podCIDRs: [...f.node.podCIDRs],
          nodeIPs: [...f.node.nodeIPs],
        },
        hostAddresses: [...f.hostAddresses],
        ...(f.serviceCIDRs && f.serviceCIDRs.length > 0 ? { serviceCIDRs: [...f.serviceCIDRs] } : {}),
        ...(lastSync ? { lastSync } : {}),
        servicePorts: [...f.servicePorts.keys()].sort().flatMap((key) => {
          const sp = f.servicePorts.get(key);
          return sp ? [dumpServicePort(sp)] : [];
        }),
        skipped: f.skipped.map((skip) => ({ ...skip, addresses: [...skip.addresses] })),
      };
    }),
  };
}

function issueText(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(top)'}: ${issue.message}`)
    .join('; ');
}

function stateOfDumpedPort(raw: DumpedServicePort, fam: IPFamily, where: string): ServicePortState {
  const id = makeServicePortName(raw.namespace, raw.name, raw.portName, raw.protocol);
  for (const address of [raw.clusterIP, ...raw.externalIPs, ...raw.loadBalancerVIPs]) {
    if (parseIP(address)?.family !== fam) throw new Error(`${where}: ${address} is not an ${fam} address`);
  }
  const servicePort: ServicePort = {
    id,
    family: fam,
    clusterIP: raw.clusterIP,
    port: raw.port,
    nodePort: raw.nodePort,
    externalIPs: raw.externalIPs,
    loadBalancerVIPs: raw.loadBalancerVIPs,
    loadBalancerSourceRanges: raw.loadBalancerSourceRanges,
    healthCheckNodePort: raw.healthCheckNodePort,
    sessionAffinity:
      raw.sessionAffinityTimeoutSeconds > 0
        ? { type: 'ClientIP', timeoutSeconds: raw.sessionAffinityTimeoutSeconds }
        : { type: 'None' },
    externalPolicyLocal: raw.externalPolicyLocal,
    internalPolicyLocal: raw.internalPolicyLocal,
  };
  const byName = new Map<string, Endpoint>();
  const endpoints = raw.endpoints.map((ep, i): Endpoint => {
    if (parseIP(ep.ip)?.family !== fam)
      throw new Error(`${where}.endpoints.${i}: ${ep.ip} is not an ${fam} address`);
    const endpoint: Endpoint = {
      ip: ep.ip,
      port: ep.port,
      endpoint: joinHostPort(ep.ip, ep.port),
      ready: ep.ready,
      serving: ep.serving,
      terminating: ep.terminating,
      nodeName: ep.nodeName,
      isLocal: ep.isLocal,
      zoneHints: ep.zoneHints,
      nodeHints: ep.nodeHints,
    };
    byName.set(endpoint.endpoint, endpoint);
    return endpoint;
  });
  endpoints.sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  const pick = (list: readonly string[], what: string): Endpoint[] =>
    list.map((text) => {
      const ep = byName.get(text);
      if (!ep)
        throw new Error(`${where}.selection.${what}: ${JSON.stringify(text)} is not one of its endpoints`);
      return ep;
    });
  const selection: EndpointSelection = {
    clusterEndpoints: pick(raw.selection.clusterEndpoints, 'clusterEndpoints'),
    localEndpoints: pick(raw.selection.localEndpoints, 'localEndpoints'),
    allReachable: pick(raw.selection.allReachable, 'allReachable'),
    hasAnyEndpoints: raw.selection.hasAnyEndpoints,
  };
  return { servicePort, endpoints, selection };
}

/** Reads a dump (already parsed from YAML or JSON); throws naming the first bad fields. */
export function stateFromDump(input: unknown, from: string): ExplainState {
  const parsed = dumpSchema.safeParse(input);
  if (!parsed.success) throw new Error(`${from}: not a ProxyStateDump: ${issueText(parsed.error)}`);
  const dump = parsed.data;
  const settings: DataplaneSettings = { ...dump.config, syncPeriodMs: 0 };
  const families = dump.families.map((f, fi): ExplainFamily => {
    const servicePorts = new Map<string, ServicePortState>();
    f.servicePorts.forEach((raw, i) => {
      const state = stateOfDumpedPort(raw, f.family, `families.${fi}.servicePorts.${i}`);
      servicePorts.set(state.servicePort.id.key, state);
    });
    return {
      family: f.family,
      node: {
        name: f.node.name,
        zone: f.node.zone,
        labels: f.node.zone === '' ? {} : { [ZONE_LABEL]: f.node.zone },
        podCIDRs: f.node.podCIDRs,
        nodeIPs: f.node.nodeIPs,
      },
      servicePorts,
      hostAddresses: f.hostAddresses,
      serviceCIDRs: f.serviceCIDRs ?? [],
      skipped: f.skipped,
      generation: f.generation,
    };
  });
  return {
    source: { kind: 'dump', from },
    node: dump.metadata.node,
    mode: dump.metadata.mode,
    settings,
    families,
  };
}
