// Issue 15, truncated and garbage watch streams: everything that reads a list or watch body from
// the API server, in both encodings (newline-delimited JSON events; protobuf frames, each a 4-byte
// length and a WatchEvent whose object is a `k8s\0` envelope), fed streams cut at any byte
// (mid-frame, mid-UTF-8 sequence, mid-length-prefix), garbage, absurd length prefixes, frames of
// the wrong kind, ERROR events with odd Status bodies and huge events, in chunks split anywhere.
//
// Two layers: the stream decoder itself (content.ts, thousands of cases a second), and the real
// API client and reflector (watches.ts) against a scripted HTTP server on 127.0.0.1 that serves a
// few damaged watches and lists and then a good one. Invariants: nothing but the client's own
// error types leaves the decoder; no exception escapes to the process; every object the handlers
// (the model) get is a complete version the server really had; each problem is logged by name;
// the reflector re-watches or relists at the back-off pace and converges to the server's state
// once the stream is good. KUBE_PROXY_FUZZ_RUNS (default 150, `make fuzz` 100,000) decoder cases,
// and a tenth as many through HTTP (docs/reliability.md).
import assert from 'node:assert/strict';
import http from 'node:http';
import { inspect } from 'node:util';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import { KubeClient, KubeDecodeError } from '../../../src/k8s/client.ts';
import { MEDIA_JSON, MEDIA_PROTOBUF, watchDecoder } from '../../../src/k8s/content.ts';
import {
  FrameReader,
  decodeObject,
  encodeEnvelope,
  encodeMessage,
  encodeObject,
  encodeWatchEvent,
} from '../../../src/k8s/protobuf/codec.ts';
import { message } from '../../../src/k8s/protobuf/schema.ts';
import { Writer } from '../../../src/k8s/protobuf/wire.ts';
import { watchServices } from '../../../src/k8s/watches.ts';
import { configureLogging } from '../../../src/log/log.ts';
import { pollUntil } from '../../support/netns.ts';

const RUNS = Number(process.env['KUBE_PROXY_FUZZ_RUNS'] ?? '150');
/** Cases through the HTTP server and reflector: each is several connections, so a tenth. */
const HTTP_RUNS = Math.max(15, Math.round(RUNS / 10));

type Encoding = 'json' | 'protobuf';
type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Objects and frames

const NAMES = ['s0', 's1', 's2', 's3'] as const;
/** Multi-byte UTF-8 (2, 3 and 4 bytes) so that cuts land inside sequences. */
const NOTES = ['plain', 'grüße', '€uro', 'emoji 😀 end', ''] as const;
const HUGE_NOTE = 'h'.repeat(1 << 20);

function serviceObject(name: string, rv: number, note: string): Json {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: 'default',
      resourceVersion: String(rv),
      ...(note === '' ? {} : { annotations: { note } }),
    },
    spec: { clusterIP: '10.96.0.1', ports: [{ port: 80, protocol: 'TCP' }] },
  };
}

/** The object as a client decoding `encoding` sees it (protobuf drops what JSON would not send). */
function asReceived(obj: Json, encoding: Encoding): Json {
  return encoding === 'json' ? obj : decodeObject(encodeObject(obj));
}

function frame(encoding: Encoding, type: string, object: Json): Buffer {
  if (encoding === 'json') return Buffer.from(`${JSON.stringify({ type, object })}\n`);
  return Buffer.from(encodeWatchEvent(type, object));
}

/** A protobuf WatchEvent frame around an already encoded envelope. */
function envelopeFrame(type: string, envelope: Uint8Array): Buffer {
  const ext = new Writer();
  ext.bytes(1, envelope);
  const event = new Writer();
  event.string(1, type);
  event.bytes(2, ext.finish());
  return rawFrame(event.finish());
}

/** A protobuf frame around arbitrary bytes (its length prefix is right; its content may not be). */
function rawFrame(body: Uint8Array): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

interface GoodEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  readonly object: Json;
  readonly rv: number;
}

/** A history of events over a few names, resourceVersions first+1, first+2, ... */
function historyArb(first: number, maxLength: number): fc.Arbitrary<GoodEvent[]> {
  return fc
    .array(
      fc.record({
        op: fc.constantFrom('put', 'put', 'put', 'delete', 'bookmark'),
        name: fc.constantFrom(...NAMES),
        note: fc.oneof(
          { arbitrary: fc.constantFrom(...NOTES), weight: 30 },
          { arbitrary: fc.constant(HUGE_NOTE), weight: 1 },
        ),
      }),
      { maxLength },
    )
    .map((ops) => {
      const live = new Set<string>();
      return ops.map(({ op, name, note }, i): GoodEvent => {
        const rv = first + i + 1;
        if (op === 'bookmark') {
          return {
            type: 'BOOKMARK',
            object: { kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: String(rv) } },
            rv,
          };
        }
        const object = serviceObject(name, rv, note);
        if (op === 'delete' && live.has(name)) {
          live.delete(name);
          return { type: 'DELETED', object, rv };
        }
        const type = live.has(name) ? 'MODIFIED' : 'ADDED';
        live.add(name);
        return { type, object, rv };
      });
    });
}

// ---------------------------------------------------------------------------------------------
// Damage

/** Odd Status bodies an ERROR event may carry. */
const oddStatus: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    { kind: 'Status', apiVersion: 'v1', code: 410, reason: 'Expired', message: 'too old resource version' },
    { kind: 'Status', apiVersion: 'v1', code: 500, reason: 'InternalError', message: 'etcd is sad' },
    { kind: 'Status', apiVersion: 'v1', code: '410', reason: 410, message: ['x'] },
    { kind: 'Status', apiVersion: 'v1', code: -1 },
    { kind: 'Status', apiVersion: 'v1', code: 1e300, reason: 'x'.repeat(5000) },
    { kind: 'Status', apiVersion: 'v1' },
    { kind: 'Status', apiVersion: 'v1', message: 'é'.repeat(3000), details: { causes: 'nope' } },
    {},
  ),
  fc.anything({ maxDepth: 2 }).filter((v) => typeof v === 'object' && v !== null && !Array.isArray(v)),
);

type Damage =
  /** The body ends (cleanly, chunked terminator sent) at this byte. */
  | { readonly kind: 'truncate'; readonly at: number }
  /** The connection is destroyed after this byte. */
  | { readonly kind: 'cut'; readonly at: number }
  | { readonly kind: 'garbage'; readonly at: number; readonly bytes: Uint8Array }
  /** A length prefix of `length` (protobuf) or a line without end (JSON) at a frame boundary. */
  | { readonly kind: 'absurd'; readonly frame: number; readonly length: number }
  /** A well-formed event of another kind (a Node) or of an unknown one (a Pod) at a frame boundary. */
  | {
      readonly kind: 'wrongKind';
      readonly frame: number;
      readonly as: 'Node' | 'Pod' | 'NodeNamedLikeService';
    }
  /** An ERROR event at a frame boundary; the server ends the stream after it, as the API server does. */
  | { readonly kind: 'error'; readonly frame: number; readonly status: unknown }
  /** Values that decode but are not watch events. */
  | { readonly kind: 'notEvent'; readonly frame: number; readonly value: unknown };

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('garbage' as const),
    at: fc.nat(),
    bytes: fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.constantFrom(
        Uint8Array.of(0xff, 0xff, 0xff, 0xff),
        Uint8Array.of(0xc3),
        Uint8Array.of(0xf0, 0x9f),
        Uint8Array.of(0x6b, 0x38, 0x73, 0x00),
        Buffer.from('{"type":"ADDED","object":{"metadata":{"name":"half'),
        Buffer.from('\n\n{}\n'),
      ),
    ),
  }),
  fc.record({
    kind: fc.constant('absurd' as const),
    frame: fc.nat(),
    length: fc.constantFrom(0xffffffff, 0x80000000, 0x40000001, 64 * 1024 * 1024 + 1),
  }),
  fc.record({
    kind: fc.constant('wrongKind' as const),
    frame: fc.nat(),
    as: fc.constantFrom('Node' as const, 'Pod' as const, 'NodeNamedLikeService' as const),
  }),
  fc.record({ kind: fc.constant('error' as const), frame: fc.nat(), status: oddStatus }),
  fc.record({
    kind: fc.constant('notEvent' as const),
    frame: fc.nat(),
    value: fc.oneof(
      fc.constantFrom<unknown>(
        null,
        [],
        'ADDED',
        42,
        { type: 'ADDED' },
        { type: 'ADDED', object: null },
        { type: 'ADDED', object: { metadata: {} } },
        { type: 'EXPLODED', object: { metadata: { name: 's0' } } },
        { type: 7, object: { metadata: { name: 's0' } } },
      ),
      fc.anything({ maxDepth: 2 }),
    ),
  }),
);

function wrongKindObject(as: 'Node' | 'Pod' | 'NodeNamedLikeService', rv: number): Json {
  const name = as === 'NodeNamedLikeService' ? 's0' : 'intruder';
  return {
    apiVersion: 'v1',
    kind: as === 'Pod' ? 'Pod' : 'Node',
    metadata: { name, resourceVersion: String(rv) },
    ...(as === 'Pod' ? { spec: { containers: [] } } : { spec: { podCIDR: '10.244.0.0/24' } }),
  };
}

/** The bytes of one damaged insertion (never a valid event of the watched kind). */
function insertion(encoding: Encoding, damage: Extract<Damage, { frame: number }>, rv: number): Buffer {
  switch (damage.kind) {
    case 'absurd': {
      if (encoding === 'protobuf') {
        const prefix = Buffer.alloc(4);
        prefix.writeUInt32BE(damage.length, 0);
        // What follows the prefix: a few bytes only; the claimed size never arrives.
        return Buffer.concat([prefix, Buffer.from('k8s\0abc')]);
      }
      // JSON's counterpart: a line that starts and never ends (the limit is tested below at scale).
      return Buffer.from('{"type":"ADDED","object":{"metadata":{"name":"');
    }
    case 'wrongKind': {
      const object = wrongKindObject(damage.as, rv);
      if (encoding === 'json') return frame('json', 'ADDED', object);
      if (damage.as === 'Pod') {
        // No schema for a Pod here: the envelope is well-formed, its kind unknown.
        const raw = encodeMessage({ metadata: object['metadata'] }, message('Service'));
        return envelopeFrame('ADDED', encodeEnvelope({ apiVersion: 'v1', kind: 'Pod' }, raw));
      }
      return frame('protobuf', 'ADDED', object);
    }
    case 'error': {
      if (encoding === 'json')
        return Buffer.from(`${JSON.stringify({ type: 'ERROR', object: damage.status })}\n`);
      const status = damage.status as Json;
      const code = status['code'];
      const reason = status['reason'];
      const message = status['message'];
      const encodable: Json = { apiVersion: 'v1', kind: 'Status' };
      if (typeof code === 'number' && Number.isInteger(code) && Math.abs(code) < 2 ** 31)
        encodable['code'] = code;
      if (typeof reason === 'string') encodable['reason'] = reason;
      if (typeof message === 'string') encodable['message'] = message;
      return frame('protobuf', 'ERROR', encodable);
    }
    case 'notEvent': {
      if (encoding === 'json') {
        let text: string | undefined;
        try {
          text = JSON.stringify(damage.value);
        } catch {
          text = undefined;
        }
        return Buffer.from(`${text ?? 'undefined'}\n`);
      }
      // A frame of well-formed protobuf that is no WatchEvent: a bare Service envelope.
      return rawFrame(encodeObject(serviceObject('bare', rv, '')));
    }
  }
}

/**
 * What the log must say about a damage on a watch that reads it (undefined: it may go unnoticed,
 * e.g. a stream cut cleanly between two events is an ordinary end).
 */
function mustBeNoticed(damage: Damage, encoding: Encoding): RegExp | undefined {
  switch (damage.kind) {
    case 'truncate':
    case 'cut':
      return undefined;
    case 'absurd':
      return encoding === 'protobuf'
        ? /watch frame of \d+ bytes exceeds the limit/
        : /malformed watch event \(not JSON\)/;
    case 'garbage':
      return encoding === 'protobuf'
        ? /malformed protobuf watch event|ended inside a frame|exceeds the limit/
        : /malformed watch event/;
    case 'notEvent':
      return /malformed (protobuf )?watch event/;
    case 'wrongKind':
      return damage.as === 'Pod' && encoding === 'protobuf'
        ? /no protobuf schema for v1\/Pod/
        : /Watch event of the wrong kind, skipped.*expected v1 Service, got v1 (Node|Pod)/;
    case 'error':
      return /watch ERROR event|Watch expired \(410\)/;
  }
}

/** What the log must say about a damaged list. */
function listNoticed(damage: Script['listDamage'][number], encoding: Encoding): RegExp {
  switch (damage) {
    case 'garbage':
      return new RegExp(`Failed to list.*invalid ${encoding === 'json' ? 'JSON' : 'protobuf'} in response`);
    case 'truncated':
      return /Failed to list/;
    case 'wrongKind':
      return /Failed to list.*response is a v1 NodeList, expected v1 ServiceList/;
  }
}

interface Stream {
  readonly bytes: Buffer;
  /** Offsets where each good frame ends, in order. */
  readonly frameEnds: readonly number[];
  /** How the body ends: cleanly, or by destroying the connection. */
  readonly end: 'clean' | 'destroy';
  /** Good events wholly before the damage. */
  readonly intact: number;
  /** Good events whose frames are whole somewhere in the bytes (what the server has released). */
  readonly sent: number;
}

/**
 * The good frames with the damage applied. `framedGarbage`: protobuf garbage goes between frames
 * only. Bytes changed inside a frame's body can decode to a different, well-formed object (the
 * frame's length still holds, and protobuf has no checksum; nor has JSON for bytes inside a
 * string), which no decoder can tell from the real one: the transport (TCP, TLS) guards against
 * that on a real connection. The decoder test places garbage anywhere and checks the events
 * before it; the reflector test, which checks every object, places it where it is detectable.
 */
function damagedStream(
  encoding: Encoding,
  events: readonly GoodEvent[],
  damage: Damage,
  framedGarbage = false,
): Stream {
  const frames = events.map((e) => frame(encoding, e.type, e.object));
  const frameEnds: number[] = [];
  let total = 0;
  for (const f of frames) frameEnds.push((total += f.length));
  const good = Buffer.concat(frames);
  const intactBefore = (offset: number): number => frameEnds.filter((end) => end <= offset).length;
  switch (damage.kind) {
    case 'truncate':
    case 'cut': {
      const at = good.length === 0 ? 0 : damage.at % (good.length + 1);
      return {
        bytes: good.subarray(0, at),
        frameEnds,
        end: damage.kind === 'cut' ? 'destroy' : 'clean',
        intact: intactBefore(at),
        sent: intactBefore(at),
      };
    }
    case 'garbage': {
      const boundaries = [0, ...frameEnds];
      const at =
        framedGarbage && encoding === 'protobuf'
          ? (boundaries[damage.at % boundaries.length] as number)
          : good.length === 0
            ? 0
            : damage.at % (good.length + 1);
      // JSON cannot tell garbage inside a string from text (TCP and TLS guard against that on a
      // real connection): a leading control character makes any JSON line it lands in invalid,
      // so that what the decoder must notice is noticeable.
      const garbage = encoding === 'json' ? Buffer.concat([Uint8Array.of(0x01), damage.bytes]) : damage.bytes;
      return {
        bytes: Buffer.concat([good.subarray(0, at), garbage, good.subarray(at)]),
        frameEnds,
        end: 'clean',
        intact: intactBefore(at),
        sent: events.length,
      };
    }
    case 'absurd':
    case 'wrongKind':
    case 'error':
    case 'notEvent': {
      const index = damage.frame % (frames.length + 1);
      const at = index === 0 ? 0 : (frameEnds[index - 1] as number);
      const lastRv = index === 0 ? 0 : (events[index - 1] as GoodEvent).rv;
      const inserted = insertion(encoding, damage, lastRv);
      // After an ERROR event or an absurd prefix nothing more can be read: the stream ends there.
      const stops = damage.kind === 'error' || damage.kind === 'absurd';
      return {
        bytes: Buffer.concat([good.subarray(0, at), inserted, ...(stops ? [] : [good.subarray(at)])]),
        frameEnds,
        end: 'clean',
        intact: index,
        sent: stops ? index : events.length,
      };
    }
  }
}

/** Split points: sorted, distinct, strictly inside the buffer. */
function chunked(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  if (bytes.length === 0) return [];
  const points = [...new Set(cuts.map((c) => 1 + (c % bytes.length)))].filter((p) => p < bytes.length);
  points.sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  out.push(bytes.subarray(last));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Layer 1: the stream decoder

/** Runs a decoder over the chunks; what it gave before failing, and how it failed. */
function decodeAll(
  encoding: Encoding,
  chunks: readonly Buffer[],
  maxEventBytes?: number,
): { events: unknown[]; error: unknown } {
  const decoder = watchDecoder(
    encoding === 'json' ? MEDIA_JSON : `${MEDIA_PROTOBUF};stream=watch`,
    'watch /fuzz',
    ...(maxEventBytes !== undefined ? [{ maxEventBytes }] : []),
  );
  const events: unknown[] = [];
  const deliver = (event: unknown): boolean => {
    events.push(event);
    return true;
  };
  try {
    for (const chunk of chunks) decoder.push(chunk, deliver);
    decoder.end(deliver);
  } catch (error) {
    return { events, error };
  }
  return { events, error: undefined };
}

function expectedEvents(encoding: Encoding, events: readonly GoodEvent[]): unknown[] {
  return events.map((e) => ({ type: e.type, object: asReceived(e.object, encoding) }));
}

describe('watch stream decoder (content.ts)', () => {
  test(`damaged streams in chunks split anywhere: only KubeDecodeError, never a half event (${String(RUNS)} cases)`, () => {
    const started = performance.now();
    fc.assert(
      fc.property(
        fc.constantFrom<Encoding>('json', 'protobuf'),
        historyArb(1, 8),
        damageArb,
        fc.array(fc.nat(), { maxLength: 40 }),
        (encoding, events, damage, cuts) => {
          const stream = damagedStream(encoding, events, damage);
          const { events: got, error } = decodeAll(encoding, chunked(stream.bytes, cuts));
          if (error !== undefined) {
            assert.ok(error instanceof KubeDecodeError, `not a KubeDecodeError: ${inspect(error)}`);
            assert.match(error.message, /^watch \/fuzz/, 'the error names the watch');
          }
          const want = expectedEvents(encoding, events).slice(0, stream.intact);
          assert.deepEqual(got.slice(0, stream.intact), want, 'the intact events before the damage, whole');
        },
      ),
      { numRuns: RUNS },
    );
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `# watch decoder fuzz: ${String(RUNS)} cases in ${seconds.toFixed(1)} s (${(RUNS / seconds).toFixed(0)} cases/s)\n`,
    );
  });

  test('a good stream split at every byte decodes to exactly its events, in both encodings', () => {
    const events: GoodEvent[] = [
      { type: 'ADDED', object: serviceObject('s0', 2, 'emoji 😀 end'), rv: 2 },
      { type: 'MODIFIED', object: serviceObject('s0', 3, 'grüße €'), rv: 3 },
      { type: 'DELETED', object: serviceObject('s0', 4, ''), rv: 4 },
    ];
    for (const encoding of ['json', 'protobuf'] as const) {
      const bytes = Buffer.concat(events.map((e) => frame(encoding, e.type, e.object)));
      const want = expectedEvents(encoding, events);
      for (let i = 0; i <= bytes.length; i++) {
        for (const j of [i, Math.min(bytes.length, i + 1), Math.min(bytes.length, i + 3)]) {
          const chunks = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)].filter(
            (c) => c.length > 0,
          );
          const { events: got, error } = decodeAll(encoding, chunks);
          assert.equal(error, undefined, `${encoding} split at ${String(i)}/${String(j)}`);
          assert.deepEqual(got, want, `${encoding} split at ${String(i)}/${String(j)}`);
        }
      }
    }
  });

  test('an absurd protobuf length prefix fails at once, without allocating the claimed size', () => {
    for (const length of [0xffffffff, 0x80000000, 64 * 1024 * 1024 + 1]) {
      const reader = new FrameReader();
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(length, 0);
      // Cut inside the prefix first: nothing is decided on 3 bytes.
      assert.deepEqual(reader.push(prefix.subarray(0, 3)), []);
      assert.throws(
        () => reader.push(prefix.subarray(3)),
        new RegExp(`watch frame of ${String(length)} bytes exceeds`),
      );
    }
  });

  test('a frame under the limit that never completes holds only the bytes that arrived', () => {
    const reader = new FrameReader();
    const before = process.memoryUsage().arrayBuffers;
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(60 * 1024 * 1024, 0);
    reader.push(prefix);
    for (let i = 0; i < 64; i++) reader.push(Buffer.alloc(1024, 1));
    assert.equal(reader.pendingBytes, 4 + 64 * 1024);
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 16 * 1024 * 1024, `grew by ${String(grown)} bytes for 64 KiB received`);
  });

  test('a JSON event line longer than the limit fails naming the limit, however it is chunked', () => {
    const decoder = watchDecoder(MEDIA_JSON, 'watch /fuzz', { maxEventBytes: 1000 });
    const events: unknown[] = [];
    const deliver = (event: unknown): boolean => events.push(event) > 0;
    decoder.push(Buffer.from('{"type":"ADDED","object":{}}\n{"type":"ADDED",'), deliver);
    assert.equal(events.length, 1, 'the whole event before it is delivered');
    assert.throws(
      () => {
        for (let i = 0; i < 100; i++) decoder.push(Buffer.alloc(100, 0x20), deliver);
      },
      (error: unknown) => error instanceof KubeDecodeError && /longer than 1000 bytes/.test(error.message),
    );
  });

  test('a huge stream in small chunks is decoded in linear time', () => {
    // 8 MiB in 4 KiB chunks, once as one JSON event and once as one protobuf frame: a decoder that
    // re-copies or re-scans what it holds on every chunk takes minutes here.
    const object = serviceObject('big', 2, 'x'.repeat(8 << 20));
    for (const encoding of ['json', 'protobuf'] as const) {
      const bytes = frame(encoding, 'ADDED', object);
      const decoder = watchDecoder(encoding === 'json' ? MEDIA_JSON : MEDIA_PROTOBUF, 'watch /fuzz');
      const started = performance.now();
      const got: unknown[] = [];
      const deliver = (event: unknown): boolean => got.push(event) > 0;
      for (let at = 0; at < bytes.length; at += 4096) decoder.push(bytes.subarray(at, at + 4096), deliver);
      decoder.end(deliver);
      const ms = performance.now() - started;
      assert.equal(got.length, 1);
      assert.ok(ms < 5_000, `${encoding}: ${ms.toFixed(0)} ms for 8 MiB`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Layer 2: the API client and reflector against a scripted server

interface Script {
  readonly encoding: Encoding;
  readonly initial: GoodEvent[];
  readonly history: GoodEvent[];
  /** One damage per watch connection, in order; then the watch is good and stays open. */
  readonly watchDamage: Damage[];
  /** The first list answers: garbage or truncated bodies before a good one. */
  readonly listDamage: ('garbage' | 'truncated' | 'wrongKind')[];
  readonly cuts: number[];
}

/** A scripted API server: one collection of Services, lists and watches served from a script. */
class ScriptedServer {
  readonly server: http.Server;
  script: Script | undefined;
  /** Highest resourceVersion already sent whole in some response. */
  released = 1;
  lists = 0;
  watches = 0;
  readonly sockets = new Set<import('node:net').Socket>();

  constructor() {
    this.server = http.createServer((req, res) => {
      this.#serve(req, res).catch((error: unknown) => {
        res.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${String((this.server.address() as AddressInfo).port)}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(script: Script): void {
    for (const socket of this.sockets) socket.destroy();
    this.script = script;
    this.released = script.initial.at(-1)?.rv ?? 1;
    this.lists = 0;
    this.watches = 0;
  }

  /** Every event up to and including `rv`, applied: the state a list at `rv` returns. */
  stateAt(rv: number): Json[] {
    const script = this.script as Script;
    const state = new Map<string, Json>();
    for (const e of [...script.initial, ...script.history]) {
      if (e.rv > rv) break;
      const name = (e.object['metadata'] as Json)['name'] as string;
      if (e.type === 'ADDED' || e.type === 'MODIFIED') state.set(name, e.object);
      else if (e.type === 'DELETED') state.delete(name);
    }
    return [...state.values()];
  }

  get finalRv(): number {
    const script = this.script as Script;
    return script.history.at(-1)?.rv ?? script.initial.at(-1)?.rv ?? 1;
  }

  #contentType(encoding: Encoding, watch: boolean): string {
    return encoding === 'json' ? MEDIA_JSON : `${MEDIA_PROTOBUF}${watch ? ';stream=watch' : ''}`;
  }

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const script = this.script;
    if (script === undefined) {
      res.writeHead(503).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('watch') !== '1') {
      const damage = script.listDamage[this.lists++];
      const list: Json = {
        apiVersion: 'v1',
        kind: damage === 'wrongKind' ? 'NodeList' : 'ServiceList',
        metadata: { resourceVersion: String(this.released) },
        // The API server leaves kind and apiVersion out of list items.
        items: this.stateAt(this.released).map(({ kind: _kind, apiVersion: _apiVersion, ...rest }) => rest),
      };
      let body = Buffer.from(script.encoding === 'json' ? JSON.stringify(list) : encodeObject(list));
      if (damage === 'garbage')
        body = Buffer.concat([body.subarray(0, body.length >> 1), Buffer.from([0xff, 0x00, 0x7b])]);
      res.writeHead(200, {
        'Content-Type': this.#contentType(script.encoding, false),
        'Content-Length': body.length,
      });
      if (damage === 'truncated') {
        res.write(body.subarray(0, body.length >> 1));
        await new Promise((resolve) => setImmediate(resolve));
        res.destroy();
        return;
      }
      res.end(body);
      return;
    }
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    const events = script.history.filter((e) => e.rv > from);
    const damage = script.watchDamage[this.watches++];
    res.writeHead(200, { 'Content-Type': this.#contentType(script.encoding, true) });
    if (damage === undefined) {
      for (const e of events) res.write(frame(script.encoding, e.type, e.object));
      this.released = Math.max(this.released, this.finalRv);
      return; // stays open until the client goes
    }
    const stream = damagedStream(script.encoding, events, damage, true);
    const sentRv = stream.sent === 0 ? from : (events[stream.sent - 1] as GoodEvent).rv;
    this.released = Math.max(this.released, sentRv);
    for (const chunk of chunked(stream.bytes, script.cuts)) {
      if (res.destroyed) return;
      res.write(chunk);
      // A turn of the event loop between chunks, so that they arrive as separate reads.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (stream.end === 'destroy') res.destroy();
    else res.end();
  }
}

const scriptArb: fc.Arbitrary<Script> = fc
  .record({
    encoding: fc.constantFrom<Encoding>('json', 'protobuf'),
    initial: historyArb(0, 3).map((h) => h.filter((e) => e.type !== 'BOOKMARK' && e.type !== 'DELETED')),
    more: fc.integer({ min: 1, max: 6 }),
    watchDamage: fc.array(damageArb, { minLength: 1, maxLength: 4 }),
    listDamage: fc.array(fc.constantFrom('garbage' as const, 'truncated' as const, 'wrongKind' as const), {
      maxLength: 2,
    }),
    cuts: fc.array(fc.nat(), { maxLength: 12 }),
    seed: fc.nat(),
  })
  .chain((r) => {
    const initial = r.initial.map((e, i): GoodEvent => ({
      ...e,
      rv: i + 1,
      object: withRv(e.object, i + 1),
      type: 'ADDED',
    }));
    const dedup = new Map<string, GoodEvent>();
    for (const e of initial) dedup.set((e.object['metadata'] as Json)['name'] as string, e);
    const base = [...dedup.values()].sort((a, b) => a.rv - b.rv);
    const first = Math.max(1, base.at(-1)?.rv ?? 1);
    return historyArb(first, r.more).map((history): Script => ({
      encoding: r.encoding,
      initial: base.length === 0 ? [] : base,
      history: continueFrom(base, history),
      watchDamage: r.watchDamage,
      listDamage: r.listDamage,
      cuts: r.cuts,
    }));
  });

function withRv(object: Json, rv: number): Json {
  return { ...object, metadata: { ...(object['metadata'] as Json), resourceVersion: String(rv) } };
}

/** Re-types a generated history so that it is consistent with what already exists. */
function continueFrom(base: readonly GoodEvent[], history: readonly GoodEvent[]): GoodEvent[] {
  const live = new Set(base.map((e) => (e.object['metadata'] as Json)['name'] as string));
  return history.map((e) => {
    if (e.type === 'BOOKMARK') return e;
    const name = (e.object['metadata'] as Json)['name'] as string;
    if (e.type === 'DELETED') {
      if (live.has(name)) {
        live.delete(name);
        return e;
      }
      live.add(name);
      return { ...e, type: 'ADDED' };
    }
    const type = live.has(name) ? 'MODIFIED' : 'ADDED';
    live.add(name);
    return { ...e, type };
  });
}

describe('API client and reflector against damaged lists and watches', () => {
  const server = new ScriptedServer();
  let url = '';
  const problems: unknown[] = [];
  const onProblem = (error: unknown): void => {
    problems.push(error);
  };
  before(async () => {
    url = await server.listen();
    process.on('unhandledRejection', onProblem);
    process.on('uncaughtException', onProblem);
  });
  after(async () => {
    process.off('unhandledRejection', onProblem);
    process.off('uncaughtException', onProblem);
    await server.close();
    configureLogging({ write: (line) => process.stderr.write(line), verbosity: 0 });
  });

  test(`each damage is reported, the reflector recovers and the model only sees whole objects (${String(HTTP_RUNS)} cases)`, async () => {
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(scriptArb, async (script) => {
        server.reset(script);
        problems.length = 0;
        const lines: string[] = [];
        configureLogging({ write: (line) => lines.push(line), verbosity: 2 });
        // Every version the server ever had, as the client decodes it: `name@rv` -> object.
        const versions = new Map<string, Json>();
        for (const e of [...script.initial, ...script.history]) {
          if (e.type === 'BOOKMARK') continue;
          const meta = e.object['metadata'] as Json;
          versions.set(`${meta['name'] as string}@${String(e.rv)}`, asReceived(e.object, script.encoding));
        }
        const seen: string[] = [];
        const state = new Map<string, Service>();
        const check = (what: string, obj: Service, whole: boolean): void => {
          const key = `${obj.metadata?.name ?? '?'}@${obj.metadata?.resourceVersion ?? '?'}`;
          const known = versions.get(key);
          assert.ok(
            known,
            `${what} of ${key}: not a version the server had: ${JSON.stringify(obj).slice(0, 300)}`,
          );
          if (whole) assert.deepEqual(obj, known, `${what} of ${key}: not the whole object`);
          seen.push(`${what} ${key}`);
        };
        const client = new KubeClient(
          { server: url, insecureSkipTLSVerify: false, source: 'fuzz' },
          { contentType: script.encoding === 'json' ? MEDIA_JSON : MEDIA_PROTOBUF },
        );
        const reflector = watchServices(
          client,
          {
            onAdd: (obj) => {
              check('add', obj, true);
              state.set(obj.metadata?.name ?? '', obj);
            },
            onUpdate: (_old, obj) => {
              check('update', obj, true);
              state.set(obj.metadata?.name ?? '', obj);
            },
            onDelete: (obj) => {
              check('delete', obj, false);
              state.delete(obj.metadata?.name ?? '');
            },
          },
          {
            backoff: { initialMs: 1, maxMs: 8, resetAfterMs: 60_000 },
            minWatchDurationMs: 0,
            idleTimeoutMs: 5_000,
            listTimeoutMs: 5_000,
          },
        );
        try {
          reflector.start();
          const want = server
            .stateAt(server.finalRv)
            .map(
              (o) =>
                `${(o['metadata'] as Json)['name'] as string}@${(o['metadata'] as Json)['resourceVersion'] as string}`,
            )
            .sort();
          const view = (): string[] =>
            [...state.values()]
              .map((o) => `${o.metadata?.name ?? ''}@${o.metadata?.resourceVersion ?? ''}`)
              .sort();
          await pollUntil(
            'the reflector converges to the server once the stream is good',
            () =>
              JSON.stringify(view()) === JSON.stringify(want) &&
              server.watches > script.watchDamage.length &&
              reflector.lastResourceVersion === String(server.finalRv)
                ? true
                : undefined,
            10_000,
            2,
          ).catch((error: unknown) => {
            throw new Error(
              `${error instanceof Error ? error.message : String(error)}: have ${JSON.stringify(view())}, want ${JSON.stringify(want)}, rv ${reflector.lastResourceVersion}/${String(server.finalRv)}, ${String(server.lists)} lists, ${String(server.watches)} watches\n${lines.join('').slice(-3000)}`,
            );
          });
          // Every damaged connection costs at most a watch and two lists: no hot loop.
          const bad = script.watchDamage.length + script.listDamage.length;
          assert.ok(
            server.lists + server.watches <= 3 * bad + 4,
            `${String(server.lists)} lists and ${String(server.watches)} watches for ${String(bad)} damaged responses`,
          );
          const text = lines.join('');
          // The first list always meets its damage, and, when no list was damaged, the first
          // watch its own (later watches resume past events and may end before theirs).
          const firstList = script.listDamage[0];
          const firstWatch = script.watchDamage[0];
          if (firstList !== undefined) {
            assert.match(
              text,
              listNoticed(firstList, script.encoding),
              `the log names the ${firstList} list`,
            );
          } else if (firstWatch !== undefined) {
            const pattern = mustBeNoticed(firstWatch, script.encoding);
            if (pattern !== undefined)
              assert.match(text, pattern, `the log names the ${firstWatch.kind} damage`);
          }
          assert.deepEqual(problems, [], 'no exception escaped to the process');
        } finally {
          await reflector.stop();
          client.close();
        }
      }),
      { numRuns: HTTP_RUNS },
    );
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `# watch stream fuzz (HTTP, reflector): ${String(HTTP_RUNS)} cases in ${seconds.toFixed(1)} s (${(HTTP_RUNS / seconds).toFixed(1)} cases/s)\n`,
    );
  });

  test('a server that sends only garbage is retried at the back-off pace, forever', async () => {
    // Not a property: one long case. The reflector must neither give up nor spin.
    const garbage: Script = {
      encoding: 'protobuf',
      initial: [],
      history: [],
      watchDamage: Array.from({ length: 10_000 }, () => ({
        kind: 'garbage' as const,
        at: 0,
        bytes: Uint8Array.of(0xff, 0xff, 0xff, 0xff),
      })),
      listDamage: [],
      cuts: [],
    };
    server.reset(garbage);
    const lines: string[] = [];
    configureLogging({ write: (line) => lines.push(line), verbosity: 2 });
    const client = new KubeClient({ server: url, insecureSkipTLSVerify: false, source: 'fuzz' });
    const reflector = watchServices(
      client,
      {},
      { backoff: { initialMs: 20, maxMs: 50, resetAfterMs: 60_000 } },
    );
    try {
      reflector.start();
      const started = performance.now();
      await pollUntil('ten damaged watches', () => (server.watches >= 10 ? true : undefined), 10_000, 5);
      const ms = performance.now() - started;
      // Full jitter under a base of 20, 40, 50, 50, ... ms: ten attempts take about 200 ms on
      // average; a hot loop takes a few.
      assert.ok(ms > 40, `ten watches in ${ms.toFixed(0)} ms: no back-off`);
      assert.match(lines.join(''), /watch frame of 4294967295 bytes exceeds the limit/);
    } finally {
      await reflector.stop();
      client.close();
    }
  });
});
