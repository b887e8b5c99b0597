// kube-proxy's command line, parsed with Go pflag semantics (spec 8.3) on top of node:util
// parseArgs (dependencies.md section 4): `--flag=value`, `--flag value`, `-v 2`, `-v=2`, `-v2`,
// booleans as `--x`, `--x=true`, `--x=false` (never `--x false`), comma lists that accumulate over
// repeats, `--feature-gates` pairs that merge, Go durations, `_` accepted for `-` in names, and
// errors in pflag's words ("unknown flag: --foo"). The parser only records which flags were set
// and their raw texts, so callers can apply upstream's precedence against --config.
import { parseArgs } from 'node:util';
import { parseIP } from '../util/ip.ts';
import { canonicalGoDuration } from './duration.ts';
import { describeFeatureGates } from './featuregates.ts';
import { defaultConfiguration } from './defaults.ts';
import { splitHostPort } from './validate.ts';
import type { KubeProxyConfiguration, VModuleItem } from './types.ts';

/** Run options carried by flags that are not part of KubeProxyConfiguration. */
export interface FlagExtras {
  readonly configFile: string;
  readonly writeConfigTo: string;
  readonly cleanup: boolean;
  readonly initOnly: boolean;
  readonly master: string;
  /** Raw --hostname-override text; applied on top of either the flags or the file. */
  readonly hostnameOverride: string;
  /** Deprecated --healthz-port / --metrics-port: port of the bind address, 0 disables. */
  readonly healthzPort: number;
  readonly metricsPort: number;
}

export interface FlagState {
  readonly config: KubeProxyConfiguration;
  readonly extras: FlagExtras;
}

/**
 * Which precedence class a flag belongs to: `config` flags are ignored when --config is given,
 * `logging` flags override the file when explicitly set, `extra` flags are never in the file.
 */
export type FlagTarget = 'config' | 'logging' | 'extra';

export interface FlagDef {
  readonly name: string;
  readonly shorthand?: string;
  /** pflag's type word in --help ("string", "duration", ...); empty for booleans. */
  readonly typeName: string;
  readonly isBool: boolean;
  readonly usage: string;
  /** Default as --help shows it; empty when pflag would not show one (zero values). */
  readonly defaultText: string;
  readonly target: FlagTarget;
  /** Set for deprecated flags: what to use instead. */
  readonly deprecated?: string;
  /** Parses one occurrence; throws an Error carrying the reason when the text is not valid. */
  readonly check: (text: string) => void;
  /** Applies every occurrence (in command-line order) to the state. */
  readonly applyAll: (state: FlagState, texts: readonly string[]) => FlagState;
}

interface Kind<V> {
  readonly typeName: string;
  readonly isBool: boolean;
  parse(text: string): V;
  /** How repeats combine: lists append, maps merge, scalars take the last. */
  merge(previous: V, next: V): V;
  show(value: V): string;
}

function last<V>(_previous: V, next: V): V {
  return next;
}

function quote(text: string): string {
  return JSON.stringify(text);
}

/** Go strconv.ParseBool. */
export function parseGoBool(text: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  throw new Error(`strconv.ParseBool: parsing ${quote(text)}: invalid syntax`);
}

/** Go strconv.ParseInt(text, 0, bits) for signed 32-bit or unsigned 31-bit values. */
function parseGoInt(text: string, min: number, max: number, fn: string): number {
  const match = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (match === null) throw new Error(`${fn}: parsing ${quote(text)}: invalid syntax`);
  const digits = match[2] ?? '';
  const body = /^0[0-7]+$/.test(digits) ? `0o${digits.slice(1)}` : digits;
  const magnitude = Number(body);
  const value = match[1] === '-' ? -magnitude : magnitude;
  if (value < min || value > max) throw new Error(`${fn}: parsing ${quote(text)}: value out of range`);
  return value;
}

const stringKind: Kind<string> = {
  typeName: 'string',
  isBool: false,
  parse: (text) => text,
  merge: last,
  show: (v) => (v === '' ? '' : quote(v)),
};

function namedString(typeName: string): Kind<string> {
  return { ...stringKind, typeName };
}

const boolKind: Kind<boolean> = {
  typeName: '',
  isBool: true,
  parse: parseGoBool,
  merge: last,
  show: (v) => (v ? 'true' : ''),
};

const int32Kind: Kind<number> = {
  typeName: 'int32',
  isBool: false,
  parse: (text) => parseGoInt(text, -(2 ** 31), 2 ** 31 - 1, 'strconv.ParseInt'),
  merge: last,
  show: (v) => (v === 0 ? '' : String(v)),
};

const levelKind: Kind<number> = {
  typeName: 'Level',
  isBool: false,
  parse: (text) => parseGoInt(text, 0, 2 ** 31 - 1, 'strconv.ParseUint'),
  merge: last,
  show: (v) => (v === 0 ? '' : String(v)),
};

const float32Kind: Kind<number> = {
  typeName: 'float32',
  isBool: false,
  parse: (text) => {
    if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) {
      throw new Error(`strconv.ParseFloat: parsing ${quote(text)}: invalid syntax`);
    }
    return Number(text);
  },
  merge: last,
  show: (v) => (v === 0 ? '' : String(v)),
};

/** Values stay Go duration text, in canonical form. */
const durationKind: Kind<string> = {
  typeName: 'duration',
  isBool: false,
  parse: canonicalGoDuration,
  merge: last,
  show: (v) => (v === '0s' ? '' : v),
};

/** pflag StringSlice: comma-separated, repeats append, the first use replaces the default. */
const stringsKind: Kind<readonly string[]> = {
  typeName: 'strings',
  isBool: false,
  parse: (text) => (text === '' ? [] : text.split(',')),
  merge: (previous, next) => [...previous, ...next],
  show: (v) => (v.length === 0 ? '' : `[${v.join(',')}]`),
};

/** component-base MapStringBool: `A=true,B=false`, repeats merge. */
const gatesKind: Kind<Readonly<Record<string, boolean>>> = {
  typeName: 'mapStringBool',
  isBool: false,
  parse: (text) => {
    const gates: Record<string, boolean> = {};
    for (const item of text.split(',')) {
      if (item === '') continue;
      const eq = item.indexOf('=');
      if (eq < 0) throw new Error(`malformed pair ${quote(item)}, expect string=bool`);
      const key = item.slice(0, eq).trim();
      const raw = item.slice(eq + 1).trim();
      try {
        gates[key] = parseGoBool(raw);
      } catch (err) {
        throw new Error(`invalid value of ${key}: ${raw}, err: ${(err as Error).message}`, { cause: err });
      }
    }
    return gates;
  },
  merge: (previous, next) => ({ ...previous, ...next }),
  show: () => '',
};

const vmoduleKind: Kind<readonly VModuleItem[]> = {
  typeName: 'pattern=N,...',
  isBool: false,
  parse: (text) => {
    if (text === '') return [];
    return text.split(',').map((item) => {
      const eq = item.lastIndexOf('=');
      if (eq < 0) throw new Error(`${quote(item)} does not have the pattern=N format`);
      const verbosity = parseGoInt(item.slice(eq + 1), 0, 2 ** 31 - 1, 'strconv.ParseUint');
      return { filePattern: item.slice(0, eq), verbosity };
    });
  },
  merge: (previous, next) => [...previous, ...next],
  show: () => '',
};

const QUANTITY = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;

const quantityKind: Kind<string> = {
  typeName: 'quantity',
  isBool: false,
  parse: (text) => {
    if (!QUANTITY.test(text)) throw new Error('must be a resource quantity such as 0, 64Ki or 1M');
    return text;
  },
  merge: last,
  show: (v) => (v === '0' ? '' : v),
};

/** An IP address; upstream ignores an empty value and keeps the default. */
const ipKind: Kind<string> = {
  typeName: 'ip',
  isBool: false,
  parse: (text) => {
    if (text !== '' && parseIP(text) === undefined)
      throw new Error(`${quote(text)} is not a valid IP address`);
    return text;
  },
  merge: last,
  show: (v) => (v === '' ? '' : quote(v)),
};

/** `IP` or `IP:port` (the port then comes from the deprecated port flags); empty disables. */
const ipPortKind: Kind<string> = {
  typeName: 'ipport',
  isBool: false,
  parse: (text) => {
    if (text === '' || parseIP(text) !== undefined) return text;
    const parts = splitHostPort(text);
    if (parts === undefined) throw new Error(`${quote(text)} is not in a valid format (ip or ip:port)`);
    if (parseIP(parts.host) === undefined) throw new Error(`${quote(parts.host)} is not a valid IP address`);
    const port = /^\d+$/.test(parts.port) ? Number(parts.port) : NaN;
    if (!(port >= 0 && port <= 65535)) throw new Error(`${quote(parts.port)} is not a valid number`);
    return text;
  },
  merge: last,
  show: (v) => (v === '' ? '' : quote(v)),
};

interface FlagSpec<V> {
  readonly name: string;
  readonly shorthand?: string;
  readonly kind: Kind<V>;
  readonly usage: string;
  readonly target: FlagTarget;
  readonly deprecated?: string;
  /** Default for --help, taken from the defaulted configuration. */
  readonly defaultValue: V;
  readonly apply: (state: FlagState, value: V) => FlagState;
}

function flag<V>(spec: FlagSpec<V>): FlagDef {
  const { kind } = spec;
  return {
    name: spec.name,
    ...(spec.shorthand === undefined ? {} : { shorthand: spec.shorthand }),
    typeName: kind.typeName,
    isBool: kind.isBool,
    usage: spec.usage,
    defaultText: kind.show(spec.defaultValue),
    target: spec.target,
    ...(spec.deprecated === undefined ? {} : { deprecated: spec.deprecated }),
    check: (text) => {
      kind.parse(text);
    },
    applyAll: (state, texts) => {
      const [first, ...rest] = texts;
      if (first === undefined) return state;
      const merged = rest.reduce((acc, text) => kind.merge(acc, kind.parse(text)), kind.parse(first));
      return spec.apply(state, merged);
    },
  };
}

type Config = KubeProxyConfiguration;

function config(state: FlagState, patch: (c: Config) => Config): FlagState {
  return { ...state, config: patch(state.config) };
}

function extras(state: FlagState, patch: Partial<FlagExtras>): FlagState {
  return { ...state, extras: { ...state.extras, ...patch } };
}

const IGNORED_WITH_CONFIG = 'This parameter is ignored if a config file is specified by --config.';

function buildFlags(): readonly FlagDef[] {
  const d = defaultConfiguration();
  const ignored = (text: string): string => `${text} ${IGNORED_WITH_CONFIG}`;
  const gateList = describeFeatureGates().join('\n');
  return [
    // General.
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
      usage: 'Remove the rules of every proxy mode (iptables, ipvs, nftables), then exit.',
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
      usage: ignored("Proxy mode: 'iptables' (default), 'nftables' or 'ipvs' (deprecated)."),
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
      defaultValue: 10256,
      deprecated: 'use --healthz-bind-address instead',
      usage: 'Port of the health check server, added to --healthz-bind-address when it has none; 0 disables.',
      apply: (s, v) => extras(s, { healthzPort: v }),
    }),
    flag({
      name: 'metrics-port',
      kind: int32Kind,
      target: 'extra',
      defaultValue: 10249,
      deprecated: 'use --metrics-bind-address instead',
      usage: 'Port of the metrics server, added to --metrics-bind-address when it has none; 0 disables.',
      apply: (s, v) => extras(s, { metricsPort: v }),
    }),
    flag({
      name: 'proxy-port-range',
      kind: stringKind,
      target: 'config',
      defaultValue: d.portRange,
      deprecated: 'it has no effect',
      usage: 'Legacy userspace-proxy port range (low-high, base+offset or a single port); unused.',
      apply: (s, v) => config(s, (c) => ({ ...c, portRange: v })),
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

const BY_NAME: ReadonlyMap<string, FlagDef> = new Map(FLAGS.map((f) => [f.name, f]));
const BY_SHORTHAND: ReadonlyMap<string, FlagDef> = new Map(
  FLAGS.flatMap((f) => (f.shorthand === undefined ? [] : [[f.shorthand, f] as const])),
);

export function lookupFlag(name: string): FlagDef | undefined {
  return BY_NAME.get(name);
}

export interface ParsedFlags {
  /** Raw texts of every explicitly set flag, by canonical name, in command-line order. */
  readonly occurrences: ReadonlyMap<string, readonly string[]>;
  readonly help: boolean;
  /** Deprecation notices for deprecated flags that were used. */
  readonly warnings: readonly string[];
}

export type FlagParseResult =
  { readonly ok: true; readonly flags: ParsedFlags } | { readonly ok: false; readonly error: string };

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parseArgsOptions(): ParseArgsOptions {
  const options: ParseArgsOptions = { help: { type: 'boolean', short: 'h' } };
  for (const f of FLAGS) {
    const type = f.isBool ? 'boolean' : 'string';
    options[f.name] = f.shorthand === undefined ? { type } : { type, short: f.shorthand };
    // pflag normalizes `_` to `-` in names; registering the alias lets parseArgs know its type.
    const alias = f.name.replaceAll('-', '_');
    if (alias !== f.name) options[alias] = { type };
  }
  return options;
}

const PARSE_ARGS_OPTIONS = parseArgsOptions();

function display(f: FlagDef): string {
  return f.shorthand === undefined ? `--${f.name}` : `-${f.shorthand}, --${f.name}`;
}

/** Parses argv (without the program name) with pflag rules; the first problem is the error. */
export function parseFlags(argv: readonly string[]): FlagParseResult {
  const { tokens } = parseArgs({
    args: [...argv],
    options: PARSE_ARGS_OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const occurrences = new Map<string, string[]>();
  const positionals: string[] = [];
  const warnings: string[] = [];
  let help = false;
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    if (token.kind === 'option-terminator') continue;
    const short = !token.rawName.startsWith('--');
    const name = token.name.replaceAll('_', '-');
    if (name === 'help') {
      help = token.value === undefined || parseGoBoolOr(token.value, true);
      continue;
    }
    const def = short ? BY_SHORTHAND.get(token.rawName.slice(1)) : BY_NAME.get(name);
    if (def === undefined) {
      const error = short
        ? `unknown shorthand flag: '${token.rawName.slice(1)}' in ${argv[token.index] ?? token.rawName}`
        : `unknown flag: --${token.name}`;
      return { ok: false, error };
    }
    let text = token.value;
    if (text === undefined) {
      if (!def.isBool) {
        const error = short
          ? `flag needs an argument: '${def.shorthand ?? ''}' in ${token.rawName}`
          : `flag needs an argument: --${def.name}`;
        return { ok: false, error };
      }
      text = 'true';
    } else if (short && token.inlineValue && text.startsWith('=')) {
      // parseArgs reads `-v=2` as the value "=2"; pflag reads "2".
      text = text.slice(1);
    }
    try {
      def.check(text);
    } catch (err) {
      return {
        ok: false,
        error: `invalid argument ${quote(text)} for ${quote(display(def))} flag: ${(err as Error).message}`,
      };
    }
    const seen = occurrences.get(def.name);
    if (seen === undefined) {
      occurrences.set(def.name, [text]);
      if (def.deprecated !== undefined)
        warnings.push(`flag --${def.name} has been deprecated, ${def.deprecated}`);
    } else {
      seen.push(text);
    }
  }
  if (!help && positionals.some((arg) => arg !== '')) {
    return {
      ok: false,
      error: `"kube-proxy" does not take any arguments, got [${positionals.map(quote).join(' ')}]`,
    };
  }
  return { ok: true, flags: { occurrences, help, warnings } };
}

function parseGoBoolOr(text: string, fallback: boolean): boolean {
  try {
    return parseGoBool(text);
  } catch {
    return fallback;
  }
}

/** Applies the explicitly set flags of the given precedence classes, in flag-table order. */
export function applyFlags(
  state: FlagState,
  flags: ParsedFlags,
  targets: ReadonlySet<FlagTarget>,
): FlagState {
  let next = state;
  for (const def of FLAGS) {
    const texts = flags.occurrences.get(def.name);
    if (texts !== undefined && targets.has(def.target)) next = def.applyAll(next, texts);
  }
  return next;
}

const HELP_INTRO = `The Kubernetes network proxy runs on each node. It watches Services and EndpointSlices
through the API server and programs the node's packet filter (iptables, nftables or IPVS) so that
traffic to a Service's cluster IP, node ports, external IPs and load balancer IPs reaches one of
its endpoints.

Usage:
  kube-proxy [flags]

Flags:
`;

/** The --help text: every flag, sorted by name, in pflag's column layout. */
export function renderHelp(): string {
  const help: Pick<FlagDef, 'name' | 'shorthand' | 'typeName' | 'usage' | 'defaultText'> = {
    name: 'help',
    shorthand: 'h',
    typeName: '',
    usage: 'help for kube-proxy',
    defaultText: '',
  };
  const all = [...FLAGS, help].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const heads = all.map((f) => {
    const names = f.shorthand === undefined ? `      --${f.name}` : `  -${f.shorthand}, --${f.name}`;
    return f.typeName === '' ? names : `${names} ${f.typeName}`;
  });
  const width = Math.max(...heads.map((h) => h.length));
  const lines = all.map((f, i) => {
    let usage = f.usage;
    if (f.defaultText !== '') usage += ` (default ${f.defaultText})`;
    if ('deprecated' in f && typeof f.deprecated === 'string') usage += ` (DEPRECATED: ${f.deprecated})`;
    const indent = ' '.repeat(width + 3);
    const head = (heads[i] ?? '').padEnd(width);
    return `${head}   ${usage.replaceAll('\n', `\n${indent}`)}`;
  });
  return `${HELP_INTRO}${lines.join('\n')}\n`;
}
