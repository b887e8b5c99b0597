// The typed values the daemon runs with, derived from a defaulted and validated configuration:
// durations in milliseconds or seconds, addresses split, CIDRs canonical, and the per-mode
// choices made once (sync periods and masquerade settings come from the section of the active
// mode, spec 8.1 "Effective values").
import { parseCIDR } from '../util/ip.ts';
import { parseGoDuration } from './duration.ts';
import { splitHostPort } from './hostport.ts';
import { parsePortRange, type PortRange } from './port-range.ts';
import {
  NODE_PORT_ADDRESSES_PRIMARY,
  isProxyMode,
  type KubeProxyConfiguration,
  type ProxyMode,
} from './types.ts';

export interface HostPort {
  /** Bare IP text (no brackets). */
  readonly host: string;
  readonly port: number;
}

export type DetectLocal =
  | { readonly mode: 'ClusterCIDR'; readonly clusterCIDRs: readonly string[] }
  | { readonly mode: 'NodeCIDR' }
  | { readonly mode: 'BridgeInterface'; readonly bridgeInterface: string }
  | { readonly mode: 'InterfaceNamePrefix'; readonly interfaceNamePrefix: string };

export type NodePortAddresses =
  | { readonly kind: 'all' }
  | { readonly kind: 'primary' }
  | { readonly kind: 'cidrs'; readonly cidrs: readonly string[] };

export interface EffectiveConntrack {
  /** 0: leave nf_conntrack_max alone. */
  readonly maxPerCore: number;
  readonly min: number;
  /** Whole seconds, as the sysctls take them; 0 leaves the kernel value. */
  readonly tcpEstablishedTimeoutSeconds: number;
  readonly tcpCloseWaitTimeoutSeconds: number;
  readonly tcpBeLiberal: boolean;
  readonly udpTimeoutSeconds: number;
  readonly udpStreamTimeoutSeconds: number;
}

export interface EffectiveIPVS {
  readonly scheduler: string;
  readonly excludeCIDRs: readonly string[];
  readonly strictARP: boolean;
  readonly tcpTimeoutSeconds: number;
  readonly tcpFinTimeoutSeconds: number;
  readonly udpTimeoutSeconds: number;
}

export interface EffectiveConfig {
  readonly mode: ProxyMode;
  readonly syncPeriodMs: number;
  readonly minSyncPeriodMs: number;
  readonly masqueradeAll: boolean;
  readonly masqueradeBit: number;
  readonly configSyncPeriodMs: number;
  /** undefined: the server is disabled. */
  readonly healthz: HostPort | undefined;
  readonly metrics: HostPort | undefined;
  readonly bindAddressHardFail: boolean;
  readonly enableProfiling: boolean;
  readonly detectLocal: DetectLocal;
  /** Canonical CIDRs of clusterCIDR (0, 1 or 2 of them, any mode). */
  readonly clusterCIDRs: readonly string[];
  readonly nodePortAddresses: NodePortAddresses;
  readonly conntrack: EffectiveConntrack;
  readonly ipvs: EffectiveIPVS;
  /** iptables mode, IPv4 only. */
  readonly localhostNodePorts: boolean;
  /** Trimmed and lower-cased; empty means "use the OS hostname". */
  readonly hostnameOverride: string;
  readonly verbosity: number;
  readonly loggingFormat: 'text' | 'json';
  readonly logFlushFrequencyMs: number;
  readonly kubeconfig: string;
  /** --master; empty when not given. */
  readonly master: string;
  readonly contentType: string;
  readonly acceptContentTypes: string;
  readonly qps: number;
  readonly burst: number;
  readonly oomScoreAdj: number;
  /** Overrides the node's primary IP when not the unspecified address. */
  readonly bindAddress: string;
  /** userspace mode: the ports its listeners may use; undefined lets the kernel choose. */
  readonly proxyPortRange: PortRange | undefined;
  /** userspace mode: idle timeout of a UDP flow, > 0. */
  readonly udpIdleTimeoutMs: number;
  readonly featureGates: Readonly<Record<string, boolean>>;
}

function hostPort(address: string): HostPort | undefined {
  if (address === '') return undefined;
  const parts = splitHostPort(address);
  if (parts === undefined) throw new Error(`not an IP:port address: ${JSON.stringify(address)}`);
  return { host: parts.host, port: Number(parts.port) };
}

function seconds(duration: string): number {
  return Math.trunc(parseGoDuration(duration) / 1000);
}

function canonicalCIDRs(texts: readonly string[], field: string): string[] {
  return texts.map((text) => {
    const cidr = parseCIDR(text);
    if (cidr === undefined) throw new Error(`${field}: not a CIDR: ${JSON.stringify(text)}`);
    return cidr.text;
  });
}

function proxyMode(mode: string): ProxyMode {
  if (mode === '') return 'iptables';
  if (isProxyMode(mode)) return mode;
  throw new Error(`mode: unsupported proxy mode ${JSON.stringify(mode)}`);
}

interface SyncPeriods {
  readonly syncPeriod: string;
  readonly minSyncPeriod: string;
}

/** The section whose sync periods a mode runs with (upstream's userspace used the iptables ones). */
function syncPeriodsOf(config: KubeProxyConfiguration, mode: ProxyMode): SyncPeriods {
  switch (mode) {
    case 'iptables':
    case 'userspace':
      return config.iptables;
    case 'ipvs':
      return config.ipvs;
    case 'nftables':
      return config.nftables;
    default:
      return unknownMode(mode);
  }
}

/** The section whose masquerade settings a mode runs with: only nftables has its own. */
function masqueradeOf(
  config: KubeProxyConfiguration,
  mode: ProxyMode,
): { readonly masqueradeAll: boolean; readonly masqueradeBit: number } {
  switch (mode) {
    case 'iptables':
    case 'ipvs':
    case 'userspace':
      return config.iptables;
    case 'nftables':
      return config.nftables;
    default:
      return unknownMode(mode);
  }
}

function unknownMode(mode: never): never {
  throw new Error(`mode: unsupported proxy mode ${JSON.stringify(mode)}`);
}

function detectLocal(config: KubeProxyConfiguration, clusterCIDRs: readonly string[]): DetectLocal {
  switch (config.detectLocalMode) {
    case '':
    case 'ClusterCIDR':
      return { mode: 'ClusterCIDR', clusterCIDRs };
    case 'NodeCIDR':
      return { mode: 'NodeCIDR' };
    case 'BridgeInterface':
      return { mode: 'BridgeInterface', bridgeInterface: config.detectLocal.bridgeInterface };
    case 'InterfaceNamePrefix':
      return { mode: 'InterfaceNamePrefix', interfaceNamePrefix: config.detectLocal.interfaceNamePrefix };
    default:
      throw new Error(`detectLocalMode: unsupported value ${JSON.stringify(config.detectLocalMode)}`);
  }
}

function nodePortAddresses(addresses: readonly string[]): NodePortAddresses {
  if (addresses.length === 0) return { kind: 'all' };
  if (addresses.length === 1 && addresses[0] === NODE_PORT_ADDRESSES_PRIMARY) return { kind: 'primary' };
  return { kind: 'cidrs', cidrs: canonicalCIDRs(addresses, 'nodePortAddresses') };
}

function portRange(text: string): PortRange | undefined {
  const range = parsePortRange(text);
  if (range === null) throw new Error(`portRange: not a port range: ${JSON.stringify(text)}`);
  return range;
}

/**
 * Typed values for the daemon. Expects a configuration that passed validateConfig (as
 * parseCommandLine returns it); throws naming the field if it meets something invalid anyway.
 */
export function resolveEffective(config: KubeProxyConfiguration, master = ''): EffectiveConfig {
  const mode = proxyMode(config.mode);
  const periods = syncPeriodsOf(config, mode);
  const masquerade = masqueradeOf(config, mode);
  const clusterCIDRs =
    config.clusterCIDR === '' ? [] : canonicalCIDRs(config.clusterCIDR.split(','), 'clusterCIDR');
  const { conntrack, ipvs, logging } = config;
  return {
    mode,
    syncPeriodMs: parseGoDuration(periods.syncPeriod),
    minSyncPeriodMs: parseGoDuration(periods.minSyncPeriod),
    masqueradeAll: masquerade.masqueradeAll,
    masqueradeBit: masquerade.masqueradeBit,
    configSyncPeriodMs: parseGoDuration(config.configSyncPeriod),
    healthz: hostPort(config.healthzBindAddress),
    metrics: hostPort(config.metricsBindAddress),
    bindAddressHardFail: config.bindAddressHardFail,
    enableProfiling: config.enableProfiling,
    detectLocal: detectLocal(config, clusterCIDRs),
    clusterCIDRs,
    nodePortAddresses: nodePortAddresses(config.nodePortAddresses),
    conntrack: {
      maxPerCore: conntrack.maxPerCore,
      min: conntrack.min,
      tcpEstablishedTimeoutSeconds: seconds(conntrack.tcpEstablishedTimeout),
      tcpCloseWaitTimeoutSeconds: seconds(conntrack.tcpCloseWaitTimeout),
      tcpBeLiberal: conntrack.tcpBeLiberal,
      udpTimeoutSeconds: seconds(conntrack.udpTimeout),
      udpStreamTimeoutSeconds: seconds(conntrack.udpStreamTimeout),
    },
    ipvs: {
      scheduler: ipvs.scheduler,
      // Validated only in ipvs mode; elsewhere the list is unused, so bad entries are dropped.
      excludeCIDRs: ipvs.excludeCIDRs.flatMap((text) => parseCIDR(text)?.text ?? []),
      strictARP: ipvs.strictARP,
      tcpTimeoutSeconds: seconds(ipvs.tcpTimeout),
      tcpFinTimeoutSeconds: seconds(ipvs.tcpFinTimeout),
      udpTimeoutSeconds: seconds(ipvs.udpTimeout),
    },
    localhostNodePorts: config.iptables.localhostNodePorts,
    hostnameOverride: config.hostnameOverride.trim().toLowerCase(),
    verbosity: logging.verbosity,
    loggingFormat: logging.format === 'json' ? 'json' : 'text',
    logFlushFrequencyMs: parseGoDuration(logging.flushFrequency),
    kubeconfig: config.clientConnection.kubeconfig,
    master,
    contentType: config.clientConnection.contentType,
    acceptContentTypes: config.clientConnection.acceptContentTypes,
    qps: config.clientConnection.qps,
    burst: config.clientConnection.burst,
    oomScoreAdj: config.oomScoreAdj,
    bindAddress: config.bindAddress,
    proxyPortRange: portRange(config.portRange),
    udpIdleTimeoutMs: parseGoDuration(config.udpIdleTimeout),
    featureGates: config.featureGates,
  };
}
