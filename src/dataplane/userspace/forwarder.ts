// What the TCP and UDP forwarders have in common: the interface the pool (forwarders.ts) drives,
// and the context each is built with.
import type { Balancer } from './balancer.ts';
import type { DataPathMetrics } from './metrics.ts';
import type { ListenerRouting } from './route.ts';

/** Upstream's connect timeouts: four attempts, 250 ms, 500 ms, 1 s, 2 s (3.75 s in all). */
export const CONNECT_TIMEOUTS_MS: readonly number[] = [250, 500, 1_000, 2_000];

export interface DataPathOptions {
  /** --udp-timeout: a UDP flow idle this long in both directions is closed (> 0). */
  readonly udpIdleTimeoutMs: number;
  /**
   * How long connections to a removed endpoint, or of a closed listener, may run on before they
   * are closed. Undefined: until they end by themselves (upstream).
   */
  readonly drainMs: number | undefined;
  /** UDP flows per listener at most; datagrams of new clients beyond it are dropped. */
  readonly maxUdpFlows: number;
  /** Per-attempt connect timeouts; the attempt count is their number. */
  readonly connectTimeoutsMs: readonly number[];
}

export const DEFAULT_DATA_PATH_OPTIONS: DataPathOptions = {
  udpIdleTimeoutMs: 250,
  drainMs: undefined,
  maxUdpFlows: 16_384,
  connectTimeoutsMs: CONNECT_TIMEOUTS_MS,
};

export interface ForwarderContext {
  readonly options: DataPathOptions;
  readonly metrics: DataPathMetrics;
  readonly balancer: Balancer;
  /** Printable service port, for metrics and logs. */
  readonly servicePort: string;
  readonly frontend: string;
}

export interface Forwarder {
  /** Binds; resolves with the bound port (the kernel's choice when `port` is 0). */
  listen(host: string, port: number): Promise<number>;
  /** New routing: new connections follow it; connections to unreachable endpoints drain. */
  update(routing: ListenerRouting): void;
  /** Stops accepting (UDP: its flows end); open TCP connections drain. */
  stop(): Promise<void>;
  /** Everything closes now. */
  destroy(): void;
  /** Open TCP connections or UDP flows. */
  size(): number;
}

/** The socket family of a bind address. */
export function isIPv6Host(host: string): boolean {
  return host.includes(':');
}
