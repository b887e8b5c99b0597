// JSON vs protobuf for the lists kube-proxy takes in at start: N Services and their EndpointSlices
// (M endpoints each, the bench workload of workload.ts), stored in the in-repo API server (which
// stamps uid, resourceVersion and creationTimestamp as a real one does) and fetched whole over
// HTTP in each encoding. Prints, side by side, the body size (plain and gzipped, as the server
// sends lists of 128 KiB or more to a client that accepts gzip) and the time to decode it into
// objects (JSON.parse of the text vs our protobuf decoder; median of --runs). Needs no root.
//
//   node bench/api-encoding.ts [--services 10000] [--endpoints 10] [--runs 5]
import http from 'node:http';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { decodeObject } from '../src/k8s/protobuf/codec.ts';
import { startFakeApiServer } from '../test/support/apiserver.ts';
import { generateWorkload } from './workload.ts';

export interface EncodingRow {
  readonly list: string;
  readonly items: number;
  readonly encoding: 'json' | 'protobuf';
  readonly bytes: number;
  readonly gzipBytes: number;
  /** Median decode time of the plain body, ms. */
  readonly decodeMs: number;
  /** Median gunzip + decode time, ms. */
  readonly gunzipDecodeMs: number;
}

const ACCEPT = { json: 'application/json', protobuf: 'application/vnd.kubernetes.protobuf' } as const;

function fetchBody(url: string, accept: string, gzip: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      { headers: { Accept: accept, ...(gzip ? { 'Accept-Encoding': 'gzip' } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`GET ${url}: HTTP ${String(res.statusCode)}`));
          else resolve(Buffer.concat(chunks));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

function timeMs(runs: number, fn: () => unknown): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    fn();
    times.push(performance.now() - started);
  }
  return median(times);
}

export async function measure(options: {
  services: number;
  endpoints: number;
  runs: number;
}): Promise<EncodingRow[]> {
  const workload = generateWorkload({ services: options.services, endpointsPerService: options.endpoints });
  // Gzip at any size, so a small run measures the same thing (a 10k list is far over 128 KiB).
  const server = await startFakeApiServer({ bookmarkIntervalMs: 0, gzipMinBytes: 0 });
  try {
    for (const object of workload.objects) server.create(object);
    const rows: EncodingRow[] = [];
    for (const [list, path] of [
      ['services', '/api/v1/services'],
      ['endpointslices', '/apis/discovery.k8s.io/v1/endpointslices'],
    ] as const) {
      for (const encoding of ['json', 'protobuf'] as const) {
        const body = await fetchBody(`${server.url}${path}`, ACCEPT[encoding], false);
        const gz = await fetchBody(`${server.url}${path}`, ACCEPT[encoding], true);
        const decode =
          encoding === 'json'
            ? (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown
            : (b: Buffer) => decodeObject(b);
        const items = (decode(body) as { items: unknown[] }).items.length;
        decode(body); // warm-up
        rows.push({
          list,
          items,
          encoding,
          bytes: body.length,
          gzipBytes: gz.length,
          decodeMs: timeMs(options.runs, () => decode(body)),
          gunzipDecodeMs: timeMs(options.runs, () => decode(gunzipSync(gz))),
        });
      }
    }
    return rows;
  } finally {
    await server.close();
  }
}

function table(rows: readonly EncodingRow[]): string {
  const mib = (n: number) => (n / 1024 / 1024).toFixed(2);
  const lines = ['| list | items | | JSON | protobuf | protobuf / JSON |', '|---|---:|---|---:|---:|---:|'];
  for (const list of ['services', 'endpointslices']) {
    const json = rows.find((r) => r.list === list && r.encoding === 'json');
    const pb = rows.find((r) => r.list === list && r.encoding === 'protobuf');
    if (!json || !pb) continue;
    const ratio = (a: number, b: number) => (b / a).toFixed(2);
    lines.push(
      `| ${list} | ${json.items} | body MiB | ${mib(json.bytes)} | ${mib(pb.bytes)} | ${ratio(json.bytes, pb.bytes)} |`,
    );
    lines.push(
      `| | | gzipped MiB | ${mib(json.gzipBytes)} | ${mib(pb.gzipBytes)} | ${ratio(json.gzipBytes, pb.gzipBytes)} |`,
    );
    lines.push(
      `| | | decode ms | ${json.decodeMs.toFixed(0)} | ${pb.decodeMs.toFixed(0)} | ${ratio(json.decodeMs, pb.decodeMs)} |`,
    );
    lines.push(
      `| | | gunzip + decode ms | ${json.gunzipDecodeMs.toFixed(0)} | ${pb.gunzipDecodeMs.toFixed(0)} | ${ratio(json.gunzipDecodeMs, pb.gunzipDecodeMs)} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      services: { type: 'string', default: '10000' },
      endpoints: { type: 'string', default: '10' },
      runs: { type: 'string', default: '5' },
    },
    strict: true,
  });
  const options = {
    services: Number(values.services),
    endpoints: Number(values.endpoints),
    runs: Number(values.runs),
  };
  const rows = await measure(options);
  process.stdout.write(
    `${options.services} Services x ${options.endpoints} endpoints, median of ${options.runs}\n\n${table(rows)}\n`,
  );
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(`api-encoding: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
