// Proxy health as upstream computes it (upstream-behavior.md 6.1): per IP family, when rules were
// last updated and since when an update has been queued but not applied. Unhealthy when some
// family has had a queued update pending longer than 2 × syncPeriod. /healthz additionally needs
// the node to be eligible (not being deleted, not tainted for scale-down).
import type { IPFamily } from '../model/types.ts';

interface FamilyHealth {
  lastUpdated: number;
  oldestPendingQueued: number | undefined;
}

export interface HealthStatus {
  readonly healthy: boolean;
  /** Epoch ms; the current time when healthy, as upstream reports it. */
  readonly lastUpdated: number;
  readonly currentTime: number;
  readonly nodeEligible: boolean;
}

export class ProxyHealth {
  private readonly families = new Map<IPFamily, FamilyHealth>();
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private nodeEligible = true;

  constructor(options: { syncPeriodMs: number; now?: () => number }) {
    this.timeoutMs = 2 * options.syncPeriodMs;
    this.now = options.now ?? Date.now;
  }

  private family(family: IPFamily): FamilyHealth {
    let entry = this.families.get(family);
    if (!entry) {
      entry = { lastUpdated: 0, oldestPendingQueued: undefined };
      this.families.set(family, entry);
    }
    return entry;
  }

  /** A sync was requested for this family (the runner will get to it). */
  queued(family: IPFamily): void {
    const entry = this.family(family);
    entry.oldestPendingQueued ??= this.now();
  }

  /** Rules of this family were applied (or the sync loop just started). */
  updated(family: IPFamily): void {
    const entry = this.family(family);
    entry.lastUpdated = this.now();
    entry.oldestPendingQueued = undefined;
  }

  setNodeEligible(eligible: boolean): void {
    this.nodeEligible = eligible;
  }

  status(): HealthStatus {
    const currentTime = this.now();
    let healthy = true;
    let lastUpdated = 0;
    for (const entry of this.families.values()) {
      lastUpdated = Math.max(lastUpdated, entry.lastUpdated);
      if (
        entry.oldestPendingQueued !== undefined &&
        currentTime - entry.oldestPendingQueued > this.timeoutMs
      ) {
        healthy = false;
      }
    }
    return {
      healthy,
      lastUpdated: healthy ? currentTime : lastUpdated,
      currentTime,
      nodeEligible: this.nodeEligible,
    };
  }
}

/** Go's time.Time String() form in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`. */
export function goTimeString(epochMs: number): string {
  const date = new Date(epochMs);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const ms = date.getUTCMilliseconds();
  const fraction = ms === 0 ? '' : `.${pad(ms, 3).replace(/0+$/, '')}`;
  return (
    `${String(date.getUTCFullYear())}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}${fraction} +0000 UTC`
  );
}

/** Exact upstream bodies (note the spacing). */
export function healthzBody(status: HealthStatus): string {
  return `{"lastUpdated": "${goTimeString(status.lastUpdated)}","currentTime": "${goTimeString(status.currentTime)}", "nodeEligible": ${String(status.nodeEligible)}}`;
}

export function livezBody(status: HealthStatus): string {
  return `{"lastUpdated": "${goTimeString(status.lastUpdated)}","currentTime": "${goTimeString(status.currentTime)}"}`;
}
