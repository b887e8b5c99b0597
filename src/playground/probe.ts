// A client: connects (TCP) or sends (UDP) to an address several times and prints one JSON line
// per attempt: {"ok":true,"name":...,"peer":...,"ms":...} or {"ok":false,"error":"ECONNREFUSED"}.
// Each attempt uses a fresh source port, so conntrack entries from earlier attempts don't decide
// where it goes. Run inside a client namespace:
//   node probe.ts --proto tcp --host 10.96.0.10 --port 80 --count 20 --timeout 1000 [--source IP]
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    proto: { type: 'string', default: 'tcp' },
    host: { type: 'string' },
    port: { type: 'string' },
    count: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '1000' },
    source: { type: 'string' },
  },
});
const host = values.host ?? '127.0.0.1';
const port = Number(values.port);
const timeoutMs = Number(values.timeout);

interface Outcome {
  ok: boolean;
  name?: string;
  peer?: string;
  error?: string;
  ms: number;
}

function parseReply(text: string): { name?: string; peer?: string } {
  try {
    return JSON.parse(text.trim().split('\n')[0] ?? '') as { name?: string; peer?: string };
  } catch {
    return {};
  }
}

function tcpOnce(): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let data = '';
    const socket = connect({
      host,
      port,
      ...(values.source ? { localAddress: values.source } : {}),
    });
    const finish = (outcome: Omit<Outcome, 'ms'>) => {
      socket.destroy();
      resolve({ ...outcome, ms: Math.round((performance.now() - started) * 100) / 100 });
    };
    socket.setTimeout(timeoutMs, () => finish({ ok: false, error: 'ETIMEDOUT' }));
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('end', () => finish({ ok: true, ...parseReply(data) }));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish({ ok: false, error: error.code ?? error.message }),
    );
  });
}

function udpOnce(): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => finish({ ok: false, error: 'ETIMEDOUT' }), timeoutMs);
    const finish = (outcome: Omit<Outcome, 'ms'>) => {
      clearTimeout(timer);
      socket.close();
      resolve({ ...outcome, ms: Math.round((performance.now() - started) * 100) / 100 });
    };
    socket.on('message', (message) => finish({ ok: true, ...parseReply(message.toString()) }));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish({ ok: false, error: error.code ?? error.message }),
    );
    const send = () => socket.send('probe', port, host);
    if (values.source) socket.bind(0, values.source, send);
    else send();
  });
}

const count = Number(values.count);
for (let i = 0; i < count; i++) {
  const outcome = values.proto === 'udp' ? await udpOnce() : await tcpOnce();
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}
