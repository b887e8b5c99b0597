// The IPVS mode's rule-integrity check (issue 15: outside interference repaired within seconds
// in every mode). Upstream's IPVS proxier reads the kernel again only at its next sync (up to
// syncPeriod, 30 s); ours checks, every 5 s, what someone flushing or clearing would break, with
// looks whose cost does not grow with the number of Services (a machine that runs tools slowly,
// an emulated one, checks less often: common/check-schedule.ts):
//
// - a sample of the addresses our last sync bound on kube-ipvs0 is still there (`ip addr show dev
//   kube-ipvs0 to ADDRESS`, one per sample; `ip link show` when none is bound): a deleted link takes
//   every address with it, and the other family's proxier may have made the link again already,
//   so the link alone says nothing of this family's addresses;
// - the nat jumps into KUBE-SERVICES are still in PREROUTING and OUTPUT (`iptables -C`): an
//   `iptables -t nat -F` takes them;
// - every set of ours holds as many members as our last sync left (`ipset list -t`: headers only,
//   a few lines per set): an `ipset flush` empties them;
// - a sample of our virtual servers is still in the IPVS table (`ipvsadm -L -n -t|-u|--sctp-service
//   ADDRESS`, one per sample): an `ipvsadm -C` clears them all.
import type { IPFamily } from '../../model/types.ts';
import { jumpArgs, type IptablesTools, type Runner } from '../xtables/index.ts';
import type { KernelVirtualServer } from './ipvsadm.ts';
import { hostPrefix } from './host.ts';
import { IPVS_INTERFACE } from './names.ts';
import { IPVS_JUMPS } from './owner.ts';

/** Virtual servers looked up by one check. */
export const SAMPLED_SERVERS = 2;

/** Addresses on kube-ipvs0 looked up by one check. */
export const SAMPLED_ADDRESSES = 2;

const WAIT_ARGS = ['-w', '5'];

/** Members per set in `ipset list -t` output (headers only). */
export function parseSetCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  let name: string | undefined;
  for (const line of text.split('\n')) {
    const named = /^Name: (\S+)/.exec(line);
    if (named) {
      name = named[1];
      continue;
    }
    const entries = /^Number of entries: (\d+)/.exec(line);
    if (entries && name !== undefined) counts.set(name, Number(entries[1]));
  }
  return counts;
}

/** The first set whose member count differs from the record, as a message; undefined when none. */
export function setCountProblem(
  recorded: ReadonlyMap<string, ReadonlySet<string>>,
  kernel: ReadonlyMap<string, number>,
): string | undefined {
  for (const [name, members] of recorded) {
    const count = kernel.get(name);
    if (count === undefined) return `ipset ${name} is gone`;
    if (count !== members.size)
      return `ipset ${name} holds ${String(count)} members, our last sync left ${String(members.size)}`;
  }
  return undefined;
}

const PROTOCOL_FLAG = { TCP: '-t', UDP: '-u', SCTP: '--sctp-service' } as const;

/** `ipvsadm -L -n` arguments that list one virtual server (and fail when it is missing). */
export function listServerArgs(
  vs: Pick<KernelVirtualServer, 'ip' | 'port' | 'protocol' | 'family'>,
): string[] {
  const address = vs.family === 'IPv6' ? `[${vs.ip}]` : vs.ip;
  return ['-L', '-n', PROTOCOL_FLAG[vs.protocol], `${address}:${String(vs.port)}`];
}

/** Up to `count` distinct recorded virtual servers, picked with `random` in [0, 1). */
export function sampleServers(
  servers: ReadonlyMap<string, KernelVirtualServer>,
  count: number,
  random: () => number,
): KernelVirtualServer[] {
  return sample([...servers.values()], count, random);
}

export interface IpvsRecord {
  readonly servers: ReadonlyMap<string, KernelVirtualServer>;
  readonly sets: ReadonlyMap<string, ReadonlySet<string>>;
  /** Addresses of the family the last sync left on kube-ipvs0. */
  readonly bound: readonly string[];
}

/** Up to `count` distinct items, picked with `random` in [0, 1). */
export function sample<T>(items: readonly T[], count: number, random: () => number): T[] {
  const picked = new Set<T>();
  for (let i = 0; i < count && picked.size < items.length; i++) {
    const item = items[Math.floor(random() * items.length)];
    if (item !== undefined) picked.add(item);
  }
  return [...picked];
}

/** Why kube-ipvs0 no longer holds what the record says, as a message; undefined when it does. */
async function interfaceProblem(
  run: Runner,
  bound: readonly string[],
  random: () => number,
): Promise<string | undefined> {
  const addresses = sample(bound, SAMPLED_ADDRESSES, random);
  if (addresses.length === 0) {
    try {
      await run('ip', ['link', 'show', IPVS_INTERFACE]);
      return undefined;
    } catch {
      return `${IPVS_INTERFACE} is gone`;
    }
  }
  for (const address of addresses) {
    let listed: string;
    try {
      listed = (await run('ip', ['-o', 'addr', 'show', 'dev', IPVS_INTERFACE, 'to', hostPrefix(address)]))
        .stdout;
    } catch {
      return `${IPVS_INTERFACE} is gone`;
    }
    if (listed.trim() === '') return `${address} is no longer bound to ${IPVS_INTERFACE}`;
  }
  return undefined;
}

/** What someone else changed, as a message; undefined when every look matches the record. */
export async function findTampering(
  run: Runner,
  tools: IptablesTools,
  family: IPFamily,
  record: IpvsRecord,
  random: () => number = Math.random,
): Promise<string | undefined> {
  const link = await interfaceProblem(run, record.bound, random);
  if (link !== undefined) return link;
  for (const jump of IPVS_JUMPS) {
    if (jump.table !== 'nat' || jump.target !== 'KUBE-SERVICES') continue;
    try {
      await run(tools.iptables, [...WAIT_ARGS, '-t', 'nat', '-C', jump.chain, ...jumpArgs(jump)]);
    } catch {
      return `the jump from nat ${jump.chain} to KUBE-SERVICES is gone`;
    }
  }
  let counts: Map<string, number>;
  try {
    counts = parseSetCounts((await run('ipset', ['list', '-t'])).stdout);
  } catch (error) {
    return `ipset list failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  const sets = setCountProblem(record.sets, counts);
  if (sets !== undefined) return sets;
  for (const vs of sampleServers(record.servers, SAMPLED_SERVERS, random)) {
    try {
      await run('ipvsadm', listServerArgs(vs));
    } catch {
      return `virtual server ${vs.protocol} ${vs.ip}:${String(vs.port)} is gone from the IPVS table`;
    }
  }
  return undefined;
}
