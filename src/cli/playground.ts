// `kube-proxy playground`: a small cluster in network namespaces with this kube-proxy running in
// node1, and a prompt with kubectl's verbs; after every change, the sync it caused and the rule
// diff (docs/playground.md). Needs root (it creates namespaces); removes everything on exit,
// Ctrl-C or failure.
import { runRepl } from '../playground/repl.ts';
import { Playground } from '../playground/session.ts';
import { IS_ROOT } from '../playground/netns.ts';
import type { ProxyModeUnderTest } from '../playground/cluster.ts';

const USAGE = `Usage: kube-proxy playground [--proxy-mode iptables|nftables|userspace] [-- KUBE-PROXY-FLAGS…]

A sandbox cluster in network namespaces (node1 runs this kube-proxy against an in-repo API
server, node2 hosts pods, an external host sits on the LAN) and a prompt with kubectl's verbs:
apply -f, get, describe, delete, plus curl --from POD and explain. After every change it prints
the sync kube-proxy made and the rules it added and removed. Reads commands from stdin when it is
not a terminal. Lessons: docs/playground.md. Needs root.

  --proxy-mode MODE   the mode kube-proxy runs in (default nftables)
  -- FLAGS…           more kube-proxy flags, e.g. -- --masquerade-all
`;

const MODES: readonly ProxyModeUnderTest[] = ['iptables', 'nftables', 'userspace', 'ipvs'];

export async function runPlayground(argv: readonly string[]): Promise<number> {
  let mode: ProxyModeUnderTest = 'nftables';
  const proxyArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      proxyArgs.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(USAGE);
      return 0;
    }
    const match = /^--proxy-mode(?:=(.*))?$/.exec(arg);
    if (!match) {
      process.stderr.write(`Error: unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
      return 1;
    }
    const value = match[1] ?? argv[++i] ?? '';
    const known = MODES.find((m) => m === value);
    if (known === undefined) {
      process.stderr.write(
        `Error: --proxy-mode ${JSON.stringify(value)} is not one of ${MODES.join(', ')}\n`,
      );
      return 1;
    }
    mode = known;
  }
  if (!IS_ROOT) {
    process.stderr.write(
      'kube-proxy playground needs root: it creates network namespaces and programs rules in them.\n',
    );
    return 1;
  }
  const out = (text: string) => process.stdout.write(text);
  out(`Building the playground (${mode} mode)…\n`);
  let playground: Playground;
  try {
    playground = await Playground.start({ mode, out, proxyArgs });
  } catch (error) {
    process.stderr.write(`Error: the playground did not start: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    out(`${playground.describeCluster()}\n`);
    const failed = await runRepl(
      { input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY },
      playground,
    );
    return failed > 0 && !process.stdin.isTTY ? 1 : 0;
  } finally {
    out('Removing the playground…\n');
    await playground.destroy();
    out('done: every namespace of the playground is gone\n');
  }
}
