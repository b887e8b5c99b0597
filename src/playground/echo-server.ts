// A backend "pod": answers every TCP connection and UDP datagram with one JSON line naming
// itself and the source address it saw, so tests can assert which endpoint answered and whether
// the client was masqueraded. Started inside a pod namespace:
//   node echo-server.ts --name pod-a --tcp 8080,8443 --udp 5353 [--hold 9090]
// `--http 80` serves the same answer as an HTTP response (plain text), for curl in the demo.
// Prints `ready` on stdout once every socket listens.
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    tcp: { type: 'string', default: '' },
    udp: { type: 'string', default: '' },
    http: { type: 'string', default: '' },
    hold: { type: 'string', default: '' },
  },
});
const name = values.name ?? 'unnamed';
const ports = (list: string) => list.split(',').filter(Boolean).map(Number);

function reply(peer: string, port: number, proto: string): string {
  // IPv4-mapped addresses come from the dual-stack socket; show the plain IPv4 form.
  const address = peer.startsWith('::ffff:') ? peer.slice(7) : peer;
  return `${JSON.stringify({ name, peer: address, port, proto })}\n`;
}

const listening: Promise<void>[] = [];
for (const port of ports(values.tcp)) {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(reply(socket.remoteAddress ?? '?', port, 'tcp'));
  });
  listening.push(new Promise((resolve) => server.listen({ port, host: '::', ipv6Only: false }, resolve)));
}
// --hold: the same first line, then the connection stays open (echoing what the client sends)
// until the client closes it: a long-lived connection, for drain tests.
for (const port of ports(values.hold)) {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write(reply(socket.remoteAddress ?? '?', port, 'tcp'));
    socket.pipe(socket);
  });
  listening.push(new Promise((resolve) => server.listen({ port, host: '::', ipv6Only: false }, resolve)));
}
for (const port of ports(values.udp)) {
  const socket = createSocket({ type: 'udp6', ipv6Only: false });
  socket.on('message', (_message, remote) => {
    socket.send(reply(remote.address, port, 'udp'), remote.port, remote.address);
  });
  listening.push(new Promise((resolve) => socket.bind(port, '::', resolve)));
}
for (const port of ports(values.http)) {
  const server = createHttpServer((req, res) => {
    const peer = (req.socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`hello from ${name} (I see you as ${peer})\n`);
  });
  listening.push(new Promise((resolve) => server.listen({ port, host: '::', ipv6Only: false }, resolve)));
}
await Promise.all(listening);
process.stdout.write('ready\n');
