// `--cleanup` for the IPVS mode, and what a start in any other mode runs (issue 11): our iptables
// rules and chains (the xtables toolkit), the virtual servers we own, kube-ipvs0, and the ipsets,
// in that order (a set still referenced by a rule cannot be destroyed). Tolerant: a missing tool,
// kernel module, link or set is nothing to clean, not an error, so other modes start on hosts
// without IPVS.
//
// "Ours" for virtual servers: an address bound on kube-ipvs0 (cluster, external and LB IPs), or a
// node port listed in our node-port sets (NodePort virtual servers on node IPs). Other IPVS users
// of the node (keepalived, ...) are left alone.
import { log } from '../../log/log.ts';
import type { Cleaner } from '../../sync/backend.ts';
import { ExecError, execTool } from '../../util/exec.ts';
import { parseIP } from '../../util/ip.ts';
import { cleanupOwner, type Runner, type XtablesOwner } from '../xtables/index.ts';
import { deleteServiceLine, parseIpvsSave, type KernelVirtualServer } from './ipvsadm.ts';
import { parseIpsetSave } from './ipset.ts';
import { IPVS_INTERFACE, allSetNames, setName, type SetKey } from './names.ts';
import { IPVS_OWNER } from './owner.ts';

/** The tool is not installed, or the kernel has no such thing: nothing of ours there. */
function absent(error: unknown): boolean {
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return true;
  return (
    error instanceof ExecError &&
    /not found|No such|does not exist|Protocol not available|Cannot find device|not loaded|ENOENT/i.test(
      `${error.message} ${error.stderr}`,
    )
  );
}

/** Addresses on kube-ipvs0 (both families); empty when the link does not exist. */
export async function ipvsInterfaceAddresses(run: Runner): Promise<string[]> {
  try {
    const out = await run('ip', ['-j', 'addr', 'show', 'dev', IPVS_INTERFACE]);
    const links = JSON.parse(out.stdout || '[]') as { addr_info?: { local?: string; scope?: string }[] }[];
    return links.flatMap((link) =>
      (link.addr_info ?? []).flatMap((info) => {
        const ip = parseIP(info.local ?? '');
        return ip && info.scope !== 'link' ? [ip.text] : [];
      }),
    );
  } catch (error) {
    if (absent(error)) return [];
    throw error;
  }
}

/** The node ports our sets list: `TCP/30080`, `SCTP/30090`... */
function nodePortsIn(sets: ReadonlyMap<string, ReadonlySet<string>>): Set<string> {
  const ports = new Set<string>();
  for (const family of ['IPv4', 'IPv6'] as const) {
    const bitmap: [SetKey, string][] = [
      ['nodePortTCP', 'TCP'],
      ['nodePortUDP', 'UDP'],
    ];
    for (const [key, protocol] of bitmap)
      for (const member of sets.get(setName(key, family)) ?? []) ports.add(`${protocol}/${member}`);
    for (const member of sets.get(setName('nodePortSCTP', family)) ?? []) {
      const port = /:(\d+)$/.exec(member)?.[1];
      if (port) ports.add(`SCTP/${port}`);
    }
  }
  return ports;
}

export function ownedServices(
  services: Iterable<KernelVirtualServer>,
  boundAddresses: readonly string[],
  sets: ReadonlyMap<string, ReadonlySet<string>>,
): KernelVirtualServer[] {
  const nodePorts = nodePortsIn(sets);
  return [...services].filter(
    (vs) => boundAddresses.includes(vs.ip) || nodePorts.has(`${vs.protocol}/${String(vs.port)}`),
  );
}

/** `keep`: the running mode's owners on a switch (their chains and jumps stay); none for --cleanup. */
export async function cleanupIpvs(
  run: Runner = execTool,
  env: Readonly<Record<string, string | undefined>> = process.env,
  keep: readonly XtablesOwner[] = [],
): Promise<string[]> {
  const errors: string[] = [];
  const attempt = async (what: string, step: () => Promise<unknown>): Promise<void> => {
    try {
      await step();
    } catch (error) {
      if (!absent(error)) errors.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  let sets = new Map<string, Set<string>>();
  await attempt('ipset save', async () => {
    sets = parseIpsetSave((await run('ipset', ['save'])).stdout);
  });
  let bound: string[] = [];
  await attempt('ip addr', async () => {
    bound = await ipvsInterfaceAddresses(run);
  });
  const ours = allSetNames().filter((name) => sets.has(name));
  const link = bound.length > 0 || (await linkExists(run));
  // The IPVS mode creates its sets and kube-ipvs0 before anything else: without them it never ran
  // here, and the chains it shares with the iptables mode (KUBE-SERVICES, KUBE-POSTROUTING, ...)
  // belong to that mode. A restart in iptables mode must not lose its chains to this cleaner.
  if (ours.length === 0 && !link) return errors;
  const xtables = await cleanupOwner(run, IPVS_OWNER, { keep, env });
  errors.push(...xtables.errors);

  const removed = { services: 0, link: false };
  await attempt('ipvsadm', async () => {
    const services = parseIpvsSave((await run('ipvsadm', ['-S', '-n'])).stdout).values();
    const owned = ownedServices(services, bound, sets);
    if (owned.length === 0) return;
    await run('ipvsadm', ['-R'], { input: owned.map(deleteServiceLine).join('') });
    removed.services = owned.length;
  });
  await attempt('ip link del', async () => {
    if (!link) return;
    await run('ip', ['link', 'del', IPVS_INTERFACE]);
    removed.link = true;
  });
  if (ours.length > 0)
    await attempt('ipset destroy', () =>
      run('ipset', ['restore'], { input: ours.map((name) => `destroy ${name}\n`).join('') }),
    );
  if (removed.services > 0 || removed.link || ours.length > 0 || Object.keys(xtables.removed).length > 0)
    log.info('Cleaned up IPVS leftovers', {
      virtualServers: removed.services,
      link: removed.link,
      sets: ours.length,
      chains: xtables.removed,
      errors: errors.length,
    });
  for (const error of errors) log.error('IPVS cleanup failed', error);
  return errors;
}

async function linkExists(run: Runner): Promise<boolean> {
  try {
    await run('ip', ['link', 'show', IPVS_INTERFACE]);
    return true;
  } catch {
    return false;
  }
}

/** The Cleaner for `--cleanup` and mode switches; throws when something of ours could not be removed. */
export function ipvsCleaner(run: Runner = execTool, keep: readonly XtablesOwner[] = []): Cleaner {
  return {
    mode: 'ipvs',
    cleanup: async () => {
      const errors = await cleanupIpvs(run, process.env, keep);
      if (errors.length > 0) throw new Error(`ipvs cleanup: ${errors.join('; ')}`);
    },
  };
}
