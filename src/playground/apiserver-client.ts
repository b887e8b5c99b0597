// Drives an in-repo fake API server over its unix socket: for tests whose kube-proxy runs inside
// a network namespace, where the server must run too (unix sockets are not namespaced, loopback
// is). Uses the real REST paths for objects and the /_fake/ admin endpoints for faults.
import http from 'node:http';
import { resourceFor, resourcePath, type KubeObj, type RecordedRequest } from './apiserver.ts';

export class FakeApiClientError extends Error {
  readonly statusCode: number;
  constructor(message: string, statusCode: number) {
    super(message);
    this.name = 'FakeApiClientError';
    this.statusCode = statusCode;
  }
}

export class FakeApiClient {
  readonly socketPath: string;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  request(method: string, path: string, body?: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        {
          socketPath: this.socketPath,
          method,
          path,
          headers: payload === undefined ? {} : { 'Content-Type': 'application/json' },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text === '' ? undefined : JSON.parse(text);
            } catch {
              parsed = text;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parsed);
            else {
              const message =
                typeof parsed === 'object' &&
                parsed !== null &&
                'message' in parsed &&
                typeof parsed.message === 'string'
                  ? parsed.message
                  : text;
              reject(new FakeApiClientError(`${method} ${path}: HTTP ${status}: ${message}`, status));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async create<T extends KubeObj>(obj: T): Promise<T> {
    const info = resourceFor(obj.kind ?? '', obj.apiVersion);
    const ns = info.namespaced ? (obj.metadata?.namespace ?? 'default') : '';
    return (await this.request('POST', resourcePath(info, ns), obj)) as T;
  }

  async update<T extends KubeObj>(obj: T): Promise<T> {
    const info = resourceFor(obj.kind ?? '', obj.apiVersion);
    const ns = info.namespaced ? (obj.metadata?.namespace ?? 'default') : '';
    return (await this.request('PUT', resourcePath(info, ns, obj.metadata?.name ?? ''), obj)) as T;
  }

  async delete(kind: string, namespace: string, name: string): Promise<KubeObj> {
    return (await this.request('DELETE', resourcePath(resourceFor(kind), namespace, name))) as KubeObj;
  }

  async get(kind: string, namespace: string, name: string): Promise<KubeObj | undefined> {
    try {
      return (await this.request('GET', resourcePath(resourceFor(kind), namespace, name))) as KubeObj;
    } catch (error) {
      if (error instanceof FakeApiClientError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  async list(kind: string, namespace = ''): Promise<KubeObj[]> {
    const list = (await this.request('GET', resourcePath(resourceFor(kind), namespace))) as {
      items: KubeObj[];
    };
    return list.items;
  }

  async compact(): Promise<void> {
    await this.request('POST', '/_fake/compact', {});
  }

  async requests(): Promise<RecordedRequest[]> {
    return (await this.request('GET', '/_fake/requests')) as RecordedRequest[];
  }

  async state(): Promise<{ resourceVersion: string; openWatches: number }> {
    return (await this.request('GET', '/_fake/state')) as { resourceVersion: string; openWatches: number };
  }

  readonly faults = {
    closeWatches: async (abrupt = false): Promise<number> =>
      ((await this.request('POST', '/_fake/fault/close-watches', { abrupt })) as { closed: number }).closed,
    failNext: async (status: number, count = 1, match?: string): Promise<void> => {
      await this.request('POST', '/_fake/fault/fail-next', {
        status,
        count,
        ...(match !== undefined ? { match } : {}),
      });
    },
    hangNext: async (count = 1, match?: string): Promise<void> => {
      await this.request('POST', '/_fake/fault/hang-next', {
        count,
        ...(match !== undefined ? { match } : {}),
      });
    },
    sendBookmark: async (): Promise<number> =>
      ((await this.request('POST', '/_fake/fault/bookmark', {})) as { sent: number }).sent,
    sendRawLine: async (line: string): Promise<number> =>
      ((await this.request('POST', '/_fake/fault/raw-line', { line })) as { sent: number }).sent,
    holdWatches: async (on: boolean): Promise<void> => {
      await this.request('POST', '/_fake/fault/hold-watches', { on });
    },
    clear: async (): Promise<void> => {
      await this.request('POST', '/_fake/fault/clear', {});
    },
    sendErrorEvent: async (code: number, message?: string): Promise<number> =>
      (
        (await this.request('POST', '/_fake/fault/error-event', {
          code,
          ...(message !== undefined ? { message } : {}),
        })) as { sent: number }
      ).sent,
  };
}
