// The userspace mode's capture without NAT (`--userspace-capture=address`, ours): every service
// address (cluster IPs, external IPs, load balancer IPs) is put on a dummy link, which makes it a
// local address of the node, and a listener is bound to each address at the service port; node
// ports get a listener on the family's wildcard address. (A bridge without ports stands in for the
// dummy link on kernels built without the dummy driver.) Packets reach the listeners by plain
// routing: no nat table, no conntrack entries, and replies leave from the service address itself.
// For hosts whose nat table is unavailable or owned by something else.
//
// planAddressCapture and the script builders are pure; DummyLink runs `ip`.
import { log } from '../../log/log.ts';
import type { IPFamily, ServicePortState } from '../../model/types.ts';
import type { Frontend } from '../../plan/service-port.ts';
import { joinHostPort, parseIP } from '../../util/ip.ts';
import type { Runner } from '../xtables/index.ts';

/** The dummy link holding the service addresses (15 characters, the kernel's limit). */
export const CAPTURE_LINK = 'kube-userspace0';

export type CaptureMethod = 'nat' | 'address';
export const CAPTURE_METHODS: readonly CaptureMethod[] = ['nat', 'address'];

/**
 * A listener bound where its frontend's traffic arrives. Its key holds the address and port it is
 * bound to: a Service whose port changes gets a new listener (a bound socket cannot move).
 */
export interface BoundListener {
  readonly key: string;
  readonly state: ServicePortState;
  readonly frontend: Frontend;
  readonly host: string;
  readonly port: number;
}

export interface AddressCapturePlan {
  readonly listeners: readonly BoundListener[];
  /** Canonical addresses the dummy link must hold. */
  readonly addresses: ReadonlySet<string>;
}

const WILDCARD: Readonly<Record<IPFamily, string>> = { IPv4: '0.0.0.0', IPv6: '::' };

function canonical(family: IPFamily, text: string): string | undefined {
  const ip = parseIP(text);
  return ip?.family === family ? ip.text : undefined;
}

/**
 * The listeners and link addresses of a family's service ports (SCTP already left out by the
 * caller). Addresses that are already the node's own (an external IP equal to a node IP) are
 * listened on but not added to the link.
 */
export function planAddressCapture(
  family: IPFamily,
  states: Iterable<ServicePortState>,
  isNodeAddress: (ip: string) => boolean,
): AddressCapturePlan {
  const listeners: BoundListener[] = [];
  const addresses = new Set<string>();
  for (const state of states) {
    const sp = state.servicePort;
    const bind = (frontend: Frontend, ips: readonly string[]) => {
      for (const text of ips) {
        const ip = canonical(family, text);
        if (ip === undefined) continue;
        if (!isNodeAddress(ip)) addresses.add(ip);
        listeners.push({
          key: `${family}|${sp.id.key}|${frontend}|${joinHostPort(ip, sp.port)}`,
          state,
          frontend,
          host: ip,
          port: sp.port,
        });
      }
    };
    if (sp.clusterIP !== '' && sp.clusterIP !== 'None') bind('cluster IP', [sp.clusterIP]);
    bind('external IP', sp.externalIPs);
    bind('load balancer IP', sp.loadBalancerVIPs);
    if (sp.nodePort !== 0) {
      listeners.push({
        key: `${family}|${sp.id.key}|node port|${sp.nodePort}`,
        state,
        frontend: 'node port',
        host: WILDCARD[family],
        port: sp.nodePort,
      });
    }
  }
  return { listeners, addresses };
}

/** `ip -o addr show dev <link>` → the link's addresses of the family, canonical. */
export function parseLinkAddresses(family: IPFamily, output: string): Set<string> {
  const found = new Set<string>();
  const keyword = family === 'IPv4' ? ' inet ' : ' inet6 ';
  for (const line of output.split('\n')) {
    const at = line.indexOf(keyword);
    if (at < 0) continue;
    const cidr =
      line
        .slice(at + keyword.length)
        .trim()
        .split(/\s+/)[0] ?? '';
    const ip = canonical(family, cidr.split('/')[0] ?? '');
    if (ip !== undefined && !ip.startsWith('fe80:')) found.add(ip);
  }
  return found;
}

/** The `ip -batch` lines that add the missing addresses and (when `removeExtra`) delete the others. */
export function linkAddressScript(
  family: IPFamily,
  current: ReadonlySet<string>,
  wanted: ReadonlySet<string>,
  removeExtra: boolean,
): string[] {
  const prefix = family === 'IPv4' ? '32' : '128';
  // nodad: an IPv6 address is usable at once (a tentative one cannot be bound).
  const flags = family === 'IPv6' ? ' nodad' : '';
  const lines: string[] = [];
  for (const ip of [...wanted].sort()) {
    if (!current.has(ip)) lines.push(`address add ${ip}/${prefix} dev ${CAPTURE_LINK}${flags}`);
  }
  if (removeExtra) {
    for (const ip of [...current].sort()) {
      if (!wanted.has(ip)) lines.push(`address del ${ip}/${prefix} dev ${CAPTURE_LINK}`);
    }
  }
  return lines;
}

/** The dummy link, through `ip`. */
export class DummyLink {
  private readonly run: Runner;
  private readonly family: IPFamily;

  constructor(run: Runner, family: IPFamily) {
    this.run = run;
    this.family = family;
  }

  async exists(): Promise<boolean> {
    try {
      await this.run('ip', ['link', 'show', 'dev', CAPTURE_LINK], { timeoutMs: 10_000 });
      return true;
    } catch {
      return false;
    }
  }

  /** Creates the link when missing and sets it up. */
  async ensure(): Promise<void> {
    if (!(await this.exists())) {
      try {
        await this.run('ip', ['link', 'add', CAPTURE_LINK, 'type', 'dummy'], { timeoutMs: 10_000 });
      } catch (error) {
        // Some kernels are built without the dummy driver; a bridge without ports holds local
        // addresses the same way (it forwards nothing: it has no ports).
        if (!(error instanceof Error) || !/Unknown device type|not supported/i.test(error.message))
          throw error;
        log.info('This kernel has no dummy links: the service addresses go on a bridge without ports', {
          link: CAPTURE_LINK,
        });
        await this.run('ip', ['link', 'add', CAPTURE_LINK, 'type', 'bridge'], { timeoutMs: 10_000 });
      }
    }
    await this.run('ip', ['link', 'set', 'dev', CAPTURE_LINK, 'up'], { timeoutMs: 10_000 });
  }

  async addresses(): Promise<Set<string>> {
    const flag = this.family === 'IPv4' ? '-4' : '-6';
    const { stdout } = await this.run('ip', ['-o', flag, 'addr', 'show', 'dev', CAPTURE_LINK], {
      timeoutMs: 10_000,
    });
    return parseLinkAddresses(this.family, stdout);
  }

  /** Makes the link hold `wanted` (and, with `removeExtra`, nothing else); returns the lines run. */
  async reconcile(wanted: ReadonlySet<string>, removeExtra: boolean): Promise<number> {
    const lines = linkAddressScript(this.family, await this.addresses(), wanted, removeExtra);
    if (lines.length > 0) {
      await this.run('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 60_000 });
    }
    return lines.length;
  }
}

/** Deletes the link (and so every address on it), if it exists. */
export async function deleteCaptureLink(run: Runner): Promise<boolean> {
  try {
    await run('ip', ['link', 'show', 'dev', CAPTURE_LINK], { timeoutMs: 10_000 });
  } catch {
    return false;
  }
  await run('ip', ['link', 'del', 'dev', CAPTURE_LINK], { timeoutMs: 10_000 });
  return true;
}
