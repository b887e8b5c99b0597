// `kube-proxy explain`: where one packet goes on this node, and why. The state comes from the
// live proxy (--server, the default: its /debug/proxy/explain answers), a state dump (--state)
// or manifests (-f, with the proxy's own flags or --config for the settings); the answer is
// formatted here, so the text is the same whatever the source.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { parseCommandLine, resolveEffective } from '../config/load.ts';
import { explain, ExplainError, type PacketQuery } from '../explain/engine.ts';
import { parsePacketQuery } from '../explain/query.ts';
import { stateFromDump } from '../explain/dump.ts';
import { formatExplanation } from '../explain/format.ts';
import { sortObjects, stateFromManifests } from '../explain/manifests.ts';
import type { ExplainState } from '../explain/state.ts';
import { EXPLAIN_API_VERSION, type Explanation } from '../explain/types.ts';
import { DEBUG_HEADER } from '../server/debug-routes.ts';
import { dataplaneSettings } from './settings.ts';

export const DEFAULT_SERVER = 'http://127.0.0.1:10249';

export interface CliIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly readFile: (path: string) => string;
  /** The names in a directory, or undefined when `path` is not one. */
  readonly listDir: (path: string) => string[] | undefined;
  readonly readStdin: () => Promise<string>;
  readonly fetch: (
    url: string,
    init: { headers: Record<string, string>; signal: AbortSignal },
  ) => Promise<Response>;
}

export const PROCESS_IO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  readFile: (path) => readFileSync(path, 'utf8'),
  listDir: (path) => (statSync(path).isDirectory() ? readdirSync(path).sort() : undefined),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
  fetch: (url, init) => fetch(url, init),
};

const USAGE = `Usage: kube-proxy explain --src IP --dst IP --dport PORT [flags]

Where one packet goes on this node, and why: the Service port it matches, every decision with
the Kubernetes field behind it, the endpoints with their chances, the verdict, and the rule path.

Packet:
  --src IP                 the client address (required)
  --dst IP                 the destination address (required)
  --dport PORT             the destination port (required)
  --proto tcp|udp|sctp     default tcp
  --from pod|node|external how the packet arrives; inferred from --src when omitted
  --iif NAME               the interface it arrives on (BridgeInterface/InterfaceNamePrefix detection)

State (one of):
  --server URL             a running kube-proxy's metrics address (default ${DEFAULT_SERVER})
  --state FILE             a state dump (GET /debug/proxy/state), YAML or JSON
  -f FILE|DIR|-            manifests: Services, EndpointSlices and the Node (YAML or JSON, Lists
                           allowed); the settings come from --config or kube-proxy's own flags
  --node NAME              with -f: the node to explain for (default: the only Node given)
  --mode iptables|nftables|ipvs|userspace with -f: the proxy mode (default: from --config / --proxy-mode)

  --kernel                 with the running proxy: check that each quoted rule or element is in
                           the kernel (iptables-save per table; nft -c delete element per element)
  --conntrack              with the running proxy: list the flows conntrack already tracks for
                           this tuple, and flag those DNATed to an endpoint that no longer exists

Output:
  -o text|json|yaml        default text
`;

const OWN_FLAGS = new Set([
  'src',
  'dst',
  'dport',
  'proto',
  'from',
  'iif',
  'server',
  'state',
  'f',
  'filename',
  'node',
  'mode',
  'o',
  'output',
]);
/** Our flags that take no value. */
const OWN_SWITCHES = new Set(['kernel', 'conntrack']);

interface ExplainArgs {
  readonly own: ReadonlyMap<string, string>;
  /** Flags that are kube-proxy's own (for -f): passed to its parser as they are. */
  readonly rest: readonly string[];
  readonly help: boolean;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Splits our flags from kube-proxy's; `--flag value` and `--flag=value` both work. */
export function splitArgs(argv: readonly string[]): ExplainArgs {
  const own = new Map<string, string>();
  const rest: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    const match = /^--?([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    if (!match) {
      if (arg.startsWith('-') && arg !== '-') rest.push(arg);
      else throw new UsageError(`explain takes no positional arguments, got ${JSON.stringify(arg)}`);
      continue;
    }
    const name = match[1] ?? '';
    if (OWN_SWITCHES.has(name)) {
      own.set(name, match[2] ?? 'true');
      continue;
    }
    if (!OWN_FLAGS.has(name)) {
      rest.push(arg);
      // A kube-proxy flag's value goes with it (boolean flags are written --flag or --flag=x).
      const next = argv[i + 1];
      if (match[2] === undefined && next !== undefined && !next.startsWith('-')) rest.push(argv[++i] ?? '');
      continue;
    }
    let value = match[2];
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`flag ${arg} needs a value`);
    }
    const key = name === 'filename' ? 'f' : name === 'output' ? 'o' : name;
    if (own.has(key)) throw new UsageError(`flag --${name} given twice`);
    own.set(key, value);
  }
  return { own, rest, help };
}

/** Every YAML/JSON document in a file, a directory's .yaml/.yml/.json files, or stdin. */
async function readDocuments(path: string, io: CliIO): Promise<{ docs: unknown[]; where: string }[]> {
  const parse = (text: string, where: string): { docs: unknown[]; where: string } => {
    const docs = parseAllDocuments(text);
    const list = Array.isArray(docs) ? docs : [docs];
    return {
      where,
      docs: list.map((doc, i) => {
        const error = doc.errors[0];
        if (error) throw new UsageError(`${where}: document ${i + 1}: ${error.message}`);
        return doc.toJS() as unknown;
      }),
    };
  };
  if (path === '-') return [parse(await io.readStdin(), 'stdin')];
  const names = io.listDir(path);
  if (names === undefined) return [parse(io.readFile(path), path)];
  return names
    .filter((name) => /\.(ya?ml|json)$/.test(name))
    .map((name) => parse(io.readFile(join(path, name)), join(path, name)));
}

async function localState(
  own: ReadonlyMap<string, string>,
  rest: readonly string[],
  io: CliIO,
): Promise<ExplainState> {
  const statePath = own.get('state');
  if (statePath !== undefined) {
    if (rest.length > 0) throw new UsageError(`flag ${rest[0] ?? ''} applies only with -f`);
    const [file] = await readDocuments(statePath, io);
    return stateFromDump(file?.docs[0], statePath);
  }
  const manifests = own.get('f') ?? '';
  const commandLine = parseCommandLine(rest, io);
  if (commandLine.kind === 'help') throw new UsageError('use kube-proxy --help for the proxy flags');
  if (commandLine.kind === 'version') throw new UsageError('use kube-proxy --version');
  if (commandLine.kind === 'error') throw new UsageError(commandLine.message);
  const effective = resolveEffective(commandLine.options.config, commandLine.options.master);
  const files = await readDocuments(manifests, io);
  const objects = sortObjects(
    files.flatMap((file) => file.docs),
    manifests === '-' ? 'stdin' : manifests,
  );
  for (const ignored of objects.ignored) io.stderr(`explain: ignoring ${ignored}\n`);
  const { state, problems } = stateFromManifests(objects, {
    nodeName: own.get('node') ?? effective.hostnameOverride,
    mode: own.get('mode') ?? effective.mode,
    settings: dataplaneSettings(effective, commandLine.options.userspace),
    from: manifests === '-' ? 'stdin' : manifests,
  });
  for (const problem of problems) io.stderr(`explain: skipping invalid object: ${problem}\n`);
  return state;
}

async function fromServer(
  server: string,
  query: PacketQuery,
  kernel: boolean,
  conntrack: boolean,
  io: CliIO,
): Promise<Explanation> {
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new UsageError(`--server ${JSON.stringify(server)} is not a URL`);
  }
  const url = new URL('/debug/proxy/explain', base);
  url.searchParams.set('src', query.src);
  url.searchParams.set('dst', query.dst);
  url.searchParams.set('dport', String(query.dport));
  url.searchParams.set('proto', (query.proto ?? 'TCP').toLowerCase());
  if (query.from) url.searchParams.set('from', query.from);
  if (query.iif) url.searchParams.set('iif', query.iif);
  if (kernel) url.searchParams.set('kernel', '1');
  if (conntrack) url.searchParams.set('conntrack', '1');
  let response: Response;
  try {
    response = await io.fetch(url.toString(), {
      headers: { [DEBUG_HEADER]: '1', Accept: 'application/json' },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    throw new Error(
      `cannot reach kube-proxy at ${base.origin}: ${(error as Error).message} (is it running? use --server, --state or -f)`,
      { cause: error },
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(
      `${url.origin}${url.pathname} answered ${response.status} with no JSON: ${text.slice(0, 200)}`,
    );
  }
  if (!response.ok) {
    const message = (body as { error?: unknown }).error;
    throw new Error(typeof message === 'string' ? message : `${url.pathname} answered ${response.status}`);
  }
  const answer = body as Partial<Explanation>;
  if (answer.apiVersion !== EXPLAIN_API_VERSION || answer.kind !== 'Explanation') {
    throw new Error(`${url.origin}${url.pathname} did not answer with an ${EXPLAIN_API_VERSION} Explanation`);
  }
  return body as Explanation;
}

function render(explanation: Explanation, format: string): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(explanation, null, 2)}\n`;
    case 'yaml':
      return stringify(explanation);
    default:
      return formatExplanation(explanation);
  }
}

/** Runs `kube-proxy explain ARGS`; the exit code: 0 answered, 1 bad input or no state. */
export async function runExplain(argv: readonly string[], io: CliIO = PROCESS_IO): Promise<number> {
  try {
    const { own, rest, help } = splitArgs(argv);
    if (help) {
      io.stdout(USAGE);
      return 0;
    }
    const format = own.get('o') ?? 'text';
    if (format !== 'text' && format !== 'json' && format !== 'yaml') {
      throw new UsageError(`-o ${JSON.stringify(format)} is not one of text, json, yaml`);
    }
    const query = parsePacketQuery((name) => own.get(name));
    const sources = ['server', 'state', 'f'].filter((name) => own.has(name));
    if (sources.length > 1) throw new UsageError(`--${sources.join(' and --')}: give one source of state`);
    for (const live of ['kernel', 'conntrack']) {
      if (own.has(live) && (own.has('state') || own.has('f'))) {
        throw new UsageError(`--${live} needs the running proxy (--server): it reads the node's kernel`);
      }
    }
    if ((own.has('node') || own.has('mode')) && !own.has('f')) {
      throw new UsageError('--node and --mode apply only with -f');
    }
    let explanation: Explanation;
    if (own.has('state') || own.has('f')) {
      explanation = explain(await localState(own, rest, io), query);
    } else {
      if (rest.length > 0) throw new UsageError(`flag ${rest[0] ?? ''} applies only with -f`);
      explanation = await fromServer(
        own.get('server') ?? DEFAULT_SERVER,
        query,
        own.get('kernel') === 'true',
        own.get('conntrack') === 'true',
        io,
      );
    }
    io.stdout(render(explanation, format));
    return 0;
  } catch (error) {
    io.stderr(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof UsageError || error instanceof ExplainError)
      io.stderr("Run 'kube-proxy explain --help' for usage.\n");
    return 1;
  }
}
