// Content negotiation with the API server, as client-go does it: ask for the configured content
// type (protobuf by default) with JSON as the fallback, and decode whatever arrives by its
// Content-Type, so a server (or an aggregated API) that only speaks JSON keeps working.
import { decodeObject, decodeWatchEvent, FrameReader } from './protobuf/codec.ts';

export const MEDIA_JSON = 'application/json';
export const MEDIA_PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** A body that cannot be decoded: malformed JSON or protobuf, or an unknown Content-Type. */
export class KubeDecodeError extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'KubeDecodeError';
  }
}

/**
 * The Accept header: `clientConnection.acceptContentTypes` when set; otherwise the content type
 * with JSON as the fallback (client-go's default for kube-proxy: protobuf, then JSON).
 */
export function acceptHeader(contentType: string, acceptContentTypes: string): string {
  if (acceptContentTypes.trim() !== '') return acceptContentTypes;
  const preferred = contentType.trim() === '' ? MEDIA_JSON : contentType.trim();
  return mediaType(preferred) === MEDIA_JSON ? MEDIA_JSON : `${preferred}, ${MEDIA_JSON}`;
}

/** The media type of a Content-Type or Accept entry, lower case, without parameters. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Decodes a whole response body by its Content-Type. An empty body is undefined. */
export function decodeBody(contentType: string | undefined, body: Buffer, what: string): unknown {
  if (body.length === 0) return undefined;
  const media = mediaType(contentType);
  try {
    if (media === MEDIA_PROTOBUF) return decodeObject(body);
    // No Content-Type: the API server always sends one, but a proxy's error page may not.
    if (media === MEDIA_JSON || media === '' || media.endsWith('+json')) {
      return JSON.parse(body.toString('utf8')) as unknown;
    }
  } catch (error) {
    throw new KubeDecodeError(
      `${what}: invalid ${media === MEDIA_PROTOBUF ? 'protobuf' : 'JSON'} in response`,
      error,
    );
  }
  throw new KubeDecodeError(what, new Error(`unsupported Content-Type "${contentType ?? ''}"`));
}

/** The largest watch event read (a JSON line or a protobuf frame): far above etcd's 1.5 MiB object limit. */
export const MAX_WATCH_EVENT_BYTES = 64 * 1024 * 1024;

/**
 * Turns a watch body into events ({type, object} values) as its bytes arrive. Each event is
 * handed over whole, in order; the first malformed one throws a KubeDecodeError naming it, after
 * the events before it (in the same read too) have been handed over.
 */
export interface WatchDecoder {
  readonly encoding: 'json' | 'protobuf';
  /**
   * Hands each complete event in this chunk (and what was left over before) to `deliver`;
   * stops when it returns false.
   */
  push(chunk: Buffer, deliver: (event: unknown) => boolean): void;
  /** Whatever remains when the body ends (a last line without a newline). */
  end(deliver: (event: unknown) => boolean): void;
}

export interface WatchDecoderOptions {
  /** An event longer than this fails the stream (default MAX_WATCH_EVENT_BYTES). */
  readonly maxEventBytes?: number;
}

/** A decoder for a watch response of this Content-Type. */
export function watchDecoder(
  contentType: string | undefined,
  what: string,
  options: WatchDecoderOptions = {},
): WatchDecoder {
  const media = mediaType(contentType);
  const max = options.maxEventBytes ?? MAX_WATCH_EVENT_BYTES;
  if (media === MEDIA_PROTOBUF) return protobufWatchDecoder(what, max);
  if (media === MEDIA_JSON || media === '' || media.endsWith('+json')) return jsonWatchDecoder(what, max);
  throw new KubeDecodeError(what, new Error(`unsupported watch Content-Type "${contentType ?? ''}"`));
}

function parseLine(line: string, what: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch (error) {
    const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line;
    throw new KubeDecodeError(`${what}: malformed watch event (not JSON): ${shown}`, error);
  }
}

/**
 * Newline-delimited JSON. Lines are cut as bytes (a newline byte never occurs inside a UTF-8
 * sequence) and decoded whole, so a read that ends inside a character changes nothing; only the
 * new bytes are searched for the newline, and a line's pieces are joined once, when it is
 * complete: a large event in many small reads costs linear time, and a line that never ends
 * fails at the limit instead of growing without bound.
 */
function jsonWatchDecoder(what: string, maxEventBytes: number): WatchDecoder {
  let pieces: Buffer[] = [];
  let pending = 0;
  const line = (last: Buffer): string => {
    const text = (pieces.length === 0 ? last : Buffer.concat([...pieces, last])).toString('utf8').trim();
    pieces = [];
    pending = 0;
    return text;
  };
  return {
    encoding: 'json',
    push(chunk, deliver) {
      let start = 0;
      for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
        if (pending + newline - start > maxEventBytes) throw tooLong();
        const text = line(chunk.subarray(start, newline));
        start = newline + 1;
        if (text !== '' && !deliver(parseLine(text, what))) return;
      }
      if (start < chunk.length) {
        pending += chunk.length - start;
        if (pending > maxEventBytes) throw tooLong();
        pieces.push(chunk.subarray(start));
      }
    },
    end(deliver) {
      const text = line(Buffer.alloc(0));
      if (text !== '') deliver(parseLine(text, what));
    },
  };
  function tooLong(): KubeDecodeError {
    return new KubeDecodeError(
      what,
      new Error(
        `watch event longer than ${maxEventBytes} bytes (no newline): the stream is not JSON watch events`,
      ),
    );
  }
}

function protobufWatchDecoder(what: string, maxEventBytes: number): WatchDecoder {
  const frames = new FrameReader(maxEventBytes);
  return {
    encoding: 'protobuf',
    push(chunk, deliver) {
      frames.append(chunk);
      for (;;) {
        let event: unknown;
        try {
          const frame = frames.next();
          if (frame === undefined) return;
          event = decodeWatchEvent(frame);
        } catch (error) {
          throw new KubeDecodeError(`${what}: malformed protobuf watch event`, error);
        }
        if (!deliver(event)) return;
      }
    },
    end() {
      if (frames.pendingBytes > 0) {
        throw new KubeDecodeError(
          what,
          new Error(`watch stream ended inside a frame (${frames.pendingBytes} bytes)`),
        );
      }
    },
  };
}
