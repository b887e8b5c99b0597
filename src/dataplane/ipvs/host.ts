// The IPVS mode's host reads and writes besides the tools' own: addresses (which are on
// kube-ipvs0, which on other interfaces), the dummy link, and the IPVS sysctls
// (modes-ipvs-userspace.md 1.5, 1.7.1).
import type { IPFamily } from '../../model/types.ts';
import { log } from '../../log/log.ts';
import { cidrContains, isLoopback, parseCIDR, parseIP } from '../../util/ip.ts';
import type { Sysctl } from '../../util/sysctl.ts';
import type { Runner } from '../xtables/index.ts';
import { IPVS_INTERFACE } from './names.ts';
import type { NodePortAddresses } from '../../plan/node-ports.ts';
import { ExecError } from '../../util/exec.ts';

interface IpAddrJson {
  readonly ifname?: string;
  readonly addr_info?: readonly { readonly local?: string; readonly scope?: string }[];
}

export interface AddressView {
  /** Addresses of the family on kube-ipvs0. */
  readonly bound: readonly string[];
  /** Addresses of the family on every other interface, without loopback and link-local ones. */
  readonly others: readonly string[];
}

/** Splits `ip -j addr show` output into kube-ipvs0's addresses and the others, for one family. */
export function parseAddresses(json: string, family: IPFamily): AddressView {
  const links = JSON.parse(json || '[]') as readonly IpAddrJson[];
  const bound: string[] = [];
  const others: string[] = [];
  for (const link of links) {
    for (const info of link.addr_info ?? []) {
      const ip = parseIP(info.local ?? '');
      if (!ip || ip.family !== family || info.scope === 'link') continue;
      if (link.ifname === IPVS_INTERFACE) bound.push(ip.text);
      else if (!isLoopback(ip) && !others.includes(ip.text)) others.push(ip.text);
    }
  }
  return { bound, others };
}

/** Node IPs for NodePort virtual servers: every other address, or those inside the CIDRs. */
export function nodePortIPsOf(view: AddressView, addresses: NodePortAddresses): string[] {
  if (addresses.matchAll) return [...view.others];
  const cidrs = addresses.cidrs.flatMap((text) => parseCIDR(text) ?? []);
  return view.others.filter((text) => {
    const ip = parseIP(text);
    return ip !== undefined && cidrs.some((cidr) => cidrContains(cidr, ip));
  });
}

export async function readAddresses(run: Runner, family: IPFamily): Promise<AddressView> {
  return parseAddresses((await run('ip', ['-j', 'addr', 'show'])).stdout, family);
}

/** Creates kube-ipvs0 (a dummy link, left down as upstream does) when it is missing. */
export async function ensureInterface(run: Runner): Promise<void> {
  try {
    await run('ip', ['link', 'show', IPVS_INTERFACE]);
    return;
  } catch {
    // missing: create it below
  }
  try {
    await run('ip', ['link', 'add', IPVS_INTERFACE, 'type', 'dummy']);
  } catch (error) {
    // The other family's proxier created it between our look and our add: it is there.
    if (/File exists/.test(`${(error as Error).message} ${(error as { stderr?: string }).stderr ?? ''}`))
      return;
    throw new Error(
      `cannot create the ${IPVS_INTERFACE} dummy interface (is the dummy kernel module available?): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

export interface AddressBatchFailure {
  readonly address: string;
  readonly error: string;
}

/**
 * Adds or deletes service addresses on kube-ipvs0 in one `ip -force -batch` process (one process
 * per address costs seconds at a thousand Services). `-force` carries on after a failing line and
 * names it (`Command failed -:N`) after its error: the failures come back per address.
 */
export async function changeAddresses(
  run: Runner,
  op: 'add' | 'del',
  addresses: readonly string[],
): Promise<AddressBatchFailure[]> {
  if (addresses.length === 0) return [];
  const input = addresses.map((ip) => `addr ${op} ${hostPrefix(ip)} dev ${IPVS_INTERFACE}\n`).join('');
  let stderr: string;
  try {
    stderr = (await run('ip', ['-force', '-batch', '-'], { input })).stderr;
  } catch (error) {
    if (!(error instanceof ExecError) || error.stderr === '') throw error;
    stderr = error.stderr;
  }
  return batchFailures(stderr, addresses);
}

/** The addresses whose lines `ip -force -batch` reported as failed, with the error printed before. */
export function batchFailures(stderr: string, addresses: readonly string[]): AddressBatchFailure[] {
  const failures: AddressBatchFailure[] = [];
  let pending: string[] = [];
  for (const line of stderr.split('\n')) {
    const failed = /^Command failed -:(\d+)$/.exec(line.trim());
    if (!failed) {
      if (line.trim() !== '') pending.push(line.trim());
      continue;
    }
    const address = addresses[Number(failed[1]) - 1];
    if (address !== undefined) failures.push({ address, error: pending.join('; ') || 'failed' });
    pending = [];
  }
  return failures;
}

export function hostPrefix(ip: string): string {
  return `${ip}/${ip.includes(':') ? 128 : 32}`;
}

/** Kernel version as [major, minor] from a release string like `6.1.0-37-amd64`. */
export function kernelVersion(release: string): [number, number] | undefined {
  const match = /^(\d+)\.(\d+)/.exec(release);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** The sysctls IPVS mode needs (1.5), in upstream's order. */
export function wantedIpvsSysctls(release: string, strictARP: boolean): { key: string; value: string }[] {
  const wanted = [{ key: 'net/ipv4/vs/conntrack', value: '1' }];
  const version = kernelVersion(release);
  // conn_reuse_mode=0 only between 4.1 and 5.9 (issue #93297); newer kernels fixed the delay.
  if (version) {
    const [major, minor] = version;
    const atLeast = (a: number, b: number): boolean => major > a || (major === a && minor >= b);
    if (!atLeast(4, 1))
      log.error('Kernel older than 4.1: cannot set net/ipv4/vs/conn_reuse_mode', undefined, { release });
    else if (!atLeast(5, 9)) wanted.push({ key: 'net/ipv4/vs/conn_reuse_mode', value: '0' });
  }
  wanted.push(
    { key: 'net/ipv4/vs/expire_nodest_conn', value: '1' },
    { key: 'net/ipv4/vs/expire_quiescent_template', value: '1' },
    { key: 'net/ipv4/ip_forward', value: '1' },
  );
  if (strictARP)
    wanted.push(
      { key: 'net/ipv4/conf/all/arp_ignore', value: '1' },
      { key: 'net/ipv4/conf/all/arp_announce', value: '2' },
    );
  return wanted;
}

/** Writes each sysctl that differs, with a log line; any failure is fatal (upstream). */
export async function applyIpvsSysctls(
  sysctl: Sysctl,
  wanted: readonly { key: string; value: string }[],
): Promise<void> {
  for (const { key, value } of wanted) {
    let current: string;
    try {
      current = await sysctl.read(key);
    } catch (error) {
      throw new Error(`can't use the IPVS proxier: cannot read sysctl ${key}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (current === value) continue;
    try {
      await sysctl.write(key, value);
    } catch (error) {
      throw new Error(
        `can't use the IPVS proxier: cannot set sysctl ${key} to ${value}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    log.info('Set sysctl', { key, value });
  }
}
