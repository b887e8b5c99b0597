// Validation of a defaulted KubeProxyConfiguration (spec 8.2). Fatal problems come back as field
// errors in upstream's field.Error shape (`path: Invalid value: <value>: <detail>`), with paths
// written as the v1alpha1 JSON field names an operator sees in the file. Non-fatal findings are
// returned as warnings for the caller to log.
import { parseCIDR, parseIP } from '../util/ip.ts';
import { parsePortRange } from './port-range.ts';
import { parseGoDurationNs } from './duration.ts';
import { featureEnabled, isKnownFeatureGate, lockedGateErrors } from './featuregates.ts';
import { UPSTREAM } from '../util/version.ts';
import { splitHostPort } from './hostport.ts';
import { showValue } from './schema.ts';
import {
  LOCAL_MODES,
  NODE_PORT_ADDRESSES_PRIMARY,
  PROXY_MODES,
  isProxyMode,
  type KubeProxyConfiguration,
  type LogFormatOptions,
} from './types.ts';

/** The Kubernetes minor release whose behaviour we follow; used for showHiddenMetricsForVersion. */
const COMPATIBLE_KUBERNETES_VERSION = {
  major: Number(UPSTREAM.major),
  minor: Number(UPSTREAM.minor),
} as const;

const MAX_INT32 = 2 ** 31 - 1;

export type FieldErrorType = 'Invalid value' | 'Unsupported value' | 'Required value' | 'Forbidden';

export interface FieldError {
  /** JSON path in the file, e.g. `iptables.masqueradeBit`. */
  readonly field: string;
  readonly type: FieldErrorType;
  /** The bad value as shown: strings quoted, numbers and durations bare. Absent for Required/Forbidden. */
  readonly value?: string;
  readonly detail: string;
}

export interface ValidationResult {
  readonly errors: readonly FieldError[];
  readonly warnings: readonly string[];
}

/** `field: Type: value: detail`, the text of upstream's field.Error. */
export function formatFieldError(error: FieldError): string {
  if (error.type === 'Unsupported value') {
    return `${error.field}: Unsupported value: ${error.value ?? 'null'}: supported values: ${error.detail}`;
  }
  if (error.value === undefined) return `${error.field}: ${error.type}: ${error.detail}`;
  return `${error.field}: ${error.type}: ${error.value}: ${error.detail}`;
}

function invalid(field: string, value: string | number | readonly string[], detail: string): FieldError {
  return { field, type: 'Invalid value', value: showValue(value), detail };
}

/** Durations are shown bare, as Go prints a metav1.Duration. */
function invalidDuration(field: string, value: string, detail: string): FieldError {
  return { field, type: 'Invalid value', value, detail };
}

function unsupported(field: string, value: string, supported: readonly string[]): FieldError {
  return {
    field,
    type: 'Unsupported value',
    value: showValue(value),
    detail: supported.map((s) => JSON.stringify(s)).join(', '),
  };
}

function ns(text: string): bigint {
  return parseGoDurationNs(text);
}

function checkSyncPeriods(
  prefix: string,
  periods: { readonly syncPeriod: string; readonly minSyncPeriod: string },
): FieldError[] {
  const errors: FieldError[] = [];
  const sync = ns(periods.syncPeriod);
  const min = ns(periods.minSyncPeriod);
  if (sync <= 0n)
    errors.push(invalidDuration(`${prefix}.syncPeriod`, periods.syncPeriod, 'must be greater than 0'));
  if (min < 0n) {
    errors.push(
      invalidDuration(`${prefix}.minSyncPeriod`, periods.minSyncPeriod, 'must be greater than or equal to 0'),
    );
  }
  // Compared only when both are valid on their own, so one bad value gives one message.
  if (sync > 0n && min >= 0n && min > sync) {
    errors.push(
      invalidDuration(
        `${prefix}.syncPeriod`,
        periods.syncPeriod,
        `must be greater than or equal to ${prefix}.minSyncPeriod (${periods.minSyncPeriod})`,
      ),
    );
  }
  return errors;
}

function checkMasqueradeBit(field: string, bit: number): FieldError[] {
  return bit < 0 || bit > 31 ? [invalid(field, bit, 'must be within the range [0, 31]')] : [];
}

function checkNonNegativeDurations(prefix: string, entries: Readonly<Record<string, string>>): FieldError[] {
  return Object.entries(entries)
    .filter(([, text]) => ns(text) < 0n)
    .map(([name, text]) => invalidDuration(`${prefix}.${name}`, text, 'must be greater than or equal to 0'));
}

function checkCIDRList(field: string, cidrs: readonly string[]): FieldError[] {
  return cidrs.flatMap((cidr, i) =>
    isCIDR(cidr) ? [] : [invalid(`${field}[${i}]`, cidr, 'must be a valid CIDR')],
  );
}

/** Go's net.ParseCIDR: no surrounding whitespace. */
function isCIDR(text: string): boolean {
  return text.trim() === text && parseCIDR(text) !== undefined;
}

function isIP(text: string): boolean {
  return text.trim() === text && parseIP(text) !== undefined;
}

function checkHostPort(field: string, text: string): FieldError[] {
  const parts = splitHostPort(text);
  if (parts === undefined) return [invalid(field, text, 'must be IP:port')];
  const errors: FieldError[] = [];
  if (!isIP(parts.host)) errors.push(invalid(field, parts.host, 'must be a valid IP'));
  const port = /^[+-]?\d+$/.test(parts.port) ? Number(parts.port) : NaN;
  if (!(port >= 1 && port <= 65535)) errors.push(invalid(field, parts.port, 'must be a valid port'));
  return errors;
}

function checkClusterCIDR(text: string): FieldError[] {
  if (text === '') return [];
  const cidrs = text.split(',');
  const example = '10.100.0.0/16,fde4:8dba:82e1::/48';
  if (cidrs.length > 2) {
    return [
      invalid('clusterCIDR', text, `only one CIDR allowed or a valid DualStack CIDR (e.g. ${example})`),
    ];
  }
  if (cidrs.length === 2) {
    const parsed = cidrs.map((c) => (isCIDR(c) ? parseCIDR(c) : undefined));
    const [a, b] = parsed;
    if (a === undefined || b === undefined || a.family === b.family) {
      return [invalid('clusterCIDR', text, `must be a valid DualStack CIDR (e.g. ${example})`)];
    }
    return [];
  }
  return isCIDR(text)
    ? []
    : [
        invalid(
          'clusterCIDR',
          text,
          'must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)',
        ),
      ];
}

/** Upstream's port range syntax: "", "N", "low-high" or "base+offset", within 0-65535. */
function isPortRange(text: string): boolean {
  return parsePortRange(text) !== null;
}

function checkNodePortAddresses(addresses: readonly string[]): FieldError[] {
  const errors: FieldError[] = [];
  for (const [i, address] of addresses.entries()) {
    if (address === NODE_PORT_ADDRESSES_PRIMARY) {
      if (addresses.length !== 1) {
        errors.push(invalid(`nodePortAddresses[${i}]`, address, "can't use both 'primary' and CIDRs"));
      }
      continue;
    }
    if (!isCIDR(address)) errors.push(invalid(`nodePortAddresses[${i}]`, address, 'must be a valid CIDR'));
  }
  return errors;
}

function checkShowHiddenMetrics(version: string): FieldError[] {
  if (version === '') return [];
  const { major, minor } = COMPATIBLE_KUBERNETES_VERSION;
  const allowed = `${major}.${minor - 1}`;
  return version === allowed
    ? []
    : [
        invalid(
          'showHiddenMetricsForVersion',
          version,
          `must be empty or the previous minor version '${allowed}' (no other version is allowed)`,
        ),
      ];
}

function isZeroQuantity(text: string): boolean {
  const number = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(text);
  return number !== null && Number(number[0]) === 0;
}

function checkFormatOptions(
  prefix: string,
  options: LogFormatOptions,
  gates: Readonly<Record<string, boolean>>,
): FieldError[] {
  if (featureEnabled(gates, 'LoggingAlphaOptions')) return [];
  const errors: FieldError[] = [];
  const detail = 'Feature LoggingAlphaOptions is disabled';
  if (options.splitStream) errors.push({ field: `${prefix}.splitStream`, type: 'Forbidden', detail });
  if (!isZeroQuantity(options.infoBufferSize)) {
    errors.push({ field: `${prefix}.infoBufferSize`, type: 'Forbidden', detail });
  }
  return errors;
}

function checkLogging(config: KubeProxyConfiguration): FieldError[] {
  const { logging } = config;
  const errors: FieldError[] = [];
  if (logging.format !== 'text' && logging.format !== 'json') {
    errors.push(invalid('logging.format', logging.format, 'Unsupported log format'));
  }
  if (logging.verbosity > MAX_INT32) {
    errors.push(invalid('logging.verbosity', logging.verbosity, `Must be <= ${MAX_INT32}`));
  }
  if (logging.vmodule.length > 0 && logging.format !== 'text') {
    errors.push({
      field: 'logging.vmodule',
      type: 'Forbidden',
      detail: 'Only supported for text log format',
    });
  }
  for (const [i, item] of logging.vmodule.entries()) {
    const field = `logging.vmodule[${i}]`;
    if (item.filePattern === '') {
      errors.push({ field, type: 'Required value', detail: 'File pattern must not be empty' });
    }
    if (/[=,]/.test(item.filePattern)) {
      errors.push(invalid(field, item.filePattern, 'File pattern must not contain equal sign or comma'));
    }
    if (item.verbosity > MAX_INT32) errors.push(invalid(field, item.verbosity, `Must be <= ${MAX_INT32}`));
  }
  errors.push(...checkFormatOptions('logging.options.text', logging.options.text, config.featureGates));
  errors.push(...checkFormatOptions('logging.options.json', logging.options.json, config.featureGates));
  return errors;
}

function checkDetectLocal(config: KubeProxyConfiguration): FieldError[] {
  const mode = config.detectLocalMode;
  if (mode !== '' && !(LOCAL_MODES as readonly string[]).includes(mode)) {
    return [unsupported('detectLocalMode', mode, LOCAL_MODES)];
  }
  if (mode === 'BridgeInterface' && config.detectLocal.bridgeInterface === '') {
    return [invalid('detectLocal.bridgeInterface', '', 'must not be empty')];
  }
  if (mode === 'InterfaceNamePrefix' && config.detectLocal.interfaceNamePrefix === '') {
    return [invalid('detectLocal.interfaceNamePrefix', '', 'must not be empty')];
  }
  return [];
}

function warnings(config: KubeProxyConfiguration): string[] {
  const found: string[] = [];
  for (const name of Object.keys(config.featureGates).sort()) {
    if (!isKnownFeatureGate(name)) found.push(`unrecognized feature gate: ${name} (ignored)`);
  }
  if (config.mode !== 'nftables' && config.nodePortAddresses.length === 0) {
    found.push(
      'nodePortAddresses is unset, so NodePort connections are accepted on every local IP; ' +
        'consider `--nodeport-addresses primary`',
    );
  }
  if (config.detectLocalMode === 'ClusterCIDR' && config.clusterCIDR === '') {
    found.push(
      'detectLocalMode is ClusterCIDR but clusterCIDR is empty: traffic from local pods cannot be ' +
        'told apart, so only masqueradeAll decides what is masqueraded',
    );
  }
  if (config.mode === 'ipvs') {
    found.push('the ipvs proxy mode is deprecated upstream; consider nftables');
  }
  return found;
}

/** Every fatal rule of spec 8.2, plus the non-fatal warnings. The config is expected defaulted. */
export function validateConfig(config: KubeProxyConfiguration): ValidationResult {
  const errors: FieldError[] = [];
  const { iptables, ipvs, nftables, conntrack } = config;

  errors.push(...checkMasqueradeBit('iptables.masqueradeBit', iptables.masqueradeBit));
  errors.push(...checkSyncPeriods('iptables', iptables));
  if (config.mode === 'ipvs') {
    errors.push(...checkSyncPeriods('ipvs', ipvs));
    errors.push(
      ...checkNonNegativeDurations('ipvs', {
        tcpTimeout: ipvs.tcpTimeout,
        tcpFinTimeout: ipvs.tcpFinTimeout,
        udpTimeout: ipvs.udpTimeout,
      }),
    );
    errors.push(...checkCIDRList('ipvs.excludeCIDRs', ipvs.excludeCIDRs));
  }
  if (config.mode === 'nftables') {
    errors.push(...checkMasqueradeBit('nftables.masqueradeBit', nftables.masqueradeBit));
    errors.push(...checkSyncPeriods('nftables', nftables));
  }

  if (conntrack.maxPerCore < 0) {
    errors.push(invalid('conntrack.maxPerCore', conntrack.maxPerCore, 'must be greater than or equal to 0'));
  }
  if (conntrack.min < 0) {
    errors.push(invalid('conntrack.min', conntrack.min, 'must be greater than or equal to 0'));
  }
  errors.push(
    ...checkNonNegativeDurations('conntrack', {
      tcpEstablishedTimeout: conntrack.tcpEstablishedTimeout,
      tcpCloseWaitTimeout: conntrack.tcpCloseWaitTimeout,
      udpTimeout: conntrack.udpTimeout,
      udpStreamTimeout: conntrack.udpStreamTimeout,
    }),
  );

  if (config.mode !== '' && !isProxyMode(config.mode)) {
    errors.push(
      invalid(
        'mode',
        config.mode,
        `must be ${PROXY_MODES.join(',')} or blank (blank means the best-available proxy [currently iptables])`,
      ),
    );
  }
  if (config.clientConnection.burst < 0) {
    errors.push(
      invalid('clientConnection.burst', config.clientConnection.burst, 'must be greater than or equal to 0'),
    );
  }
  if (config.oomScoreAdj < -1000 || config.oomScoreAdj > 1000) {
    errors.push(invalid('oomScoreAdj', config.oomScoreAdj, 'must be within the range [-1000, 1000]'));
  }
  if (ns(config.configSyncPeriod) <= 0n) {
    errors.push(invalidDuration('configSyncPeriod', config.configSyncPeriod, 'must be greater than 0'));
  }
  if (!isIP(config.bindAddress)) {
    errors.push(
      invalid('bindAddress', config.bindAddress, 'not a valid textual representation of an IP address'),
    );
  }
  // Empty disables either server (upstream validates an empty metrics address as an error, which
  // makes its own `--metrics-port 0` fatal; we let it disable the server as documented).
  if (config.healthzBindAddress !== '') {
    errors.push(...checkHostPort('healthzBindAddress', config.healthzBindAddress));
  }
  if (config.metricsBindAddress !== '') {
    errors.push(...checkHostPort('metricsBindAddress', config.metricsBindAddress));
  }
  errors.push(...checkClusterCIDR(config.clusterCIDR));
  if (!isPortRange(config.portRange)) {
    errors.push(invalid('portRange', config.portRange, 'must be a valid port range (e.g. 300-2000)'));
  }
  // Upstream validated it whatever the mode (0 was defaulted to 250ms before).
  if (ns(config.udpIdleTimeout) <= 0n) {
    errors.push(invalidDuration('udpIdleTimeout', config.udpIdleTimeout, 'must be greater than 0'));
  }
  errors.push(...checkNodePortAddresses(config.nodePortAddresses));
  errors.push(...checkShowHiddenMetrics(config.showHiddenMetricsForVersion));
  errors.push(...checkDetectLocal(config));
  errors.push(...checkLogging(config));
  errors.push(...lockedGateErrors(config.featureGates).map((detail) => invalid('featureGates', '', detail)));

  return { errors, warnings: warnings(config) };
}
