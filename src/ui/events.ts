// Server-Sent Events for the web page (/debug/proxy/events): `sync` after every sync attempt,
// `verify` after every verify, a comment line as heartbeat. Bounded: at most a few clients, each
// closed after an hour (the browser's EventSource reconnects by itself).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PageRoute } from '../server/debug-routes.ts';
import { PAGE_HEADERS } from './static.ts';

export interface EventHubOptions {
  readonly maxClients?: number;
  readonly maxAgeMs?: number;
  readonly heartbeatMs?: number;
}

interface Client {
  readonly res: ServerResponse;
  readonly timer: NodeJS.Timeout;
}

export class EventHub {
  private readonly clients = new Set<Client>();
  private readonly maxClients: number;
  private readonly maxAgeMs: number;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(options: EventHubOptions = {}) {
    this.maxClients = options.maxClients ?? 4;
    this.maxAgeMs = options.maxAgeMs ?? 3_600_000;
    this.heartbeat = setInterval(() => {
      for (const client of this.clients) client.res.write(': heartbeat\n\n');
    }, options.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** The route for GET /debug/proxy/events. */
  readonly route: PageRoute = (req: IncomingMessage, res: ServerResponse) => {
    if (this.clients.size >= this.maxClients) {
      res.writeHead(429, {
        ...PAGE_HEADERS,
        'Content-Type': 'text/plain; charset=utf-8',
        'Retry-After': '30',
      });
      res.end(`at most ${this.maxClients} event streams at a time\n`);
      return;
    }
    res.writeHead(200, {
      ...PAGE_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    const client: Client = {
      res,
      timer: setTimeout(() => res.end(), this.maxAgeMs).unref(),
    };
    this.clients.add(client);
    const drop = (): void => {
      clearTimeout(client.timer);
      this.clients.delete(client);
    };
    req.on('close', drop);
    res.on('close', drop);
  };

  /** Sends one event to every client; `data` is sent as one line of JSON. */
  publish(event: 'sync' | 'verify', data: unknown): void {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const client of this.clients) client.res.write(text);
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const client of this.clients) {
      clearTimeout(client.timer);
      client.res.end();
    }
    this.clients.clear();
  }
}
