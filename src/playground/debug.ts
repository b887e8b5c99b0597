// The live proxy's debug routes (/debug/proxy, /debug/proxy/state, /debug/proxy/explain), read
// through the relay's unix socket, and what the playground prints of its syncs.
import http from 'node:http';
import { field } from '../model/validate.ts';
import { DEBUG_HEADER } from '../server/debug-routes.ts';

export class DebugClient {
  readonly socketPath: string;
  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  /** GET a debug route; rejects on a non-2xx answer with the route's error text. */
  get(path: string, timeoutMs = 10_000): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          path,
          method: 'GET',
          // The route checks the Host header (an IP literal) and wants the debug header.
          headers: { Host: '127.0.0.1:10249', [DEBUG_HEADER]: '1', Accept: 'application/json' },
          agent: false,
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = JSON.parse(text);
            } catch {
              reject(
                new Error(`${path}: answered ${res.statusCode ?? 0} with no JSON: ${text.slice(0, 200)}`),
              );
              return;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(body);
            else {
              const error = (body as { error?: unknown }).error;
              reject(new Error(typeof error === 'string' ? error : `${path}: answered ${status}`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${path}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }
}

/** One family's entry of /debug/proxy, as far as the playground reads it. */
export interface FamilySyncView {
  readonly ipFamily: string;
  readonly successfulSyncs: number;
  readonly lastSync?: {
    readonly full: boolean;
    readonly renderSeconds: number;
    readonly applySeconds: number;
  };
}

/** The families of a /debug/proxy answer (malformed parts are left out, not trusted). */
export function syncViews(body: unknown): FamilySyncView[] {
  const families = field(body, 'families');
  if (!Array.isArray(families)) return [];
  return families.flatMap((f: unknown): FamilySyncView[] => {
    const ipFamily = field(f, 'ipFamily');
    const successfulSyncs = field(f, 'successfulSyncs');
    if (typeof ipFamily !== 'string' || typeof successfulSyncs !== 'number') return [];
    const last = field(f, 'lastSync');
    const full = field(last, 'full');
    const seconds = (name: string): number => {
      const value = field(last, name);
      return typeof value === 'number' ? value : 0;
    };
    return [
      {
        ipFamily,
        successfulSyncs,
        ...(typeof full === 'boolean'
          ? {
              lastSync: {
                full,
                renderSeconds: seconds('renderSeconds'),
                applySeconds: seconds('applySeconds'),
              },
            }
          : {}),
      },
    ];
  });
}

const ms = (seconds: number): string => `${(seconds * 1000).toFixed(1)} ms`;

/** `sync (IPv4): partial, 4.1 ms (render 1.0 ms, apply 3.1 ms), sync #7` for each family that synced. */
export function formatSyncs(before: readonly FamilySyncView[], after: readonly FamilySyncView[]): string[] {
  const lines: string[] = [];
  for (const family of after) {
    const was = before.find((b) => b.ipFamily === family.ipFamily)?.successfulSyncs ?? 0;
    const count = family.successfulSyncs - was;
    const last = family.lastSync;
    if (count <= 0 || !last) continue;
    lines.push(
      `sync (${family.ipFamily}): ${last.full ? 'full' : 'partial'}, ${ms(last.renderSeconds + last.applySeconds)} (render ${ms(last.renderSeconds)}, apply ${ms(last.applySeconds)}), sync #${family.successfulSyncs}${count > 1 ? ` (${count} syncs since the change; the last shown)` : ''}`,
    );
  }
  return lines.length > 0 ? lines : ['sync: none (nothing node1 programs changed)'];
}
