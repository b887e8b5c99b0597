// The userspace data path: every listener of the daemon (both families' proxiers share one pool),
// each a TCP or UDP forwarder with its own balancer, opened, re-routed in place and closed by the
// proxier. Its per-connection metrics are registered once, here.
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

  constructor(registry: Registry, options: Partial<DataPathOptions> = {}) {
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
    return { port };
  }

  update(key: string, router: Router, balancer: BalancerSettings, reachable: ReadonlySet<string>): void {
    const forwarder = this.forwarders.get(key);
    if (forwarder === undefined) {
      log.error('userspace: update of a listener that is not open', undefined, { key });
      return;
    }
    forwarder.update({ router, balancer, reachable });
  }

  async close(key: string): Promise<void> {
    const forwarder = this.forwarders.get(key);
    if (forwarder === undefined) return;
    this.forwarders.delete(key);
    await forwarder.stop();
    this.pruneDrained();
    if (forwarder.size() > 0) this.draining.add(forwarder);
  }

  /** Shutdown: every listener and connection closes now. */
  closeAll(): void {
    for (const forwarder of [...this.forwarders.values(), ...this.draining]) forwarder.destroy();
    this.forwarders.clear();
    this.draining.clear();
  }

  private pruneDrained(): void {
    for (const forwarder of this.draining) if (forwarder.size() === 0) this.draining.delete(forwarder);
  }

  /** Open connections and flows, all listeners (tests, debug). */
  connections(): number {
    this.pruneDrained();
    let n = 0;
    for (const forwarder of [...this.forwarders.values(), ...this.draining]) n += forwarder.size();
    return n;
  }
}
