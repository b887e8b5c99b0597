// `kube-proxy verify`: asks the running proxy (its /debug/proxy/verify) to read its rules back
// from the kernel and compare them with what its last successful sync applied. It runs inside the
// proxy, which holds that state and lives in the node's network namespace. Exit codes: 0 the
// kernel matches, 1 drift, 2 the check could not be made.
import { VERIFY_API_VERSION, formatVerify, type VerifyReport } from '../verify/verify.ts';
import { DEBUG_HEADER } from '../server/debug-routes.ts';
import { DEFAULT_SERVER, PROCESS_IO, type CliIO } from './explain.ts';

const USAGE = `Usage: kube-proxy verify [--server URL] [--no-resync] [-o text|json]

Reads the proxy's rules back from the kernel and compares them with what its last successful sync
applied; prints the differences grouped by Service port with their effect on traffic. On drift
the proxy schedules a full sync (unless --no-resync). Exit code 0: no drift; 1: drift; 2: error.

  --server URL     the proxy's metrics address (default ${DEFAULT_SERVER})
  --no-resync      only report; do not ask for a full sync
  -o text|json     default text
`;

export async function runVerify(argv: readonly string[], io: CliIO = PROCESS_IO): Promise<number> {
  let server = DEFAULT_SERVER;
  let format = 'text';
  let resync = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag = '', inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`flag ${flag} needs a value`);
      return v;
    };
    try {
      if (flag === '-h' || flag === '--help') {
        io.stdout(USAGE);
        return 0;
      } else if (flag === '--server') server = value();
      else if (flag === '-o' || flag === '--output') format = value();
      else if (flag === '--no-resync') resync = false;
      else throw new Error(`unknown flag or argument ${JSON.stringify(arg)}`);
    } catch (error) {
      io.stderr(`Error: ${(error as Error).message}\nRun 'kube-proxy verify --help' for usage.\n`);
      return 2;
    }
  }
  if (format !== 'text' && format !== 'json') {
    io.stderr(`Error: -o ${JSON.stringify(format)} is not one of text, json\n`);
    return 2;
  }
  try {
    const url = new URL('/debug/proxy/verify', server);
    if (!resync) url.searchParams.set('resync', 'false');
    let response: Response;
    try {
      response = await io.fetch(url.toString(), {
        headers: { [DEBUG_HEADER]: '1', Accept: 'application/json' },
        signal: AbortSignal.timeout(120_000),
      });
    } catch (error) {
      throw new Error(`cannot reach kube-proxy at ${url.origin}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const text = await response.text();
    const body = JSON.parse(text) as Partial<VerifyReport> & { error?: string };
    if (!response.ok || body.apiVersion !== VERIFY_API_VERSION) {
      throw new Error(body.error ?? `${url.pathname} answered ${response.status}`);
    }
    const report = body as VerifyReport;
    io.stdout(format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatVerify(report));
    if (report.families.some((f) => f.error !== undefined)) return 2;
    return report.drift ? 1 : 0;
  } catch (error) {
    io.stderr(`Error: ${(error as Error).message}\n`);
    return 2;
  }
}
