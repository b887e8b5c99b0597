// The one host read of the iptables mode besides xtables' own: which local addresses fall in
// nodePortAddresses. (Save, restore, jump rules and canaries are the xtables toolkit's.)
import type { IPFamily } from '../../model/types.ts';
import { cidrContains, parseCIDR, parseIP } from '../../util/ip.ts';
import type { Runner } from '../xtables/index.ts';

interface IpAddrJson {
  readonly addr_info?: readonly { readonly family?: string; readonly local?: string }[];
}

/** Local addresses of the family inside the CIDRs, in `ip -j addr` order, deduplicated. */
export async function localAddressesIn(
  run: Runner,
  family: IPFamily,
  cidrTexts: readonly string[],
): Promise<string[]> {
  const cidrs = cidrTexts.flatMap((text) => parseCIDR(text) ?? []);
  const result = await run('ip', ['-j', 'addr', 'show']);
  const links = JSON.parse(result.stdout) as readonly IpAddrJson[];
  const out: string[] = [];
  for (const link of links) {
    for (const info of link.addr_info ?? []) {
      const ip = parseIP(info.local ?? '');
      if (!ip || ip.family !== family || out.includes(ip.text)) continue;
      if (cidrs.some((cidr) => cidrContains(cidr, ip))) out.push(ip.text);
    }
  }
  return out;
}
