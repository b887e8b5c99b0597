// A backend "pod" of the data-path benchmark (bench/datapath.ts), three TCP ports:
//   --short PORT  writes one byte and closes (the server closes first, so TIME_WAIT stays on the
//                 server side and a connection-rate loop does not run out of client ports)
//   --sink PORT   reads and discards everything; ends its side once the client has ended, so the
//                 client knows every byte it sent arrived (bulk throughput)
//   --echo PORT   sends back whatever it reads (request-response latency, idle connections)
// Listens on every address of the pod; prints `ready` once all three listen.
//   node bench/datapath-backend.ts --short 9000 --sink 9001 --echo 9002
import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    short: { type: 'string', default: '9000' },
    sink: { type: 'string', default: '9001' },
    echo: { type: 'string', default: '9002' },
  },
  strict: true,
});

const ONE_BYTE = Buffer.from('x');

const handlers: Record<'short' | 'sink' | 'echo', (socket: Socket) => void> = {
  short: (socket) => socket.end(ONE_BYTE),
  sink: (socket) => {
    socket.on('end', () => socket.end());
    socket.resume();
  },
  // pipe() follows back-pressure both ways and ends the write side when the client ends.
  echo: (socket) => socket.pipe(socket),
};

const listening = (Object.keys(handlers) as (keyof typeof handlers)[]).map((kind) => {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    handlers[kind](socket);
  });
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: Number(values[kind]), host: '::', ipv6Only: false, backlog: 4096 }, resolve);
  });
});
await Promise.all(listening);
process.stdout.write('ready\n');
