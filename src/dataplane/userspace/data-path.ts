// Where the mode gets its data path: the one ListenerPool (the data path's Forwarders) of a daemon,
// shared by both families' proxiers. The data path lives on its own branch until the lead merges
// it; this stub fails the backend's creation with a clear message until then, and becomes a
// `new Forwarders({...})` at the merge.
import type { Registry } from '../../metrics/registry.ts';
import type { ListenerPool } from './proxier.ts';

export interface DataPathSetup {
  readonly registry: Registry;
  /** --udp-timeout. */
  readonly udpIdleTimeoutMs: number;
}

export function createDataPath(_setup: DataPathSetup): ListenerPool {
  throw new Error('proxy mode "userspace" is not implemented yet: its data path (forwarders) has not landed; use nftables');
}
