// The dataplane settings from the effective configuration: what the daemon hands its mode, and
// what `kube-proxy explain -f` renders with.
import type { EffectiveConfig, ProxyRunOptions } from '../config/load.ts';
import type { DataplaneSettings } from '../dataplane/common/settings.ts';

export function dataplaneSettings(
  effective: EffectiveConfig,
  userspace: ProxyRunOptions['userspace'],
): DataplaneSettings {
  const detect = effective.detectLocal;
  return {
    masqueradeBit: effective.masqueradeBit,
    masqueradeAll: effective.masqueradeAll,
    detectLocalMode: detect.mode,
    clusterCIDRs: detect.mode === 'ClusterCIDR' ? detect.clusterCIDRs : effective.clusterCIDRs,
    bridgeInterface: detect.mode === 'BridgeInterface' ? detect.bridgeInterface : '',
    interfaceNamePrefix: detect.mode === 'InterfaceNamePrefix' ? detect.interfaceNamePrefix : '',
    nodePortAddresses: effective.nodePortAddresses,
    localhostNodePorts: effective.localhostNodePorts,
    syncPeriodMs: effective.syncPeriodMs,
    userspace: {
      bindAddress: effective.bindAddress,
      portRange: effective.proxyPortRange,
      udpIdleTimeoutMs: effective.udpIdleTimeoutMs,
      drainMs: userspace.drainMs,
      balancer: userspace.balancer,
      capture: userspace.capture,
    },
    ipvs: effective.ipvs,
  };
}
