// The TCP forwarder of one listener: accepts, asks the router which endpoints the client may use,
// connects with escalating timeouts and moves on to another endpoint on refusal or timeout, then
// copies both ways with back-pressure (pipe pauses the faster side) and half-close (a FIN from
// one side is passed on, the other direction keeps flowing). Dialing happens per connection,
// never in the accept path: a slow endpoint delays only its own client.
import net from 'node:net';
import type { Endpoint } from '../../model/types.ts';
import { log } from '../../log/log.ts';
import type { Forwarder, ForwarderContext } from './forwarder.ts';
import { isIPv6Host } from './forwarder.ts';
import type { ListenerRouting } from './route.ts';
import { clientAddress } from './routes.ts';

type FailureReason = 'refused' | 'timeout' | 'error';

class ConnectError extends Error {
  readonly reason: FailureReason;
  constructor(reason: FailureReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Connects, or rejects with why within `timeoutMs`. */
function connect(endpoint: Endpoint, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: endpoint.ip,
      port: endpoint.port,
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectError('timeout', `connect to ${endpoint.endpoint} timed out after ${timeoutMs}ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new ConnectError(error.code === 'ECONNREFUSED' ? 'refused' : 'error', error.message));
    });
  });
}

/** One proxied connection. */
interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly endpoint: Endpoint;
  drainTimer: NodeJS.Timeout | undefined;
}

export class TcpForwarder implements Forwarder {
  private readonly server: net.Server;
  private routing: ListenerRouting;
  private readonly ctx: ForwarderContext;
  private readonly pairs = new Set<Pair>();
  /** Clients accepted and still dialing. */
  private readonly dialing = new Set<net.Socket>();
  private stopped = false;

  constructor(routing: ListenerRouting, ctx: ForwarderContext) {
    this.routing = routing;
    this.ctx = ctx;
    this.server = net.createServer({
      allowHalfOpen: true,
      pauseOnConnect: true,
      noDelay: true,
      keepAlive: true,
    });
    this.server.on('connection', (client) => this.accept(client));
    // EMFILE and the like: logged, the listener stays (libuv retries accepting).
    this.server.on('error', (error) => {
      if (this.server.listening)
        log.error('userspace TCP listener error', error, {
          servicePort: ctx.servicePort,
          frontend: ctx.frontend,
        });
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host, port, ipv6Only: isIPv6Host(host), exclusive: true }, () => {
        this.server.removeListener('error', onError);
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  update(routing: ListenerRouting): void {
    this.routing = routing;
    this.ctx.balancer.update(routing.balancer, routing.reachable);
    for (const pair of this.pairs) {
      if (!routing.reachable.has(pair.endpoint.endpoint)) this.drain(pair);
      else if (pair.drainTimer !== undefined && !this.stopped) {
        // The endpoint came back (a readiness flap): its connections are not drained after all.
        clearTimeout(pair.drainTimer);
        pair.drainTimer = undefined;
      }
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    for (const pair of this.pairs) this.drain(pair);
    for (const client of this.dialing) client.destroy();
    // The listening socket closes now; close's callback would wait for every connection to end.
    this.server.close();
    return Promise.resolve();
  }

  destroy(): void {
    this.stopped = true;
    this.server.close();
    for (const client of this.dialing) client.destroy();
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
  }

  size(): number {
    return this.pairs.size;
  }

  /** Closes a connection after the drain deadline, if there is one (upstream: never). */
  private drain(pair: Pair): void {
    const ms = this.ctx.options.drainMs;
    if (ms === undefined || pair.drainTimer !== undefined) return;
    pair.drainTimer = setTimeout(() => {
      pair.client.destroy();
      pair.upstream.destroy();
    }, ms);
    pair.drainTimer.unref();
  }

  private refuse(client: net.Socket, protocolReason: 'no_endpoints' | 'dropped' | 'all_failed'): void {
    this.ctx.metrics.refused.inc({
      service_port: this.ctx.servicePort,
      protocol: 'TCP',
      reason: protocolReason,
    });
    // REJECT in the kernel modes answers with a reset; DROP gives no answer, which an accepted
    // socket cannot give: it is closed without a reset.
    if (protocolReason === 'dropped') client.destroy();
    else client.resetAndDestroy();
  }

  private accept(client: net.Socket): void {
    client.on('error', () => client.destroy());
    if (this.stopped) {
      client.destroy();
      return;
    }
    const ip = clientAddress(client.remoteAddress ?? '');
    const route = this.routing.router({ ip, port: client.remotePort ?? 0 });
    switch (route.kind) {
      case 'reject':
        this.refuse(client, 'no_endpoints');
        return;
      case 'drop':
        this.refuse(client, 'dropped');
        return;
      case 'endpoints':
        void this.dial(client, ip, route.endpoints);
        return;
      default: {
        const unknown: never = route;
        throw new Error(`unknown route ${JSON.stringify(unknown)}`);
      }
    }
  }

  private async dial(client: net.Socket, ip: string, endpoints: readonly Endpoint[]): Promise<void> {
    const { balancer, metrics, options, servicePort } = this.ctx;
    this.dialing.add(client);
    const tried = new Set<string>();
    // A function, not a narrowed property: the client may go away while a connect is awaited.
    const gone = (): boolean => client.destroyed;
    try {
      for (const [attempt, timeoutMs] of options.connectTimeoutsMs.entries()) {
        if (gone()) return;
        let endpoint = balancer.pick(ip, endpoints, tried, attempt > 0);
        if (endpoint === undefined) {
          // Every candidate failed once: go round again with the longer timeouts (so one
          // endpoint gets upstream's four attempts).
          tried.clear();
          endpoint = balancer.pick(ip, endpoints, tried, true);
        }
        if (endpoint === undefined) break;
        tried.add(endpoint.endpoint);
        try {
          const upstream = await connect(endpoint, timeoutMs);
          if (balancer.succeeded(endpoint.endpoint)) {
            log.info('userspace endpoint answers again', { servicePort, endpoint: endpoint.endpoint });
          }
          if (gone()) {
            upstream.destroy();
            return;
          }
          this.splice(client, upstream, endpoint);
          return;
        } catch (error) {
          const reason: FailureReason = error instanceof ConnectError ? error.reason : 'error';
          metrics.connectFailures.inc({ service_port: servicePort, endpoint: endpoint.endpoint, reason });
          const ejection = balancer.failed(endpoint.endpoint);
          metrics.ejections.inc({ service_port: servicePort, endpoint: endpoint.endpoint });
          log.v(ejection.failures > 1 ? 4 : 0).info('userspace endpoint skipped after a failed connect', {
            servicePort,
            endpoint: endpoint.endpoint,
            reason,
            failuresInARow: ejection.failures,
            skippedForMs: ejection.forMs,
          });
        }
      }
      if (!gone()) this.refuse(client, 'all_failed');
    } finally {
      this.dialing.delete(client);
    }
  }

  /** Copies both ways until both sides are done; counts and forgets the pair when it ends. */
  private splice(client: net.Socket, upstream: net.Socket, endpoint: Endpoint): void {
    const { balancer, metrics, servicePort } = this.ctx;
    const labels = { service_port: servicePort, protocol: 'TCP', endpoint: endpoint.endpoint };
    const pair: Pair = { client, upstream, endpoint, drainTimer: undefined };
    this.pairs.add(pair);
    balancer.opened(endpoint.endpoint);
    metrics.connections.inc(labels);
    metrics.active.inc(labels);
    if (this.stopped || !this.routing.reachable.has(endpoint.endpoint)) this.drain(pair);

    // An error on either side ends both; 'close' of one side (both directions done, or an
    // error) ends the other: nothing more can be delivered.
    client.removeAllListeners('error');
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    let open = 2;
    const closed = (other: net.Socket) => {
      other.destroy();
      if (--open > 0) return;
      if (pair.drainTimer !== undefined) clearTimeout(pair.drainTimer);
      this.pairs.delete(pair);
      balancer.closed(endpoint.endpoint);
      metrics.active.dec(labels);
      metrics.bytes.inc({ ...labels, direction: 'to_endpoint' }, upstream.bytesWritten);
      metrics.bytes.inc({ ...labels, direction: 'to_client' }, client.bytesWritten);
    };
    client.once('close', () => closed(upstream));
    upstream.once('close', () => closed(client));
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }
}
