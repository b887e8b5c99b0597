// Which conntrack entries are stale after a sync (upstream-behavior.md 7), as pure functions.
//
// A UDP "connection" lives in conntrack as long as the client keeps sending (DNS resolvers reuse
// one source port), and the kernel consults the NAT rules only for the first packet. So after an
// endpoint goes away its clients keep being sent to the dead address, and a client that sent to a
// service IP before the service had endpoints keeps an entry that was never DNATed (its reply
// source is the service IP itself) and stays black-holed. Both are found the same way: the entry's
// original destination is a service frontend, but its reply source is not one of the frontend's
// serving endpoints.
import type { ServicePortPlan } from '../plan/service-port.ts';
import { joinHostPort } from '../util/ip.ts';
import type { ConntrackEntry } from './entries.ts';

/** Serving endpoints (`ip:port`) per frontend, for the UDP service ports of one family. */
export interface UdpFrontends {
  /** Key: `ip:port` of a cluster IP, load-balancer VIP or external IP. */
  readonly byAddress: ReadonlyMap<string, ReadonlySet<string>>;
  /** Key: node port; any destination address. */
  readonly byNodePort: ReadonlyMap<number, ReadonlySet<string>>;
}

/** A `conntrack -D` filter. Every field must match; `origDst` undefined matches any address. */
export interface DeleteFilter {
  readonly protocol: 'udp';
  readonly origDst: string | undefined;
  readonly origDport: number;
  readonly replySrc: string;
  readonly replySport: number;
}

/**
 * Maps every UDP frontend to the endpoints that serve it. Traffic policies, topology and the
 * terminating state do not matter here: an entry pointing at any serving endpoint is still good.
 * Ports without serving endpoints are left out, so their entries are never touched (their
 * traffic is rejected anyway, and a later endpoint change will clean up).
 */
export function udpFrontends(plans: Iterable<ServicePortPlan>): UdpFrontends {
  const byAddress = new Map<string, Set<string>>();
  const byNodePort = new Map<number, Set<string>>();
  for (const plan of plans) {
    const sp = plan.servicePort;
    if (sp.id.protocol !== 'UDP') continue;
    const serving = new Set(
      plan.state.endpoints.filter((ep) => ep.serving).map((ep) => joinHostPort(ep.ip, ep.port)),
    );
    if (serving.size === 0) continue;
    for (const { ip } of plan.addresses) {
      if (ip !== '') byAddress.set(joinHostPort(ip, sp.port), serving);
    }
    if (sp.nodePort !== 0) byNodePort.set(sp.nodePort, serving);
  }
  return { byAddress, byNodePort };
}

function filterKey(filter: DeleteFilter): string {
  return `${filter.origDst ?? '*'} ${String(filter.origDport)} ${filter.replySrc} ${String(filter.replySport)}`;
}

/**
 * The delete filters for the stale UDP entries among `entries`, one per distinct tuple, in a
 * stable order. An entry to a service address is matched by (original destination and port,
 * reply source and port); an entry to a node port by (original port, reply source and port).
 */
export function staleFlowFilters(frontends: UdpFrontends, entries: Iterable<ConntrackEntry>): DeleteFilter[] {
  const filters = new Map<string, DeleteFilter>();
  const add = (filter: DeleteFilter) => filters.set(filterKey(filter), filter);
  for (const entry of entries) {
    if (entry.protocol !== 'udp') continue;
    const { original, reply } = entry;
    const backend = joinHostPort(reply.src, reply.sport);
    const serving = frontends.byAddress.get(joinHostPort(original.dst, original.dport));
    if (serving && !serving.has(backend)) {
      add({
        protocol: 'udp',
        origDst: original.dst,
        origDport: original.dport,
        replySrc: reply.src,
        replySport: reply.sport,
      });
    }
    const nodePortServing = frontends.byNodePort.get(original.dport);
    if (nodePortServing && !nodePortServing.has(backend)) {
      add({
        protocol: 'udp',
        origDst: undefined,
        origDport: original.dport,
        replySrc: reply.src,
        replySport: reply.sport,
      });
    }
  }
  return [...filters.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, filter]) => filter);
}

/** One `conntrack -R` command line (the address family follows from the addresses). */
export function deleteCommand(filter: DeleteFilter): string {
  const parts = ['-D', '-p', filter.protocol];
  if (filter.origDst !== undefined) parts.push('-d', filter.origDst);
  parts.push(
    '--dport',
    String(filter.origDport),
    '-r',
    filter.replySrc,
    '--reply-port-src',
    String(filter.replySport),
  );
  return parts.join(' ');
}

/** Splits the filters into `conntrack -R` scripts of at most `batchSize` commands each. */
export function deleteScripts(filters: readonly DeleteFilter[], batchSize = 500): string[] {
  const scripts: string[] = [];
  for (let i = 0; i < filters.length; i += batchSize) {
    scripts.push(
      filters
        .slice(i, i + batchSize)
        .map((filter) => `${deleteCommand(filter)}\n`)
        .join(''),
    );
  }
  return scripts;
}
