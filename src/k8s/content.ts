// Content negotiation with the API server, as client-go does it: ask for the configured content
// type (protobuf by default) with JSON as the fallback, and decode whatever arrives by its
// Content-Type, so a server (or an aggregated API) that only speaks JSON keeps working.
import { StringDecoder } from 'node:string_decoder';
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

/** Turns a watch body into events ({type, object} values) as its bytes arrive. */
export interface WatchDecoder {
  readonly encoding: 'json' | 'protobuf';
  /** The complete events in this chunk and what was left over before. */
  push(chunk: Buffer): unknown[];
  /** Whatever remains when the body ends (a last line without a newline). */
  end(): unknown[];
}

/** A decoder for a watch response of this Content-Type. */
export function watchDecoder(contentType: string | undefined, what: string): WatchDecoder {
  const media = mediaType(contentType);
  if (media === MEDIA_PROTOBUF) return protobufWatchDecoder(what);
  if (media === MEDIA_JSON || media === '' || media.endsWith('+json')) return jsonWatchDecoder(what);
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

function jsonWatchDecoder(what: string): WatchDecoder {
  const text = new StringDecoder('utf8');
  let pending = '';
  return {
    encoding: 'json',
    push(chunk) {
      pending += text.write(chunk);
      const out: unknown[] = [];
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line !== '') out.push(parseLine(line, what));
        newline = pending.indexOf('\n');
      }
      return out;
    },
    end() {
      const rest = (pending + text.end()).trim();
      pending = '';
      return rest === '' ? [] : [parseLine(rest, what)];
    },
  };
}

function protobufWatchDecoder(what: string): WatchDecoder {
  const frames = new FrameReader();
  return {
    encoding: 'protobuf',
    push(chunk) {
      try {
        return frames.push(chunk).map((frame) => decodeWatchEvent(frame));
      } catch (error) {
        throw new KubeDecodeError(`${what}: malformed protobuf watch event`, error);
      }
    },
    end() {
      if (frames.pendingBytes > 0) {
        throw new KubeDecodeError(
          what,
          new Error(`watch stream ended inside a frame (${frames.pendingBytes} bytes)`),
        );
      }
      return [];
    },
  };
}
