// The userspace data path: every listener of the daemon (both families' proxiers share one pool),
// each a TCP or UDP forwarder with its own balancer, opened, re-routed in place and closed by the
// proxier. Its per-connection metrics are registered once, here, and the series of an endpoint go
// once no listener can reach it and it carries no connection (Endpoints come and go all day: a
// series per endpoint ever seen would grow without bound).
import { log } from '../../log/log.ts';
import type { Registry } from '../../metrics/registry.ts';
import { Balancer } from './balancer.ts';
import { DEFAULT_DATA_PATH_OPTIONS, type DataPathOptions, type Forwarder } from './forwarder.ts';
import { registerDataPathMetrics, type DataPathMetrics } from './metrics.ts';
import type { ListenerPool } from './proxier.ts';
import type { BalancerSettings, ListenerRouting, ListenerSpec, Router } from './route.ts';
import { TcpForwarder } from './tcp.ts';
import { UdpForwarder } from './udp.ts';

export class Forwarders implements ListenerPool {
  private readonly forwarders = new Map<string, Forwarder>();
  /** Listeners that stopped accepting and still carry connections (drain), until they end. */
  private readonly draining = new Set<Forwarder>();
  private readonly metrics: DataPathMetrics;
  private readonly options: DataPathOptions;
  /** Per forwarder (open or draining): its service port label and the endpoints it can reach. */
  private readonly reach = new Map<Forwarder, { servicePort: string; reachable: ReadonlySet<string> }>();
  private pruneTimer: NodeJS.Timeout | undefined;

  /** Delay between a change of endpoints and the removal of the series it left behind. */
  private readonly pruneDelayMs: number;

  constructor(registry: Registry, options: Partial<DataPathOptions> = {}, pruneDelayMs = 10_000) {
    this.pruneDelayMs = pruneDelayMs;
    this.metrics = registerDataPathMetrics(registry);
    this.options = { ...DEFAULT_DATA_PATH_OPTIONS, ...options };
  }

  async open(spec: ListenerSpec): Promise<{ readonly port: number }> {
    this.pruneDrained();
    if (this.forwarders.has(spec.key)) throw new Error(`userspace listener ${spec.key} is already open`);
    const routing: ListenerRouting = {
      router: spec.router,
      balancer: spec.balancer,
      reachable: spec.reachable,
    };
    const ctx = {
      options: this.options,
      metrics: this.metrics,
      balancer: new Balancer(spec.balancer),
      servicePort: spec.labels.servicePort,
      frontend: spec.labels.frontend,
    };
    const forwarder =
      spec.protocol === 'TCP' ? new TcpForwarder(routing, ctx) : new UdpForwarder(routing, ctx);
    let port: number;
    try {
      port = await forwarder.listen(spec.host, spec.port);
    } catch (error) {
      forwarder.destroy();
      const detail = error instanceof Error ? error.message : String(error);
      throw Object.assign(
        new Error(`cannot listen on ${spec.protocol} ${spec.host} port ${spec.port}: ${detail}`),
        {
          code: typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined,
        },
      );
    }
    this.forwarders.set(spec.key, forwarder);
    this.reach.set(forwarder, { servicePort: spec.labels.servicePort, reachable: spec.reachable });
    return { port };
  }

  update(key: string, router: Router, balancer: BalancerSettings, reachable: ReadonlySet<string>): void {
    const forwarder = this.forwarders.get(key);
    if (forwarder === undefined) {
      log.error('userspace: update of a listener that is not open', undefined, { key });
      return;
    }
    forwarder.update({ router, balancer, reachable });
    const known = this.reach.get(forwarder);
    if (known) this.reach.set(forwarder, { ...known, reachable });
    this.schedulePrune();
  }

  async close(key: string): Promise<void> {
    const forwarder = this.forwarders.get(key);
    if (forwarder === undefined) return;
    this.forwarders.delete(key);
    await forwarder.stop();
    this.pruneDrained();
    if (forwarder.size() > 0) this.draining.add(forwarder);
    else this.reach.delete(forwarder);
    this.schedulePrune();
  }

  /** Shutdown: every listener and connection closes now. */
  closeAll(): void {
    for (const forwarder of [...this.forwarders.values(), ...this.draining]) forwarder.destroy();
    this.forwarders.clear();
    this.draining.clear();
    this.reach.clear();
    clearTimeout(this.pruneTimer);
    this.pruneTimer = undefined;
  }

  private pruneDrained(): void {
    for (const forwarder of this.draining)
      if (forwarder.size() === 0) {
        this.draining.delete(forwarder);
        this.reach.delete(forwarder);
      }
  }

  /** One removal pass a while after changes: a burst of updates costs one pass over the series. */
  private schedulePrune(): void {
    if (this.pruneTimer !== undefined) return;
    this.pruneTimer = setTimeout(() => {
      this.pruneTimer = undefined;
      this.pruneMetrics().catch((error: unknown) => log.error('userspace: metrics cleanup failed', error));
    }, this.pruneDelayMs);
    this.pruneTimer.unref();
  }

  /**
   * Removes the per-endpoint series of endpoints no listener of their service port can reach and
   * that carry no connection. Counters of a removed endpoint end with it, as series of deleted
   * objects do elsewhere in Kubernetes.
   */
  async pruneMetrics(): Promise<void> {
    this.pruneDrained();
    const pair = (servicePort: unknown, endpoint: unknown) => `${String(servicePort)} ${String(endpoint)}`;
    const live = new Set<string>();
    for (const { servicePort, reachable } of this.reach.values())
      for (const endpoint of reachable) live.add(pair(servicePort, endpoint));
    for (const { labels, value } of (await this.metrics.active.get()).values)
      if (value > 0) live.add(pair(labels.service_port, labels.endpoint));
    const { active, connections, connectFailures, ejections, bytes } = this.metrics;
    for (const metric of [active, connections, connectFailures, ejections, bytes]) {
      for (const { labels } of (await metric.get()).values) {
        if (labels.endpoint === undefined || live.has(pair(labels.service_port, labels.endpoint))) continue;
        metric.remove(labels);
      }
    }
  }

  /** Open connections and flows, all listeners (tests, debug). */
  connections(): number {
    this.pruneDrained();
    let n = 0;
    for (const forwarder of [...this.forwarders.values(), ...this.draining]) n += forwarder.size();
    return n;
  }
}
