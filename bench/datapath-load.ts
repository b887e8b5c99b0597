// The load generator of the data-path benchmark (bench/datapath.ts), run inside the client pod.
// Our own small Node code, bounded in time and count, talking only to the addresses it is given
// (the namespaces' test addresses). Each test prints one JSON line on stdout. With several
// --hosts, connections go to them in turn (the direct baseline spreads over the backends the way
// the proxies do).
//   connect --hosts H --port P --seconds S --concurrency C --max N
//       short connections in C parallel loops: connect, read the backend's byte, close
//   bulk    --hosts H --port P --seconds S --streams N
//       N streams write to a sink as fast as back-pressure allows for S seconds, then end; done
//       when the sink has ended every stream (every byte arrived)
//   latency --hosts H --port P --seconds S --rate R --connections K [--size 64] [--warmup 1]
//       R requests/s of SIZE bytes over K persistent connections to an echo port, open loop;
//       each latency is from the write to the last byte of its echo
//   idle    --hosts H --port P --count N [--max-seconds 600]
//       opens N connections to an echo port (one round trip each, so the proxy holds both sides),
//       prints the count, then holds them until SIGTERM (or max-seconds)
//   ready   --hosts H --port ECHO --short SHORT [--timeout-ms 30000]
//       waits until an echo round trip and a short connection work 6 times in a row
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { percentile } from './results.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    hosts: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '9000' },
    short: { type: 'string', default: '9000' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    max: { type: 'string', default: '200000' },
    streams: { type: 'string', default: '1' },
    rate: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '10' },
    size: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '1' },
    count: { type: 'string', default: '100' },
    'max-seconds': { type: 'string', default: '600' },
    'timeout-ms': { type: 'string', default: '30000' },
  },
  strict: true,
});

const hosts = values.hosts.split(',').filter(Boolean);
let nextHost = 0;
function host(): string {
  const h = hosts[nextHost++ % hosts.length];
  if (h === undefined) throw new Error('load: --hosts is empty');
  return h;
}
const num = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`load: --${name} must be a number >= 0`);
  return n;
};
const print = (result: object): void => {
  process.stdout.write(`${JSON.stringify(result)}\n`);
};

/** Connects, with a deadline; resolves undefined on error or timeout. */
function open(port: number, timeoutMs = 5000): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: host(), port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(undefined);
    });
  });
}

/** One short connection: connect, read until the server closes, close. True when a byte came. */
function shortConnection(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: host(), port });
    let got = false;
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', () => (got = true));
    socket.once('end', () => socket.destroy());
    socket.once('error', () => socket.destroy());
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

async function connectRate(): Promise<void> {
  const port = num('port');
  const deadline = performance.now() + num('seconds') * 1000;
  const max = num('max');
  let started = 0;
  let ok = 0;
  let failures = 0;
  const begin = performance.now();
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline && started < max) {
      started++;
      if (await shortConnection(port)) ok++;
      else failures++;
    }
  };
  await Promise.all(Array.from({ length: num('concurrency') }, loop));
  const seconds = (performance.now() - begin) / 1000;
  print({ connections: ok, failures, seconds, perSecond: ok / seconds });
}

async function bulk(): Promise<void> {
  const port = num('port');
  const streams = num('streams');
  const chunk = Buffer.alloc(64 * 1024, 120);
  const sockets = await Promise.all(Array.from({ length: streams }, () => open(port)));
  const live = sockets.filter((s): s is Socket => s !== undefined);
  const begin = performance.now();
  const deadline = begin + num('seconds') * 1000;
  let failures = streams - live.length;
  const done = live.map(
    (socket) =>
      new Promise<number>((resolve) => {
        let failed = false;
        const pump = (): void => {
          while (performance.now() < deadline) {
            if (!socket.write(chunk)) {
              socket.once('drain', pump);
              return;
            }
          }
          socket.end();
        };
        socket.on('data', () => undefined);
        socket.once('error', () => (failed = true));
        // The sink ends its side only after reading everything this stream sent.
        socket.once('close', () => {
          if (failed) failures++;
          resolve(failed ? 0 : socket.bytesWritten);
        });
        pump();
      }),
  );
  const bytes = (await Promise.all(done)).reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - begin) / 1000;
  print({ bytes, failures, seconds, bytesPerSecond: bytes / seconds });
}

/** A persistent connection carrying fixed-size requests; responses complete in order. */
class Pipe {
  private readonly sentAt: number[] = [];
  private pending = 0;
  private readonly size: number;
  readonly socket: Socket;

  constructor(socket: Socket, size: number, onLatency: (ms: number) => void) {
    this.socket = socket;
    this.size = size;
    socket.on('data', (data: Buffer) => {
      this.pending += data.length;
      while (this.pending >= this.size) {
        this.pending -= this.size;
        const at = this.sentAt.shift();
        if (at !== undefined) onLatency(performance.now() - at);
      }
    });
  }

  get outstanding(): number {
    return this.sentAt.length;
  }

  send(payload: Buffer): void {
    this.sentAt.push(performance.now());
    this.socket.write(payload);
  }
}

async function latency(): Promise<void> {
  const port = num('port');
  const size = Math.max(1, num('size'));
  const rate = num('rate');
  const payload = Buffer.alloc(size, 97);
  const sockets = await Promise.all(Array.from({ length: num('connections') }, () => open(port)));
  if (sockets.some((s) => s === undefined)) throw new Error('load: a latency connection failed');
  let measuring = false;
  const samples: number[] = [];
  const pipes = sockets.map(
    (s) => new Pipe(s as Socket, size, (ms) => (measuring ? samples.push(ms) : undefined)),
  );
  const run = async (seconds: number): Promise<{ sent: number; seconds: number }> => {
    const total = Math.round(rate * seconds);
    const begin = performance.now();
    let sent = 0;
    // Open loop: every tick sends the requests that are due, whatever the answers are doing.
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor(((performance.now() - begin) * rate) / 1000) + 1);
        while (sent < due) pipes[sent++ % pipes.length]?.send(payload);
        if (sent >= total) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    const deadline = performance.now() + 5000;
    while (pipes.some((p) => p.outstanding > 0) && performance.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 5));
    return { sent, seconds: (performance.now() - begin) / 1000 };
  };
  await run(num('warmup'));
  measuring = true;
  const result = await run(num('seconds'));
  measuring = false;
  const lost = pipes.reduce((n, p) => n + p.outstanding, 0);
  for (const p of pipes) p.socket.destroy();
  print({
    requests: samples.length,
    failures: lost,
    perSecond: result.sent / result.seconds,
    p50: percentile(samples, 0.5),
    p99: percentile(samples, 0.99),
    max: percentile(samples, 1),
  });
}

/** Connects and makes one round trip, so a proxy has connected the backend side too. */
async function roundTrip(port: number, timeoutMs: number): Promise<Socket | undefined> {
  const socket = await open(port, timeoutMs);
  if (!socket) return undefined;
  const echoed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('data', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
    socket.write('i');
  });
  if (echoed) return socket;
  socket.destroy();
  return undefined;
}

async function idle(): Promise<void> {
  const port = num('port');
  const count = num('count');
  const held: Socket[] = [];
  let failures = 0;
  let next = 0;
  // At most 200 handshakes in flight: the proxy's accept queue is not what this measures.
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const socket = await roundTrip(port, 10_000);
      if (socket) {
        socket.on('error', () => undefined);
        held.push(socket);
      } else failures++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(200, count) }, worker));
  const release = (): void => {
    for (const s of held) s.destroy();
    process.exit(0);
  };
  process.once('SIGTERM', release);
  setTimeout(release, num('max-seconds') * 1000).unref();
  print({ open: held.length, failures });
  // Keeps the process alive while the connections are held.
  setInterval(() => undefined, 60_000);
}

async function ready(): Promise<void> {
  const echo = num('port');
  const short = num('short');
  const deadline = performance.now() + num('timeout-ms');
  let streak = 0;
  let last = '';
  // Six in a row: every backend (round robin over three) answered twice on both ports.
  while (streak < 6) {
    if (performance.now() > deadline) throw new Error(`load: not ready in time (${last})`);
    const socket = await roundTrip(echo, 1000);
    socket?.destroy();
    const ok = socket !== undefined && (await shortConnection(short));
    if (ok) streak++;
    else {
      streak = 0;
      last = socket ? `no byte from port ${short}` : `no echo from port ${echo}`;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  print({ ready: true });
}

const tests: Record<string, () => Promise<void>> = { connect: connectRate, bulk, latency, idle, ready };
const chosen = tests[positionals[0] ?? ''];
if (!chosen) {
  process.stderr.write(`load: first argument must be one of ${Object.keys(tests).join(', ')}\n`);
  process.exit(2);
}
await chosen();
