// Where the userspace mode's listeners bind, where the node's own service traffic is sent, and
// which client addresses are the node itself (spec 2.2). Pure; the mode and its explainer share it.
import type { IPFamily } from '../../model/types.ts';
import { isLoopback, parseIP } from '../../util/ip.ts';
import type { NodeInfo } from '../common/settings.ts';

export const WILDCARD: Readonly<Record<IPFamily, string>> = { IPv4: '0.0.0.0', IPv6: '::' };

/**
 * Where a family's listeners bind (spec 2.2): --bind-address when it is a specific address of
 * the family, else the family's unspecified address. Loopback is refused, as upstream did
 * ("cannot proxy on localhost"): pods' redirected traffic could never reach it.
 */
export function listenIPFor(bindAddress: string, family: IPFamily): string {
  const ip = parseIP(bindAddress);
  if (ip === undefined || ip.family !== family || ip.value === 0n) return WILDCARD[family];
  if (isLoopback(ip)) throw new Error(`cannot proxy on localhost (--bind-address ${bindAddress})`);
  return ip.text;
}

/**
 * Where the node's own traffic is DNATed (spec 2.2 hostIP): the node's IP of the family
 * (--bind-address first), else the host's first non-loopback address of the family.
 */
export function hostIPFor(
  family: IPFamily,
  node: Pick<NodeInfo, 'ips'>,
  hostAddresses: readonly string[],
): string {
  for (const text of [...node.ips[family], ...hostAddresses]) {
    const ip = parseIP(text);
    if (ip?.family === family && !isLoopback(ip) && ip.value !== 0n) return ip.text;
  }
  throw new Error(`userspace mode: this node has no ${family} address to send its own service traffic to`);
}

/** Whether a client address is this node's: loopback, a node IP or an interface address. */
export function nodeAddressCheck(
  family: IPFamily,
  node: Pick<NodeInfo, 'ips'>,
  hostAddresses: readonly string[],
): (ip: string) => boolean {
  const own = new Set<string>();
  for (const text of [...node.ips[family], ...hostAddresses]) {
    const ip = parseIP(text);
    if (ip?.family === family) own.add(ip.text);
  }
  return (text) => {
    const ip = parseIP(text);
    return ip !== undefined && (isLoopback(ip) || own.has(ip.text));
  };
}
