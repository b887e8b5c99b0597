// Upstream defaults for KubeProxyConfiguration v1alpha1 (spec 8.1), in two steps as upstream:
//   1. applyDefaults: the API defaults, applied to a decoded file and to the flag defaults. Some
//      fields are Go pointers (absent differs from 0: masqueradeBit, oomScoreAdj, conntrack
//      counts and TCP timeouts, localhostNodePorts), others plain values where 0 means "unset"
//      (sync periods, configSyncPeriod, qps, burst): we keep that distinction, because e.g.
//      `conntrack.maxPerCore: 0` is the documented way to leave the kernel limit alone.
//   2. applyPlatformDefaults: the Linux choices made once flags or the file are settled: mode,
//      detectLocalMode, and nodePortAddresses ["primary"] for nftables.
import { parseIP } from '../util/ip.ts';
import { formatGoDurationNs, parseGoDurationNs } from './duration.ts';
import type { RawKubeProxyConfiguration } from './schema.ts';
import {
  API_VERSION,
  KIND,
  NODE_PORT_ADDRESSES_PRIMARY,
  type KubeProxyConfiguration,
  type LogFormatOptions,
} from './types.ts';

export const DEFAULT_HEALTHZ_PORT = 10256;
export const DEFAULT_METRICS_PORT = 10249;
/** kubelet's OOM score for kube-proxy: it should be the last thing the kernel kills. */
const DEFAULT_OOM_SCORE_ADJ = -999;
const DEFAULT_LOG_FLUSH_FREQUENCY = '5s';

/** Adds `:port` to a bare IP (bracketing IPv6); anything else is returned as is for validation. */
export function appendPortIfNeeded(address: string, port: number): string {
  const ip = parseIP(address);
  if (ip === undefined) return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

type Maybe<T> = T | null | undefined;

function value<T>(given: Maybe<T>, fallback: T): T {
  return given ?? fallback;
}

/** Canonical Go text; `zeroIsUnset` mirrors upstream's non-pointer durations (0 -> default). */
function duration(given: Maybe<string>, fallback: string, zeroIsUnset: boolean): string {
  if (given === null || given === undefined) return fallback;
  const ns = parseGoDurationNs(given);
  if (ns === 0n && zeroIsUnset) return fallback;
  return formatGoDurationNs(ns);
}

function nonZero(given: Maybe<number>, fallback: number): number {
  return given === null || given === undefined || given === 0 ? fallback : given;
}

function nonEmpty(given: Maybe<string>, fallback: string): string {
  return given === null || given === undefined || given === '' ? fallback : given;
}

function flushFrequency(given: Maybe<string | number>): string {
  if (given === null || given === undefined) return DEFAULT_LOG_FLUSH_FREQUENCY;
  // A plain number is nanoseconds, as Go's time.Duration unmarshals it.
  const ns = typeof given === 'number' ? BigInt(given) : parseGoDurationNs(given);
  return ns === 0n ? DEFAULT_LOG_FLUSH_FREQUENCY : formatGoDurationNs(ns);
}

function formatOptions(
  given: Maybe<{ splitStream?: Maybe<boolean>; infoBufferSize?: Maybe<string | number> }>,
): LogFormatOptions {
  const size = given?.infoBufferSize;
  return {
    splitStream: value(given?.splitStream, false),
    infoBufferSize: size === null || size === undefined ? '0' : String(size),
  };
}

/** Upstream's IPv4 or IPv6 wildcard / loopback defaults follow the family of bindAddress. */
function defaultServerHosts(bindAddress: string): { healthz: string; metrics: string } {
  return parseIP(bindAddress)?.family === 'IPv4'
    ? { healthz: '0.0.0.0', metrics: '127.0.0.1' }
    : { healthz: '[::]', metrics: '[::1]' };
}

function serverAddress(given: Maybe<string>, defaultHost: string, port: number): string {
  return given === null || given === undefined || given === ''
    ? `${defaultHost}:${port}`
    : appendPortIfNeeded(given, port);
}

/** The v1alpha1 API defaults applied to a decoded (possibly empty) configuration. */
export function applyDefaults(raw: RawKubeProxyConfiguration = {}): KubeProxyConfiguration {
  const bindAddress = nonEmpty(raw.bindAddress, '0.0.0.0');
  const hosts = defaultServerHosts(bindAddress);
  const cc = raw.clientConnection;
  const logging = raw.logging;
  const ipt = raw.iptables;
  const ipvs = raw.ipvs;
  const nft = raw.nftables;
  const win = raw.winkernel;
  const ct = raw.conntrack;
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    featureGates: { ...raw.featureGates },
    clientConnection: {
      kubeconfig: value(cc?.kubeconfig, ''),
      acceptContentTypes: value(cc?.acceptContentTypes, ''),
      contentType: nonEmpty(cc?.contentType, 'application/vnd.kubernetes.protobuf'),
      qps: nonZero(cc?.qps, 5),
      burst: nonZero(cc?.burst, 10),
    },
    logging: {
      format: nonEmpty(logging?.format, 'text'),
      flushFrequency: flushFrequency(logging?.flushFrequency),
      verbosity: value(logging?.verbosity, 0),
      vmodule: (logging?.vmodule ?? []).map((item) => ({
        filePattern: value(item.filePattern, ''),
        verbosity: value(item.verbosity, 0),
      })),
      options: { text: formatOptions(logging?.options?.text), json: formatOptions(logging?.options?.json) },
    },
    hostnameOverride: value(raw.hostnameOverride, ''),
    bindAddress,
    healthzBindAddress: serverAddress(raw.healthzBindAddress, hosts.healthz, DEFAULT_HEALTHZ_PORT),
    metricsBindAddress: serverAddress(raw.metricsBindAddress, hosts.metrics, DEFAULT_METRICS_PORT),
    bindAddressHardFail: value(raw.bindAddressHardFail, false),
    enableProfiling: value(raw.enableProfiling, false),
    showHiddenMetricsForVersion: value(raw.showHiddenMetricsForVersion, ''),
    mode: value(raw.mode, ''),
    iptables: {
      masqueradeBit: value(ipt?.masqueradeBit, 14),
      masqueradeAll: value(ipt?.masqueradeAll, false),
      localhostNodePorts: value(ipt?.localhostNodePorts, true),
      syncPeriod: duration(ipt?.syncPeriod, '30s', true),
      minSyncPeriod: duration(ipt?.minSyncPeriod, '1s', true),
    },
    ipvs: {
      syncPeriod: duration(ipvs?.syncPeriod, '30s', true),
      minSyncPeriod: duration(ipvs?.minSyncPeriod, '0s', false),
      scheduler: value(ipvs?.scheduler, ''),
      excludeCIDRs: [...(ipvs?.excludeCIDRs ?? [])],
      strictARP: value(ipvs?.strictARP, false),
      tcpTimeout: duration(ipvs?.tcpTimeout, '0s', false),
      tcpFinTimeout: duration(ipvs?.tcpFinTimeout, '0s', false),
      udpTimeout: duration(ipvs?.udpTimeout, '0s', false),
    },
    nftables: {
      masqueradeBit: value(nft?.masqueradeBit, 14),
      masqueradeAll: value(nft?.masqueradeAll, false),
      syncPeriod: duration(nft?.syncPeriod, '30s', true),
      minSyncPeriod: duration(nft?.minSyncPeriod, '1s', true),
    },
    winkernel: {
      networkName: value(win?.networkName, ''),
      sourceVip: value(win?.sourceVip, ''),
      enableDSR: value(win?.enableDSR, false),
      rootHnsEndpointName: value(win?.rootHnsEndpointName, ''),
      forwardHealthCheckVip: value(win?.forwardHealthCheckVip, false),
    },
    detectLocalMode: value(raw.detectLocalMode, ''),
    detectLocal: {
      bridgeInterface: value(raw.detectLocal?.bridgeInterface, ''),
      interfaceNamePrefix: value(raw.detectLocal?.interfaceNamePrefix, ''),
    },
    clusterCIDR: value(raw.clusterCIDR, ''),
    nodePortAddresses: [...(raw.nodePortAddresses ?? [])],
    oomScoreAdj: value(raw.oomScoreAdj, DEFAULT_OOM_SCORE_ADJ),
    conntrack: {
      maxPerCore: value(ct?.maxPerCore, 32 * 1024),
      min: value(ct?.min, 128 * 1024),
      tcpEstablishedTimeout: duration(ct?.tcpEstablishedTimeout, '24h0m0s', false),
      tcpCloseWaitTimeout: duration(ct?.tcpCloseWaitTimeout, '1h0m0s', false),
      tcpBeLiberal: value(ct?.tcpBeLiberal, false),
      udpTimeout: duration(ct?.udpTimeout, '0s', false),
      udpStreamTimeout: duration(ct?.udpStreamTimeout, '0s', false),
    },
    configSyncPeriod: duration(raw.configSyncPeriod, '15m0s', true),
    portRange: value(raw.portRange, ''),
    // Upstream's default (v1.25); a plain Duration upstream, so 0 means unset.
    udpIdleTimeout: duration(raw.udpIdleTimeout, '250ms', true),
    windowsRunAsService: value(raw.windowsRunAsService, false),
  };
}

/** The API defaults alone: what flags start from. */
export function defaultConfiguration(): KubeProxyConfiguration {
  return applyDefaults({});
}

/**
 * The Linux platform defaults upstream applies after flags and file are settled: mode iptables,
 * detectLocalMode ClusterCIDR, and in nftables mode nodePortAddresses ["primary"] when unset.
 */
export function applyPlatformDefaults(config: KubeProxyConfiguration): KubeProxyConfiguration {
  const mode = config.mode === '' ? 'iptables' : config.mode;
  return {
    ...config,
    mode,
    detectLocalMode: config.detectLocalMode === '' ? 'ClusterCIDR' : config.detectLocalMode,
    nodePortAddresses:
      mode === 'nftables' && config.nodePortAddresses.length === 0
        ? [NODE_PORT_ADDRESSES_PRIMARY]
        : config.nodePortAddresses,
  };
}
