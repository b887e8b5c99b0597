// From argv to the configuration kube-proxy runs with, with upstream's precedence (spec 8.3):
//   - without --config: API defaults, then the flags on top;
//   - with --config: the file (defaulted) replaces the configuration and every other
//     configuration flag is ignored, except explicitly set logging flags;
//   - in both cases --hostname-override (when non-empty), --master, --cleanup, --init-only and
//     --write-config-to apply, then the Linux platform defaults, then validation.
// Pure apart from io.readFile, so the CLI and the tests share every rule.
import {
  appendPortIfNeeded,
  applyDefaults,
  applyPlatformDefaults,
  defaultConfiguration,
  DEFAULT_HEALTHZ_PORT,
  DEFAULT_METRICS_PORT,
} from './defaults.ts';
import type { FlagExtras, FlagState, FlagTarget } from './flags/def.ts';
import { renderHelp } from './flags/help.ts';
import { applyFlags, parseFlags } from './flags/parse.ts';
import { FLAGS } from './flags/table.ts';
import { parseGoDuration } from './duration.ts';
import { decodeConfig, type RawKubeProxyConfiguration } from './schema.ts';
import type { KubeProxyConfiguration } from './types.ts';
import { formatFieldError, validateConfig } from './validate.ts';
import { buildInfo, rawVersion, versionLine } from '../util/version.ts';
import { parseCIDR } from '../util/ip.ts';

export { resolveEffective, type EffectiveConfig } from './effective.ts';

export interface ProxyRunOptions {
  /** Defaulted and validated: what /configz and --write-config-to show. */
  readonly config: KubeProxyConfiguration;
  /** --config, when given. */
  readonly configFile?: string;
  /** --write-config-to, when given: write renderConfigYAML(config) there and exit. */
  readonly writeConfigTo?: string;
  /** --cleanup: remove every mode's rules and exit. */
  readonly cleanup: boolean;
  /** --init-only: do the privileged setup and exit. */
  readonly initOnly: boolean;
  /** --master: API server address overriding the kubeconfig's; empty when not given. */
  readonly master: string;
  /**
   * Fields of the config file that were ignored (unknown to v1alpha1, or legacy), by path: the
   * daemon logs each, posts a Node Event and exports them as a metric.
   */
  readonly ignoredConfigFields: readonly string[];
  /** Every flag by name with its value as given, else its default (for /flagz). */
  readonly flagValues: Readonly<Record<string, string>>;
  /** --version=vX.Y.Z…: the version to report instead of ours (kubernetes_build_info). */
  readonly reportedVersion?: string;
  /** Names (without dashes) of the flags set explicitly on the command line, sorted. */
  readonly explicitFlags: readonly string[];
  /** The userspace mode's own flags (not in the configuration file: upstream has no such fields). */
  readonly userspace: {
    /** --userspace-drain-timeout; undefined: connections to removed endpoints run until they end. */
    readonly drainMs: number | undefined;
    /** --userspace-balancer. */
    readonly balancer: UserspaceBalancer;
    /** --userspace-capture. */
    readonly capture: UserspaceCapture;
  };
  /** --debug-handlers-allowed-cidrs: peers besides loopback the debug routes and /ui answer. */
  readonly debugAllowedCIDRs: readonly string[];
}

export type CommandLine =
  | { readonly kind: 'help'; readonly text: string }
  /** --version or --version=raw: print the text and exit 0, before anything else is checked. */
  | { readonly kind: 'version'; readonly text: string }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'run'; readonly options: ProxyRunOptions; readonly warnings: string[] };

export interface ConfigIO {
  /** Reads a whole file as UTF-8; throws (any Error) when it cannot. */
  readFile(path: string): string;
}

const WITHOUT_CONFIG: ReadonlySet<FlagTarget> = new Set(['config', 'logging']);
const WITH_CONFIG: ReadonlySet<FlagTarget> = new Set(['logging']);
const EXTRAS_ONLY: ReadonlySet<FlagTarget> = new Set(['extra']);

const DEFAULT_EXTRAS: FlagExtras = {
  configFile: '',
  writeConfigTo: '',
  cleanup: false,
  initOnly: false,
  master: '',
  hostnameOverride: '',
  healthzPort: DEFAULT_HEALTHZ_PORT,
  metricsPort: DEFAULT_METRICS_PORT,
  userspaceDrainTimeout: '0s',
  userspaceBalancer: 'round-robin',
  userspaceCapture: 'nat',
  version: 'false',
  debugAllowedCIDRs: [],
};

export const USERSPACE_CAPTURES = ['nat', 'address'] as const;
export type UserspaceCapture = (typeof USERSPACE_CAPTURES)[number];

function isUserspaceCapture(text: string): text is UserspaceCapture {
  return (USERSPACE_CAPTURES as readonly string[]).includes(text);
}

export const USERSPACE_BALANCERS = ['round-robin', 'least-connections'] as const;
export type UserspaceBalancer = (typeof USERSPACE_BALANCERS)[number];

function isUserspaceBalancer(text: string): text is UserspaceBalancer {
  return (USERSPACE_BALANCERS as readonly string[]).includes(text);
}

/** Deprecated --healthz-port / --metrics-port: 0 disables the server, else fills in a missing port. */
function addressFromPortFlag(address: string, port: number): string {
  return port === 0 ? '' : appendPortIfNeeded(address, port);
}

function errorList(prefix: string, lines: readonly string[]): string {
  if (lines.length === 1) return `${prefix}: ${lines[0] ?? ''}`;
  return `${prefix}:${lines.map((line) => `\n  ${line}`).join('')}`;
}

type Loaded =
  | { ok: true; config: KubeProxyConfiguration; warnings: string[]; ignoredFields: string[] }
  | { ok: false; error: string };

/**
 * `udpIdleTimeout` is a legacy field upstream (removed with the userspace mode in v1.26), still in
 * installers' ConfigMaps, often as `0s`. Only our userspace mode reads it; in any other mode it is
 * ignored like any unknown field instead of failing its "> 0" check.
 */
function dropLegacyFields(raw: RawKubeProxyConfiguration): {
  raw: RawKubeProxyConfiguration;
  dropped: string[];
} {
  if (raw.udpIdleTimeout === undefined || raw.udpIdleTimeout === null || raw.mode === 'userspace') {
    return { raw, dropped: [] };
  }
  const { udpIdleTimeout: _ignored, ...rest } = raw;
  return { raw: rest, dropped: ['udpIdleTimeout'] };
}

function loadFile(path: string, io: ConfigIO): Loaded {
  let text: string;
  try {
    text = io.readFile(path);
  } catch (err) {
    return {
      ok: false,
      error: `failed to read config file ${JSON.stringify(path)}: ${(err as Error).message}`,
    };
  }
  const decoded = decodeConfig(text);
  if (!decoded.ok) {
    const [first = '', ...rest] = decoded.error.split('\n');
    const body = rest.length === 0 ? ` ${first}` : decoded.error;
    return { ok: false, error: `failed to load config file ${JSON.stringify(path)}:${body}` };
  }
  const legacy = dropLegacyFields(decoded.raw);
  const ignoredFields = [...decoded.ignoredFields, ...legacy.dropped].sort();
  return {
    ok: true,
    config: applyDefaults(legacy.raw),
    warnings: [
      ...decoded.warnings,
      ...legacy.dropped.map((field) => `legacy field "${field}" ignored (only the userspace mode reads it)`),
    ].map((w) => `config file ${JSON.stringify(path)}: ${w}`),
    ignoredFields,
  };
}

/** Each flag's value as pflag would print it: the last value given (lists joined), else the default. */
function flagValuesOf(occurrences: ReadonlyMap<string, readonly string[]>): Record<string, string> {
  return Object.fromEntries(
    FLAGS.map((def) => {
      const given = occurrences.get(def.name);
      if (given !== undefined)
        return [def.name, def.typeName === 'strings' ? given.join(',') : (given.at(-1) ?? '')];
      const shown = def.defaultText.startsWith('"')
        ? (JSON.parse(def.defaultText) as string)
        : def.defaultText;
      return [def.name, shown === '' && def.isBool ? 'false' : shown];
    }),
  );
}

/**
 * Parses the command line (without the program name) into what to do. Errors name the flag or
 * the field path and the bad value; nothing here touches anything but io.readFile.
 */
export function parseCommandLine(argv: readonly string[], io: ConfigIO): CommandLine {
  const parsed = parseFlags(argv);
  if (!parsed.ok) return { kind: 'error', message: parsed.error };
  const flags = parsed.flags;
  if (flags.help) return { kind: 'help', text: renderHelp() };
  const warnings = [...flags.warnings];

  const start: FlagState = { config: defaultConfiguration(), extras: DEFAULT_EXTRAS };
  const { extras } = applyFlags(start, flags, EXTRAS_ONLY);
  // As component-base's verflag: printed before the configuration is even looked at.
  if (extras.version === 'true') return { kind: 'version', text: versionLine(buildInfo()) };
  if (extras.version === 'raw') return { kind: 'version', text: rawVersion(buildInfo()) };
  const reportedVersion = extras.version.startsWith('v') ? extras.version : undefined;
  const balancer = extras.userspaceBalancer;
  if (!isUserspaceBalancer(balancer)) {
    return {
      kind: 'error',
      message: `invalid argument ${JSON.stringify(balancer)} for "--userspace-balancer" flag: must be one of ${USERSPACE_BALANCERS.join(', ')}`,
    };
  }
  const capture = extras.userspaceCapture;
  if (!isUserspaceCapture(capture)) {
    return {
      kind: 'error',
      message: `invalid argument ${JSON.stringify(capture)} for "--userspace-capture" flag: must be one of ${USERSPACE_CAPTURES.join(', ')}`,
    };
  }
  const drainMs = parseGoDuration(extras.userspaceDrainTimeout);
  const badCIDR = extras.debugAllowedCIDRs.find((text) => parseCIDR(text.trim()) === undefined);
  if (badCIDR !== undefined) {
    return {
      kind: 'error',
      message: `invalid argument ${JSON.stringify(badCIDR)} for "--debug-handlers-allowed-cidrs" flag: not a CIDR (e.g. 10.0.0.0/8)`,
    };
  }

  let config: KubeProxyConfiguration;
  let ignoredConfigFields: string[] = [];
  if (extras.configFile !== '') {
    const loaded = loadFile(extras.configFile, io);
    if (!loaded.ok) return { kind: 'error', message: loaded.error };
    warnings.push(...loaded.warnings);
    ignoredConfigFields = loaded.ignoredFields;
    config = applyFlags({ config: loaded.config, extras }, flags, WITH_CONFIG).config;
  } else {
    config = applyFlags({ config: start.config, extras }, flags, WITHOUT_CONFIG).config;
    config = {
      ...config,
      healthzBindAddress: addressFromPortFlag(config.healthzBindAddress, extras.healthzPort),
      metricsBindAddress: addressFromPortFlag(config.metricsBindAddress, extras.metricsPort),
    };
  }

  config = applyPlatformDefaults(config);

  if (extras.hostnameOverride !== '') {
    const hostname = extras.hostnameOverride.trim();
    if (hostname === '') return { kind: 'error', message: 'empty hostname-override is invalid' };
    config = { ...config, hostnameOverride: hostname.toLowerCase() };
  }

  const result = validateConfig(config);
  if (result.errors.length > 0) {
    return {
      kind: 'error',
      message: errorList('invalid configuration', result.errors.map(formatFieldError)),
    };
  }
  warnings.push(...result.warnings);

  return {
    kind: 'run',
    options: {
      config,
      ...(extras.configFile === '' ? {} : { configFile: extras.configFile }),
      ...(extras.writeConfigTo === '' ? {} : { writeConfigTo: extras.writeConfigTo }),
      cleanup: extras.cleanup,
      initOnly: extras.initOnly,
      master: extras.master,
      ignoredConfigFields,
      flagValues: flagValuesOf(flags.occurrences),
      ...(reportedVersion === undefined ? {} : { reportedVersion }),
      explicitFlags: [...flags.occurrences.keys()].sort(),
      userspace: { drainMs: drainMs > 0 ? drainMs : undefined, balancer, capture },
      debugAllowedCIDRs: extras.debugAllowedCIDRs.map((text) => text.trim()),
    },
    warnings,
  };
}
