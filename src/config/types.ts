// KubeProxyConfiguration, kubeproxy.config.k8s.io/v1alpha1: the one released file format of
// upstream kube-proxy (spec 8.1). Field names are upstream's JSON names so that existing
// ConfigMaps load unchanged and /configz and --write-config-to print what operators expect.
//
// This is the *defaulted* shape: every field is present. Durations stay Go duration text in
// canonical form ("30s", "1m0s", "24h0m0s"); resolveEffective() turns them into numbers.

export const API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';
export const KIND = 'KubeProxyConfiguration';

/**
 * The Linux proxy modes the configuration accepts. Upstream accepts iptables, ipvs and nftables
 * (`kernelspace` is Windows-only); `userspace` was removed upstream in v1.26 and is accepted
 * here again because this project brings back its own userspace mode. Whether a mode can run
 * is not the configuration's business: the CLI refuses the ones not implemented yet.
 */
export type ProxyMode = 'iptables' | 'ipvs' | 'nftables' | 'userspace';
/** Sorted, as upstream's validation message lists the modes. */
export const PROXY_MODES: readonly ProxyMode[] = ['iptables', 'ipvs', 'nftables', 'userspace'];

export function isProxyMode(text: string): text is ProxyMode {
  return (PROXY_MODES as readonly string[]).includes(text);
}

export type LocalMode = 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';
export const LOCAL_MODES: readonly LocalMode[] = [
  'ClusterCIDR',
  'NodeCIDR',
  'BridgeInterface',
  'InterfaceNamePrefix',
];

/** The keyword that, alone in nodePortAddresses, means "this node's primary IPs". */
export const NODE_PORT_ADDRESSES_PRIMARY = 'primary';

/** Go duration text, e.g. "30s". */
export type GoDuration = string;

export interface ClientConnectionConfiguration {
  readonly kubeconfig: string;
  readonly acceptContentTypes: string;
  readonly contentType: string;
  /** float32 upstream. */
  readonly qps: number;
  readonly burst: number;
}

export interface VModuleItem {
  readonly filePattern: string;
  readonly verbosity: number;
}

export interface LogFormatOptions {
  readonly splitStream: boolean;
  /** A Kubernetes resource quantity ("0", "64Ki"). */
  readonly infoBufferSize: string;
}

export interface LoggingConfiguration {
  /** "text" or "json" once validated. */
  readonly format: string;
  readonly flushFrequency: GoDuration;
  readonly verbosity: number;
  readonly vmodule: readonly VModuleItem[];
  readonly options: {
    readonly text: LogFormatOptions;
    readonly json: LogFormatOptions;
  };
}

export interface IPTablesConfiguration {
  readonly masqueradeBit: number;
  readonly masqueradeAll: boolean;
  readonly localhostNodePorts: boolean;
  readonly syncPeriod: GoDuration;
  readonly minSyncPeriod: GoDuration;
}

export interface IPVSConfiguration {
  readonly syncPeriod: GoDuration;
  readonly minSyncPeriod: GoDuration;
  readonly scheduler: string;
  readonly excludeCIDRs: readonly string[];
  readonly strictARP: boolean;
  readonly tcpTimeout: GoDuration;
  readonly tcpFinTimeout: GoDuration;
  readonly udpTimeout: GoDuration;
}

export interface NFTablesConfiguration {
  readonly masqueradeBit: number;
  readonly masqueradeAll: boolean;
  readonly syncPeriod: GoDuration;
  readonly minSyncPeriod: GoDuration;
}

/** Windows-only settings: accepted so that shared ConfigMaps load, never used on Linux. */
export interface WinkernelConfiguration {
  readonly networkName: string;
  readonly sourceVip: string;
  readonly enableDSR: boolean;
  readonly rootHnsEndpointName: string;
  readonly forwardHealthCheckVip: boolean;
}

export interface DetectLocalConfiguration {
  readonly bridgeInterface: string;
  readonly interfaceNamePrefix: string;
}

export interface ConntrackConfiguration {
  readonly maxPerCore: number;
  readonly min: number;
  readonly tcpEstablishedTimeout: GoDuration;
  readonly tcpCloseWaitTimeout: GoDuration;
  readonly tcpBeLiberal: boolean;
  readonly udpTimeout: GoDuration;
  readonly udpStreamTimeout: GoDuration;
}

export interface KubeProxyConfiguration {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: typeof KIND;
  readonly featureGates: Readonly<Record<string, boolean>>;
  readonly clientConnection: ClientConnectionConfiguration;
  readonly logging: LoggingConfiguration;
  readonly hostnameOverride: string;
  readonly bindAddress: string;
  /** `IP:port`; empty disables the healthz server. */
  readonly healthzBindAddress: string;
  /** `IP:port`; empty disables the metrics server. */
  readonly metricsBindAddress: string;
  readonly bindAddressHardFail: boolean;
  readonly enableProfiling: boolean;
  readonly showHiddenMetricsForVersion: string;
  /** After platform defaulting: one of PROXY_MODES once validated. */
  readonly mode: string;
  readonly iptables: IPTablesConfiguration;
  readonly ipvs: IPVSConfiguration;
  readonly nftables: NFTablesConfiguration;
  readonly winkernel: WinkernelConfiguration;
  /** After platform defaulting: one of LOCAL_MODES once validated. */
  readonly detectLocalMode: string;
  readonly detectLocal: DetectLocalConfiguration;
  /** One CIDR or a comma-separated IPv4/IPv6 pair; empty for none. */
  readonly clusterCIDR: string;
  /** CIDRs, or exactly ["primary"]; empty means every local IP. */
  readonly nodePortAddresses: readonly string[];
  readonly oomScoreAdj: number;
  readonly conntrack: ConntrackConfiguration;
  readonly configSyncPeriod: GoDuration;
  /**
   * The userspace mode's proxy ports (`--proxy-port-range`): "" / "0" / "0-0" let the kernel pick,
   * "low-high", "base+offset" or one port. Other modes ignore it.
   */
  readonly portRange: string;
  /**
   * The userspace mode's UDP flow idle timeout (`--udp-timeout`, upstream's `udpIdleTimeout`,
   * removed upstream in v1.26 with the mode and brought back with it). Must be > 0.
   */
  readonly udpIdleTimeout: GoDuration;
  /** Windows-only, accepted and ignored. */
  readonly windowsRunAsService: boolean;
}
