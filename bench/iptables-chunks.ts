// Measures a full iptables sync on the nft backend written as one input and in pieces of several
// sizes (src/dataplane/iptables/chunk.ts), each into a fresh network namespace (root only).
// Prints figures; asserts nothing.
//   node bench/iptables-chunks.ts [services=2000] [sizes=250,500,1000,2000,4000,0]
// A size of 0 is the whole text as one input (minutes from 2k Services on: leave it out at 10k).
import { performance } from 'node:perf_hooks';
import { chunkRestore } from '../src/dataplane/iptables/chunk.ts';
import { renderIptables } from '../src/dataplane/iptables/render.ts';
import { iptablesTools, restore, type Runner } from '../src/dataplane/xtables/index.ts';
import { cleanupNetns, createNetns, uniquePrefix } from '../test/support/netns.ts';
import { manyServicePorts, snapshot } from '../test/unit/iptables/fixture.ts';
import { BASE_OPTIONS } from '../test/unit/iptables/scenarios.ts';

const services = Number(process.argv[2] ?? 2000);
const sizes = (process.argv[3] ?? '250,500,1000,2000,4000,0').split(',').map(Number);
const ENDPOINTS = 10;

const states = manyServicePorts(services, ENDPOINTS);
const full = renderIptables({ snapshot: snapshot(states), full: true, options: BASE_OPTIONS }).text;
const tools = iptablesTools('nft', 'IPv4');
const prefix = uniquePrefix('kpbc');
let n = 0;
try {
  for (const size of sizes) {
    const ns = await createNetns(`${prefix}${n++}`);
    const run: Runner = (file, args, options) => ns.exec(file, args, options);
    const inputs = size === 0 ? [full] : chunkRestore(full, size);
    const started = performance.now();
    for (const input of inputs) await restore(run, tools, input);
    const ms = Math.round(performance.now() - started);
    console.log(
      `${services} Services x ${ENDPOINTS}: ${size === 0 ? 'one input' : `${size} chains per input`}, ` +
        `${inputs.length} inputs, ${ms} ms`,
    );
  }
} finally {
  await cleanupNetns();
}
