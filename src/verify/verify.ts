// `kube-proxy verify`: does the kernel hold what the last successful sync applied? Each family's
// rules are read back by the mode's verifier (dataplane/<mode>/verify.ts) and compared with a full
// render of the applied state; the differences are grouped by service port with their effect on
// traffic. The daemon serves it at /debug/proxy/verify, exports it as metrics and asks for a full
// sync when it finds drift (a partial sync never rewrites a chain or element it thinks is there).
import { Gauge } from 'prom-client';
import type { ToolRunner } from '../dataplane/common/mode.ts';
import type { DriftItem, DriftKind } from '../dataplane/common/verify.ts';
import { MODES, type ModeName } from '../dataplane/modes.ts';
import { snapshotOf, type ExplainFamily, type ExplainState } from '../explain/state.ts';
import { FAMILY_LABEL, type Registry } from '../metrics/registry.ts';
import type { IPFamily, ServicePortState } from '../model/types.ts';

export const VERIFY_API_VERSION = 'verify.kube-proxy-ts/v1alpha1';

export interface ServicePortDrift {
  readonly servicePort: string;
  /** `10.96.0.10:80/TCP`, the cluster IP frontend; '' when the port is no longer applied. */
  readonly frontend: string;
  readonly items: readonly DriftItem[];
  /** What the differences do to traffic, one line each. */
  readonly effects: readonly string[];
}

export interface FamilyVerify {
  readonly family: IPFamily;
  readonly read: string;
  readonly objects: number;
  readonly durationSeconds: number;
  readonly counts: Readonly<Record<DriftKind, number>>;
  readonly servicePorts: readonly ServicePortDrift[];
  /** Differences no service port owns (fixed chains, sets, foreign objects). */
  readonly other: readonly DriftItem[];
  /** The read failed; nothing was compared. */
  readonly error?: string;
  readonly generation?: number;
}

export interface VerifyReport {
  readonly apiVersion: typeof VERIFY_API_VERSION;
  readonly kind: 'VerifyReport';
  readonly node: string;
  readonly mode: string;
  readonly checkedAt: string;
  readonly drift: boolean;
  readonly families: readonly FamilyVerify[];
  /** What the proxy did about it (a full sync requested). */
  readonly actions: readonly string[];
}

function endpointsOf(state: ServicePortState | undefined): number {
  return state?.selection.allReachable.length ?? 0;
}

/** The effect on traffic of one service port's differences, in the mode's terms. */
export function effectsOf(
  mode: string,
  state: ServicePortState | undefined,
  items: readonly DriftItem[],
): string[] {
  const effects: string[] = [];
  const total = endpointsOf(state);
  const missingEndpoints = [
    ...new Set(items.filter((i) => i.kind === 'missing' && i.endpoint).map((i) => i.endpoint)),
  ];
  if (missingEndpoints.length > 0) {
    const list = missingEndpoints.join(', ');
    effects.push(
      mode === 'nftables'
        ? `endpoint ${list} missing from the kernel: about ${missingEndpoints.length} in ${total} new connections find no endpoint in their numgen slot and are not DNATed`
        : `endpoint ${list} missing from the kernel: ${missingEndpoints.length} of ${total} endpoints receive no new connections; the others take their share`,
    );
  }
  const staleEndpoints = [
    ...new Set(items.filter((i) => i.kind === 'unexpected' && i.endpoint).map((i) => i.endpoint)),
  ];
  if (staleEndpoints.length > 0) {
    effects.push(
      `the kernel still sends new connections to ${staleEndpoints.join(', ')}, which the proxy did not program`,
    );
  }
  const otherMissing = items.filter((i) => i.kind === 'missing' && !i.endpoint).length;
  if (otherMissing > 0) {
    effects.push(
      `${otherMissing} rule${otherMissing === 1 ? '' : 's'} or element${otherMissing === 1 ? '' : 's'} of its frontends missing: its traffic is not handled as the plan says (kube-proxy explain shows the intended path)`,
    );
  }
  if (items.some((i) => i.kind === 'changed'))
    effects.push('rules differ from what was written: traffic may take another path');
  return effects;
}

/** Groups one family's differences by service port. */
export function groupDrift(
  mode: string,
  family: ExplainFamily,
  items: readonly DriftItem[],
): { servicePorts: ServicePortDrift[]; other: DriftItem[] } {
  const byPrintable = new Map<string, ServicePortState>();
  for (const state of family.servicePorts.values()) byPrintable.set(state.servicePort.id.printable, state);
  const groups = new Map<string, DriftItem[]>();
  const other: DriftItem[] = [];
  for (const item of items) {
    if (item.servicePort === undefined) other.push(item);
    else groups.set(item.servicePort, [...(groups.get(item.servicePort) ?? []), item]);
  }
  const servicePorts = [...groups.keys()].sort().map((servicePort) => {
    const state = byPrintable.get(servicePort);
    const group = groups.get(servicePort) ?? [];
    const sp = state?.servicePort;
    return {
      servicePort,
      frontend: sp
        ? `${sp.clusterIP.includes(':') ? `[${sp.clusterIP}]` : sp.clusterIP}:${sp.port}/${sp.id.protocol}`
        : '',
      items: group,
      effects: effectsOf(mode, state, group),
    };
  });
  return { servicePorts, other };
}

function countKinds(items: readonly DriftItem[]): Record<DriftKind, number> {
  const counts: Record<DriftKind, number> = { missing: 0, unexpected: 0, changed: 0 };
  for (const item of items) counts[item.kind]++;
  return counts;
}

/** Reads every family's rules back and compares them with the applied state. */
export async function verifyState(
  state: ExplainState,
  run: ToolRunner,
  now: () => number = Date.now,
): Promise<VerifyReport> {
  const verifier = Object.hasOwn(MODES, state.mode) ? MODES[state.mode as ModeName].verifier : undefined;
  const checkedAt = new Date(now()).toISOString();
  const families: FamilyVerify[] = [];
  for (const family of state.families) {
    const start = now();
    const base = {
      family: family.family,
      ...(family.generation !== undefined ? { generation: family.generation } : {}),
    };
    if (!verifier) {
      families.push({
        ...base,
        read: '',
        objects: 0,
        durationSeconds: 0,
        counts: { missing: 0, unexpected: 0, changed: 0 },
        servicePorts: [],
        other: [],
        error: `the ${state.mode} mode cannot read its rules back`,
      });
      continue;
    }
    try {
      const comparison = await verifier.compare({
        family: family.family,
        snapshot: snapshotOf(family),
        settings: state.settings,
        node: {
          name: family.node.name,
          primaryFamily: family.family,
          ips: { IPv4: [], IPv6: [], [family.family]: family.node.nodeIPs },
          podCIDRs: family.node.podCIDRs,
        },
        hostAddresses: family.hostAddresses,
        run,
      });
      families.push({
        ...base,
        read: comparison.read,
        objects: comparison.objects,
        durationSeconds: (now() - start) / 1000,
        counts: countKinds(comparison.items),
        ...groupDrift(state.mode, family, comparison.items),
      });
    } catch (error) {
      families.push({
        ...base,
        read: '',
        objects: 0,
        durationSeconds: (now() - start) / 1000,
        counts: { missing: 0, unexpected: 0, changed: 0 },
        servicePorts: [],
        other: [],
        error: (error as Error).message,
      });
    }
  }
  const drift = families.some((f) => f.counts.missing + f.counts.unexpected + f.counts.changed > 0);
  return {
    apiVersion: VERIFY_API_VERSION,
    kind: 'VerifyReport',
    node: state.node,
    mode: state.mode,
    checkedAt,
    drift,
    families,
    actions: [],
  };
}

/** kubeproxy_ts_rules_drift_objects and friends, registered on the daemon's registry. */
export interface VerifyMetrics {
  observe(report: VerifyReport): void;
}

export function registerVerifyMetrics(registry: Registry): VerifyMetrics {
  const registers = [registry];
  const drift = new Gauge({
    name: 'kubeproxy_ts_rules_drift_objects',
    help: 'Rules or set elements that differ between the kernel and what the last successful sync applied, at the last verify (kind: missing, unexpected, changed)',
    labelNames: [...FAMILY_LABEL, 'kind'],
    registers,
  });
  const last = new Gauge({
    name: 'kubeproxy_ts_rules_verify_last_timestamp_seconds',
    help: 'The last time the rules were read back and compared (kube-proxy verify, /debug/proxy/verify)',
    labelNames: FAMILY_LABEL,
    registers,
  });
  const failed = new Gauge({
    name: 'kubeproxy_ts_rules_verify_failed',
    help: '1 when the last verify of the family could not read the rules back',
    labelNames: FAMILY_LABEL,
    registers,
  });
  return {
    observe: (report) => {
      const at = Date.parse(report.checkedAt) / 1000;
      for (const family of report.families) {
        const labels = { ip_family: family.family };
        for (const kind of ['missing', 'unexpected', 'changed'] as const) {
          drift.set({ ...labels, kind }, family.counts[kind]);
        }
        last.set(labels, at);
        failed.set(labels, family.error === undefined ? 0 : 1);
      }
    },
  };
}

/** The report as `kube-proxy verify` prints it. */
export function formatVerify(report: VerifyReport): string {
  const out: string[] = [];
  for (const family of report.families) {
    const head = `${family.family}  ${report.mode}`;
    if (family.error !== undefined) {
      out.push(`${head}  ERROR  ${family.error}`);
      continue;
    }
    const total = family.counts.missing + family.counts.unexpected + family.counts.changed;
    out.push(
      `${head}  ${family.read}  checked in ${Math.round(family.durationSeconds * 1000)} ms (${family.objects} objects)`,
    );
    if (total === 0) {
      out.push('  OK: the kernel holds what the last sync applied');
      continue;
    }
    out.push(
      `  DRIFT  ${family.counts.missing} missing · ${family.counts.unexpected} unexpected · ${family.counts.changed} changed`,
    );
    const item = (i: DriftItem): string =>
      `      ${i.kind === 'missing' ? '-' : i.kind === 'unexpected' ? '+' : '~'} ${i.location}  ${i.text}`;
    for (const sp of family.servicePorts) {
      out.push(`  ${sp.servicePort}${sp.frontend ? `   ${sp.frontend}` : ''}`);
      for (const i of sp.items) out.push(item(i));
      for (const effect of sp.effects) out.push(`      effect: ${effect}`);
    }
    if (family.other.length > 0) {
      out.push('  not attributable to a service port');
      for (const i of family.other) out.push(item(i));
    }
  }
  for (const action of report.actions) out.push(`action: ${action}`);
  return `${out.join('\n')}\n`;
}
