// Where the API server is and how to authenticate to it: from a kubeconfig file, the --master
// flag, or the in-cluster service account (upstream kube-proxy: in-cluster exactly when neither
// --kubeconfig nor --master is given). Supported: server, CA, client certificate and key, bearer
// token or tokenFile, basic auth, exec credential plugins (exec-credential.ts) and proxy-url. The
// legacy auth-provider plugins (removed from client-go) are rejected with an error, never
// silently ignored.
//
// Secrets (tokens, keys, passwords) are held here and in the HTTP client only; no error message
// or log line built here ever contains one.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { log } from '../log/log.ts';
import { ExecPluginError, parseExecConfig, type ExecConfig } from './exec-credential.ts';

/** A bearer token that may change over time (a projected service-account token is rotated). */
export interface TokenSource {
  /** The token to send now; undefined when none could ever be read. */
  token(): string | undefined;
  /** Forget the cached value so the next token() re-reads (called after a 401). */
  invalidate(): void;
}

export interface ClientConfig {
  /** Base URL without a trailing slash, e.g. `https://10.0.0.1:6443` (may carry a path prefix). */
  readonly server: string;
  /** PEM bundle to trust instead of the system roots. */
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecureSkipTLSVerify: boolean;
  /** SNI and certificate name to check instead of the server URL's host. */
  readonly tlsServerName?: string;
  readonly tokenSource?: TokenSource;
  readonly basicAuth?: { readonly username: string; readonly password: string };
  /** users[].user.exec: a credential plugin (used when no token or tokenFile is set). */
  readonly exec?: ExecConfig;
  /** clusters[].extensions["client.authentication.k8s.io/exec"], handed to the plugin. */
  readonly execClusterConfig?: unknown;
  /** clusters[].cluster.proxy-url: every request goes through this proxy. */
  readonly proxyURL?: string;
  /** Human-readable origin for log lines: `kubeconfig /path (context c)`, `in-cluster`, `--master`. */
  readonly source: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** client-go's cached file token source re-reads the file at most this often. */
export const TOKEN_REREAD_MS = 60_000;

export interface LoadClientConfigOptions {
  /** --kubeconfig */
  kubeconfig?: string;
  /** --master: overrides the kubeconfig's server. */
  master?: string;
  /** Environment for in-cluster config (KUBERNETES_SERVICE_HOST/PORT). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** File reader (tests). Default fs.readFileSync. */
  readFile?: (path: string) => string;
  /** Root of the service-account files for in-cluster config (tests). */
  serviceAccountDir?: string;
  /** Clock for token re-reads (tests). */
  now?: () => number;
  /** Minimum interval between token file re-reads. Default 60 s. */
  tokenRereadMs?: number;
}

export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeconfigError';
  }
}

type ReadFile = (path: string) => string;
const defaultReadFile: ReadFile = (path) => readFileSync(path, 'utf8');

/** Re-reads a token file at most every `periodMs`, or at once after invalidate(). */
export class FileTokenSource implements TokenSource {
  readonly path: string;
  #readFile: ReadFile;
  #now: () => number;
  #periodMs: number;
  #cached: string | undefined;
  #readAt = -Infinity;

  constructor(path: string, options: { readFile?: ReadFile; now?: () => number; periodMs?: number } = {}) {
    this.path = path;
    this.#readFile = options.readFile ?? defaultReadFile;
    this.#now = options.now ?? Date.now;
    this.#periodMs = options.periodMs ?? TOKEN_REREAD_MS;
  }

  /** Reads now; throws when the file cannot be read or is empty (used at load time). */
  load(): string {
    const text = this.#readFile(this.path).trim();
    if (text === '') throw new Error(`token file ${this.path} is empty`);
    this.#cached = text;
    this.#readAt = this.#now();
    return text;
  }

  token(): string | undefined {
    if (this.#now() - this.#readAt < this.#periodMs && this.#cached !== undefined) return this.#cached;
    try {
      return this.load();
    } catch (error) {
      // As client-go: keep using the last good token; the file may be mid-rotation.
      this.#readAt = this.#now();
      log.warn('Cannot re-read the bearer token file, keeping the previous token', {
        path: this.path,
        reason: error instanceof Error ? error.message : String(error),
      });
      return this.#cached;
    }
  }

  invalidate(): void {
    this.#readAt = -Infinity;
  }
}

export class StaticTokenSource implements TokenSource {
  #token: string;
  constructor(token: string) {
    this.#token = token;
  }
  token(): string {
    return this.#token;
  }
  invalidate(): void {
    // Nothing to re-read.
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Builds the client configuration the way upstream kube-proxy does: in-cluster when neither a
 * kubeconfig nor a master URL is given; otherwise the kubeconfig (if any) with --master
 * overriding its server.
 */
export function loadClientConfig(options: LoadClientConfigOptions = {}): ClientConfig {
  const kubeconfig = options.kubeconfig ?? '';
  const master = options.master ?? '';
  if (kubeconfig === '' && master === '') return loadInClusterConfig(options);
  if (kubeconfig === '') {
    return {
      server: normalizeServer(masterURL(master, false), '--master'),
      insecureSkipTLSVerify: false,
      source: '--master',
    };
  }
  return loadKubeconfigFile(kubeconfig, master, options);
}

/** client-go: a bare host:port gets https when TLS material is configured, http otherwise. */
function masterURL(master: string, tls: boolean): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(master)) return master;
  return `${tls ? 'https' : 'http'}://${master}`;
}

function normalizeServer(server: string, field: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeconfigError(`${field}: invalid server URL "${server}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new KubeconfigError(`${field}: server URL "${server}" must use https:// or http://`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new KubeconfigError(`${field}: server URL "${server}" must not carry a query or fragment`);
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

export function loadInClusterConfig(options: LoadClientConfigOptions = {}): ClientConfig {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? defaultReadFile;
  const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = env['KUBERNETES_SERVICE_HOST'] ?? '';
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '';
  if (host === '' || port === '') {
    throw new KubeconfigError(
      'no --kubeconfig or --master given and not running in a cluster: ' +
        'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set for in-cluster configuration',
    );
  }
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const tokenPath = `${dir}/token`;
  const tokenSource = new FileTokenSource(tokenPath, {
    readFile,
    ...(options.now ? { now: options.now } : {}),
    ...(options.tokenRereadMs !== undefined ? { periodMs: options.tokenRereadMs } : {}),
  });
  try {
    tokenSource.load();
  } catch (error) {
    throw new KubeconfigError(
      `in-cluster configuration: cannot read the service account token: ${errorText(error)}`,
    );
  }
  const caPath = `${dir}/ca.crt`;
  let ca: Buffer | undefined;
  try {
    ca = Buffer.from(readFile(caPath));
  } catch (error) {
    // As client-go: go on with the system roots, but say so.
    log.error('In-cluster configuration: cannot read the cluster CA, using the system roots', error, {
      path: caPath,
    });
  }
  return {
    server: normalizeServer(`https://${hostPart}:${port}`, 'KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT'),
    ...(ca ? { ca } : {}),
    insecureSkipTLSVerify: false,
    tokenSource,
    source: 'in-cluster',
  };
}

interface Named {
  name: string;
  body: Record<string, unknown>;
}

/** Finds `list[].name == name` and returns its `inner` record (cluster, user, context). */
function findNamed(
  doc: Record<string, unknown>,
  listKey: string,
  inner: string,
  name: string,
  where: string,
): Named {
  const list = doc[listKey];
  if (list !== undefined && list !== null && !Array.isArray(list)) {
    throw new KubeconfigError(`${where}: ${listKey} must be a list`);
  }
  for (const [index, entry] of (list ?? []).entries()) {
    if (!isRecord(entry)) throw new KubeconfigError(`${where}: ${listKey}[${index}] must be a mapping`);
    if (entry['name'] !== name) continue;
    const body = entry[inner] ?? {};
    if (!isRecord(body))
      throw new KubeconfigError(`${where}: ${listKey}[${index}].${inner} must be a mapping`);
    return { name, body };
  }
  throw new KubeconfigError(`${where}: ${listKey} has no entry named "${name}"`);
}

function stringField(body: Record<string, unknown>, key: string, where: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new KubeconfigError(`${where}.${key} must be a string`);
  return value;
}

function boolField(body: Record<string, unknown>, key: string, where: string): boolean {
  const value = body[key];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new KubeconfigError(`${where}.${key} must be true or false`);
  return value;
}

function decodeBase64(text: string, where: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw new KubeconfigError(`${where} is not valid base64`);
  }
  return Buffer.from(compact, 'base64');
}

/** client-go accepts http, https and socks5 proxies; Node's agents speak the first two. */
function checkProxyURL(text: string, where: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KubeconfigError(`${where}: invalid URL "${text}"`);
  }
  if (url.protocol === 'socks5:') {
    throw new KubeconfigError(`${where}: socks5 proxies are not supported; use an http:// or https:// proxy`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new KubeconfigError(`${where}: "${text}" must be an http:// or https:// URL`);
  }
}

/** The cluster's `extensions` entry named client.authentication.k8s.io/exec, if any. */
function execExtension(cluster: Record<string, unknown>): unknown {
  const extensions = cluster['extensions'];
  if (!Array.isArray(extensions)) return undefined;
  for (const entry of extensions as unknown[]) {
    if (isRecord(entry) && entry['name'] === 'client.authentication.k8s.io/exec') return entry['extension'];
  }
  return undefined;
}

function loadKubeconfigFile(path: string, master: string, options: LoadClientConfigOptions): ClientConfig {
  const readFile = options.readFile ?? defaultReadFile;
  const baseDir = dirname(resolve(path));
  const resolvePath = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const readRef = (p: string, where: string): Buffer => {
    const full = resolvePath(p);
    try {
      return Buffer.from(readFile(full));
    } catch (error) {
      throw new KubeconfigError(`${where}: cannot read ${full}: ${errorText(error)}`);
    }
  };

  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw new KubeconfigError(`kubeconfig ${path}: cannot read: ${errorText(error)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new KubeconfigError(`kubeconfig ${path}: invalid YAML: ${errorText(error)}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isRecord(doc)) throw new KubeconfigError(`kubeconfig ${path}: the document must be a mapping`);

  const where = `kubeconfig ${path}`;
  const contextName = stringField(doc, 'current-context', where);
  let cluster: Record<string, unknown> = {};
  let user: Record<string, unknown> = {};
  let clusterWhere = where;
  let userWhere = where;
  let userName = '';
  if (contextName !== undefined) {
    const context = findNamed(doc, 'contexts', 'context', contextName, where);
    const ctxWhere = `${where}: contexts["${contextName}"].context`;
    const clusterName = stringField(context.body, 'cluster', ctxWhere);
    userName = stringField(context.body, 'user', ctxWhere) ?? '';
    if (clusterName !== undefined) {
      cluster = findNamed(doc, 'clusters', 'cluster', clusterName, where).body;
      clusterWhere = `${where}: clusters["${clusterName}"].cluster`;
    }
    if (userName !== '') {
      user = findNamed(doc, 'users', 'user', userName, where).body;
      userWhere = `${where}: users["${userName}"].user`;
    }
  } else if (master === '') {
    throw new KubeconfigError(`${where}: current-context is not set and no --master was given`);
  }

  // Cluster.
  const caData = stringField(cluster, 'certificate-authority-data', clusterWhere);
  const caFile = stringField(cluster, 'certificate-authority', clusterWhere);
  let ca: Buffer | undefined;
  if (caData !== undefined) ca = decodeBase64(caData, `${clusterWhere}.certificate-authority-data`);
  else if (caFile !== undefined) ca = readRef(caFile, `${clusterWhere}.certificate-authority`);
  const insecure = boolField(cluster, 'insecure-skip-tls-verify', clusterWhere);
  const tlsServerName = stringField(cluster, 'tls-server-name', clusterWhere);
  const proxyURL = stringField(cluster, 'proxy-url', clusterWhere);
  if (proxyURL !== undefined) checkProxyURL(proxyURL, `${clusterWhere}.proxy-url`);

  // User.
  if (user['auth-provider'] !== undefined && user['auth-provider'] !== null) {
    throw new KubeconfigError(
      `${userWhere}.auth-provider: auth-provider plugins are not supported (user "${userName}"), as in ` +
        'client-go since v1.26; use an exec credential plugin, a token, tokenFile or client certificate',
    );
  }
  let exec: ExecConfig | undefined;
  if (user['exec'] !== undefined && user['exec'] !== null) {
    try {
      exec = parseExecConfig(user['exec'], `${userWhere}.exec`);
    } catch (error) {
      if (error instanceof ExecPluginError) throw new KubeconfigError(error.message);
      throw error;
    }
  }
  const certData = stringField(user, 'client-certificate-data', userWhere);
  const certFile = stringField(user, 'client-certificate', userWhere);
  const keyData = stringField(user, 'client-key-data', userWhere);
  const keyFile = stringField(user, 'client-key', userWhere);
  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  if (certData !== undefined) cert = decodeBase64(certData, `${userWhere}.client-certificate-data`);
  else if (certFile !== undefined) cert = readRef(certFile, `${userWhere}.client-certificate`);
  if (keyData !== undefined) key = decodeBase64(keyData, `${userWhere}.client-key-data`);
  else if (keyFile !== undefined) key = readRef(keyFile, `${userWhere}.client-key`);
  if ((cert === undefined) !== (key === undefined)) {
    throw new KubeconfigError(
      `${userWhere}: client-certificate and client-key must be given together (only ${cert ? 'the certificate' : 'the key'} is set)`,
    );
  }

  const token = stringField(user, 'token', userWhere);
  const tokenFile = stringField(user, 'tokenFile', userWhere);
  let tokenSource: TokenSource | undefined;
  if (tokenFile !== undefined) {
    // As client-go: the file wins over an inline token and is re-read so rotation works.
    const source = new FileTokenSource(resolvePath(tokenFile), {
      readFile,
      ...(options.now ? { now: options.now } : {}),
      ...(options.tokenRereadMs !== undefined ? { periodMs: options.tokenRereadMs } : {}),
    });
    try {
      source.load();
    } catch (error) {
      throw new KubeconfigError(`${userWhere}.tokenFile: ${errorText(error)}`);
    }
    tokenSource = source;
  } else if (token !== undefined) {
    tokenSource = new StaticTokenSource(token);
  }
  const username = stringField(user, 'username', userWhere);
  const password = stringField(user, 'password', userWhere);
  if (tokenSource !== undefined && username !== undefined) {
    throw new KubeconfigError(`${userWhere}: username/password and token/tokenFile cannot be combined`);
  }

  const hasTLS = ca !== undefined || cert !== undefined || insecure;
  let server: string;
  if (master !== '') {
    server = normalizeServer(masterURL(master, hasTLS), '--master');
  } else {
    const raw = stringField(cluster, 'server', clusterWhere);
    if (raw === undefined) throw new KubeconfigError(`${clusterWhere}.server is not set`);
    server = normalizeServer(raw, `${clusterWhere}.server`);
  }

  return {
    server,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    insecureSkipTLSVerify: insecure,
    ...(tlsServerName !== undefined ? { tlsServerName } : {}),
    ...(tokenSource ? { tokenSource } : {}),
    ...(username !== undefined ? { basicAuth: { username, password: password ?? '' } } : {}),
    ...(exec !== undefined ? { exec } : {}),
    ...(exec !== undefined && execExtension(cluster) !== undefined
      ? { execClusterConfig: execExtension(cluster) }
      : {}),
    ...(proxyURL !== undefined ? { proxyURL } : {}),
    source: `kubeconfig ${path}${contextName !== undefined ? ` (context ${contextName})` : ''}${master !== '' ? ' with --master' : ''}`,
  };
}
