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
import { parseGoDuration } from './duration.ts';
import { decodeConfig } from './schema.ts';
import type { KubeProxyConfiguration } from './types.ts';
import { formatFieldError, validateConfig } from './validate.ts';
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

type Loaded = { ok: true; config: KubeProxyConfiguration; warnings: string[] } | { ok: false; error: string };

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
  return {
    ok: true,
    config: applyDefaults(decoded.raw),
    warnings: decoded.warnings.map((w) => `config file ${JSON.stringify(path)}: ${w}`),
  };
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
  if (extras.configFile !== '') {
    const loaded = loadFile(extras.configFile, io);
    if (!loaded.ok) return { kind: 'error', message: loaded.error };
    warnings.push(...loaded.warnings);
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
      explicitFlags: [...flags.occurrences.keys()].sort(),
      userspace: { drainMs: drainMs > 0 ? drainMs : undefined, balancer, capture },
      debugAllowedCIDRs: extras.debugAllowedCIDRs.map((text) => text.trim()),
    },
    warnings,
  };
}
