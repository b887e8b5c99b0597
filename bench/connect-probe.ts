// TCP connect latency: opens COUNT connections one after another to HOST:PORT and prints one
// JSON line {"ms":[...],"failures":N} with the time from connect() to the handshake's end of
// each. Every connection has a fresh source port, so each first packet is a new conntrack entry
// that walks the NAT rules. Runs inside the client namespace:
//   node bench/connect-probe.ts HOST PORT COUNT
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';

const [host = '127.0.0.1', portText = '80', countText = '100'] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);

function once(): Promise<number | undefined> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, 2000);
    socket.once('connect', () => {
      const elapsed = performance.now() - started;
      clearTimeout(timer);
      socket.destroy();
      resolve(elapsed);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

const times: number[] = [];
let failures = 0;
for (let i = 0; i < count; i++) {
  const ms = await once();
  if (ms === undefined) failures++;
  else times.push(Math.round(ms * 1000) / 1000);
}
process.stdout.write(`${JSON.stringify({ ms: times, failures })}\n`);
