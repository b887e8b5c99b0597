// --profiling: what a Node operator uses instead of Go's pprof, under the same paths on the
// metrics server, only when enableProfiling is on (upstream mounts /debug/pprof/ and
// /debug/flags/v then, and nothing otherwise):
//   /debug/pprof/            an index of what is served
//   /debug/pprof/profile     a CPU profile of ?seconds=N (default 30, as Go's), V8's .cpuprofile
//                            JSON (Chrome DevTools, speedscope), taken with node:inspector
//   /debug/pprof/heap        a V8 heap snapshot (.heapsnapshot, Chrome DevTools)
//   /debug/pprof/cmdline     the command line, NUL-separated, as Go's
//   /debug/flags/v           PUT a number: the log verbosity from now on
// Go-only profiles (goroutine, block, mutex, trace, ...) answer 404 with the reason.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Session } from 'node:inspector/promises';
import { pipeline } from 'node:stream/promises';
import { getHeapSnapshot } from 'node:v8';
import { configureLogging, log } from '../log/log.ts';

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };
const MAX_PROFILE_SECONDS = 600;

const INDEX = `kube-proxy-ts profiles (Node.js, not Go's pprof format):
/debug/pprof/profile?seconds=30  CPU profile (.cpuprofile JSON: Chrome DevTools, speedscope)
/debug/pprof/heap                heap snapshot (.heapsnapshot JSON: Chrome DevTools)
/debug/pprof/cmdline             the command line
PUT /debug/flags/v               set the log verbosity (body: a number)
`;

/** Served only with enableProfiling. */
export const PROFILING_PATHS = [
  '/debug/pprof/',
  '/debug/pprof/profile',
  '/debug/pprof/heap',
  '/debug/pprof/cmdline',
  '/debug/flags/v',
] as const;

let cpuProfileRunning = false;

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, TEXT);
  res.end(body);
}

async function cpuProfile(seconds: number): Promise<string> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const { profile } = await session.post('Profiler.stop');
    return JSON.stringify(profile);
  } finally {
    session.disconnect();
  }
}

/** Answers whether it handled the request (a path under /debug/pprof or /debug/flags). */
export async function profilingRoutes(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname;
  if (path === '/debug/flags/v') {
    if (req.method !== 'PUT') {
      send(res, 405, 'only PUT is allowed\n');
      return true;
    }
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const level = Number(body.trim());
    if (!/^\d+$/.test(body.trim()) || level > 2 ** 31 - 1) {
      send(res, 400, `invalid verbosity ${JSON.stringify(body.trim())}\n`);
      return true;
    }
    configureLogging({ verbosity: level });
    log.info('Log verbosity changed through /debug/flags/v', { v: level });
    send(res, 200, `successfully set klog.logging.verbosity to ${level}`);
    return true;
  }
  if (path !== '/debug/pprof' && !path.startsWith('/debug/pprof/')) return false;
  const name = path.slice('/debug/pprof/'.length);
  switch (name) {
    case '':
      send(res, 200, INDEX);
      return true;
    case 'cmdline':
      send(res, 200, process.argv.join('\x00'));
      return true;
    case 'profile': {
      const raw = url.searchParams.get('seconds') ?? '30';
      const seconds = Number(raw);
      if (!/^\d+$/.test(raw) || seconds < 1 || seconds > MAX_PROFILE_SECONDS) {
        send(
          res,
          400,
          `bad seconds ${JSON.stringify(raw)}: a whole number from 1 to ${MAX_PROFILE_SECONDS}\n`,
        );
        return true;
      }
      if (cpuProfileRunning) {
        send(res, 500, 'Could not enable CPU profiling: a CPU profile is already being taken\n');
        return true;
      }
      cpuProfileRunning = true;
      try {
        const body = await cpuProfile(seconds);
        res.writeHead(200, {
          'Content-Type': 'application/json',
          'Content-Disposition': 'attachment; filename="kube-proxy.cpuprofile"',
          'X-Content-Type-Options': 'nosniff',
        });
        res.end(body);
      } finally {
        cpuProfileRunning = false;
      }
      return true;
    }
    case 'heap':
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Disposition': 'attachment; filename="kube-proxy.heapsnapshot"',
        'X-Content-Type-Options': 'nosniff',
      });
      await pipeline(getHeapSnapshot(), res);
      return true;
    default:
      send(res, 404, `Unknown profile: ${name} (Go-only profiles are not available in kube-proxy-ts)\n`);
      return true;
  }
}
