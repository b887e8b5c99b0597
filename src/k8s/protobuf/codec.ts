// Kubernetes' protobuf encoding over our schema (schema.ts): a body is the 4-byte magic `k8s\0`
// followed by a runtime.Unknown {typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2,
// contentEncoding = 3, contentType = 4} whose raw bytes are the object's message. A watch stream
// is a sequence of frames, each a 4-byte big-endian length and a meta/v1 WatchEvent
// {type = 1, object = 2 RawExtension {raw = 1}}, the object inside in the same envelope.
//
// Decoding produces the object as the JSON encoding would have it (same field names, RFC 3339
// times, int-or-string as number or string, empty non-pointer fields left out), so everything
// after the client, validation included, is the same for either encoding. Encoding (the in-repo
// API server, benchmarks) writes what Go writes: non-pointer scalars always, in field order.
import { ProtobufError, Reader, WIRE_BYTES, WIRE_VARINT, Writer } from './wire.ts';
import { KINDS, message, type FieldDef, type MessageDef } from './schema.ts';

export { ProtobufError } from './wire.ts';

export const MAGIC = Uint8Array.of(0x6b, 0x38, 0x73, 0x00);

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Decoding

function wireTypeOf(field: FieldDef): number {
  switch (field.kind) {
    case 'int32':
    case 'int64':
    case 'bool':
      return WIRE_VARINT;
    default:
      return WIRE_BYTES;
  }
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/**
 * meta/v1 Time as JSON writes it: RFC 3339 in UTC, whole seconds. Computed from the day number
 * (the civil-from-days algorithm) rather than through Date and toISOString: every object has a
 * creationTimestamp, and this was a tenth of a list's decode time.
 */
function timeText(seconds: number, nanos: number): string | undefined {
  if (seconds === 0 && nanos === 0) return undefined;
  // Year 0001 to 9999, what Go's time marshals to RFC 3339.
  if (seconds < -62135596800 || seconds > 253402300799)
    throw new ProtobufError(`time out of range: ${seconds} s`);
  const days = Math.floor(seconds / 86400);
  const secs = seconds - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hh = Math.floor(secs / 3600);
  const mm = Math.floor((secs % 3600) / 60);
  return `${String(year).padStart(4, '0')}-${pad2(month)}-${pad2(day)}T${pad2(hh)}:${pad2(mm)}:${pad2(secs % 60)}Z`;
}

function decodeTime(r: Reader): string | undefined {
  r.span();
  const sub = new Reader(r.buf, r.spanStart, r.spanEnd);
  let seconds = 0;
  let nanos = 0;
  while (!sub.done()) {
    const tag = sub.varint();
    const no = tag >>> 3;
    if (no === 1 && (tag & 7) === WIRE_VARINT) seconds = sub.varint();
    else if (no === 2 && (tag & 7) === WIRE_VARINT) nanos = sub.varint();
    else sub.skip(tag & 7);
  }
  return timeText(seconds, nanos);
}

function decodeIntOrString(r: Reader): number | string {
  r.span();
  const sub = new Reader(r.buf, r.spanStart, r.spanEnd);
  let type = 0;
  let intVal = 0;
  let strVal = '';
  while (!sub.done()) {
    const tag = sub.varint();
    const no = tag >>> 3;
    if (no === 1 && (tag & 7) === WIRE_VARINT) type = sub.varint();
    else if (no === 2 && (tag & 7) === WIRE_VARINT) intVal = sub.varint();
    else if (no === 3 && (tag & 7) === WIRE_BYTES) strVal = sub.string();
    else sub.skip(tag & 7);
  }
  return type === 1 ? strVal : intVal;
}

function decodeMapEntry(r: Reader, into: Record<string, string>): void {
  r.span();
  const sub = new Reader(r.buf, r.spanStart, r.spanEnd);
  let key = '';
  let value = '';
  while (!sub.done()) {
    const tag = sub.varint();
    const no = tag >>> 3;
    if (no === 1 && (tag & 7) === WIRE_BYTES) key = sub.string();
    else if (no === 2 && (tag & 7) === WIRE_BYTES) value = sub.string();
    else sub.skip(tag & 7);
  }
  into[key] = value;
}

function decodeValue(r: Reader, field: FieldDef): unknown {
  const kind = field.kind;
  if (typeof kind === 'object') {
    r.span();
    return decodeFields(r.buf, r.spanStart, r.spanEnd, message(kind.message));
  }
  switch (kind) {
    case 'string':
      return r.string();
    case 'bytes':
      return Buffer.from(r.bytes()).toString('base64');
    case 'int32': {
      const value = r.varint();
      // Go sends an int32 sign-extended to 64 bits; anything else is not an int32.
      if (value > 2147483647 || value < -2147483648) throw new FieldError(`${value} is not an int32`);
      return value;
    }
    case 'int64':
      return r.varint();
    case 'bool':
      return r.varint() !== 0;
    case 'time':
      return decodeTime(r);
    case 'intOrString':
      return decodeIntOrString(r);
    case 'map':
      throw new FieldError('a map is decoded entry by entry');
  }
}

function isZero(value: unknown): boolean {
  return value === '' || value === 0 || value === false;
}

/**
 * An error inside a field: each message level it passes on the way out puts its field's name in
 * front, so the message names the whole path (`Service.spec.ports.port: …`) without building a
 * path string for every field that decodes fine.
 */
class FieldError extends ProtobufError {
  readonly reason: string;
  readonly path: string[] = [];
  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
  at(name: string): this {
    this.path.unshift(name);
    this.message = `${this.path.join('.')}: ${this.reason}`;
    return this;
  }
}

function decodeFields(buf: Uint8Array, start: number, end: number, def: MessageDef): Json {
  const out: Json = {};
  const r = new Reader(buf, start, end);
  const byNumber = def.byNumber;
  while (!r.done()) {
    const tag = r.varint();
    const no = tag >>> 3;
    const wireType = tag & 7;
    const field = no < byNumber.length ? byNumber[no] : undefined;
    if (field === undefined) {
      r.skip(wireType);
      continue;
    }
    try {
      if (wireType !== wireTypeOf(field)) {
        throw new FieldError(`wire type ${wireType}, expected ${wireTypeOf(field)}`);
      }
      if (field.kind === 'map') {
        let map = out[field.name] as Record<string, string> | undefined;
        if (map === undefined) out[field.name] = map = {};
        decodeMapEntry(r, map);
        continue;
      }
      const value = decodeValue(r, field);
      if (field.repeated) {
        const list = out[field.name] as unknown[] | undefined;
        if (list === undefined) out[field.name] = [value];
        else list.push(value);
      } else if (value !== undefined && (field.presence || field.keepZero || !isZero(value))) {
        out[field.name] = value;
      } else if (out[field.name] !== undefined) {
        // Go wrote the empty value of a non-pointer field; JSON leaves it out, and so do we (a
        // repeated occurrence of the field replaces an earlier one, as protobuf says).
        Reflect.deleteProperty(out, field.name);
      }
    } catch (error) {
      if (error instanceof FieldError) throw error.at(field.name);
      if (error instanceof ProtobufError) throw new FieldError(error.message).at(field.name);
      throw error;
    }
  }
  return out;
}

/** One message's fields, named as the JSON encoding names them; errors name `path.field`. */
export function decodeMessageRange(
  buf: Uint8Array,
  start: number,
  end: number,
  def: MessageDef,
  path: string = def.name,
): Json {
  try {
    return decodeFields(buf, start, end, def);
  } catch (error) {
    if (error instanceof FieldError) throw error.at(path);
    throw error;
  }
}

export interface TypeMeta {
  readonly apiVersion: string;
  readonly kind: string;
}

export interface Envelope {
  readonly typeMeta: TypeMeta;
  readonly raw: Uint8Array;
  readonly contentEncoding: string;
  readonly contentType: string;
}

export function hasMagic(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x6b && buf[1] === 0x38 && buf[2] === 0x73 && buf[3] === 0x00;
}

/** The runtime.Unknown behind the magic prefix. */
export function decodeEnvelope(buf: Uint8Array): Envelope {
  if (!hasMagic(buf)) throw new ProtobufError('not a Kubernetes protobuf body (no k8s\\0 prefix)');
  const r = new Reader(buf, 4);
  let apiVersion = '';
  let kind = '';
  let raw: Uint8Array = new Uint8Array(0);
  let contentEncoding = '';
  let contentType = '';
  while (!r.done()) {
    const tag = r.varint();
    const no = tag >>> 3;
    if ((tag & 7) !== WIRE_BYTES) {
      r.skip(tag & 7);
      continue;
    }
    if (no === 1) {
      r.span();
      const tm = new Reader(buf, r.spanStart, r.spanEnd);
      while (!tm.done()) {
        const t = tm.varint();
        if (t >>> 3 === 1 && (t & 7) === WIRE_BYTES) apiVersion = tm.string();
        else if (t >>> 3 === 2 && (t & 7) === WIRE_BYTES) kind = tm.string();
        else tm.skip(t & 7);
      }
    } else if (no === 2) raw = r.bytes();
    else if (no === 3) contentEncoding = r.string();
    else if (no === 4) contentType = r.string();
    else r.skip(WIRE_BYTES);
  }
  return { typeMeta: { apiVersion, kind }, raw, contentEncoding, contentType };
}

function messageFor(typeMeta: TypeMeta): MessageDef {
  const name =
    KINDS.get(`${typeMeta.apiVersion}/${typeMeta.kind}`) ??
    (typeMeta.kind === 'Status' ? 'Status' : undefined);
  if (name === undefined) {
    throw new ProtobufError(
      `no protobuf schema for ${typeMeta.apiVersion || '(no apiVersion)'}/${typeMeta.kind || '(no kind)'}`,
    );
  }
  return message(name);
}

/** A whole protobuf body (an object, a list or a Status) as the JSON encoding would have it. */
export function decodeObject(buf: Uint8Array): Json {
  const envelope = decodeEnvelope(buf);
  if (envelope.contentEncoding !== '') {
    throw new ProtobufError(`unsupported contentEncoding "${envelope.contentEncoding}" in the envelope`);
  }
  const def = messageFor(envelope.typeMeta);
  const object = decodeMessageRange(envelope.raw, 0, envelope.raw.length, def, envelope.typeMeta.kind);
  // A list's items are never left out of its JSON, even when there are none.
  if (def.byNumber[2]?.name === 'items' && object['items'] === undefined) object['items'] = [];
  return { apiVersion: envelope.typeMeta.apiVersion, kind: envelope.typeMeta.kind, ...object };
}

/** One watch frame (without its length prefix): `{type, object}` as a JSON watch line has it. */
export function decodeWatchEvent(frame: Uint8Array): { type: string; object: Json } {
  const r = new Reader(frame);
  let type = '';
  let raw: Uint8Array | undefined;
  while (!r.done()) {
    const tag = r.varint();
    const no = tag >>> 3;
    if (no === 1 && (tag & 7) === WIRE_BYTES) type = r.string();
    else if (no === 2 && (tag & 7) === WIRE_BYTES) {
      r.span();
      const ext = new Reader(frame, r.spanStart, r.spanEnd);
      while (!ext.done()) {
        const t = ext.varint();
        if (t >>> 3 === 1 && (t & 7) === WIRE_BYTES) raw = ext.bytes();
        else ext.skip(t & 7);
      }
    } else r.skip(tag & 7);
  }
  if (type === '') throw new ProtobufError('watch event without a type');
  if (raw === undefined) throw new ProtobufError(`watch event ${type} without an object`);
  return { type, object: decodeObject(raw) };
}

/**
 * Splits a watch stream into frames as bytes arrive; keeps the incomplete tail. The chunks of an
 * incomplete frame are queued, not joined: a large event arriving in many small reads is copied
 * once when it is complete (joining on every read was quadratic: 8 MiB in 4 KiB reads copied
 * 8 GiB). A length prefix is trusted for nothing but comparison with the limit: no buffer of the
 * claimed size exists before its bytes have arrived.
 */
export class FrameReader {
  #chunks: Uint8Array[] = [];
  /** Bytes of #chunks[0] already consumed. */
  #offset = 0;
  #total = 0;
  readonly maxFrameBytes: number;

  constructor(maxFrameBytes = 64 * 1024 * 1024) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Queues bytes as they arrive; next() takes the frames out. */
  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#total += chunk.length;
  }

  /**
   * The next complete frame (without its prefix), or undefined until more bytes arrive. Throws
   * when a length prefix exceeds the limit, so that the frames before it are still taken out.
   */
  next(): Uint8Array | undefined {
    if (this.#total < 4) return undefined;
    const prefix = this.#peek(4);
    const length =
      (prefix[0] as number) * 0x1000000 +
      ((prefix[1] as number) << 16) +
      (((prefix[2] as number) << 8) | (prefix[3] as number));
    if (length > this.maxFrameBytes) {
      throw new ProtobufError(`watch frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`);
    }
    if (this.#total - 4 < length) return undefined;
    this.#skip(4);
    const frame = this.#peek(length);
    this.#skip(length);
    return frame;
  }

  /** The complete frames in what arrived so far. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.append(chunk);
    const frames: Uint8Array[] = [];
    for (let frame = this.next(); frame !== undefined; frame = this.next()) frames.push(frame);
    return frames;
  }

  /** The first n queued bytes (n <= #total): a view when they lie in one chunk, else one copy. */
  #peek(n: number): Uint8Array {
    const first = this.#chunks[0] as Uint8Array;
    if (first.length - this.#offset >= n) return first.subarray(this.#offset, this.#offset + n);
    const out = new Uint8Array(n);
    let filled = 0;
    let offset = this.#offset;
    for (const chunk of this.#chunks) {
      const take = Math.min(chunk.length - offset, n - filled);
      out.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset = 0;
      if (filled === n) break;
    }
    return out;
  }

  #skip(n: number): void {
    this.#total -= n;
    let left = n;
    while (left > 0) {
      const first = this.#chunks[0] as Uint8Array;
      const available = first.length - this.#offset;
      if (available > left) {
        this.#offset += left;
        return;
      }
      left -= available;
      this.#chunks.shift();
      this.#offset = 0;
    }
  }

  /** Bytes of an incomplete frame left at the end. */
  get pendingBytes(): number {
    return this.#total;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

export class EncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncodeError';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function integer(value: unknown, path: string, bits: 32 | 64): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new EncodeError(`${path}: ${JSON.stringify(value)} is not an integer`);
  }
  if (bits === 32 && (value > 2147483647 || value < -2147483648)) {
    throw new EncodeError(`${path}: ${value} is not an int32`);
  }
  return value;
}

function encodeTime(w: Writer, no: number, value: unknown, path: string): void {
  if (typeof value !== 'string') throw new EncodeError(`${path}: a time must be an RFC 3339 string`);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new EncodeError(`${path}: invalid time "${value}"`);
  const sub = new Writer();
  const seconds = Math.floor(ms / 1000);
  sub.tag(1, WIRE_VARINT);
  sub.varint(seconds);
  sub.tag(2, WIRE_VARINT);
  sub.varint((ms - seconds * 1000) * 1_000_000);
  w.bytes(no, sub.finish());
}

function encodeOne(w: Writer, field: FieldDef, value: unknown, path: string): void {
  const kind = field.kind;
  if (typeof kind === 'object') {
    if (!isRecord(value)) throw new EncodeError(`${path}: must be an object`);
    w.bytes(field.no, encodeMessage(value, message(kind.message), path));
    return;
  }
  switch (kind) {
    case 'string':
      if (typeof value !== 'string')
        throw new EncodeError(`${path}: ${JSON.stringify(value)} is not a string`);
      w.string(field.no, value);
      return;
    case 'bytes':
      if (typeof value !== 'string') throw new EncodeError(`${path}: bytes must be base64 text`);
      w.bytes(field.no, Buffer.from(value, 'base64'));
      return;
    case 'int32':
    case 'int64':
      w.tag(field.no, WIRE_VARINT);
      w.varint(integer(value, path, kind === 'int32' ? 32 : 64));
      return;
    case 'bool':
      if (typeof value !== 'boolean')
        throw new EncodeError(`${path}: ${JSON.stringify(value)} is not a boolean`);
      w.tag(field.no, WIRE_VARINT);
      w.varint(value ? 1 : 0);
      return;
    case 'time':
      encodeTime(w, field.no, value, path);
      return;
    case 'intOrString': {
      const sub = new Writer();
      if (typeof value === 'string') {
        sub.tag(1, WIRE_VARINT);
        sub.varint(1);
        sub.tag(2, WIRE_VARINT);
        sub.varint(0);
        sub.string(3, value);
      } else {
        sub.tag(1, WIRE_VARINT);
        sub.varint(0);
        sub.tag(2, WIRE_VARINT);
        sub.varint(integer(value, path, 32));
        sub.string(3, '');
      }
      w.bytes(field.no, sub.finish());
      return;
    }
    case 'map': {
      if (!isRecord(value)) throw new EncodeError(`${path}: must be a map of strings`);
      // Go writes map entries sorted by key.
      for (const key of Object.keys(value).sort()) {
        const entry = value[key];
        if (typeof entry !== 'string') throw new EncodeError(`${path}["${key}"]: must be a string`);
        const sub = new Writer();
        sub.string(1, key);
        sub.string(2, entry);
        w.bytes(field.no, sub.finish());
      }
      return;
    }
  }
}

function zeroOf(field: FieldDef): unknown {
  switch (field.kind) {
    case 'string':
      return '';
    case 'int32':
    case 'int64':
      return 0;
    case 'bool':
      return false;
    default:
      return undefined;
  }
}

/** A JSON-shaped object as the message `def`; fields the schema does not know are dropped. */
export function encodeMessage(
  obj: Record<string, unknown>,
  def: MessageDef,
  path: string = def.name,
): Uint8Array {
  const w = new Writer();
  for (const field of def.fields) {
    const fieldPath = `${path}.${field.name}`;
    const value = obj[field.name];
    if (value === undefined || value === null) {
      // Go always writes a non-pointer scalar, empty or not.
      const zero = field.presence || field.repeated ? undefined : zeroOf(field);
      if (zero !== undefined) encodeOne(w, field, zero, fieldPath);
      continue;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) throw new EncodeError(`${fieldPath}: must be a list`);
      value.forEach((item: unknown, i) => {
        encodeOne(w, field, item, `${fieldPath}[${i}]`);
      });
    } else encodeOne(w, field, value, fieldPath);
  }
  return w.finish();
}

/** `k8s\0` + runtime.Unknown around an already encoded message. */
export function encodeEnvelope(typeMeta: TypeMeta, raw: Uint8Array): Uint8Array {
  const tm = new Writer();
  tm.string(1, typeMeta.apiVersion);
  tm.string(2, typeMeta.kind);
  const w = new Writer();
  w.raw(MAGIC);
  w.bytes(1, tm.finish());
  w.bytes(2, raw);
  w.string(3, '');
  w.string(4, '');
  return w.finish();
}

/** Whether `apiVersion/kind` (an object, a list or a Status) has a protobuf schema here. */
export function canEncode(typeMeta: TypeMeta): boolean {
  return KINDS.has(`${typeMeta.apiVersion}/${typeMeta.kind}`) || typeMeta.kind === 'Status';
}

/** A whole body: object, list or Status (its kind and apiVersion say which). */
export function encodeObject(obj: Record<string, unknown>): Uint8Array {
  const typeMeta = {
    apiVersion: typeof obj['apiVersion'] === 'string' ? obj['apiVersion'] : '',
    kind: typeof obj['kind'] === 'string' ? obj['kind'] : '',
  };
  const def = messageFor(typeMeta);
  return encodeEnvelope(typeMeta, encodeMessage(obj, def, typeMeta.kind));
}

/** One watch frame, length prefix included. */
export function encodeWatchEvent(type: string, object: Record<string, unknown>): Uint8Array {
  const ext = new Writer();
  ext.bytes(1, encodeObject(object));
  const event = new Writer();
  event.string(1, type);
  event.bytes(2, ext.finish());
  const body = event.finish();
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  return frame;
}
