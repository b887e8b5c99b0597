// The flag table: every upstream kube-proxy flag (spec 8.3), its value kind, the configuration
// field or run option it sets, its precedence class and its --help text. Defaults shown in --help
// come from the defaulted configuration, so the table and the API defaults cannot disagree.
import { DEFAULT_HEALTHZ_PORT, DEFAULT_METRICS_PORT, defaultConfiguration } from '../defaults.ts';
import { describeFeatureGates } from '../featuregates.ts';
import { config, extras, flag, type FlagDef } from './def.ts';
import {
  boolKind,
  durationKind,
  float32Kind,
  gatesKind,
  int32Kind,
  ipKind,
  ipPortKind,
  levelKind,
  namedString,
  quantityKind,
  stringKind,
  stringsKind,
  severityKind,
  traceLocationKind,
  uint64Kind,
  versionKind,
  vmoduleKind,
  type Kind,
} from './kinds.ts';

const IGNORED_WITH_CONFIG = 'This parameter is ignored if a config file is specified by --config.';

/**
 * A flag the v1.36 binary accepts that changes nothing here: parsed and checked with upstream's
 * type, so a DaemonSet that passes it keeps starting, and documented as a no-op in --help and in
 * docs/compatibility.md.
 */
function noop<V>(name: string, kind: Kind<V>, defaultValue: V, usage: string): FlagDef {
  return flag({
    name,
    kind,
    target: 'extra',
    defaultValue,
    usage: `${usage} [No effect in kube-proxy-ts: ${NOOP_REASON[name] ?? 'accepted for compatibility'}.]`,
    apply: (s) => s,
  });
}

const KLOG_NOOP = 'logs always go to stderr in the klog text or JSON format';
const NOOP_REASON: Readonly<Record<string, string>> = {
  boot_id_file: 'upstream registers it through cAdvisor and kube-proxy never reads it',
  machine_id_file: 'upstream registers it through cAdvisor and kube-proxy never reads it',
  add_dir_header: KLOG_NOOP,
  alsologtostderr: KLOG_NOOP,
  log_backtrace_at: KLOG_NOOP,
  log_dir: KLOG_NOOP,
  log_file: KLOG_NOOP,
  log_file_max_size: KLOG_NOOP,
  logtostderr: KLOG_NOOP,
  one_output: KLOG_NOOP,
  skip_headers: KLOG_NOOP,
  skip_log_headers: KLOG_NOOP,
  stderrthreshold: KLOG_NOOP,
};

/**
 * Flags the v1.36 binary gets from Go's global flag set: cAdvisor's two file flags and klog's
 * legacy flags, with their underscore names (pflag's normalisation accepts `-` too).
 */
function legacyGoFlags(): FlagDef[] {
  return [
    noop(
      'boot_id_file',
      stringKind,
      '/proc/sys/kernel/random/boot_id',
      'Comma-separated list of files to check for boot-id. Use the first one that exists.',
    ),
    noop(
      'machine_id_file',
      stringKind,
      '/etc/machine-id,/var/lib/dbus/machine-id',
      'Comma-separated list of files to check for machine-id. Use the first one that exists.',
    ),
    noop(
      'add_dir_header',
      boolKind,
      false,
      'If true, adds the file directory to the header of the log messages.',
    ),
    noop(
      'alsologtostderr',
      boolKind,
      false,
      'Log to standard error as well as files (no effect when -logtostderr=true).',
    ),
    noop('log_backtrace_at', traceLocationKind, ':0', 'When logging hits line file:N, emit a stack trace.'),
    noop(
      'log_dir',
      stringKind,
      '',
      'If non-empty, write log files in this directory (no effect when -logtostderr=true).',
    ),
    noop('log_file', stringKind, '', 'If non-empty, use this log file (no effect when -logtostderr=true).'),
    noop(
      'log_file_max_size',
      uint64Kind,
      1800,
      'Maximum size a log file can grow to, in megabytes; 0 is unlimited (no effect when -logtostderr=true).',
    ),
    noop('logtostderr', boolKind, true, 'Log to standard error instead of files.'),
    noop(
      'one_output',
      boolKind,
      false,
      'If true, only write logs to their native severity level (no effect when -logtostderr=true).',
    ),
    noop('skip_headers', boolKind, false, 'If true, avoid header prefixes in the log messages.'),
    noop(
      'skip_log_headers',
      boolKind,
      false,
      'If true, avoid headers when opening log files (no effect when -logtostderr=true).',
    ),
    noop(
      'stderrthreshold',
      severityKind,
      'ERROR',
      'Logs at or above this threshold go to stderr when writing to files and stderr (no effect when -logtostderr=true or -alsologtostderr=true).',
    ),
  ];
}

function buildFlags(): readonly FlagDef[] {
  const d = defaultConfiguration();
  const ignored = (text: string): string => `${text} ${IGNORED_WITH_CONFIG}`;
  const gateList = describeFeatureGates().join('\n');
  return [
    // General.
    flag({
      name: 'version',
      kind: versionKind,
      target: 'extra',
      defaultValue: 'false',
      usage:
        '--version, --version=raw prints version information and quits; --version=vX.Y.Z... sets the reported ' +
        'version. kube-proxy-ts reports the upstream release it follows with its own release as build ' +
        'metadata (v1.36.0+kube-proxy-ts.<release>).',
      apply: (s, v) => extras(s, { version: v }),
    }),
    ...legacyGoFlags(),
    flag({
      name: 'config',
      kind: stringKind,
      target: 'extra',
      defaultValue: '',
      usage:
        'Path to a KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1, YAML or JSON). When set, ' +
        'the file replaces every configuration flag except explicitly set logging flags, ' +
        '--hostname-override, --master, --cleanup, --init-only and --write-config-to.',
      apply: (s, v) => extras(s, { configFile: v }),
    }),
    flag({
      name: 'write-config-to',
      kind: stringKind,
      target: 'extra',
      defaultValue: '',
      usage: 'Write the effective configuration as a v1alpha1 YAML file to this path, then exit.',
      apply: (s, v) => extras(s, { writeConfigTo: v }),
    }),
    flag({
      name: 'cleanup',
      kind: boolKind,
      target: 'extra',
      defaultValue: false,
      usage: 'Remove the rules of every implemented proxy mode, then exit.',
      apply: (s, v) => extras(s, { cleanup: v }),
    }),
    flag({
      name: 'init-only',
      kind: boolKind,
      target: 'extra',
      defaultValue: false,
      usage:
        'Do the setup that needs full root privileges, then exit; run again afterwards with only ' +
        'CAP_NET_ADMIN.',
      apply: (s, v) => extras(s, { initOnly: v }),
    }),
    flag({
      name: 'feature-gates',
      kind: gatesKind,
      target: 'config',
      defaultValue: {},
      usage:
        'Comma-separated key=value pairs that turn alpha/experimental features on or off; names ' +
        `this proxy does not know are accepted with a warning. Known gates:\n${gateList}\n${IGNORED_WITH_CONFIG}`,
      apply: (s, v) => config(s, (c) => ({ ...c, featureGates: v })),
    }),
    flag({
      name: 'hostname-override',
      kind: stringKind,
      target: 'extra',
      defaultValue: '',
      usage:
        "Name of this node's Node object, when it differs from the hostname. Overrides the config file " +
        'when non-empty.',
      apply: (s, v) => extras(s, { hostnameOverride: v }),
    }),
    flag({
      name: 'proxy-mode',
      kind: namedString('ProxyMode'),
      target: 'config',
      defaultValue: d.mode,
      usage: ignored(
        "Proxy mode: 'iptables' (default), 'nftables', 'ipvs' (deprecated upstream) or 'userspace' " +
          '(removed upstream in v1.26, brought back here).',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, mode: v })),
    }),
    flag({
      name: 'config-sync-period',
      kind: durationKind,
      target: 'config',
      defaultValue: d.configSyncPeriod,
      usage: ignored('How often the Service and EndpointSlice informers resync. Must be greater than 0.'),
      apply: (s, v) => config(s, (c) => ({ ...c, configSyncPeriod: v })),
    }),
    flag({
      name: 'profiling',
      kind: boolKind,
      target: 'config',
      defaultValue: d.enableProfiling,
      usage: ignored('Serve profiling data under /debug/pprof on the metrics server.'),
      apply: (s, v) => config(s, (c) => ({ ...c, enableProfiling: v })),
    }),
    flag({
      name: 'show-hidden-metrics-for-version',
      kind: stringKind,
      target: 'config',
      defaultValue: d.showHiddenMetricsForVersion,
      usage: ignored(
        'Show metrics hidden since this release; only the previous minor version (<major>.<minor>) is allowed.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, showHiddenMetricsForVersion: v })),
    }),
    // API access.
    flag({
      name: 'kubeconfig',
      kind: stringKind,
      target: 'config',
      defaultValue: d.clientConnection.kubeconfig,
      usage: ignored('Path to a kubeconfig file with the API server location and credentials.'),
      apply: (s, v) =>
        config(s, (c) => ({ ...c, clientConnection: { ...c.clientConnection, kubeconfig: v } })),
    }),
    flag({
      name: 'master',
      kind: stringKind,
      target: 'extra',
      defaultValue: '',
      usage: 'Address of the Kubernetes API server; overrides the server in the kubeconfig.',
      apply: (s, v) => extras(s, { master: v }),
    }),
    flag({
      name: 'kube-api-content-type',
      kind: stringKind,
      target: 'config',
      defaultValue: d.clientConnection.contentType,
      usage: ignored('Content type of requests sent to the API server.'),
      apply: (s, v) =>
        config(s, (c) => ({ ...c, clientConnection: { ...c.clientConnection, contentType: v } })),
    }),
    flag({
      name: 'kube-api-qps',
      kind: float32Kind,
      target: 'config',
      defaultValue: d.clientConnection.qps,
      usage: ignored('Queries per second allowed towards the API server.'),
      apply: (s, v) => config(s, (c) => ({ ...c, clientConnection: { ...c.clientConnection, qps: v } })),
    }),
    flag({
      name: 'kube-api-burst',
      kind: int32Kind,
      target: 'config',
      defaultValue: d.clientConnection.burst,
      usage: ignored('Burst of queries allowed towards the API server.'),
      apply: (s, v) => config(s, (c) => ({ ...c, clientConnection: { ...c.clientConnection, burst: v } })),
    }),
    // Addresses.
    flag({
      name: 'bind-address',
      kind: ipKind,
      target: 'config',
      defaultValue: d.bindAddress,
      usage: ignored(
        "Overrides the node's primary IP as kube-proxy sees it (no socket is bound to it, despite the name).",
      ),
      apply: (s, v) => (v === '' ? s : config(s, (c) => ({ ...c, bindAddress: v }))),
    }),
    flag({
      name: 'healthz-bind-address',
      kind: ipPortKind,
      target: 'config',
      defaultValue: d.healthzBindAddress,
      usage: ignored('IP address and port of the health check server (/healthz, /livez). Empty disables it.'),
      apply: (s, v) => config(s, (c) => ({ ...c, healthzBindAddress: v })),
    }),
    flag({
      name: 'metrics-bind-address',
      kind: ipPortKind,
      target: 'config',
      defaultValue: d.metricsBindAddress,
      usage: ignored(
        'IP address and port of the metrics server; "0.0.0.0:10249" or "[::]:10249" listens on every ' +
          'interface. Empty disables it.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, metricsBindAddress: v })),
    }),
    flag({
      name: 'bind-address-hard-fail',
      kind: boolKind,
      target: 'config',
      defaultValue: d.bindAddressHardFail,
      usage: ignored('Exit when the healthz or metrics server cannot bind its port, instead of retrying.'),
      apply: (s, v) => config(s, (c) => ({ ...c, bindAddressHardFail: v })),
    }),
    flag({
      name: 'nodeport-addresses',
      kind: stringsKind,
      target: 'config',
      defaultValue: d.nodePortAddresses,
      usage: ignored(
        "CIDRs of the node IPs that accept NodePort connections, or the single word 'primary' for the " +
          "node's primary IPs. Unset: every local IP in iptables and ipvs mode, 'primary' in nftables mode.",
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, nodePortAddresses: v })),
    }),
    // iptables (and nftables) settings.
    flag({
      name: 'iptables-masquerade-bit',
      kind: int32Kind,
      target: 'config',
      defaultValue: d.iptables.masqueradeBit,
      usage: ignored(
        'Bit of the packet mark that flags packets to SNAT (iptables and ipvs modes), in [0, 31].',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, iptables: { ...c.iptables, masqueradeBit: v } })),
    }),
    flag({
      name: 'masquerade-all',
      kind: boolKind,
      target: 'config',
      defaultValue: d.iptables.masqueradeAll,
      usage: ignored('SNAT all traffic sent to Service cluster IPs (every mode).'),
      apply: (s, v) =>
        config(s, (c) => ({
          ...c,
          iptables: { ...c.iptables, masqueradeAll: v },
          nftables: { ...c.nftables, masqueradeAll: v },
        })),
    }),
    flag({
      name: 'iptables-localhost-nodeports',
      kind: boolKind,
      target: 'config',
      defaultValue: d.iptables.localhostNodePorts,
      usage: ignored(
        'Accept NodePort connections on 127.0.0.1 (iptables mode, IPv4 only). False turns it off.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, iptables: { ...c.iptables, localhostNodePorts: v } })),
    }),
    flag({
      name: 'iptables-sync-period',
      kind: durationKind,
      target: 'config',
      defaultValue: d.iptables.syncPeriod,
      usage: ignored(
        "Longest time between full resyncs of the rules, e.g. '5s', '1m', '2h22m' (iptables and nftables " +
          'modes). Must be greater than 0.',
      ),
      apply: (s, v) =>
        config(s, (c) => ({
          ...c,
          iptables: { ...c.iptables, syncPeriod: v },
          nftables: { ...c.nftables, syncPeriod: v },
        })),
    }),
    flag({
      name: 'iptables-min-sync-period',
      kind: durationKind,
      target: 'config',
      defaultValue: d.iptables.minSyncPeriod,
      usage: ignored(
        'Shortest time between two rule syncs (iptables and nftables modes); 0 syncs on every Service ' +
          'or EndpointSlice change.',
      ),
      apply: (s, v) =>
        config(s, (c) => ({
          ...c,
          iptables: { ...c.iptables, minSyncPeriod: v },
          nftables: { ...c.nftables, minSyncPeriod: v },
        })),
    }),
    // ipvs settings.
    flag({
      name: 'ipvs-sync-period',
      kind: durationKind,
      target: 'config',
      defaultValue: d.ipvs.syncPeriod,
      usage: ignored('Longest time between full resyncs in ipvs mode. Must be greater than 0.'),
      apply: (s, v) => config(s, (c) => ({ ...c, ipvs: { ...c.ipvs, syncPeriod: v } })),
    }),
    flag({
      name: 'ipvs-min-sync-period',
      kind: durationKind,
      target: 'config',
      defaultValue: d.ipvs.minSyncPeriod,
      usage: ignored('Shortest time between two syncs in ipvs mode; 0 syncs on every change.'),
      apply: (s, v) => config(s, (c) => ({ ...c, ipvs: { ...c.ipvs, minSyncPeriod: v } })),
    }),
    flag({
      name: 'ipvs-scheduler',
      kind: stringKind,
      target: 'config',
      defaultValue: d.ipvs.scheduler,
      usage: ignored('IPVS scheduler in ipvs mode (empty: round robin).'),
      apply: (s, v) => config(s, (c) => ({ ...c, ipvs: { ...c.ipvs, scheduler: v } })),
    }),
    flag({
      name: 'ipvs-exclude-cidrs',
      kind: stringsKind,
      target: 'config',
      defaultValue: d.ipvs.excludeCIDRs,
      usage: ignored('Comma-separated CIDRs whose IPVS rules ipvs mode never removes.'),
      apply: (s, v) => config(s, (c) => ({ ...c, ipvs: { ...c.ipvs, excludeCIDRs: v } })),
    }),
    flag({
      name: 'ipvs-strict-arp',
      kind: boolKind,
      target: 'config',
      defaultValue: d.ipvs.strictARP,
      usage: ignored('Set arp_ignore=1 and arp_announce=2 in ipvs mode.'),
      apply: (s, v) => config(s, (c) => ({ ...c, ipvs: { ...c.ipvs, strictARP: v } })),
    }),
    flag({
      name: 'ipvs-tcp-timeout',
      kind: durationKind,
      target: 'config',
      defaultValue: d.ipvs.tcpTimeout,
      usage: ignored('Idle timeout of IPVS TCP connections; 0 leaves the kernel value.'),
      apply: (s, v) => config(s, (c) => ({ ...c, ipvs: { ...c.ipvs, tcpTimeout: v } })),
    }),
    flag({
      name: 'ipvs-tcpfin-timeout',
      kind: durationKind,
      target: 'config',
      defaultValue: d.ipvs.tcpFinTimeout,
      usage: ignored('Timeout of IPVS TCP connections after a FIN; 0 leaves the kernel value.'),
      apply: (s, v) => config(s, (c) => ({ ...c, ipvs: { ...c.ipvs, tcpFinTimeout: v } })),
    }),
    flag({
      name: 'ipvs-udp-timeout',
      kind: durationKind,
      target: 'config',
      defaultValue: d.ipvs.udpTimeout,
      usage: ignored('Timeout of IPVS UDP flows; 0 leaves the kernel value.'),
      apply: (s, v) => config(s, (c) => ({ ...c, ipvs: { ...c.ipvs, udpTimeout: v } })),
    }),
    // Local traffic detection.
    flag({
      name: 'detect-local-mode',
      kind: namedString('LocalMode'),
      target: 'config',
      defaultValue: d.detectLocalMode,
      usage: ignored(
        'How to tell traffic from local pods: ClusterCIDR (default), NodeCIDR, BridgeInterface or ' +
          'InterfaceNamePrefix.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, detectLocalMode: v })),
    }),
    flag({
      name: 'cluster-cidr',
      kind: stringKind,
      target: 'config',
      defaultValue: d.clusterCIDR,
      usage: ignored(
        'Pod CIDR of the cluster, or a comma-separated IPv4,IPv6 pair; with --detect-local-mode ' +
          'ClusterCIDR, traffic from it counts as local.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, clusterCIDR: v })),
    }),
    flag({
      name: 'pod-bridge-interface',
      kind: stringKind,
      target: 'config',
      defaultValue: d.detectLocal.bridgeInterface,
      usage: ignored(
        'Bridge interface whose traffic counts as local with --detect-local-mode BridgeInterface.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, detectLocal: { ...c.detectLocal, bridgeInterface: v } })),
    }),
    flag({
      name: 'pod-interface-name-prefix',
      kind: stringKind,
      target: 'config',
      defaultValue: d.detectLocal.interfaceNamePrefix,
      usage: ignored(
        'Interface name prefix whose traffic counts as local with --detect-local-mode InterfaceNamePrefix.',
      ),
      apply: (s, v) =>
        config(s, (c) => ({ ...c, detectLocal: { ...c.detectLocal, interfaceNamePrefix: v } })),
    }),
    // Process and conntrack.
    flag({
      name: 'oom-score-adj',
      kind: int32Kind,
      target: 'config',
      defaultValue: d.oomScoreAdj,
      usage: ignored('oom_score_adj of the kube-proxy process, in [-1000, 1000].'),
      apply: (s, v) => config(s, (c) => ({ ...c, oomScoreAdj: v })),
    }),
    flag({
      name: 'conntrack-max-per-core',
      kind: int32Kind,
      target: 'config',
      defaultValue: d.conntrack.maxPerCore,
      usage: ignored(
        'Conntrack entries to allow per CPU core; 0 leaves nf_conntrack_max alone and ignores --conntrack-min.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, conntrack: { ...c.conntrack, maxPerCore: v } })),
    }),
    flag({
      name: 'conntrack-min',
      kind: int32Kind,
      target: 'config',
      defaultValue: d.conntrack.min,
      usage: ignored('Lower bound of nf_conntrack_max, whatever --conntrack-max-per-core gives.'),
      apply: (s, v) => config(s, (c) => ({ ...c, conntrack: { ...c.conntrack, min: v } })),
    }),
    flag({
      name: 'conntrack-tcp-timeout-established',
      kind: durationKind,
      target: 'config',
      defaultValue: d.conntrack.tcpEstablishedTimeout,
      usage: ignored('Conntrack idle timeout of established TCP connections; 0 leaves the kernel value.'),
      apply: (s, v) => config(s, (c) => ({ ...c, conntrack: { ...c.conntrack, tcpEstablishedTimeout: v } })),
    }),
    flag({
      name: 'conntrack-tcp-timeout-close-wait',
      kind: durationKind,
      target: 'config',
      defaultValue: d.conntrack.tcpCloseWaitTimeout,
      usage: ignored('Conntrack timeout of TCP connections in CLOSE_WAIT.'),
      apply: (s, v) => config(s, (c) => ({ ...c, conntrack: { ...c.conntrack, tcpCloseWaitTimeout: v } })),
    }),
    flag({
      name: 'conntrack-tcp-be-liberal',
      kind: boolKind,
      target: 'config',
      defaultValue: d.conntrack.tcpBeLiberal,
      usage: ignored(
        'Set nf_conntrack_tcp_be_liberal=1, so out-of-window TCP packets are not marked INVALID.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, conntrack: { ...c.conntrack, tcpBeLiberal: v } })),
    }),
    flag({
      name: 'conntrack-udp-timeout',
      kind: durationKind,
      target: 'config',
      defaultValue: d.conntrack.udpTimeout,
      usage: ignored('Conntrack idle timeout of UNREPLIED UDP flows; 0 leaves the kernel value.'),
      apply: (s, v) => config(s, (c) => ({ ...c, conntrack: { ...c.conntrack, udpTimeout: v } })),
    }),
    flag({
      name: 'conntrack-udp-timeout-stream',
      kind: durationKind,
      target: 'config',
      defaultValue: d.conntrack.udpStreamTimeout,
      usage: ignored('Conntrack idle timeout of ASSURED UDP flows; 0 leaves the kernel value.'),
      apply: (s, v) => config(s, (c) => ({ ...c, conntrack: { ...c.conntrack, udpStreamTimeout: v } })),
    }),
    // Deprecated.
    flag({
      name: 'healthz-port',
      kind: int32Kind,
      target: 'extra',
      defaultValue: DEFAULT_HEALTHZ_PORT,
      deprecated: 'use --healthz-bind-address instead',
      usage: 'Port of the health check server, added to --healthz-bind-address when it has none; 0 disables.',
      apply: (s, v) => extras(s, { healthzPort: v }),
    }),
    flag({
      name: 'metrics-port',
      kind: int32Kind,
      target: 'extra',
      defaultValue: DEFAULT_METRICS_PORT,
      deprecated: 'use --metrics-bind-address instead',
      usage: 'Port of the metrics server, added to --metrics-bind-address when it has none; 0 disables.',
      apply: (s, v) => extras(s, { metricsPort: v }),
    }),
    flag({
      name: 'proxy-port-range',
      kind: stringKind,
      target: 'config',
      defaultValue: d.portRange,
      usage: ignored(
        'Host ports the userspace proxy mode may listen on (begin-end inclusive, begin+offset or a single ' +
          'port); empty, 0 or 0-0 lets the kernel choose. Other modes ignore it.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, portRange: v })),
    }),
    flag({
      name: 'udp-timeout',
      kind: durationKind,
      target: 'config',
      defaultValue: d.udpIdleTimeout,
      usage: ignored(
        "How long an idle UDP flow is kept open (e.g. '250ms', '2s'). Must be greater than 0. Only " +
          'applicable for proxy-mode=userspace.',
      ),
      apply: (s, v) => config(s, (c) => ({ ...c, udpIdleTimeout: v })),
    }),
    flag({
      name: 'userspace-drain-timeout',
      kind: durationKind,
      target: 'extra',
      defaultValue: '0s',
      usage:
        'How long connections to a removed endpoint (or of a removed Service) may run on before the ' +
        'userspace proxy closes them; 0 lets them run until they end (upstream). Only applicable for ' +
        'proxy-mode=userspace.',
      apply: (s, v) => extras(s, { userspaceDrainTimeout: v }),
    }),
    flag({
      name: 'userspace-balancer',
      kind: stringKind,
      target: 'extra',
      defaultValue: 'round-robin',
      usage:
        'How the userspace proxy picks an endpoint for a new connection: round-robin (upstream) or ' +
        'least-connections. Only applicable for proxy-mode=userspace.',
      apply: (s, v) => extras(s, { userspaceBalancer: v }),
    }),
    flag({
      name: 'userspace-capture',
      kind: stringKind,
      target: 'extra',
      defaultValue: 'nat',
      usage:
        'How the userspace proxy receives Service traffic: nat (upstream: REDIRECT/DNAT rules to its ' +
        'ports) or address (service addresses on the kube-userspace0 dummy link, listeners bound to ' +
        'them; no nat table needed). Only applicable for proxy-mode=userspace.',
      apply: (s, v) => extras(s, { userspaceCapture: v }),
    }),
    flag({
      name: 'debug-handlers-allowed-cidrs',
      kind: stringsKind,
      target: 'extra',
      defaultValue: [],
      usage:
        'Comma-separated CIDRs of peers that may use the debug routes (/debug/proxy/explain, /state, ' +
        '/verify, …) and the web page (/ui) on the metrics server, besides loopback (always allowed). ' +
        'They have no authentication: the default (loopback only) leaves remote access to kubectl ' +
        'port-forward, which Kubernetes RBAC guards.',
      apply: (s, v) => extras(s, { debugAllowedCIDRs: v }),
    }),
    // Logging (these override the config file when set explicitly).
    flag({
      name: 'v',
      shorthand: 'v',
      kind: levelKind,
      target: 'logging',
      defaultValue: d.logging.verbosity,
      usage: 'Log verbosity: messages up to this level are written.',
      apply: (s, v) => config(s, (c) => ({ ...c, logging: { ...c.logging, verbosity: v } })),
    }),
    flag({
      name: 'vmodule',
      kind: vmoduleKind,
      target: 'logging',
      defaultValue: [],
      usage:
        'Comma-separated pattern=N settings for per-file verbosity (text format only; accepted, not applied).',
      // Flag entries come first, then whatever the config file listed, as upstream merges them.
      apply: (s, v) =>
        config(s, (c) => ({ ...c, logging: { ...c.logging, vmodule: [...v, ...c.logging.vmodule] } })),
    }),
    flag({
      name: 'logging-format',
      kind: stringKind,
      target: 'logging',
      defaultValue: d.logging.format,
      usage: 'Log format: "text" or "json".',
      apply: (s, v) => config(s, (c) => ({ ...c, logging: { ...c.logging, format: v } })),
    }),
    flag({
      name: 'log-flush-frequency',
      kind: durationKind,
      target: 'logging',
      defaultValue: d.logging.flushFrequency,
      usage: 'Longest time between log flushes.',
      apply: (s, v) => config(s, (c) => ({ ...c, logging: { ...c.logging, flushFrequency: v } })),
    }),
    ...(['json', 'text'] as const).flatMap((format) => [
      flag({
        name: `log-${format}-split-stream`,
        kind: boolKind,
        target: 'logging',
        defaultValue: false,
        usage:
          `[Alpha] In ${format} format, write errors to stderr and info to stdout. Needs the ` +
          'LoggingAlphaOptions feature gate.',
        apply: (s, v) =>
          config(s, (c) => ({
            ...c,
            logging: {
              ...c.logging,
              options: { ...c.logging.options, [format]: { ...c.logging.options[format], splitStream: v } },
            },
          })),
      }),
      flag({
        name: `log-${format}-info-buffer-size`,
        kind: quantityKind,
        target: 'logging',
        defaultValue: '0',
        usage:
          `[Alpha] In ${format} format with split streams, buffer this many bytes of info messages ` +
          '(512, 1K, 2Ki, 3M...). Needs the LoggingAlphaOptions feature gate.',
        apply: (s, v) =>
          config(s, (c) => ({
            ...c,
            logging: {
              ...c.logging,
              options: {
                ...c.logging.options,
                [format]: { ...c.logging.options[format], infoBufferSize: v },
              },
            },
          })),
      }),
    ]),
  ];
}

/** Every flag kube-proxy accepts, except --help. */
export const FLAGS: readonly FlagDef[] = buildFlags();
