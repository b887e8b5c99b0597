// Pure renderer: the userspace mode's listeners → iptables-restore text of its five capture
// chains (spec 2.3.2). Every sync declares (and so flushes) all five and writes them whole: they
// hold a handful of rules per service port, so there is nothing to gain from partial writes, and
// a whole write can never leave a stale redirect to a closed proxy port behind.
//
// One listener per (service port, frontend kind): Node has no SO_ORIGINAL_DST, so a listener can
// only know which frontend its clients used if that frontend's traffic, and only that, is
// redirected to it.
import type { IPFamily, ServicePort } from '../../model/types.ts';
import type { Frontend } from '../../plan/service-port.ts';
import { joinHostPort, parseIP } from '../../util/ip.ts';
import { commentArg } from '../iptables/format.ts';
import {
  KUBE_NODEPORT_CONTAINER,
  KUBE_NODEPORT_HOST,
  KUBE_NODEPORT_NON_LOCAL,
  KUBE_PORTALS_CONTAINER,
  KUBE_PORTALS_HOST,
  USERSPACE_FILTER_CHAINS,
  USERSPACE_NAT_CHAINS,
} from './owner.ts';

/**
 * The frontend kinds of a service port, each of which gets its own listener: the cluster IP
 * always, the others when the port has them.
 */
export function frontendsOf(sp: ServicePort): Frontend[] {
  const kinds: Frontend[] = ['cluster IP'];
  if (sp.externalIPs.length > 0) kinds.push('external IP');
  if (sp.loadBalancerVIPs.length > 0) kinds.push('load balancer IP');
  if (sp.nodePort !== 0) kinds.push('node port');
  return kinds;
}

/** One open listener: the frontend kind of one service port whose traffic goes to `proxyPort`. */
export interface CaptureListener {
  readonly servicePort: ServicePort;
  readonly frontend: Frontend;
  /** The port the listener is bound to (read back from the socket when the kernel chose it). */
  readonly proxyPort: number;
}

export interface CaptureOptions {
  readonly family: IPFamily;
  /**
   * The address the listeners are bound to. The unspecified address (0.0.0.0, ::) makes the
   * rules for pods and other hosts REDIRECT (to the primary address of the incoming interface,
   * so replies to pods leave from where they came); a specific address makes them DNAT to it.
   */
  readonly listenIP: string;
  /**
   * Where the node's own traffic is DNATed: a real, non-loopback address of the node (REDIRECT
   * of locally generated packets lands on 127.0.0.1, from where UDP replies left with the
   * wrong source address upstream, and DNAT to loopback is dropped without route_localnet).
   */
  readonly hostIP: string;
}

export interface CaptureCounts {
  readonly listeners: number;
  readonly natRules: number;
  readonly filterRules: number;
}

export interface CaptureOutput {
  /** iptables-restore input (for `--noflush`): `*nat` … `COMMIT`, `*filter` … `COMMIT`. */
  readonly text: string;
  readonly counts: CaptureCounts;
}

/**
 * A comment as iptables-save prints it: always double-quoted, so a rendered line and the saved
 * one are the same bytes (commentArg makes the text safe and quotes only texts with a space).
 */
function quotedComment(text: string): string {
  const arg = commentArg(text);
  return arg.startsWith('"') ? arg : `"${arg}"`;
}

function isUnspecified(ip: string): boolean {
  const parsed = parseIP(ip);
  return parsed !== undefined && parsed.value === 0n;
}

/** The rules of one listener, appended to the chains' line lists. */
function renderListener(
  listener: CaptureListener,
  options: CaptureOptions,
  lines: Readonly<Record<string, string[]>>,
): void {
  const sp = listener.servicePort;
  const proto = sp.id.protocol.toLowerCase();
  const comment = `-m comment --comment ${quotedComment(sp.id.printable)}`;
  const proxyPort = listener.proxyPort;
  const toListener = isUnspecified(options.listenIP)
    ? `-j REDIRECT --to-ports ${proxyPort}`
    : `-j DNAT --to-destination ${joinHostPort(options.listenIP, proxyPort)}`;
  const toHost = `-j DNAT --to-destination ${joinHostPort(options.hostIP, proxyPort)}`;
  const hostBits = options.family === 'IPv4' ? 32 : 128;
  const portal = (ip: string, port: number): string =>
    `-d ${ip}/${hostBits} -p ${proto} ${comment} -m ${proto} --dport ${port}`;
  const add = (chain: string, rule: string): void => {
    lines[chain]?.push(`-A ${chain} ${rule}\n`);
  };

  switch (listener.frontend) {
    case 'cluster IP':
      add(KUBE_PORTALS_CONTAINER, `${portal(sp.clusterIP, sp.port)} ${toListener}`);
      add(KUBE_PORTALS_HOST, `${portal(sp.clusterIP, sp.port)} ${toHost}`);
      return;
    case 'load balancer IP':
      // Treated as cluster IPs (upstream): the VIP is captured from everywhere.
      for (const ip of sp.loadBalancerVIPs) {
        add(KUBE_PORTALS_CONTAINER, `${portal(ip, sp.port)} ${toListener}`);
        add(KUBE_PORTALS_HOST, `${portal(ip, sp.port)} ${toHost}`);
      }
      return;
    case 'external IP':
      // Only for traffic not bridged in from a local container ("from off-machine"), or
      // addressed to an external IP the node holds itself.
      for (const ip of sp.externalIPs) {
        add(KUBE_PORTALS_CONTAINER, `${portal(ip, sp.port)} -m physdev ! --physdev-is-in ${toListener}`);
        add(KUBE_PORTALS_CONTAINER, `${portal(ip, sp.port)} -m addrtype --dst-type LOCAL ${toListener}`);
        add(KUBE_PORTALS_HOST, `${portal(ip, sp.port)} -m addrtype --dst-type LOCAL ${toHost}`);
      }
      return;
    case 'node port': {
      // No -d: the jumps into these chains match local destinations only.
      const match = `-p ${proto} ${comment} -m ${proto} --dport ${sp.nodePort}`;
      add(KUBE_NODEPORT_CONTAINER, `${match} ${toListener}`);
      add(KUBE_NODEPORT_HOST, `${match} ${toHost}`);
      add(
        KUBE_NODEPORT_NON_LOCAL,
        `-p ${proto} ${comment} -m ${proto} --dport ${proxyPort} -m state --state NEW -j ACCEPT`,
      );
      return;
    }
    default: {
      const unknown: never = listener.frontend;
      throw new Error(`unknown frontend ${String(unknown)}`);
    }
  }
}

/** The `-A CHAIN …` lines of one listener (each ending in a newline). Pure. */
export function listenerRules(listener: CaptureListener, options: CaptureOptions): string[] {
  const lines: Record<string, string[]> = {};
  for (const chain of [...USERSPACE_NAT_CHAINS, ...USERSPACE_FILTER_CHAINS]) lines[chain] = [];
  renderListener(listener, options, lines);
  return [...USERSPACE_NAT_CHAINS, ...USERSPACE_FILTER_CHAINS].flatMap((chain) => lines[chain] ?? []);
}

const FILTER_CHAINS: ReadonlySet<string> = new Set(USERSPACE_FILTER_CHAINS);

/**
 * A partial update of the five chains for `iptables-restore --noflush`: no chain is declared (a
 * declaration would flush it), the rules of listeners that went away or changed are deleted by
 * their exact specification, the new ones appended. The rules of one chain never overlap (each
 * matches its own address and port), so their order does not matter. Empty when nothing changed.
 * Pure.
 */
export function renderCaptureDelta(removed: readonly string[], added: readonly string[]): string {
  if (removed.length === 0 && added.length === 0) return '';
  const table = (filter: boolean): string[] => {
    const inTable = (line: string) => FILTER_CHAINS.has(line.split(' ', 2)[1] ?? '') === filter;
    return [...removed.filter(inTable).map((line) => `-D${line.slice(2)}`), ...added.filter(inTable)];
  };
  return ['*nat\n', ...table(false), 'COMMIT\n', '*filter\n', ...table(true), 'COMMIT\n'].join('');
}

/** The restore text of the five chains for these listeners, in their order. Pure. */
export function renderCapture(listeners: Iterable<CaptureListener>, options: CaptureOptions): CaptureOutput {
  for (const [what, ip] of [
    ['listenIP', options.listenIP],
    ['hostIP', options.hostIP],
  ] as const) {
    const parsed = parseIP(ip);
    if (parsed?.family !== options.family) {
      throw new Error(`renderCapture: ${what} ${JSON.stringify(ip)} is not an ${options.family} address`);
    }
  }
  const lines: Record<string, string[]> = {};
  for (const chain of [...USERSPACE_NAT_CHAINS, ...USERSPACE_FILTER_CHAINS]) lines[chain] = [];
  let count = 0;
  for (const listener of listeners) {
    renderListener(listener, options, lines);
    count++;
  }
  const section = (chains: readonly string[]): string[] => [
    ...chains.map((chain) => `:${chain} - [0:0]\n`),
    ...chains.flatMap((chain) => lines[chain] ?? []),
  ];
  const nat = section(USERSPACE_NAT_CHAINS);
  const filter = section(USERSPACE_FILTER_CHAINS);
  const rules = (chains: readonly string[]): number =>
    chains.reduce((sum, chain) => sum + (lines[chain]?.length ?? 0), 0);
  return {
    text: ['*nat\n', ...nat, 'COMMIT\n', '*filter\n', ...filter, 'COMMIT\n'].join(''),
    counts: {
      listeners: count,
      natRules: rules(USERSPACE_NAT_CHAINS),
      filterRules: rules(USERSPACE_FILTER_CHAINS),
    },
  };
}
