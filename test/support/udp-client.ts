// A DNS-like UDP client: one socket, so one source port for its whole life, sending a datagram
// every --interval ms to host:port and printing one JSON line per answer:
//   {"t":<epoch ms>,"seq":<n>,"name":"a","peer":"10.244.1.13"}
// (the echo server's reply names the endpoint). The first line is {"ready":true,"port":<source>};
// each datagram sent is reported as {"sent":<seq>}.
// Because the source port never changes, every datagram after the first matches the same
// conntrack entry: exactly the traffic that stale entries break. Run inside a client namespace:
//   node udp-client.ts --host 10.96.0.53 --port 53 --interval 50
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    interval: { type: 'string', default: '50' },
  },
});
const host = values.host ?? '127.0.0.1';
const port = Number(values.port);
const intervalMs = Number(values.interval);

const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
let seq = 0;
socket.on('message', (message) => {
  let reply: { name?: string; peer?: string } = {};
  try {
    reply = JSON.parse(message.toString().trim()) as { name?: string; peer?: string };
  } catch {
    // not an echo-server answer: report it without a name
  }
  process.stdout.write(`${JSON.stringify({ t: Date.now(), seq, name: reply.name, peer: reply.peer })}\n`);
});
// ICMP errors do not reach an unconnected socket; anything else is worth seeing in the test log.
socket.on('error', (error) => {
  process.stderr.write(`udp-client: ${error.message}\n`);
});
socket.bind(0, () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: socket.address().port })}\n`);
  const send = () => {
    seq++;
    socket.send(`ping ${String(seq)}`, port, host);
    process.stdout.write(`${JSON.stringify({ sent: seq })}\n`);
  };
  send();
  setInterval(send, intervalMs);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
