// The playground's command language: kubectl's verbs and shapes (`get svc -o wide`,
// `describe svc/web`, `delete -f FILE`, `apply -f - <<EOF`), plus `explain`, `curl --from` and
// `rules`. Parsing only: pure, so every error message is tested without a cluster.

export type Kind = 'Service' | 'EndpointSlice' | 'Pod' | 'Deployment' | 'Node';

const KINDS: Readonly<Record<string, Kind>> = {
  svc: 'Service',
  service: 'Service',
  services: 'Service',
  eps: 'EndpointSlice',
  endpointslice: 'EndpointSlice',
  endpointslices: 'EndpointSlice',
  po: 'Pod',
  pod: 'Pod',
  pods: 'Pod',
  deploy: 'Deployment',
  deployment: 'Deployment',
  deployments: 'Deployment',
  no: 'Node',
  node: 'Node',
  nodes: 'Node',
};

export type OutputFormat = 'table' | 'wide' | 'yaml' | 'json';

export interface ObjectRef {
  readonly kind: Kind;
  readonly name: string;
  readonly namespace: string;
}

export type Command =
  | { readonly verb: 'apply'; readonly file: string }
  | { readonly verb: 'delete'; readonly file: string }
  | { readonly verb: 'delete'; readonly refs: readonly ObjectRef[] }
  | {
      readonly verb: 'get';
      readonly kind: Kind | 'all';
      readonly name?: string;
      /** '' = every namespace (-A). */
      readonly namespace: string;
      readonly output: OutputFormat;
    }
  | { readonly verb: 'describe'; readonly ref: ObjectRef }
  | {
      readonly verb: 'explain';
      readonly from: string;
      readonly dst: string;
      readonly dport: number;
      readonly proto: 'tcp' | 'udp';
      readonly output: 'text' | 'json';
    }
  | {
      readonly verb: 'curl';
      readonly from: string;
      readonly dst: string;
      readonly dport: number;
      readonly count: number;
    }
  | { readonly verb: 'rules' }
  | { readonly verb: 'help' }
  | { readonly verb: 'exit' }
  | { readonly verb: 'nothing' };

export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/** Splits a line into words; single and double quotes group, `#` starts a comment. */
export function words(line: string): string[] {
  const out: string[] = [];
  let current: string | undefined;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else current = (current ?? '') + ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      current ??= '';
    } else if (ch === '#' && current === undefined) break;
    else if (/\s/.test(ch)) {
      if (current !== undefined) out.push(current);
      current = undefined;
    } else current = (current ?? '') + ch;
  }
  if (quote !== undefined) throw new CommandError(`unterminated ${quote} quote`);
  if (current !== undefined) out.push(current);
  return out;
}

/** `apply -f - <<EOF`: the command without the here-document marker, and the marker. */
export function hereDocument(line: string): { line: string; marker: string } | undefined {
  const match = /^(.*?)\s*<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?\s*$/.exec(line);
  if (!match) return undefined;
  return { line: match[1] ?? '', marker: match[2] ?? '' };
}

function kindOf(word: string): Kind {
  const kind = KINDS[word.toLowerCase()];
  if (kind === undefined) {
    throw new CommandError(
      `the server doesn't have a resource type "${word}" (the playground has svc, eps, pod, deploy, node)`,
    );
  }
  return kind;
}

interface Flags {
  readonly positional: string[];
  readonly values: Map<string, string>;
}

/** Flags with values (`-f x`, `--from=x`), switches, and the rest in order. */
function flags(
  args: readonly string[],
  withValue: ReadonlySet<string>,
  switches: ReadonlySet<string>,
): Flags {
  const positional: string[] = [];
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const match = /^(--?[A-Za-z][A-Za-z-]*)(?:=(.*))?$/.exec(arg);
    if (!match || arg === '-') {
      positional.push(arg);
      continue;
    }
    const name = match[1] ?? '';
    if (switches.has(name)) {
      values.set(name, 'true');
      continue;
    }
    if (!withValue.has(name)) throw new CommandError(`unknown flag: ${name}`);
    const value = match[2] ?? args[++i];
    if (value === undefined) throw new CommandError(`flag needs an argument: ${name}`);
    values.set(name, value);
  }
  return { positional, values };
}

function output(value: string | undefined): OutputFormat {
  switch (value) {
    case undefined:
      return 'table';
    case 'wide':
    case 'yaml':
    case 'json':
      return value;
    default:
      throw new CommandError(
        `unable to match a printer suitable for the output format "${value}", allowed formats are: json,wide,yaml`,
      );
  }
}

/** `svc/web`, or `svc web [other…]`: the objects a get/describe/delete names. */
function refsOf(positional: readonly string[], namespace: string): ObjectRef[] {
  const [first, ...rest] = positional;
  if (first === undefined) throw new CommandError('you must specify the type of resource');
  if (first.includes('/')) {
    return positional.map((word) => {
      const [kind, name, extra] = word.split('/');
      if (kind === undefined || name === undefined || name === '' || extra !== undefined) {
        throw new CommandError(`there is no need to mix TYPE/NAME and TYPE NAME: ${JSON.stringify(word)}`);
      }
      return { kind: kindOf(kind), name, namespace };
    });
  }
  const kind = kindOf(first);
  return rest.map((name) => ({ kind, name, namespace }));
}

/** `10.96.0.10:80` → address and port. */
function destination(text: string | undefined, verb: string): { dst: string; dport: number } {
  const match = /^\[?([0-9a-fA-F.:]+?)\]?:(\d{1,5})$/.exec(text ?? '');
  const dport = Number(match?.[2]);
  if (!match || dport < 1 || dport > 65535) {
    throw new CommandError(`${verb}: give the destination as ADDRESS:PORT, e.g. 10.96.0.10:80`);
  }
  return { dst: match[1] ?? '', dport };
}

export function parseCommand(line: string): Command {
  const [verb, ...args] = words(line);
  switch (verb) {
    case undefined:
      return { verb: 'nothing' };
    case 'help':
    case '?':
      return { verb: 'help' };
    case 'exit':
    case 'quit':
      return { verb: 'exit' };
    case 'rules':
      if (args.length > 0) throw new CommandError('rules takes no arguments');
      return { verb: 'rules' };
    case 'apply': {
      const f = flags(args, new Set(['-f', '--filename']), new Set());
      const file = f.values.get('-f') ?? f.values.get('--filename');
      if (file === undefined)
        throw new CommandError('must specify -f FILE (or -f - to read manifests that follow)');
      if (f.positional.length > 0)
        throw new CommandError(`unexpected argument ${JSON.stringify(f.positional[0])}`);
      return { verb: 'apply', file };
    }
    case 'delete': {
      const f = flags(args, new Set(['-f', '--filename', '-n', '--namespace']), new Set());
      const file = f.values.get('-f') ?? f.values.get('--filename');
      if (file !== undefined) {
        if (f.positional.length > 0) throw new CommandError('delete takes -f FILE or objects, not both');
        return { verb: 'delete', file };
      }
      const refs = refsOf(f.positional, f.values.get('-n') ?? f.values.get('--namespace') ?? 'default');
      if (refs.length === 0) throw new CommandError('resource(s) were provided, but no name was specified');
      return { verb: 'delete', refs };
    }
    case 'get': {
      const f = flags(
        args,
        new Set(['-o', '--output', '-n', '--namespace']),
        new Set(['-A', '--all-namespaces']),
      );
      const [what, name, extra] = f.positional;
      if (what === undefined)
        throw new CommandError(
          'you must specify the type of resource to get (svc, eps, pod, deploy, node, all)',
        );
      if (extra !== undefined) throw new CommandError(`get one name at a time, not ${JSON.stringify(extra)}`);
      const all = f.values.has('-A') || f.values.has('--all-namespaces');
      const namespace = all ? '' : (f.values.get('-n') ?? f.values.get('--namespace') ?? 'default');
      const out = output(f.values.get('-o') ?? f.values.get('--output'));
      if (what.includes('/')) {
        const [ref] = refsOf([what], namespace);
        if (!ref || name !== undefined) throw new CommandError(`get ${what}: one object`);
        return { verb: 'get', kind: ref.kind, name: ref.name, namespace, output: out };
      }
      const kind = what === 'all' ? 'all' : kindOf(what);
      return { verb: 'get', kind, ...(name !== undefined ? { name } : {}), namespace, output: out };
    }
    case 'describe': {
      const f = flags(args, new Set(['-n', '--namespace']), new Set());
      const refs = refsOf(f.positional, f.values.get('-n') ?? f.values.get('--namespace') ?? 'default');
      const [ref] = refs;
      if (!ref || refs.length > 1) throw new CommandError('describe one object: describe svc/web');
      return { verb: 'describe', ref };
    }
    case 'explain': {
      const f = flags(args, new Set(['--from', '--proto', '-o', '--output']), new Set());
      const [target, extra] = f.positional;
      if (extra !== undefined)
        throw new CommandError(`explain: unexpected argument ${JSON.stringify(extra)}`);
      const proto = (f.values.get('--proto') ?? 'tcp').toLowerCase();
      if (proto !== 'tcp' && proto !== 'udp')
        throw new CommandError(`explain: --proto is tcp or udp, not ${JSON.stringify(proto)}`);
      const out = f.values.get('-o') ?? f.values.get('--output') ?? 'text';
      if (out !== 'text' && out !== 'json')
        throw new CommandError(`explain: -o is text or json, not ${JSON.stringify(out)}`);
      return {
        verb: 'explain',
        from: f.values.get('--from') ?? 'client',
        ...destination(target, 'explain'),
        proto,
        output: out,
      };
    }
    case 'curl': {
      const f = flags(args, new Set(['--from', '--count', '-n']), new Set());
      const [target, extra] = f.positional;
      if (extra !== undefined) throw new CommandError(`curl: unexpected argument ${JSON.stringify(extra)}`);
      const countText = f.values.get('--count') ?? f.values.get('-n') ?? '1';
      const count = Number(countText);
      if (!Number.isInteger(count) || count < 1 || count > 200)
        throw new CommandError('curl: --count is 1-200');
      const from = f.values.get('--from');
      if (from === undefined)
        throw new CommandError('curl: say where from: --from POD, --from node1 or --from external');
      return {
        verb: 'curl',
        from,
        ...destination(target?.replace(/^https?:\/\//, '').replace(/\/$/, ''), 'curl'),
        count,
      };
    }
    default:
      throw new CommandError(`unknown command ${JSON.stringify(verb)} (type help)`);
  }
}

export const HELP = `Commands (kubectl's shapes; objects live in namespace default unless -n says otherwise):
  apply -f FILE|DIR|-        create or update Services, EndpointSlices, Pods, Deployments
                             (-f - reads the manifests that follow, up to a line "..." or the
                             end of input; "apply -f - <<EOF" reads up to a line "EOF")
  get svc|eps|pod|deploy|node|all [NAME] [-o wide|yaml|json] [-n NS|-A]
  describe svc/NAME | pod/NAME | deploy/NAME | eps/NAME | node/NAME
  delete svc/NAME … | delete pod NAME … | delete -f FILE|-
  curl --from POD|node1|external [--count N] ADDRESS:PORT
                             real HTTP requests from that pod or host; prints which pod answered
  explain [--from POD|node1|external] [--proto tcp|udp] [-o json] ADDRESS:PORT
                             where that packet goes on node1 and why (the live proxy's answer)
  rules                      node1's kube-proxy rules as the kernel lists them
  help, exit (or Ctrl-D)
After every change: the sync it caused on node1 and the rules it added (+) and removed (-).
Pods get an address on their node and an echo server on each container port (HTTP for TCP);
annotation playground.kube-proxy-ts/ready: "false" makes a pod not ready.
`;
