// Where the mode gets its data path: the one ListenerPool (Forwarders) of a daemon, shared by both
// families' proxiers.
import type { Registry } from '../../metrics/registry.ts';
import { Forwarders } from './forwarders.ts';

export interface DataPathSetup {
  readonly registry: Registry;
  /** --udp-timeout. */
  readonly udpIdleTimeoutMs: number;
  /** --userspace-drain-timeout; undefined: connections run until they end. */
  readonly drainMs: number | undefined;
}

export function createDataPath(setup: DataPathSetup): Forwarders {
  return new Forwarders(setup.registry, { udpIdleTimeoutMs: setup.udpIdleTimeoutMs, drainMs: setup.drainMs });
}
