// The UDP forwarder of one listener: a flow per client address and port, each with its own socket
// towards the endpoint it was given, so the endpoint's replies come back on that socket and go out
// through the listener's socket to the client (whose conntrack entry turns the listener's address
// back into the service address it used). A flow idle in both directions for --udp-timeout ends.
// A flow whose endpoint the router no longer offers moves to another on its next datagram.
// Datagrams are read whole (Node reads up to 64 KiB; upstream truncated at 4 KiB).
import dgram from 'node:dgram';
import type { Endpoint } from '../../model/types.ts';
import { log } from '../../log/log.ts';
import type { Forwarder, ForwarderContext } from './forwarder.ts';
import { isIPv6Host } from './forwarder.ts';
import type { ListenerRouting } from './route.ts';
import { clientAddress } from './routes.ts';

interface Flow {
  readonly key: string;
  readonly clientIP: string;
  /** The address as the listener's socket knows it (IPv4-mapped on a dual-stack socket). */
  readonly clientRaw: string;
  readonly clientPort: number;
  readonly endpoint: Endpoint;
  readonly socket: dgram.Socket;
  readonly timer: NodeJS.Timeout;
  toEndpoint: number;
  toClient: number;
}

export class UdpForwarder implements Forwarder {
  private socket: dgram.Socket | undefined;
  private routing: ListenerRouting;
  private readonly ctx: ForwarderContext;
  private readonly flows = new Map<string, Flow>();

  constructor(routing: ListenerRouting, ctx: ForwarderContext) {
    this.routing = routing;
    this.ctx = ctx;
  }

  listen(host: string, port: number): Promise<number> {
    const socket = dgram.createSocket({
      type: isIPv6Host(host) ? 'udp6' : 'udp4',
      ipv6Only: isIPv6Host(host),
    });
    this.socket = socket;
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.removeListener('error', reject);
        socket.on('error', (error) =>
          log.error('userspace UDP listener error', error, {
            servicePort: this.ctx.servicePort,
            frontend: this.ctx.frontend,
          }),
        );
        socket.on('message', (message, from) => this.fromClient(message, from));
        resolve(socket.address().port);
      });
    });
  }

  update(routing: ListenerRouting): void {
    this.routing = routing;
    this.ctx.balancer.update(routing.balancer, routing.reachable);
    // Flows to endpoints gone for good end now: their next datagram picks a live endpoint.
    for (const flow of this.flows.values()) {
      if (!routing.reachable.has(flow.endpoint.endpoint)) this.end(flow);
    }
  }

  stop(): Promise<void> {
    this.destroy();
    return Promise.resolve();
  }

  destroy(): void {
    for (const flow of [...this.flows.values()]) this.end(flow);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      try {
        socket.close();
      } catch {
        // Already closed.
      }
    }
  }

  size(): number {
    return this.flows.size;
  }

  private labels(endpoint: Endpoint) {
    return { service_port: this.ctx.servicePort, protocol: 'UDP', endpoint: endpoint.endpoint };
  }

  private end(flow: Flow): void {
    if (this.flows.get(flow.key) !== flow) return;
    this.flows.delete(flow.key);
    clearTimeout(flow.timer);
    flow.socket.close();
    const labels = this.labels(flow.endpoint);
    this.ctx.balancer.closed(flow.endpoint.endpoint);
    this.ctx.metrics.active.dec(labels);
    this.ctx.metrics.bytes.inc({ ...labels, direction: 'to_endpoint' }, flow.toEndpoint);
    this.ctx.metrics.bytes.inc({ ...labels, direction: 'to_client' }, flow.toClient);
  }

  private refuse(reason: 'no_endpoints' | 'dropped' | 'flow_limit'): void {
    this.ctx.metrics.refused.inc({ service_port: this.ctx.servicePort, protocol: 'UDP', reason });
  }

  private fromClient(message: Buffer, from: dgram.RemoteInfo): void {
    const key = `${from.address}|${from.port}`;
    const ip = clientAddress(from.address);
    const route = this.routing.router({ ip, port: from.port });
    let flow = this.flows.get(key);
    switch (route.kind) {
      case 'reject':
      case 'drop':
        // A datagram cannot be answered with a reset from here: both drop it.
        if (flow) this.end(flow);
        this.refuse(route.kind === 'reject' ? 'no_endpoints' : 'dropped');
        return;
      case 'endpoints':
        break;
      default: {
        const unknown: never = route;
        throw new Error(`unknown route ${JSON.stringify(unknown)}`);
      }
    }
    if (flow && !route.endpoints.some((e) => e.endpoint === flow?.endpoint.endpoint)) {
      this.end(flow);
      flow = undefined;
    }
    if (flow === undefined) {
      if (this.flows.size >= this.ctx.options.maxUdpFlows) {
        this.refuse('flow_limit');
        return;
      }
      const endpoint = this.ctx.balancer.pick(ip, route.endpoints);
      if (endpoint === undefined) {
        this.refuse('no_endpoints');
        return;
      }
      flow = this.open(key, ip, from, endpoint);
    }
    flow.timer.refresh();
    flow.toEndpoint += message.length;
    flow.socket.send(message, flow.endpoint.port, flow.endpoint.ip);
  }

  private open(key: string, ip: string, from: dgram.RemoteInfo, endpoint: Endpoint): Flow {
    const socket = dgram.createSocket(isIPv6Host(endpoint.ip) ? 'udp6' : 'udp4');
    const flow: Flow = {
      key,
      clientIP: ip,
      clientRaw: from.address,
      clientPort: from.port,
      endpoint,
      socket,
      timer: setTimeout(() => this.end(flow), this.ctx.options.udpIdleTimeoutMs),
      toEndpoint: 0,
      toClient: 0,
    };
    flow.timer.unref();
    socket.on('message', (reply, sender) => {
      // Only the endpoint's replies: anything else reaching this ephemeral port is not the flow's.
      if (sender.port !== endpoint.port || clientAddress(sender.address) !== endpoint.ip) return;
      flow.timer.refresh();
      flow.toClient += reply.length;
      this.socket?.send(reply, flow.clientPort, flow.clientRaw);
    });
    socket.on('error', (error) => {
      log.v(2).info('userspace UDP flow error', {
        servicePort: this.ctx.servicePort,
        endpoint: endpoint.endpoint,
        err: error.message,
      });
      this.end(flow);
    });
    this.flows.set(key, flow);
    const labels = this.labels(endpoint);
    this.ctx.balancer.opened(endpoint.endpoint);
    this.ctx.metrics.connections.inc(labels);
    this.ctx.metrics.active.inc(labels);
    return flow;
  }
}
