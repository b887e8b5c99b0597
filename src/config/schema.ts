// Decoding a KubeProxyConfiguration file (YAML or JSON) into its raw, not yet defaulted shape.
//
// Decoding is strict first, as upstream's: a mistyped field fails with its path. An unknown field
// (a typo, a legacy field such as `resourceContainer` or `conntrack.max`, or one a newer release
// adds) makes upstream re-decode leniently and only warn; so do we (issue 14: installers' stale
// ConfigMaps must not crash-loop the DaemonSet), and report every ignored field by its path so the
// caller can log it, post an Event and count it. Types follow Go's JSON decoding of the
// upstream struct (int32 stays int32, a duration must be a duration string, and so on), and the
// YAML flavour follows Go's yaml.v2 (YAML 1.1: `yes`/`on` are booleans, `010` is octal), except
// that duplicate keys are errors.
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { parseGoDurationNs } from './duration.ts';
import { API_VERSION, KIND } from './types.ts';

const TIMESTAMP_TAG = 'tag:yaml.org,2002:timestamp';
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const UINT32_MAX = 2 ** 32 - 1;

/** A Kubernetes resource quantity such as "0", "512", "1K", "2Ki", "1.5M", "1e3". */
const QUANTITY = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;

function durationProblem(input: unknown): string {
  if (typeof input !== 'string') return 'expected a duration string such as "30s"';
  try {
    parseGoDurationNs(input);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

function nullable<T extends z.ZodType>(schema: T) {
  return schema.nullable().optional();
}

const str = nullable(z.string());
const bool = nullable(z.boolean());
const int32 = nullable(
  z
    .number()
    .int({ error: 'must be an integer' })
    .min(INT32_MIN, { error: 'must fit in a 32-bit signed integer' })
    .max(INT32_MAX, { error: 'must fit in a 32-bit signed integer' }),
);
const uint32 = nullable(
  z
    .number()
    .int({ error: 'must be an integer' })
    .min(0, { error: 'must fit in a 32-bit unsigned integer' })
    .max(UINT32_MAX, { error: 'must fit in a 32-bit unsigned integer' }),
);
const float32 = nullable(z.number());
const durationText = z.string().refine((text) => durationProblem(text) === '', {
  error: (issue) => durationProblem(issue.input),
});
const duration = nullable(durationText);
const stringList = nullable(z.array(z.string()));
const quantity = nullable(
  z.union([
    z.number(),
    z.string().regex(QUANTITY, { error: 'must be a resource quantity such as "0", "64Ki" or "1M"' }),
  ]),
);

const formatOptions = nullable(z.strictObject({ splitStream: bool, infoBufferSize: quantity }));

/** The file form of KubeProxyConfiguration v1alpha1: every field optional and nullable, as in Go. */
const kubeProxyConfigurationSchema = z.strictObject({
  apiVersion: str,
  kind: str,
  featureGates: nullable(z.record(z.string(), z.boolean())),
  clientConnection: nullable(
    z.strictObject({
      kubeconfig: str,
      acceptContentTypes: str,
      contentType: str,
      qps: float32,
      burst: int32,
    }),
  ),
  logging: nullable(
    z.strictObject({
      format: str,
      // Upstream accepts a duration string or a plain number of nanoseconds here.
      flushFrequency: nullable(z.union([durationText, z.number().int({ error: 'must be an integer' })])),
      verbosity: uint32,
      vmodule: nullable(z.array(z.strictObject({ filePattern: str, verbosity: uint32 }))),
      options: nullable(z.strictObject({ text: formatOptions, json: formatOptions })),
    }),
  ),
  hostnameOverride: str,
  bindAddress: str,
  healthzBindAddress: str,
  metricsBindAddress: str,
  bindAddressHardFail: bool,
  enableProfiling: bool,
  showHiddenMetricsForVersion: str,
  mode: str,
  iptables: nullable(
    z.strictObject({
      masqueradeBit: int32,
      masqueradeAll: bool,
      localhostNodePorts: bool,
      syncPeriod: duration,
      minSyncPeriod: duration,
    }),
  ),
  ipvs: nullable(
    z.strictObject({
      syncPeriod: duration,
      minSyncPeriod: duration,
      scheduler: str,
      excludeCIDRs: stringList,
      strictARP: bool,
      tcpTimeout: duration,
      tcpFinTimeout: duration,
      udpTimeout: duration,
    }),
  ),
  nftables: nullable(
    z.strictObject({
      masqueradeBit: int32,
      masqueradeAll: bool,
      syncPeriod: duration,
      minSyncPeriod: duration,
    }),
  ),
  winkernel: nullable(
    z.strictObject({
      networkName: str,
      sourceVip: str,
      enableDSR: bool,
      rootHnsEndpointName: str,
      forwardHealthCheckVip: bool,
    }),
  ),
  detectLocalMode: str,
  detectLocal: nullable(z.strictObject({ bridgeInterface: str, interfaceNamePrefix: str })),
  clusterCIDR: str,
  nodePortAddresses: stringList,
  oomScoreAdj: int32,
  conntrack: nullable(
    z.strictObject({
      maxPerCore: int32,
      min: int32,
      tcpEstablishedTimeout: duration,
      tcpCloseWaitTimeout: duration,
      tcpBeLiberal: bool,
      udpTimeout: duration,
      udpStreamTimeout: duration,
    }),
  ),
  configSyncPeriod: duration,
  portRange: str,
  udpIdleTimeout: duration,
  windowsRunAsService: bool,
});

/** A decoded, not yet defaulted configuration: absent and null fields are undefined or null. */
export type RawKubeProxyConfiguration = z.infer<typeof kubeProxyConfigurationSchema>;

export type DecodeResult =
  | {
      readonly ok: true;
      readonly raw: RawKubeProxyConfiguration;
      readonly warnings: readonly string[];
      /** Paths of the unknown fields the lenient decoding dropped (`iptables.bar`), sorted. */
      readonly ignoredFields: readonly string[];
    }
  | { readonly ok: false; readonly error: string };

/** `a.b[0].c`, the way field paths are written in every message of this module. */
function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text === '' ? String(part) : `.${String(part)}`;
  }
  return text;
}

/** Renders a bad value the way the messages show it: strings quoted, everything else as JSON. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'null';
  if (value instanceof Uint8Array) return '<binary>';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value);
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  boolean: 'true or false',
  number: 'a number',
  int: 'an integer',
  object: 'a mapping',
  array: 'a list',
  record: 'a mapping',
};

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path) || '<root>';
  switch (issue.code) {
    case 'invalid_type':
      return `${where}: Invalid value: ${showValue(issue.input)}: expected ${EXPECTED[issue.expected] ?? issue.expected}`;
    case 'invalid_union':
      // Only flushFrequency and the quantities are unions; name what they accept.
      return `${where}: Invalid value: ${showValue(issue.input)}: ${
        issue.path.at(-1) === 'flushFrequency'
          ? 'expected a duration string such as "5s" or a number of nanoseconds'
          : 'expected a resource quantity such as "0", "64Ki" or "1M"'
      }`;
    default:
      return `${where}: Invalid value: ${showValue(issue.input)}: ${issue.message}`;
  }
}

function unknownFields(issue: z.core.$ZodIssue): string[] {
  if (issue.code !== 'unrecognized_keys') return [];
  return issue.keys.map((key) => formatPath([...issue.path, key]));
}

function checkTypeMeta(data: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [field, want] of [
    ['apiVersion', API_VERSION],
    ['kind', KIND],
  ] as const) {
    const got = data[field];
    if (got === undefined || got === null || got === '') {
      problems.push(`${field}: Required value: must be ${JSON.stringify(want)}`);
    } else if (got !== want) {
      problems.push(
        `${field}: Unsupported value: ${showValue(got)}: supported values: ${JSON.stringify(want)}`,
      );
    }
  }
  return problems;
}

function errorList(lines: readonly string[]): string {
  return lines.length === 1 ? (lines[0] ?? '') : lines.map((line) => `\n  ${line}`).join('');
}

/** Parses YAML 1.1 the way Go's yaml.v2 does, with duplicate keys rejected. */
function parseYAML(text: string): { ok: true; data: unknown } | { ok: false; error: string } {
  const docs = parseAllDocuments(text, {
    version: '1.1',
    uniqueKeys: true,
    // yaml.v2 leaves timestamp-like scalars as strings when decoding into untyped values.
    customTags: (tags) =>
      tags.filter((tag) => tag !== 'timestamp' && (typeof tag === 'string' || tag.tag !== TIMESTAMP_TAG)),
  });
  if (!Array.isArray(docs)) return { ok: false, error: 'yaml: unexpected end of stream' };
  const first = docs[0];
  if (first === undefined) return { ok: false, error: 'the file is empty' };
  if (docs.length > 1) return { ok: false, error: 'yaml: expected one document, found several' };
  const problem = first.errors[0];
  if (problem !== undefined) {
    const where = problem.linePos?.[0];
    const reason = problem.message.split(' at line ')[0] ?? problem.message;
    return {
      ok: false,
      error: where ? `yaml: line ${where.line}, column ${where.col}: ${reason}` : `yaml: ${reason}`,
    };
  }
  return { ok: true, data: first.toJS({ maxAliasCount: 100 }) };
}

/**
 * Decodes file text into a raw configuration. Unknown fields only produce a warning (upstream's
 * lenient fallback); anything else wrong is an error listing every problem with its field path.
 */
export function decodeConfig(text: string): DecodeResult {
  const parsed = parseYAML(text);
  if (!parsed.ok) return { ok: false, error: parsed.error };
  const data = parsed.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return { ok: false, error: `expected a mapping with apiVersion and kind, got ${showValue(data)}` };
  }
  const typeMeta = checkTypeMeta(data as Record<string, unknown>);
  if (typeMeta.length > 0) return { ok: false, error: errorList(typeMeta) };

  const strict = kubeProxyConfigurationSchema.safeParse(data, { reportInput: true });
  if (strict.success) return { ok: true, raw: strict.data, warnings: [], ignoredFields: [] };
  const issues = strict.error.issues;
  const fatal = issues.filter((issue) => issue.code !== 'unrecognized_keys');
  // As upstream: the lenient retry still fails on a mistyped field, so report it (and, to help,
  // the unknown fields found with it).
  if (fatal.length > 0) {
    const unknown = issues.flatMap(unknownFields);
    return {
      ok: false,
      error: errorList([...unknown.map((path) => `${path}: unknown field`), ...fatal.map(describeIssue)]),
    };
  }
  const dropped = issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' ? issue.keys.map((key) => [...issue.path, key]) : [],
  );
  const lenient = kubeProxyConfigurationSchema.safeParse(withoutPaths(data, dropped), { reportInput: true });
  if (!lenient.success) return { ok: false, error: errorList(lenient.error.issues.map(describeIssue)) };
  const ignoredFields = dropped.map(formatPath).sort();
  return {
    ok: true,
    raw: lenient.data,
    warnings: ignoredFields.map((path) => `unknown field "${path}" ignored (as upstream kube-proxy does)`),
    ignoredFields,
  };
}

/** A deep copy of `data` without the given key paths (only plain objects and arrays are walked). */
function withoutPaths(data: unknown, paths: readonly (readonly PropertyKey[])[]): unknown {
  const copy: unknown = structuredClone(data);
  for (const path of paths) {
    let node: unknown = copy;
    for (const part of path.slice(0, -1)) {
      if (node === null || typeof node !== 'object') break;
      node = (node as Record<PropertyKey, unknown>)[part];
    }
    const last = path.at(-1);
    if (node !== null && typeof node === 'object' && last !== undefined) {
      Reflect.deleteProperty(node, last);
    }
  }
  return copy;
}
