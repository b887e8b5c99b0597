// /configz as upstream serves it: component-base's configz marshals the *internal*
// KubeProxyConfiguration, which has no JSON tags, so the document uses Go's field names and the
// internal layout (v1.31+): Linux.{Conntrack,MasqueradeAll,OOMScoreAdj}, one SyncPeriod and
// MinSyncPeriod taken from the running mode's section, DetectLocal.ClusterCIDRs as a list, no
// portRange or udpIdleTimeout. Logging is component-base's versioned type and keeps its JSON names.
// Nil Go slices marshal as null; an unset list here stands for one.
import type { KubeProxyConfiguration } from './types.ts';

function list(values: readonly string[]): readonly string[] | null {
  return values.length === 0 ? null : values;
}

export function configzOf(config: KubeProxyConfiguration): Record<string, unknown> {
  const section =
    config.mode === 'ipvs' ? config.ipvs : config.mode === 'nftables' ? config.nftables : config.iptables;
  const masqueradeAll =
    config.mode === 'nftables' ? config.nftables.masqueradeAll : config.iptables.masqueradeAll;
  const { logging } = config;
  const formatOptions = (o: { splitStream: boolean; infoBufferSize: string }) => ({
    ...(o.splitStream ? { splitStream: true } : {}),
    infoBufferSize: o.infoBufferSize,
  });
  return {
    Linux: {
      Conntrack: {
        MaxPerCore: config.conntrack.maxPerCore,
        Min: config.conntrack.min,
        TCPEstablishedTimeout: config.conntrack.tcpEstablishedTimeout,
        TCPCloseWaitTimeout: config.conntrack.tcpCloseWaitTimeout,
        TCPBeLiberal: config.conntrack.tcpBeLiberal,
        UDPTimeout: config.conntrack.udpTimeout,
        UDPStreamTimeout: config.conntrack.udpStreamTimeout,
      },
      MasqueradeAll: masqueradeAll,
      OOMScoreAdj: config.oomScoreAdj,
    },
    Windows: { RunAsService: config.windowsRunAsService },
    FeatureGates: config.featureGates,
    ClientConnection: {
      Kubeconfig: config.clientConnection.kubeconfig,
      AcceptContentTypes: config.clientConnection.acceptContentTypes,
      ContentType: config.clientConnection.contentType,
      QPS: config.clientConnection.qps,
      Burst: config.clientConnection.burst,
    },
    Logging: {
      ...(logging.format === '' ? {} : { format: logging.format }),
      flushFrequency: logging.flushFrequency,
      verbosity: logging.verbosity,
      ...(logging.vmodule.length === 0 ? {} : { vmodule: logging.vmodule }),
      options: { text: formatOptions(logging.options.text), json: formatOptions(logging.options.json) },
    },
    HostnameOverride: config.hostnameOverride,
    BindAddress: config.bindAddress,
    HealthzBindAddress: config.healthzBindAddress,
    MetricsBindAddress: config.metricsBindAddress,
    BindAddressHardFail: config.bindAddressHardFail,
    EnableProfiling: config.enableProfiling,
    ShowHiddenMetricsForVersion: config.showHiddenMetricsForVersion,
    Mode: config.mode,
    IPTables: {
      MasqueradeBit: config.iptables.masqueradeBit,
      LocalhostNodePorts: config.iptables.localhostNodePorts,
    },
    IPVS: {
      Scheduler: config.ipvs.scheduler,
      ExcludeCIDRs: list(config.ipvs.excludeCIDRs),
      StrictARP: config.ipvs.strictARP,
      TCPTimeout: config.ipvs.tcpTimeout,
      TCPFinTimeout: config.ipvs.tcpFinTimeout,
      UDPTimeout: config.ipvs.udpTimeout,
    },
    Winkernel: {
      NetworkName: config.winkernel.networkName,
      SourceVip: config.winkernel.sourceVip,
      EnableDSR: config.winkernel.enableDSR,
      RootHnsEndpointName: config.winkernel.rootHnsEndpointName,
      ForwardHealthCheckVip: config.winkernel.forwardHealthCheckVip,
    },
    NFTables: { MasqueradeBit: config.nftables.masqueradeBit },
    DetectLocalMode: config.detectLocalMode,
    DetectLocal: {
      BridgeInterface: config.detectLocal.bridgeInterface,
      ClusterCIDRs: list(config.clusterCIDR === '' ? [] : config.clusterCIDR.split(',')),
      InterfaceNamePrefix: config.detectLocal.interfaceNamePrefix,
    },
    NodePortAddresses: list(config.nodePortAddresses),
    SyncPeriod: section.syncPeriod,
    MinSyncPeriod: section.minSyncPeriod,
    ConfigSyncPeriod: config.configSyncPeriod,
  };
}
