// The contract between the sync loop and a dataplane backend (one backend per mode and IP family).
// The sync loop decides when to sync and whether a full sync is due; the backend renders and
// applies. Backends know nothing of the API, and each counts its own failures in its own metrics.
import type { IPFamily, ProxySnapshot } from '../model/types.ts';

export interface SyncRequest {
  readonly snapshot: ProxySnapshot;
  /**
   * Rewrite everything (start, after a failure, periodic repair, node topology change).
   * When false the backend may rewrite only what belongs to snapshot.changedServices.
   */
  readonly full: boolean;
  /**
   * This full sync is the periodic repair (upstream's hourly full sync), the one that undoes
   * changes made to our rules behind our back. A backend that keeps a record of what it wrote
   * must compare with the kernel here instead of trusting the record. Other full syncs (node
   * topology changes) may trust it.
   */
  readonly periodic?: boolean;
}

export interface SyncResult {
  /** Whether the backend actually did a full sync (it may escalate a partial one). */
  readonly full: boolean;
  /** Seconds spent rendering (pure) and applying (the kernel tool), for metrics and benchmarks. */
  readonly renderSeconds: number;
  readonly applySeconds: number;
  /** Free-form figures the backend wants logged at -v=2 and shown in /debug/proxy. Never decoded. */
  readonly details?: Readonly<Record<string, number | string>>;
}

/**
 * What the daemon runs after each successful sync, besides what every mode gets (service health
 * check servers). A backend opts in: a mode that does not NAT in the kernel (userspace) has no
 * conntrack entries to clean.
 */
export interface PostSyncHooks {
  /** Delete stale UDP/SCTP conntrack entries of changed endpoints (upstream-behavior.md 7). */
  readonly conntrackCleanup: boolean;
}

export const NO_POST_SYNC_HOOKS: PostSyncHooks = { conntrackCleanup: false };

export interface Backend {
  readonly family: IPFamily;
  /** Mode name as /proxyMode reports it: iptables, nftables. */
  readonly mode: string;
  /** Which optional post-sync hooks this backend wants; none when absent. */
  readonly postSyncHooks?: PostSyncHooks;
  /**
   * Its rules name the host's addresses and it re-reads them at every sync (nftables'
   * @nodeport-ips): the daemon asks for a sync when the host's addresses change.
   */
  readonly followsHostAddresses?: boolean;
  /**
   * Render and apply. Throws (with a message naming the tool and its stderr) when the kernel
   * rejected the change; the previous rules must then still be in place, and the runner will
   * retry with a full sync.
   */
  sync(request: SyncRequest): Promise<SyncResult>;
  /**
   * The rule-integrity check (the iptables canary), run every syncPeriod by the sync loop: false
   * when something outside us removed our rules, so the next sync must be full. It may wait for
   * the removal to finish before answering. Optional: a backend without one is trusted.
   */
  rulesIntact?(): Promise<boolean>;
  /** Opens what the backend needs beyond its tool runs (sockets, timers), before the first sync. */
  start?(): Promise<void>;
  /** Releases what start() opened. Called once when the daemon stops; rules stay in place. */
  close?(): Promise<void>;
}

/** Removes everything one mode created, in every family. Used by --cleanup and mode switching. */
export interface Cleaner {
  readonly mode: string;
  cleanup(): Promise<void>;
}
