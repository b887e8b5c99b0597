// kubeconfig `exec` credential plugins (client.authentication.k8s.io/v1 and v1beta1), as
// client-go runs them: the command gets KUBERNETES_EXEC_INFO (an ExecCredential with the spec,
// plus the cluster when provideClusterInfo is set) and prints an ExecCredential whose status
// holds a bearer token and/or a client certificate and key, with an optional expiry. The result
// is cached until it expires, or until the API server answers 401 to it; then the plugin runs
// again (one run at a time, however many requests wait for it). kube-proxy has no terminal, so a
// plugin that must be interactive fails with a message saying so.
//
// The credential is a secret: no error or log line built here contains it.
import { ExecError, execTool, type ExecOptions, type ExecResult } from '../util/exec.ts';
import type { ExecCallStatus } from '../metrics/rest-client.ts';

export const EXEC_API_V1 = 'client.authentication.k8s.io/v1';
export const EXEC_API_V1BETA1 = 'client.authentication.k8s.io/v1beta1';
export type ExecApiVersion = typeof EXEC_API_V1 | typeof EXEC_API_V1BETA1;
export type InteractiveMode = 'Never' | 'IfAvailable' | 'Always';

/** The `users[].user.exec` stanza, checked. */
export interface ExecConfig {
  readonly apiVersion: ExecApiVersion;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: readonly { readonly name: string; readonly value: string }[];
  readonly installHint: string;
  readonly provideClusterInfo: boolean;
  readonly interactiveMode: InteractiveMode;
  /** Where it came from, for messages: `kubeconfig /path: users["u"].user.exec`. */
  readonly where: string;
}

/** What the cluster looks like to the plugin (ExecCredential spec.cluster). */
export interface ExecClusterInfo {
  readonly server: string;
  readonly tlsServerName?: string;
  readonly insecureSkipTLSVerify: boolean;
  readonly certificateAuthorityData?: Buffer;
  readonly proxyURL?: string;
  /** clusters[].extensions["client.authentication.k8s.io/exec"] */
  readonly config?: unknown;
}

export interface Credential {
  readonly token?: string;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** undefined: valid until the server rejects it. */
  readonly expiry?: Date;
}

export class ExecPluginError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExecPluginError';
  }
}

export type RunPlugin = (file: string, args: readonly string[], options: ExecOptions) => Promise<ExecResult>;

export interface ExecCredentialOptions {
  readonly cluster: ExecClusterInfo;
  readonly run?: RunPlugin;
  readonly now?: () => number;
  /** A plugin that runs longer than this is killed. Default 60 s. */
  readonly timeoutMs?: number;
  /** Told about every run (the rest_client_exec_plugin_* metrics). */
  readonly onCall?: (code: number, status: ExecCallStatus) => void;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the exec stanza as client-go's validation does. */
export function parseExecConfig(raw: unknown, where: string): ExecConfig {
  if (!isRecord(raw)) throw new ExecPluginError(`${where} must be a mapping`);
  const apiVersion = raw['apiVersion'];
  if (apiVersion !== EXEC_API_V1 && apiVersion !== EXEC_API_V1BETA1) {
    throw new ExecPluginError(
      `${where}.apiVersion: ${JSON.stringify(apiVersion ?? '')} is not supported; ` +
        `use ${EXEC_API_V1} or ${EXEC_API_V1BETA1}`,
    );
  }
  const command = raw['command'];
  if (typeof command !== 'string' || command === '')
    throw new ExecPluginError(`${where}.command is required`);
  const argsRaw = raw['args'] ?? [];
  if (!Array.isArray(argsRaw) || !argsRaw.every((a): a is string => typeof a === 'string')) {
    throw new ExecPluginError(`${where}.args must be a list of strings`);
  }
  const envRaw = raw['env'] ?? [];
  if (!Array.isArray(envRaw)) throw new ExecPluginError(`${where}.env must be a list`);
  const env = envRaw.map((entry: unknown, i) => {
    if (!isRecord(entry) || typeof entry['name'] !== 'string' || typeof entry['value'] !== 'string') {
      throw new ExecPluginError(`${where}.env[${i}] must have a string name and value`);
    }
    return { name: entry['name'], value: entry['value'] };
  });
  const modeRaw = raw['interactiveMode'];
  let interactiveMode: InteractiveMode;
  if (modeRaw === undefined || modeRaw === null || modeRaw === '') {
    // v1 requires it; v1beta1 defaults to IfAvailable.
    if (apiVersion === EXEC_API_V1)
      throw new ExecPluginError(`${where}.interactiveMode is required for ${EXEC_API_V1}`);
    interactiveMode = 'IfAvailable';
  } else if (modeRaw === 'Never' || modeRaw === 'IfAvailable' || modeRaw === 'Always') {
    interactiveMode = modeRaw;
  } else {
    throw new ExecPluginError(
      `${where}.interactiveMode: ${JSON.stringify(modeRaw)} must be Never, IfAvailable or Always`,
    );
  }
  if (interactiveMode === 'Always') {
    throw new ExecPluginError(
      `${where}: interactiveMode is Always, but kube-proxy has no terminal to give the plugin; use Never or IfAvailable`,
    );
  }
  const hint = raw['installHint'];
  const provide = raw['provideClusterInfo'];
  if (provide !== undefined && provide !== null && typeof provide !== 'boolean') {
    throw new ExecPluginError(`${where}.provideClusterInfo must be true or false`);
  }
  return {
    apiVersion,
    command,
    args: argsRaw,
    env,
    installHint: typeof hint === 'string' ? hint : '',
    provideClusterInfo: provide === true,
    interactiveMode,
    where,
  };
}

/** KUBERNETES_EXEC_INFO: what the plugin is told (pure). */
export function execInfo(config: ExecConfig, cluster: ExecClusterInfo): string {
  const spec: Record<string, unknown> = { interactive: false };
  if (config.provideClusterInfo) {
    spec['cluster'] = {
      server: cluster.server,
      ...(cluster.tlsServerName !== undefined ? { 'tls-server-name': cluster.tlsServerName } : {}),
      ...(cluster.insecureSkipTLSVerify ? { 'insecure-skip-tls-verify': true } : {}),
      ...(cluster.certificateAuthorityData
        ? { 'certificate-authority-data': cluster.certificateAuthorityData.toString('base64') }
        : {}),
      ...(cluster.proxyURL !== undefined ? { 'proxy-url': cluster.proxyURL } : {}),
      ...(cluster.config !== undefined ? { config: cluster.config } : {}),
    };
  }
  return JSON.stringify({ kind: 'ExecCredential', apiVersion: config.apiVersion, spec });
}

/** Reads the plugin's ExecCredential (pure); errors name the field, never the secret. */
export function parseExecCredential(stdout: string, config: ExecConfig): Credential {
  const what = `exec plugin ${config.command} (${config.where})`;
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new ExecPluginError(`${what}: its output is not a JSON ExecCredential`);
  }
  if (!isRecord(doc)) throw new ExecPluginError(`${what}: its output is not an ExecCredential object`);
  if (doc['kind'] !== 'ExecCredential') {
    throw new ExecPluginError(
      `${what}: kind is ${JSON.stringify(doc['kind'] ?? '')}, expected ExecCredential`,
    );
  }
  if (doc['apiVersion'] !== config.apiVersion) {
    throw new ExecPluginError(
      `${what}: apiVersion ${JSON.stringify(doc['apiVersion'] ?? '')} does not match the configured ${config.apiVersion}`,
    );
  }
  const status = doc['status'];
  if (!isRecord(status)) throw new ExecPluginError(`${what}: status is missing`);
  const token = status['token'];
  const certData = status['clientCertificateData'];
  const keyData = status['clientKeyData'];
  if (token !== undefined && typeof token !== 'string')
    throw new ExecPluginError(`${what}: status.token must be a string`);
  if ((certData === undefined) !== (keyData === undefined)) {
    throw new ExecPluginError(
      `${what}: status.clientCertificateData and status.clientKeyData must be given together`,
    );
  }
  if (certData !== undefined && (typeof certData !== 'string' || typeof keyData !== 'string')) {
    throw new ExecPluginError(`${what}: status.clientCertificateData and clientKeyData must be PEM strings`);
  }
  if ((token === undefined || token === '') && certData === undefined) {
    throw new ExecPluginError(`${what}: status has neither a token nor a client certificate`);
  }
  const expiryRaw = status['expirationTimestamp'];
  let expiry: Date | undefined;
  if (expiryRaw !== undefined && expiryRaw !== null) {
    const ms = typeof expiryRaw === 'string' ? Date.parse(expiryRaw) : NaN;
    if (Number.isNaN(ms))
      throw new ExecPluginError(`${what}: status.expirationTimestamp is not an RFC 3339 time`);
    expiry = new Date(ms);
  }
  return {
    ...(typeof token === 'string' && token !== '' ? { token } : {}),
    ...(typeof certData === 'string' && typeof keyData === 'string'
      ? { cert: Buffer.from(certData), key: Buffer.from(keyData) }
      : {}),
    ...(expiry ? { expiry } : {}),
  };
}

/** Runs the plugin when the cached credential is missing, expired or rejected. */
export class ExecCredentialSource {
  readonly config: ExecConfig;
  #options: ExecCredentialOptions;
  #now: () => number;
  #cached: Credential | undefined;
  #running: Promise<Credential> | undefined;
  /** How many times the plugin ran (tests, logs). */
  runs = 0;

  constructor(config: ExecConfig, options: ExecCredentialOptions) {
    this.config = config;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  #fresh(credential: Credential | undefined): credential is Credential {
    return (
      credential !== undefined &&
      (credential.expiry === undefined || this.#now() < credential.expiry.getTime())
    );
  }

  /** The credential to use now, running the plugin first if needed. */
  async credential(): Promise<Credential> {
    if (this.#fresh(this.#cached)) return this.#cached;
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** The server answered 401 to `used`: the next request runs the plugin again. */
  invalidate(used?: Credential): void {
    if (used === undefined || used === this.#cached) this.#cached = undefined;
  }

  async #run(): Promise<Credential> {
    const config = this.#options.cluster;
    const env: Record<string, string> = { KUBERNETES_EXEC_INFO: execInfo(this.config, config) };
    for (const entry of this.config.env) env[entry.name] = entry.value;
    const run = this.#options.run ?? execTool;
    const what = `exec plugin ${this.config.command} (${this.config.where})`;
    this.runs++;
    let result: ExecResult;
    try {
      result = await run(this.config.command, this.config.args, {
        env,
        timeoutMs: this.#options.timeoutMs ?? 60_000,
      });
    } catch (error) {
      if (error instanceof ExecError && error.code === null && /ENOENT/.test(error.message)) {
        this.#options.onCall?.(1, 'plugin_not_found_error');
        throw new ExecPluginError(
          `${what}: executable not found${this.config.installHint ? `; ${this.config.installHint}` : ''}`,
        );
      }
      const code = error instanceof ExecError && error.code !== null ? error.code : 1;
      this.#options.onCall?.(code, 'plugin_execution_error');
      // The plugin's stderr says why; its stdout may hold a credential and is never shown.
      const stderr = error instanceof ExecError ? error.stderr.trim().slice(0, 500) : '';
      const reason =
        error instanceof ExecError && error.code !== null
          ? `exit status ${error.code}`
          : String(error instanceof Error ? error.message : error);
      throw new ExecPluginError(`${what} failed: ${reason}${stderr ? `: ${stderr}` : ''}`);
    }
    let credential: Credential;
    try {
      credential = parseExecCredential(result.stdout, this.config);
    } catch (error) {
      this.#options.onCall?.(0, 'client_internal_error');
      throw error;
    }
    this.#options.onCall?.(0, 'no_error');
    this.#cached = credential;
    return credential;
  }
}
