// The IPVS table as `ipvsadm` text: parsing `ipvsadm -S -n` (what is in the kernel) and
// `ipvsadm -L -n` (connection counts), and writing the `ipvsadm -R` input that turns one table
// into another (modes-ipvs-userspace.md 1.15).
//
// ipvsadm -R's traps shape the writer: each line is a separate command and a failing one does
// not stop the rest (so the proxier reads the table back rather than trusting the exit status),
// and ipvsadm's own defaults differ from kube-proxy's (wlc scheduler, direct routing): every
// line names the scheduler (-s) and the forwarding method (-m) explicitly.
import type { IPFamily, Protocol } from '../../model/types.ts';
import { parseIP } from '../../util/ip.ts';
import { rsKey, vsKey, type RealServer, type VirtualServer } from './desired.ts';

/** A virtual server as the kernel holds it; real servers carry their weight. */
export interface KernelVirtualServer {
  readonly family: IPFamily;
  readonly ip: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** As the kernel reports it (may be a scheduler we do not use). */
  readonly scheduler: string;
  readonly persistentSeconds: number;
  readonly flags: readonly string[];
  readonly realServers: readonly KernelRealServer[];
}

export interface KernelRealServer extends RealServer {
  readonly weight: number;
  readonly activeConnections?: number;
  readonly inactiveConnections?: number;
}

const PROTOCOL_FLAG: Readonly<Record<Protocol, string>> = {
  TCP: '-t',
  UDP: '-u',
  SCTP: '--sctp-service',
};

function protocolOfFlag(flag: string): Protocol | undefined {
  switch (flag) {
    case '-t':
    case '--tcp-service':
      return 'TCP';
    case '-u':
    case '--udp-service':
      return 'UDP';
    case '--sctp-service':
      return 'SCTP';
    default:
      return undefined;
  }
}

function protocolOfName(name: string): Protocol | undefined {
  switch (name) {
    case 'TCP':
      return 'TCP';
    case 'UDP':
      return 'UDP';
    case 'SCTP':
      return 'SCTP';
    default:
      return undefined;
  }
}

/** `10.0.0.1:80` or `[fd00::1]:80`, as ipvsadm prints and takes them. */
function parseAddress(text: string): { ip: string; port: number; family: IPFamily } | undefined {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!match) return undefined;
  const ip = parseIP(match[1] ?? '');
  if (!ip) return undefined;
  return { ip: ip.text, port: Number(match[2]), family: ip.family };
}

/** Flags of a virtual server's `-b` argument kube-proxy sets: mh-port with mh (1.7.2). */
export function schedulerFlags(scheduler: string): string[] {
  return scheduler === 'mh' ? ['mh-port'] : [];
}

function serviceArgs(vs: Pick<VirtualServer, 'ip' | 'port' | 'protocol'>): string {
  return `${PROTOCOL_FLAG[vs.protocol]} ${vsKey(vs).replace(/\/[A-Z]+$/, '')}`;
}

/** `-A`/`-E` line of a virtual server: always with its scheduler, persistence and flags. */
export function serviceLine(op: '-A' | '-E', vs: VirtualServer): string {
  let line = `${op} ${serviceArgs(vs)} -s ${vs.scheduler}`;
  if (vs.persistentSeconds > 0) line += ` -p ${String(vs.persistentSeconds)}`;
  const flags = schedulerFlags(vs.scheduler);
  if (flags.length > 0) line += ` -b ${flags.join(',')}`;
  return `${line}\n`;
}

/** `-a`/`-e` line of a real server: always masquerade (-m), with its weight. */
export function realServerLine(
  op: '-a' | '-e',
  vs: Pick<VirtualServer, 'ip' | 'port' | 'protocol'>,
  rs: RealServer,
  weight: number,
): string {
  return `${op} ${serviceArgs(vs)} -r ${rsKey(rs)} -m -w ${String(weight)}\n`;
}

export function deleteRealServerLine(
  vs: Pick<VirtualServer, 'ip' | 'port' | 'protocol'>,
  rs: RealServer,
): string {
  return `-d ${serviceArgs(vs)} -r ${rsKey(rs)}\n`;
}

export function deleteServiceLine(vs: Pick<VirtualServer, 'ip' | 'port' | 'protocol'>): string {
  return `-D ${serviceArgs(vs)}\n`;
}

/** Whether the kernel's virtual server already is the desired one (addresses aside). */
export function sameService(kernel: KernelVirtualServer, desired: VirtualServer): boolean {
  const flags = schedulerFlags(desired.scheduler);
  return (
    kernel.scheduler === desired.scheduler &&
    kernel.persistentSeconds === desired.persistentSeconds &&
    kernel.flags.length === flags.length &&
    flags.every((flag) => kernel.flags.includes(flag))
  );
}

/**
 * Parses `ipvsadm -S -n` (the only canonical output). Lines it does not understand throw, naming
 * the line: a table we misread must not be "repaired".
 */
export function parseIpvsSave(text: string): Map<string, KernelVirtualServer> {
  const services = new Map<string, KernelVirtualServer & { realServers: KernelRealServer[] }>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const args = line.split(/\s+/);
    const [op, protoFlag, address] = args;
    const protocol = protocolOfFlag(protoFlag ?? '');
    const parsed = parseAddress(address ?? '');
    if ((op !== '-A' && op !== '-a') || !protocol || !parsed)
      throw new Error(`ipvsadm -S: cannot parse ${JSON.stringify(line)}`);
    const key = vsKey({ ip: parsed.ip, port: parsed.port, protocol });
    const option = (name: string): string | undefined => {
      const i = args.indexOf(name);
      return i < 0 ? undefined : args[i + 1];
    };
    if (op === '-A') {
      services.set(key, {
        family: parsed.family,
        ip: parsed.ip,
        port: parsed.port,
        protocol,
        scheduler: option('-s') ?? '',
        persistentSeconds: args.includes('-p') ? Number(option('-p') ?? 0) : 0,
        flags: (option('-b') ?? '').split(',').filter((flag) => flag !== ''),
        realServers: [],
      });
      continue;
    }
    const vs = services.get(key);
    const rs = parseAddress(option('-r') ?? '');
    if (!vs || !rs) throw new Error(`ipvsadm -S: cannot parse ${JSON.stringify(line)}`);
    vs.realServers.push({ ip: rs.ip, port: rs.port, weight: Number(option('-w') ?? 1) });
  }
  return services;
}

/**
 * Parses `ipvsadm -L -n` for the connection counts graceful termination needs:
 * `TCP  10.96.0.10:80 rr` then `  -> 10.244.1.5:8080  Masq  1  0  0` lines.
 */
export function parseIpvsList(text: string): Map<string, KernelVirtualServer> {
  const services = new Map<string, KernelVirtualServer & { realServers: KernelRealServer[] }>();
  let current: (KernelVirtualServer & { realServers: KernelRealServer[] }) | undefined;
  for (const line of text.split('\n')) {
    const service = /^(TCP|UDP|SCTP)\s+(\S+)\s+(\S+)(.*)$/.exec(line);
    if (service) {
      const protocol = protocolOfName(service[1] ?? '');
      const parsed = parseAddress(service[2] ?? '');
      current = undefined;
      if (!protocol || !parsed) continue;
      const rest = (service[4] ?? '').trim();
      const persistent = /persistent (\d+)/.exec(rest);
      current = {
        family: parsed.family,
        ip: parsed.ip,
        port: parsed.port,
        protocol,
        scheduler: service[3] ?? '',
        persistentSeconds: persistent ? Number(persistent[1]) : 0,
        flags: [],
        realServers: [],
      };
      services.set(vsKey(current), current);
      continue;
    }
    const dest = /^\s+->\s+(\S+)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (dest && current) {
      const parsed = parseAddress(dest[1] ?? '');
      if (!parsed) continue;
      current.realServers.push({
        ip: parsed.ip,
        port: parsed.port,
        weight: Number(dest[2]),
        activeConnections: Number(dest[3]),
        inactiveConnections: Number(dest[4]),
      });
    }
  }
  return services;
}

/** What one diff changes, for logs and the sync's details. */
export interface IpvsDiffCounts {
  servicesAdded: number;
  servicesUpdated: number;
  servicesDeleted: number;
  realServersAdded: number;
  realServersReset: number;
  realServersRemoved: number;
}

export interface IpvsDiff {
  /** `ipvsadm -R` input; '' when nothing changes. */
  readonly text: string;
  /** Real servers no longer desired: the graceful-termination path decides (not in `text`). */
  readonly removedRealServers: readonly { readonly vs: VirtualServer; readonly rs: KernelRealServer }[];
  /** Kernel virtual servers of the family that are not desired (candidates for the sweep). */
  readonly staleServices: readonly KernelVirtualServer[];
  readonly counts: IpvsDiffCounts;
}

export interface IpvsDiffOptions {
  /** Reset real servers whose weight is not 1 (the first sync after start, 1.8). */
  readonly resetWeights: boolean;
  /** Real servers in graceful termination (`vsKey/rsKey`): re-added fresh when desired again. */
  readonly draining: ReadonlySet<string>;
}

/**
 * The `ipvsadm -R` text that turns `current` (this family's kernel view) into `desired`:
 * missing services created, changed ones updated in place (connections survive), missing real
 * servers added with weight 1. Real servers that are no longer desired and stale services are
 * returned for the caller, which drains the first and sweeps the second after the rules load.
 */
export function diffIpvs(
  current: ReadonlyMap<string, KernelVirtualServer>,
  desired: ReadonlyMap<string, VirtualServer>,
  options: IpvsDiffOptions,
): IpvsDiff {
  let text = '';
  const counts: IpvsDiffCounts = {
    servicesAdded: 0,
    servicesUpdated: 0,
    servicesDeleted: 0,
    realServersAdded: 0,
    realServersReset: 0,
    realServersRemoved: 0,
  };
  const removedRealServers: { vs: VirtualServer; rs: KernelRealServer }[] = [];
  for (const [key, vs] of desired) {
    const kernel = current.get(key);
    if (!kernel) {
      text += serviceLine('-A', vs);
      counts.servicesAdded++;
    } else if (!sameService(kernel, vs)) {
      text += serviceLine('-E', vs);
      counts.servicesUpdated++;
    }
    const present = new Map((kernel?.realServers ?? []).map((rs) => [rsKey(rs), rs]));
    for (const rs of vs.realServers) {
      const found = present.get(rsKey(rs));
      if (!found) {
        text += realServerLine('-a', vs, rs, 1);
        counts.realServersAdded++;
      } else if (options.draining.has(`${key}/${rsKey(rs)}`)) {
        // It came back while draining: delete and add fresh (1.8), so it takes new connections.
        text += deleteRealServerLine(vs, rs) + realServerLine('-a', vs, rs, 1);
        counts.realServersReset++;
      } else if (found.weight !== 1 && options.resetWeights) {
        text += realServerLine('-e', vs, rs, 1);
        counts.realServersReset++;
      }
    }
    const wanted = new Set(vs.realServers.map(rsKey));
    for (const [rkey, rs] of present)
      if (!wanted.has(rkey)) {
        removedRealServers.push({ vs, rs });
        counts.realServersRemoved++;
      }
  }
  const staleServices = [...current.entries()].filter(([key]) => !desired.has(key)).map(([, vs]) => vs);
  return { text, removedRealServers, staleServices, counts };
}
