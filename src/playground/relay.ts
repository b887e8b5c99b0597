// Runs inside node1: relays connections on a unix socket to a TCP address on node1's loopback
// (kube-proxy's metrics server, where the debug routes answer loopback peers only). Unix sockets
// are not namespaced, so the playground, in the machine's own namespace, reaches the proxy's
// /debug/proxy routes without any link into node1.
//   node relay.ts --socket /tmp/x/debug.sock --to 127.0.0.1:10249
// Prints `ready` once listening; SIGTERM stops it.
import { rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { socket: { type: 'string' }, to: { type: 'string' } } });
const socketPath = values.socket ?? '';
const match = /^(.+):(\d+)$/.exec(values.to ?? '');
if (socketPath === '' || !match) {
  process.stderr.write('relay: usage: relay --socket PATH --to HOST:PORT\n');
  process.exit(2);
}
const host = match[1] ?? '127.0.0.1';
const port = Number(match[2]);
rmSync(socketPath, { force: true });
const server = createServer((client) => {
  const upstream = connect({ host, port });
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.pipe(upstream).pipe(client);
});
server.listen(socketPath, () => process.stdout.write('ready\n'));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
