// The interface every dataplane backend implements. The sync runner decides when to sync and
// whether a full sync is due; the proxier renders and applies. Backends know nothing of the API.
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
  /** Free-form figures the backend wants logged at -v=2 (rule counts and so on). */
  readonly details?: Readonly<Record<string, number | string>>;
}

export interface Proxier {
  readonly family: IPFamily;
  /** Mode name as /proxyMode reports it: iptables, nftables. */
  readonly mode: string;
  /**
   * Render and apply. Throws (with a message naming the tool and its stderr) when the kernel
   * rejected the change; the previous rules must then still be in place, and the runner will
   * retry with a full sync.
   */
  sync(request: SyncRequest): Promise<SyncResult>;
  /**
   * True when something outside us removed our rules (the iptables canary), so the next sync
   * must be full. Called every syncPeriod by the runner. Optional.
   */
  needsFullSync?(): Promise<boolean>;
}

/** Removes everything one mode created, in every family. Used by --cleanup and mode switching. */
export interface Cleaner {
  readonly mode: string;
  cleanup(): Promise<void>;
}
