// The IPVS mode's iptables rules (modes-ipvs-userspace.md 1.10): a fixed, size-independent set of
// nat and filter rules matching on the ipsets, in upstream's exact order, as one
// iptables-restore input. The sets decide what is a service; these rules only mark for
// masquerade, accept, and filter.
import type { LocalTrafficDetector } from '../../plan/local-traffic.ts';
import type { IpvsDesired } from './desired.ts';
import {
  FILTER_CHAINS,
  KUBE_FORWARD,
  KUBE_IPVS_FILTER,
  KUBE_IPVS_OUT_FILTER,
  KUBE_LOAD_BALANCER,
  KUBE_MARK_MASQ,
  KUBE_NODE_PORT,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
  KUBE_SOURCE_RANGES_FIREWALL,
  NAT_CHAINS,
  SETS,
  setName,
  type SetKey,
} from './names.ts';
import type { IpvsOptions } from './options.ts';

/** The "not a local pod" match of the cluster-IP masquerade rule, undefined when detection is off. */
function notLocal(detector: LocalTrafficDetector): string | undefined {
  switch (detector.kind) {
    case 'none':
      return undefined;
    case 'cidr':
      return `! -s ${detector.cidr}`;
    case 'bridge':
      return `! -i ${detector.iface}`;
    case 'prefix':
      return `! -i ${detector.prefix}+`;
  }
}

/** `0x00004000`: Go's `%#08x` of the mark, as upstream writes it. */
export function masqueradeMark(bit: number): string {
  return `0x${((1 << bit) >>> 0).toString(16).padStart(8, '0')}`;
}

export interface IpvsRulesInput {
  readonly options: IpvsOptions;
  readonly desired: IpvsDesired;
}

export function renderIpvsRules({ options, desired }: IpvsRulesInput): string {
  const family = options.family;
  const name = (key: SetKey): string => setName(key, family);
  const has = (key: SetKey): boolean => desired.sets[key].size > 0;
  const matchSet = (key: SetKey, flags: string): string =>
    `-m comment --comment "${SETS[key].comment}" -m set --match-set ${name(key)} ${flags}`;
  const mark = masqueradeMark(options.masqueradeBit);
  const nat: string[] = [];
  const filter: string[] = [];

  // nat, 1.10.3 steps 1-15.
  nat.push(`-A ${KUBE_SERVICES} -s ${family === 'IPv4' ? '127.0.0.0/8' : '::1/128'} -j RETURN`);
  if (has('loopBack'))
    nat.push(`-A ${KUBE_POSTROUTING} ${matchSet('loopBack', 'dst,dst,src')} -j MASQUERADE`);
  if (has('loadBalancer'))
    nat.push(`-A ${KUBE_SERVICES} ${matchSet('loadBalancer', 'dst,dst')} -j ${KUBE_LOAD_BALANCER}`);
  if (has('loadBalancerLocal'))
    nat.push(`-A ${KUBE_LOAD_BALANCER} ${matchSet('loadBalancerLocal', 'dst,dst')} -j RETURN`);
  for (const [proto, all, local] of [
    ['tcp', 'nodePortTCP', 'nodePortLocalTCP'],
    ['udp', 'nodePortUDP', 'nodePortLocalUDP'],
  ] as const) {
    if (has(local)) nat.push(`-A ${KUBE_NODE_PORT} -p ${proto} ${matchSet(local, 'dst')} -j RETURN`);
    if (has(all)) nat.push(`-A ${KUBE_NODE_PORT} -p ${proto} ${matchSet(all, 'dst')} -j ${KUBE_MARK_MASQ}`);
  }
  if (has('nodePortLocalSCTP'))
    nat.push(`-A ${KUBE_NODE_PORT} -p sctp ${matchSet('nodePortLocalSCTP', 'dst,dst')} -j RETURN`);
  if (has('nodePortSCTP'))
    nat.push(`-A ${KUBE_NODE_PORT} -p sctp ${matchSet('nodePortSCTP', 'dst,dst')} -j ${KUBE_MARK_MASQ}`);
  if (has('clusterIP')) {
    const local = notLocal(options.localDetector);
    if (options.masqueradeAll)
      nat.push(`-A ${KUBE_SERVICES} ${matchSet('clusterIP', 'dst,dst')} -j ${KUBE_MARK_MASQ}`);
    else if (local !== undefined)
      nat.push(`-A ${KUBE_SERVICES} ${matchSet('clusterIP', 'dst,dst')} ${local} -j ${KUBE_MARK_MASQ}`);
    else nat.push(`-A ${KUBE_SERVICES} ${matchSet('clusterIP', 'src,dst')} -j ${KUBE_MARK_MASQ}`);
  }
  if (has('externalIP')) {
    const s = `-A ${KUBE_SERVICES} ${matchSet('externalIP', 'dst,dst')}`;
    nat.push(`${s} -j ${KUBE_MARK_MASQ}`);
    nat.push(`${s} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`);
    nat.push(`${s} -m addrtype --dst-type LOCAL -j ACCEPT`);
  }
  if (has('externalIPLocal')) {
    const s = `-A ${KUBE_SERVICES} ${matchSet('externalIPLocal', 'dst,dst')}`;
    nat.push(`${s} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`);
    nat.push(`${s} -m addrtype --dst-type LOCAL -j ACCEPT`);
  }
  nat.push(`-A ${KUBE_SERVICES} -m addrtype --dst-type LOCAL -j ${KUBE_NODE_PORT}`);
  nat.push(`-A ${KUBE_LOAD_BALANCER} -j ${KUBE_MARK_MASQ}`);
  if (has('clusterIP'))
    nat.push(`-A ${KUBE_SERVICES} -m set --match-set ${name('clusterIP')} dst,dst -j ACCEPT`);
  if (has('loadBalancer'))
    nat.push(`-A ${KUBE_SERVICES} -m set --match-set ${name('loadBalancer')} dst,dst -j ACCEPT`);
  nat.push(`-A ${KUBE_POSTROUTING} -m mark ! --mark ${mark}/${mark} -j RETURN`);
  nat.push(`-A ${KUBE_POSTROUTING} -j MARK --xor-mark ${mark}`);
  nat.push(
    `-A ${KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${options.randomFully ? ' --random-fully' : ''}`,
  );
  nat.push(`-A ${KUBE_MARK_MASQ} -j MARK --or-mark ${mark}`);

  // filter, 1.10.3 steps 1-10.
  if (has('loadBalancerFW'))
    filter.push(
      `-A ${KUBE_PROXY_FIREWALL} ${matchSet('loadBalancerFW', 'dst,dst')} -j ${KUBE_SOURCE_RANGES_FIREWALL}`,
    );
  if (has('loadBalancerSourceCIDR'))
    filter.push(
      `-A ${KUBE_SOURCE_RANGES_FIREWALL} ${matchSet('loadBalancerSourceCIDR', 'dst,dst,src')} -j RETURN`,
    );
  if (has('loadBalancerSourceIP'))
    filter.push(
      `-A ${KUBE_SOURCE_RANGES_FIREWALL} ${matchSet('loadBalancerSourceIP', 'dst,dst,src')} -j RETURN`,
    );
  filter.push(`-A ${KUBE_SOURCE_RANGES_FIREWALL} -j DROP`);
  for (const drop of desired.outFilter) {
    const proto = drop.protocol.toLowerCase();
    filter.push(
      `-A ${KUBE_IPVS_OUT_FILTER} -s ${drop.vip} -m ipvs --vaddr ${drop.vip} --vproto ${proto} --vport ${String(drop.port)} -j DROP`,
    );
  }
  filter.push(
    `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`,
  );
  filter.push(
    `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  );
  filter.push(`-A ${KUBE_NODE_PORT} ${matchSet('healthCheckNodePort', 'dst')} -j ACCEPT`);
  for (const [key, flags] of [
    ['loadBalancer', 'dst,dst'],
    ['clusterIP', 'dst,dst'],
    ['externalIP', 'dst,dst'],
    ['externalIPLocal', 'dst,dst'],
    ['healthCheckNodePort', 'dst'],
  ] as const)
    filter.push(`-A ${KUBE_IPVS_FILTER} -m set --match-set ${name(key)} ${flags} -j RETURN`);
  filter.push(
    `-A ${KUBE_IPVS_FILTER} -m conntrack --ctstate NEW -m set --match-set ${name('ipvsIPs')} dst -j REJECT`,
  );

  const declare = (chains: readonly string[]): string =>
    chains.map((chain) => `:${chain} - [0:0]\n`).join('');
  const lines = (rules: readonly string[]): string => rules.map((rule) => `${rule}\n`).join('');
  return (
    `*nat\n${declare(NAT_CHAINS)}${lines(nat)}COMMIT\n` +
    `*filter\n${declare(FILTER_CHAINS)}${lines(filter)}COMMIT\n`
  );
}
