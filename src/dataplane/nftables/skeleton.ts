// The fixed part of the table: base chains (upstream names, hooks and priorities, spec 4.1),
// the fixed regular chains and their rules, and every set and map. None of it depends on
// Services; a full sync re-declares it all, a partial sync never touches it.
import type { NftablesOptions } from './options.ts';
import { masqueradeMark } from '../common/marks.ts';
import { nodePortIPs } from './options.ts';
import {
  affinitySet,
  classChain,
  dispatchMap,
  endpointMap,
  nftFamily,
  PROTOCOLS,
  SELECTORS,
  type Proto,
  type Selector,
} from './names.ts';
import {
  ENTRY_CLUSTER_IP,
  ENTRY_EXTERNAL_IP,
  ENTRY_EXTERNAL_IP_LOCAL,
  ENTRY_NODEPORT,
  ENTRY_NODEPORT_LOCAL,
} from './service.ts';

/**
 * Capacity of each affinity set (remembered client . service port . endpoint triples). nft's
 * default for a dynamic set is 65535, which one popular Service could fill; when a set is full
 * new clients are still served (the affinity chains end with a plain DNAT), just not remembered.
 */
export const AFFINITY_SET_SIZE = 1048576;

export interface BaseChain {
  readonly name: string;
  readonly type: 'filter' | 'nat';
  readonly hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  readonly priority: string;
}

export const BASE_CHAINS: readonly BaseChain[] = [
  { name: 'filter-prerouting-pre-dnat', type: 'filter', hook: 'prerouting', priority: '-110' },
  { name: 'filter-output-pre-dnat', type: 'filter', hook: 'output', priority: '-110' },
  { name: 'filter-input', type: 'filter', hook: 'input', priority: '0' },
  { name: 'filter-forward', type: 'filter', hook: 'forward', priority: '0' },
  { name: 'filter-output', type: 'filter', hook: 'output', priority: '0' },
  { name: 'nat-prerouting', type: 'nat', hook: 'prerouting', priority: '-100' },
  { name: 'nat-output', type: 'nat', hook: 'output', priority: '-100' },
  { name: 'nat-postrouting', type: 'nat', hook: 'postrouting', priority: '100' },
];

export interface SetDecl {
  readonly name: string;
  /** Body between the braces of `add set|map`, e.g. `type ipv4_addr ; comment "x" ;`. */
  readonly body: string;
  readonly isMap: boolean;
  /** Filled by the packet path (ClientIP affinity): a full sync re-declares it but never flushes it. */
  readonly dynamic?: boolean;
}

export interface ChainRules {
  readonly name: string;
  readonly comment: string;
  readonly rules: readonly string[];
}

export interface Skeleton {
  readonly baseChains: readonly ChainRules[];
  readonly chains: readonly ChainRules[];
  readonly sets: readonly SetDecl[];
  /** Elements that come from options, not Services (set name -> elements). */
  readonly fixedElements: ReadonlyMap<string, readonly string[]>;
}

/** Match for traffic from local pods and its negation (spec 3.7); undefined when not detectable. */
export function localMatch(options: NftablesOptions): { local: string; notLocal: string } | undefined {
  const fam = nftFamily(options.family);
  const detector = options.localDetector;
  switch (detector.kind) {
    case 'none':
      return undefined;
    case 'cidr':
      return { local: `${fam} saddr ${detector.cidr}`, notLocal: `${fam} saddr != ${detector.cidr}` };
    case 'bridge':
      return { local: `iifname "${detector.iface}"`, notLocal: `iifname != "${detector.iface}"` };
    case 'prefix':
      return { local: `iifname "${detector.prefix}*"`, notLocal: `iifname != "${detector.prefix}*"` };
  }
}

/** The masquerade mark (dataplane/common/marks.ts). */
export function markHex(bit: number): string {
  return masqueradeMark(bit);
}

/** The DNAT rules of one endpoint class chain: one per protocol, each with its own map. */
export function classChainRules(
  family: NftablesOptions['family'],
  selector: Selector,
  count: number,
): string[] {
  const fam = nftFamily(family);
  return PROTOCOLS.map((p: Proto) => {
    const key = selector.startsWith('ip') ? `${fam} daddr . ${p} dport` : `${p} dport`;
    return `meta l4proto ${p} dnat to ${key} . numgen random mod ${count} map @${endpointMap(selector, p)}`;
  });
}

export function classChainDef(
  family: NftablesOptions['family'],
  selector: Selector,
  count: number,
): ChainRules {
  return { name: classChain(selector, count), comment: '', rules: classChainRules(family, selector, count) };
}

/** The chain that rejects unused ports of cluster IPs and drops unallocated cluster IPs. */
export const CLUSTER_IPS_CHECK = 'cluster-ips-check';

/**
 * The rules of cluster-ips-check: reject a port no Service of an allocated cluster IP serves,
 * then drop anything else inside the service CIDRs (an address no Service holds), as upstream's
 * nftables mode does; without known service CIDRs only the first rule. The chain is hooked after
 * DNAT, so traffic to a served port (already DNATed to an endpoint) never reaches it.
 */
export function clusterIPsCheckRules(
  family: NftablesOptions['family'],
  serviceCIDRs: readonly string[],
): string[] {
  const fam = nftFamily(family);
  const rules = [`${fam} daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`];
  if (serviceCIDRs.length > 0) {
    rules.push(
      `${fam} daddr { ${serviceCIDRs.join(', ')} } drop comment "Drop traffic to unallocated ClusterIPs"`,
    );
  }
  return rules;
}

export function buildSkeleton(options: NftablesOptions): Skeleton {
  const fam = nftFamily(options.family);
  const addr = options.family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr';
  const loopback = options.family === 'IPv4' ? '127.0.0.0/8' : '::1';
  const mark = markHex(options.masqueradeBit);
  const all = options.nodePortAddresses.kind === 'all';
  const local = localMatch(options);
  const ipKey = `${fam} daddr . meta l4proto . th dport`;
  const portKey = 'meta l4proto . th dport';
  const nodePortMatch = all
    ? `fib daddr type local ${fam} daddr != ${loopback}`
    : `${fam} daddr @nodeport-ips`;

  const sets: SetDecl[] = [];
  const set = (name: string, type: string, comment: string, extra = ''): void => {
    sets.push({ name, body: `type ${type} ;${extra} comment "${comment}" ;`, isMap: type.includes(' : ') });
  };
  set('cluster-ips', addr, 'Active ClusterIPs');
  if (!all) set('nodeport-ips', addr, 'IPs that accept NodePort traffic');
  set(
    'service-ips',
    `${addr} . inet_proto . inet_service : verdict`,
    'ClusterIP, ExternalIP and LoadBalancer IP traffic',
  );
  set('service-nodeports', 'inet_proto . inet_service : verdict', 'NodePort traffic');
  set(
    'no-endpoint-services',
    `${addr} . inet_proto . inet_service : verdict`,
    'vmap to drop or reject packets to services with no endpoints',
  );
  set(
    'no-endpoint-nodeports',
    'inet_proto . inet_service : verdict',
    'vmap to drop or reject packets to service nodeports with no endpoints',
  );
  set(
    'firewall-ips',
    `${addr} . inet_proto . inet_service`,
    'destinations that are subject to LoadBalancerSourceRanges',
  );
  set(
    'firewall-allow',
    `${addr} . inet_proto . inet_service . ${addr}`,
    'destination . allowed source range (LoadBalancerSourceRanges)',
    ' flags interval ;',
  );
  set('hairpin', `${addr} . ${addr}`, 'endpoint . endpoint: masquerade an endpoint reaching itself');
  for (const p of PROTOCOLS) {
    sets.push({
      name: affinitySet(p),
      body:
        `type ${addr} . ${addr} . inet_service . ${addr} . inet_service ; flags dynamic,timeout ; ` +
        `size ${AFFINITY_SET_SIZE} ; comment "ClientIP affinity: client . cluster IP . port . endpoint . port" ;`,
      isMap: false,
      dynamic: true,
    });
  }
  const dispatchComment: Record<Selector, string> = {
    ip: 'cluster IP or external IP . protocol . port -> endpoint class chain',
    'ip-shortcut': 'external IP of an eTP=Local service, pod or node traffic -> cluster-wide class chain',
    nodeport: 'node port -> endpoint class chain',
    'nodeport-shortcut': 'node port of an eTP=Local service, pod or node traffic -> cluster-wide class chain',
  };
  for (const selector of SELECTORS) {
    const byAddress = selector.startsWith('ip');
    set(
      dispatchMap(selector),
      `${byAddress ? `${addr} . ` : ''}inet_proto . inet_service : verdict`,
      dispatchComment[selector],
    );
    for (const p of PROTOCOLS) {
      // typeof (not type): the random index has no named type. The data half must name the
      // protocol (`tcp dport`, not `th dport`): nft 1.0.6 cannot add a rule using a map whose
      // typeof data says `th` once the map exists in the kernel, hence one map per protocol.
      const key = `${byAddress ? `${fam} daddr . ` : ''}${p} dport . numgen random mod 1`;
      sets.push({
        name: endpointMap(selector, p),
        body: `typeof ${key} : ${fam} daddr . ${p} dport ; comment "${byAddress ? 'address . ' : ''}port . index -> endpoint" ;`,
        isMap: true,
      });
    }
  }

  const entry = (name: string, comment: string, rules: string[]): ChainRules => ({ name, comment, rules });
  const masqCluster: string[] = options.masqueradeAll
    ? ['jump mark-for-masquerade']
    : local
      ? [`${local.notLocal} jump mark-for-masquerade comment "masquerade off-cluster traffic to cluster IPs"`]
      : [];
  const shortcut = (key: string, selector: Selector): string[] => [
    ...(local
      ? [`${local.local} ${key} vmap @${dispatchMap(selector)} comment "short-circuit pod traffic"`]
      : []),
    'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
    `fib saddr type local ${key} vmap @${dispatchMap(selector)} comment "short-circuit local traffic"`,
  ];

  const chains: ChainRules[] = [
    entry('firewall-check', '', [
      `${ipKey} @firewall-ips ${ipKey} . ${fam} saddr != @firewall-allow drop comment "LoadBalancerSourceRanges"`,
    ]),
    entry('service-endpoints-check', '', [`${ipKey} vmap @no-endpoint-services`]),
    entry('nodeport-endpoints-check', '', [`${nodePortMatch} ${portKey} vmap @no-endpoint-nodeports`]),
    entry(CLUSTER_IPS_CHECK, '', clusterIPsCheckRules(options.family, [])),
    entry('services', '', [
      `${ipKey} vmap @service-ips`,
      `${nodePortMatch} ${portKey} vmap @service-nodeports`,
    ]),
    entry(ENTRY_CLUSTER_IP, 'traffic to a cluster IP', [
      ...masqCluster,
      `${ipKey} vmap @${dispatchMap('ip')}`,
    ]),
    entry(ENTRY_EXTERNAL_IP, 'traffic to an external or load balancer IP, eTP=Cluster', [
      'jump mark-for-masquerade',
      `${ipKey} vmap @${dispatchMap('ip')}`,
    ]),
    entry(ENTRY_EXTERNAL_IP_LOCAL, 'traffic to an external or load balancer IP, eTP=Local', [
      ...shortcut(ipKey, 'ip-shortcut'),
      `${ipKey} vmap @${dispatchMap('ip')}`,
    ]),
    entry(ENTRY_NODEPORT, 'traffic to a node port, eTP=Cluster', [
      'jump mark-for-masquerade',
      `${portKey} vmap @${dispatchMap('nodeport')}`,
    ]),
    entry(ENTRY_NODEPORT_LOCAL, 'traffic to a node port, eTP=Local', [
      ...shortcut(portKey, 'nodeport-shortcut'),
      `${portKey} vmap @${dispatchMap('nodeport')}`,
    ]),
    entry('reject-chain', 'helper for @no-endpoint-services / @no-endpoint-nodeports', ['reject']),
    entry('mark-for-masquerade', '', [`mark set mark or ${mark}`]),
    entry('masquerading', '', [
      `ct status dnat ${fam} saddr . ${fam} daddr @hairpin jump mark-for-masquerade comment "hairpin"`,
      `mark and ${mark} == 0 return`,
      `mark set mark xor ${mark}`,
      'masquerade fully-random',
    ]),
  ];

  const jumpNew = (target: string): string => `ct state new jump ${target}`;
  const baseRules: Record<string, string[]> = {
    'filter-prerouting-pre-dnat': [jumpNew('firewall-check')],
    'filter-output-pre-dnat': [jumpNew('firewall-check')],
    'filter-input': [jumpNew('nodeport-endpoints-check'), jumpNew('service-endpoints-check')],
    'filter-forward': [jumpNew('service-endpoints-check'), jumpNew('cluster-ips-check')],
    'filter-output': [jumpNew('service-endpoints-check'), jumpNew('cluster-ips-check')],
    'nat-prerouting': ['jump services'],
    'nat-output': ['jump services'],
    'nat-postrouting': ['jump masquerading'],
  };
  const baseChains = BASE_CHAINS.map((chain) => ({
    name: chain.name,
    comment: '',
    rules: baseRules[chain.name] ?? [],
  }));

  const fixedElements = new Map<string, readonly string[]>();
  if (!all) fixedElements.set('nodeport-ips', nodePortIPs(options));
  return { baseChains, chains, sets, fixedElements };
}
