// Service health checks for externalTrafficPolicy: Local (upstream-behavior.md 6.2): one HTTP
// listener per Service with a healthCheckNodePort, telling the cloud load balancer whether this
// node has local ready endpoints for it. Listeners follow the synced snapshots: opened for new
// Services, closed for removed ones, reopened when the port changes; a port that cannot be opened
// is reported (log + Warning event on the Service) and tried again after the next sync.
import { createServer, type Server } from 'node:http';
import { networkInterfaces } from 'node:os';
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EventRecorder } from '../k8s/events.ts';
import { log } from '../log/log.ts';
import type { IPFamily, ProxySnapshot, ServiceName } from '../model/types.ts';
import { cidrContains, parseCIDR, parseIP } from '../util/ip.ts';
import { plansOf } from '../plan/service-port.ts';

/** What one family's snapshot says about one Service. */
export interface ServiceHealthInfo {
  readonly port: number;
  /** Distinct IPs of this node's ready endpoints of the Service, over all its ports. */
  readonly localEndpoints: ReadonlySet<string>;
}

/** Services with a health check node port in one snapshot, with their local ready endpoints. */
export function serviceHealthInfo(snapshot: ProxySnapshot): Map<ServiceName, ServiceHealthInfo> {
  const result = new Map<ServiceName, { port: number; localEndpoints: Set<string> }>();
  for (const plan of plansOf(snapshot)) {
    const sp = plan.servicePort;
    if (sp.healthCheckNodePort === 0) continue;
    let info = result.get(sp.id.service);
    if (!info) {
      info = { port: sp.healthCheckNodePort, localEndpoints: new Set() };
      result.set(sp.id.service, info);
    }
    // Ready local endpoints, whatever the traffic policy picks: what the load balancer asks about.
    for (const ep of plan.state.endpoints) if (ep.isLocal && ep.ready) info.localEndpoints.add(ep.ip);
  }
  return result;
}

export interface MergedServiceHealth {
  readonly port: number;
  readonly localEndpoints: number;
}

/**
 * Both families' views of the Services: a Service of either family gets a listener. A dual-stack
 * pod is one endpoint with an address per family, so the count is the larger of the families'
 * counts, not their sum. Should the families disagree on the port (only while one of them has
 * not synced the change yet), the family listed first wins (the order the daemon keeps them in).
 */
export function mergeFamilies(
  perFamily: readonly ReadonlyMap<ServiceName, ServiceHealthInfo>[],
): Map<ServiceName, MergedServiceHealth> {
  const merged = new Map<ServiceName, MergedServiceHealth>();
  for (const infos of perFamily) {
    for (const [service, info] of infos) {
      const existing = merged.get(service);
      merged.set(service, {
        port: existing?.port ?? info.port,
        localEndpoints: Math.max(existing?.localEndpoints ?? 0, info.localEndpoints.size),
      });
    }
  }
  return merged;
}

/** Upstream's body: Go's json.MarshalIndent with tab indentation, no trailing newline. */
export function serviceHealthBody(service: ServiceName, localEndpoints: number, healthy: boolean): string {
  const slash = service.indexOf('/');
  return JSON.stringify(
    {
      service: { namespace: service.slice(0, slash), name: service.slice(slash + 1) },
      localEndpoints,
      serviceProxyHealthy: healthy,
    },
    null,
    '\t',
  );
}

/** `all` for a match-all nodePortAddresses; otherwise the CIDRs per family. */
export type HealthCheckAddressSetting = 'all' | Readonly<Partial<Record<IPFamily, readonly string[]>>>;

/**
 * The addresses to listen on: undefined for every address, else each local address inside
 * the node port CIDRs (upstream listens on the node IPs within nodePortAddresses).
 */
export function healthCheckAddresses(
  setting: HealthCheckAddressSetting,
  localAddresses: readonly string[],
): string[] | undefined {
  if (setting === 'all') return undefined;
  const cidrs = [...(setting.IPv4 ?? []), ...(setting.IPv6 ?? [])]
    .map((text) => parseCIDR(text))
    .filter((cidr) => cidr !== undefined);
  const result: string[] = [];
  for (const address of localAddresses) {
    const ip = parseIP(address);
    if (ip && cidrs.some((cidr) => cidrContains(cidr, ip)) && !result.includes(ip.text)) result.push(ip.text);
  }
  return result;
}

/** Every address on this host's interfaces (in the network namespace the process runs in). */
export function localInterfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).filter((entry) => !entry.address.includes('%')).map((entry) => entry.address),
  );
}

export interface ServiceHealthServerOptions {
  /** Listen addresses, or undefined for all addresses (match-all nodePortAddresses). */
  readonly addresses: readonly string[] | undefined;
  /** Proxy health as /livez sees it (node eligibility is not part of it). */
  readonly health: { status(): { readonly healthy: boolean } };
  readonly recorder?: Pick<EventRecorder, 'serviceEvent'>;
  readonly nodeName: string;
}

interface Listener {
  readonly port: number;
  readonly servers: readonly Server[];
}

const HEADERS = { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' };

function listen(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      reject(error);
    };
    server.once('error', onError);
    server.listen({ port, ...(host !== undefined ? { host } : {}) }, () => {
      server.off('error', onError);
      // Accept errors (EMFILE under a connection flood) must never become an uncaught 'error':
      // these ports face the outside world.
      server.on('error', (error) => {
        log.error('Service health check server error', error, { port });
      });
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}

export class ServiceHealthServer {
  private readonly options: ServiceHealthServerOptions;
  private readonly families = new Map<IPFamily, Map<ServiceName, ServiceHealthInfo>>();
  private readonly listeners = new Map<ServiceName, Listener>();
  private counts = new Map<ServiceName, MergedServiceHealth>();
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(options: ServiceHealthServerOptions) {
    this.options = options;
  }

  /**
   * Takes one family's successfully synced snapshot: updates the counts served at once, then
   * opens and closes listeners. Updates run one at a time, in call order.
   */
  update(snapshot: ProxySnapshot): Promise<void> {
    this.families.set(snapshot.family, serviceHealthInfo(snapshot));
    this.counts = mergeFamilies([...this.families.values()]);
    const run = this.queue.then(() => this.syncListeners());
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Open listeners: Service -> port (for tests and logs). */
  openPorts(): Map<ServiceName, number> {
    return new Map([...this.listeners].map(([service, listener]) => [service, listener.port]));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    const listeners = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(listeners.flatMap((listener) => listener.servers.map(closeServer)));
  }

  private async syncListeners(): Promise<void> {
    if (this.closed) return;
    const wanted = this.counts;
    for (const [service, listener] of [...this.listeners]) {
      if (wanted.get(service)?.port === listener.port) continue;
      this.listeners.delete(service);
      await Promise.all(listener.servers.map(closeServer));
      log.v(2).info('Closed service health check', { service, port: listener.port });
    }
    for (const [service, { port }] of wanted) {
      if (this.listeners.has(service)) continue;
      const listener = await this.open(service, port);
      if (listener) this.listeners.set(service, listener);
    }
  }

  private async open(service: ServiceName, port: number): Promise<Listener | undefined> {
    const hosts = this.options.addresses ?? [undefined];
    const servers: Server[] = [];
    try {
      for (const host of hosts) {
        const server = createServer((req, res) => {
          const localEndpoints = this.counts.get(service)?.localEndpoints ?? 0;
          const healthy = this.options.health.status().healthy;
          res.writeHead(localEndpoints > 0 && healthy ? 200 : 503, HEADERS);
          res.end(serviceHealthBody(service, localEndpoints, healthy));
          req.resume();
        });
        servers.push(server);
        await listen(server, port, host);
      }
    } catch (error) {
      await Promise.all(servers.map(closeServer));
      this.reportFailure(service, port, error instanceof Error ? error : new Error(String(error)));
      return undefined;
    }
    log
      .v(2)
      .info('Opened service health check', { service, port, addresses: this.options.addresses ?? 'all' });
    return { port, servers };
  }

  private reportFailure(service: ServiceName, port: number, error: Error): void {
    log.error('Failed to start service health check, will retry after the next sync', error, {
      service,
      port,
    });
    const slash = service.indexOf('/');
    const ref: Service = { metadata: { namespace: service.slice(0, slash), name: service.slice(slash + 1) } };
    void this.options.recorder?.serviceEvent(
      ref,
      'Warning',
      'FailedToStartServiceHealthcheck',
      'Listen',
      `node ${this.options.nodeName} failed to start healthcheck "${service}" on port ${String(port)}: ${error.message}`,
    );
  }
}
