// Pure renderer: snapshot -> iptables-restore input (spec 3.1-3.10). No clock, no kernel, no
// logging: the same input always gives the same bytes, which is what golden tests, partial syncs
// and operators' diffs rely on.
//
// Per-service-port output is cached by object identity: the model hands us the same
// ServicePortState object while a port and its endpoints are unchanged, so a sync costs
// rendering only what changed plus joining cached strings.
import type { ProxySnapshot, ServicePortState } from '../../model/types.ts';
import { cidrContains, isLoopback, parseCIDR, parseIP } from '../../util/ip.ts';
import {
  FILTER_CHAINS,
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
  NAT_CHAINS,
  endpointChainName,
  hashesForFullRender,
  isServiceChainName,
  serviceChainNames,
} from './chains.ts';
import { commentArg, masqueradeMark, probability } from './format.ts';
import {
  LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
  effectiveLocalhostNodePorts,
  type IptablesOptions,
} from './options.ts';
import { primaryNodeIP } from '../../model/node.ts';
import type { LocalTrafficDetector } from '../../plan/local-traffic.ts';
import { nodePortAddressesFor } from '../../plan/node-ports.ts';
import { planOf, type PlanNode } from '../../plan/service-port.ts';

/** Carried from one render to the next (opaque to callers). */
export interface IptablesRenderCache {
  /** Fingerprint of everything besides the ServicePortState that shapes a fragment. */
  readonly key: string;
  readonly fragments: WeakMap<ServicePortState, Fragment>;
}

export interface RenderInput {
  readonly snapshot: ProxySnapshot;
  /** Rewrite every per-service chain; when false only those of snapshot.changedServices. */
  readonly full: boolean;
  readonly options: IptablesOptions;
  /** The cache returned by the previous render, if any. */
  readonly previous?: IptablesRenderCache | undefined;
  /**
   * Chains currently in the nat table (from `iptables-save -t nat`). Service chains among them
   * that are no longer active are flushed and deleted. Undefined skips stale-chain deletion.
   */
  readonly existingNatChains?: ReadonlySet<string> | undefined;
}

export interface RenderCounts {
  readonly servicePorts: number;
  /** Endpoints over all service ports (decides large-cluster mode). */
  readonly endpoints: number;
  /** Filter rules written (= owned: the filter table is rewritten every sync). */
  readonly filterRules: number;
  /** Nat rules written this sync, `-X` lines not counted (metric ..._iptables_last{nat}). */
  readonly natRulesWritten: number;
  /** Nat rules of unchanged services left in place by a partial sync. */
  readonly natRulesSkipped: number;
  /** Nat rules owned after this sync (metric ..._iptables_total{nat}). */
  readonly natRulesTotal: number;
  /** Nat chains declared (fixed, per-service written, and stale ones being deleted). */
  readonly natChainsWritten: number;
  readonly natChainsDeleted: number;
  /** Service ports whose cluster-IP traffic is dropped for lack of local endpoints. */
  readonly noLocalEndpointsInternal: number;
  /** Service ports whose external traffic is dropped for lack of local endpoints. */
  readonly noLocalEndpointsExternal: number;
}

export interface RenderOutput {
  /** iptables-restore input: `*filter` … `COMMIT`, `*nat` … `COMMIT`. */
  readonly text: string;
  /** Per-service nat chains (KUBE-SVC/SVL/EXT/FW/SEP) that exist after this sync. */
  readonly activeNatChains: Set<string>;
  /** Stale chains this text deletes, sorted. */
  readonly deletedChains: readonly string[];
  readonly largeClusterMode: boolean;
  readonly counts: RenderCounts;
  /** Problems worth an error log line (e.g. loopback IPs skipped for NodePorts). */
  readonly warnings: readonly string[];
  /** Pass as `previous` to the next render. */
  readonly cache: IptablesRenderCache;
}

/** What one service port contributes; strings hold whole lines, each ending in a newline. */
interface Fragment {
  readonly filterRules: string;
  readonly filterRuleCount: number;
  /** Rules in the shared KUBE-SERVICES / KUBE-NODEPORTS nat chains: written on every sync. */
  readonly natEntryRules: string;
  readonly natEntryRuleCount: number;
  /** Declarations and rules of this port's own chains: written in full syncs or when changed. */
  readonly natChainLines: string;
  readonly natChainRules: string;
  readonly natChainRuleCount: number;
  readonly chains: readonly string[];
  readonly noLocalInternal: boolean;
  readonly noLocalExternal: boolean;
}

/** Settings derived once per render from the options and the node. */
interface Context {
  readonly key: string;
  readonly masqueradeAll: boolean;
  /** Local-traffic match (3.7), undefined when detection is off for this family. */
  readonly ifLocal: string | undefined;
  readonly ifNotLocal: string | undefined;
  /** Emit the nfacct-counted 127.0.0.0/8 NodePort rule. */
  readonly localhostNodePortCounter: boolean;
  /** What the traffic plan needs of the node (its IP decides source-range exceptions). */
  readonly planNode: PlanNode;
  readonly largeClusterMode: boolean;
}

const NODEPORTS_COMMENT = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"';

/** The local-traffic detector as an iptables match and its negation. */
function localMatches(detector: LocalTrafficDetector): [string, string] | undefined {
  switch (detector.kind) {
    case 'none':
      return undefined;
    case 'cidr':
      return [`-s ${detector.cidr}`, `! -s ${detector.cidr}`];
    case 'bridge':
      return [`-i ${detector.iface}`, `! -i ${detector.iface}`];
    case 'prefix':
      return [`-i ${detector.prefix}+`, `! -i ${detector.prefix}+`];
  }
}

function makeContext(options: IptablesOptions, snapshot: ProxySnapshot, largeClusterMode: boolean): Context {
  const local = localMatches(options.localDetector);
  const localhostNodePortCounter =
    effectiveLocalhostNodePorts(options, snapshot.node.nodeIPs) && options.nfacct.localhostNodePortsAccepted;
  const planNode: PlanNode = { family: options.family, nodeIP: primaryNodeIP(snapshot.node, options.family) };
  const key = JSON.stringify([
    options.family,
    options.masqueradeAll,
    local ?? null,
    localhostNodePortCounter,
    planNode.nodeIP,
    largeClusterMode,
  ]);
  return {
    key,
    masqueradeAll: options.masqueradeAll,
    ifLocal: local?.[0],
    ifNotLocal: local?.[1],
    localhostNodePortCounter,
    planNode,
    largeClusterMode,
  };
}

/** The rules of one service port, in upstream's emission order (spec 3.5). */
function renderServicePort(state: ServicePortState, ctx: Context): Fragment {
  const sp = state.servicePort;
  const name = sp.id.printable;
  const proto = sp.id.protocol.toLowerCase();
  const match = `-m ${proto} -p ${proto}`;
  const names = serviceChainNames(name, sp.id.protocol);
  const comment = (suffix: string): string => commentArg(name + suffix);
  const serviceComment = commentArg(name);

  const plan = planOf(state, ctx.planNode);
  const hasEndpoints = plan.hasEndpoints;
  const hasInternal = plan.internal.kind === 'dnat';
  const hasExternal = plan.external.kind === 'dnat';
  const internalChain = sp.internalPolicyLocal ? names.local : names.cluster;
  const externalPolicyChain = sp.externalPolicyLocal ? names.local : names.cluster;
  // The EXT chain is needed even without externally usable endpoints: it short-circuits
  // traffic from local pods and from the node itself.
  const usesExternalChain = hasEndpoints && plan.externallyAccessible;
  const firewall = plan.firewall;
  const loadBalancerChain = firewall ? names.firewall : names.external;

  // REJECT and DROP differ only in why: no endpoints at all, or none on this node.
  const blockedComment = comment(hasEndpoints ? ' has no local endpoints' : ' has no endpoints');
  const internalVerdict = `--comment ${blockedComment}`;
  const internalTarget = hasEndpoints ? 'DROP' : 'REJECT';
  const externalVerdict = internalVerdict;
  const externalTarget = internalTarget;

  const filter: string[] = [];
  const entry: string[] = [];
  const chainLines: string[] = [];
  const rules: string[] = [];
  const chains: string[] = [];
  const port = sp.port;

  // 1. Cluster IP.
  if (hasInternal) {
    entry.push(
      `-A ${KUBE_SERVICES} -m comment --comment ${comment(' cluster IP')} ${match} -d ${sp.clusterIP} --dport ${port} -j ${internalChain}\n`,
    );
  } else {
    filter.push(
      `-A ${KUBE_SERVICES} -m comment ${internalVerdict} ${match} -d ${sp.clusterIP} --dport ${port} -j ${internalTarget}\n`,
    );
  }

  // 2. External IPs.
  for (const ip of sp.externalIPs) {
    if (hasEndpoints) {
      entry.push(
        `-A ${KUBE_SERVICES} -m comment --comment ${comment(' external IP')} ${match} -d ${ip} --dport ${port} -j ${names.external}\n`,
      );
    }
    if (!hasExternal) {
      filter.push(
        `-A ${KUBE_EXTERNAL_SERVICES} -m comment ${externalVerdict} ${match} -d ${ip} --dport ${port} -j ${externalTarget}\n`,
      );
    }
  }

  // 3. Load balancer IPs.
  for (const vip of sp.loadBalancerVIPs) {
    if (hasEndpoints) {
      entry.push(
        `-A ${KUBE_SERVICES} -m comment --comment ${comment(' loadbalancer IP')} ${match} -d ${vip} --dport ${port} -j ${loadBalancerChain}\n`,
      );
    }
    if (firewall) {
      filter.push(
        `-A ${KUBE_PROXY_FIREWALL} -m comment --comment ${comment(` traffic not accepted by ${names.firewall}`)} ${match} -d ${vip} --dport ${port} -j DROP\n`,
      );
    }
  }
  if (!hasExternal) {
    for (const vip of sp.loadBalancerVIPs) {
      filter.push(
        `-A ${KUBE_EXTERNAL_SERVICES} -m comment ${externalVerdict} ${match} -d ${vip} --dport ${port} -j ${externalTarget}\n`,
      );
    }
  }

  // 4. NodePort (never subject to source ranges).
  if (sp.nodePort !== 0) {
    if (hasEndpoints) {
      if (ctx.localhostNodePortCounter) {
        entry.push(
          `-A ${KUBE_NODEPORTS} -m comment --comment ${serviceComment} ${match} -d 127.0.0.0/8 --dport ${sp.nodePort} -m nfacct --nfacct-name localhost_nps_accepted_pkts -j ${names.external}\n`,
        );
      }
      entry.push(
        `-A ${KUBE_NODEPORTS} -m comment --comment ${serviceComment} ${match} --dport ${sp.nodePort} -j ${names.external}\n`,
      );
    }
    if (!hasExternal) {
      filter.push(
        `-A ${KUBE_EXTERNAL_SERVICES} -m comment ${externalVerdict} -m addrtype --dst-type LOCAL ${match} --dport ${sp.nodePort} -j ${externalTarget}\n`,
      );
    }
  }

  // 5. Health check node port: always accepted, endpoints or not.
  if (sp.healthCheckNodePort !== 0) {
    filter.push(
      `-A ${KUBE_NODEPORTS} -m comment --comment ${comment(' health check node port')} -m tcp -p tcp --dport ${sp.healthCheckNodePort} -j ACCEPT\n`,
    );
  }

  // 6. Masquerade off-cluster traffic to the cluster IP (it may be bounced to another node).
  if (hasInternal) {
    const args = `-m comment --comment ${comment(' cluster IP')} ${match} -d ${sp.clusterIP} --dport ${port}`;
    if (ctx.masqueradeAll) {
      rules.push(`-A ${internalChain} ${args} -j ${KUBE_MARK_MASQ}\n`);
    } else if (ctx.ifNotLocal !== undefined) {
      rules.push(`-A ${internalChain} ${args} ${ctx.ifNotLocal} -j ${KUBE_MARK_MASQ}\n`);
    }
  }

  // 7. External entry chain.
  if (usesExternalChain) {
    chainLines.push(`:${names.external} - [0:0]\n`);
    chains.push(names.external);
    const ext = names.external;
    if (plan.masqueradeExternal) {
      rules.push(
        `-A ${ext} -m comment --comment ${commentArg(`masquerade traffic for ${name} external destinations`)} -j ${KUBE_MARK_MASQ}\n`,
      );
    } else {
      // Pod -> external IP traffic is treated as if it went out to the load balancer and came
      // back: neither traffic policy applies to it.
      if (ctx.ifLocal !== undefined) {
        rules.push(
          `-A ${ext} -m comment --comment ${commentArg(`pod traffic for ${name} external destinations`)} ${ctx.ifLocal} -j ${names.cluster}\n`,
        );
      }
      // The node's own traffic has a local address (often the VIP) as source: masquerade it
      // and let it use any endpoint.
      rules.push(
        `-A ${ext} -m comment --comment ${commentArg(`masquerade LOCAL traffic for ${name} external destinations`)} -m addrtype --src-type LOCAL -j ${KUBE_MARK_MASQ}\n`,
        `-A ${ext} -m comment --comment ${commentArg(`route LOCAL traffic for ${name} external destinations`)} -m addrtype --src-type LOCAL -j ${names.cluster}\n`,
      );
    }
    if (hasExternal) rules.push(`-A ${ext} -j ${externalPolicyChain}\n`);
  }

  // 8. loadBalancerSourceRanges. Traffic that falls through is not DNATed and meets the DROP
  // written to KUBE-PROXY-FIREWALL in step 3.
  if (firewall) {
    chainLines.push(`:${names.firewall} - [0:0]\n`);
    chains.push(names.firewall);
    const head = `-A ${names.firewall} -m comment --comment ${comment(' loadbalancer IP')}`;
    for (const text of firewall.sourceRanges) rules.push(`${head} -s ${text} -j ${names.external}\n`);
    // A VIP that is also a local address makes the node's own requests arrive with the VIP
    // as source; let them through when the node itself is allowed.
    if (firewall.allowVIPSources) {
      for (const vip of sp.loadBalancerVIPs) rules.push(`${head} -s ${vip} -j ${names.external}\n`);
    }
    rules.push(
      `-A ${names.firewall} -m comment --comment ${commentArg(`other traffic to ${name} will be dropped by ${KUBE_PROXY_FIREWALL}`)}\n`,
    );
  }

  // 9. Dispatch chains.
  const affinitySeconds = plan.affinitySeconds;
  const dispatch = (chain: string, endpoints: ServicePortState['endpoints']): void => {
    chainLines.push(`:${chain} - [0:0]\n`);
    chains.push(chain);
    const epComment = (endpoint: string): string =>
      ctx.largeClusterMode ? '' : ` -m comment --comment ${commentArg(`${name} -> ${endpoint}`)}`;
    if (affinitySeconds > 0) {
      for (const ep of endpoints) {
        const sep = endpointChainName(name, sp.id.protocol, ep.endpoint);
        rules.push(
          `-A ${chain}${epComment(ep.endpoint)} -m recent --name ${sep} --rcheck --seconds ${affinitySeconds} --reap -j ${sep}\n`,
        );
      }
    }
    const n = endpoints.length;
    endpoints.forEach((ep, i) => {
      const sep = endpointChainName(name, sp.id.protocol, ep.endpoint);
      const statistic = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : '';
      rules.push(`-A ${chain}${epComment(ep.endpoint)}${statistic} -j ${sep}\n`);
    });
  };
  if (plan.clusterEndpoints.length > 0) dispatch(names.cluster, plan.clusterEndpoints);
  if (plan.localEndpoints.length > 0) dispatch(names.local, plan.localEndpoints);

  // 10. Endpoint chains: hairpin masquerade, then DNAT (recording affinity).
  const sepComment = ctx.largeClusterMode ? '' : ` -m comment --comment ${serviceComment}`;
  const recent = (sep: string): string => (affinitySeconds > 0 ? ` -m recent --name ${sep} --set` : '');
  for (const ep of plan.reachable) {
    const sep = endpointChainName(name, sp.id.protocol, ep.endpoint);
    chainLines.push(`:${sep} - [0:0]\n`);
    chains.push(sep);
    rules.push(
      `-A ${sep}${sepComment} -s ${ep.ip} -j ${KUBE_MARK_MASQ}\n`,
      `-A ${sep}${sepComment}${recent(sep)} ${match} -j DNAT --to-destination ${ep.endpoint}\n`,
    );
  }

  return {
    filterRules: filter.join(''),
    filterRuleCount: filter.length,
    natEntryRules: entry.join(''),
    natEntryRuleCount: entry.length,
    natChainLines: chainLines.join(''),
    natChainRules: rules.join(''),
    natChainRuleCount: rules.length,
    chains,
    noLocalInternal: plan.internal.kind === 'drop',
    noLocalExternal: plan.external.kind === 'drop',
  };
}

/** Renders the restore input for one family. Pure; `previous` is only read and extended. */
export function renderIptables(input: RenderInput): RenderOutput {
  return input.full ? hashesForFullRender(input.options.family, () => renderAll(input)) : renderAll(input);
}

function renderAll(input: RenderInput): RenderOutput {
  const { snapshot, options } = input;
  if (snapshot.family !== options.family) {
    throw new Error(
      `renderIptables: snapshot family ${snapshot.family} differs from options.family ${options.family}`,
    );
  }
  let endpoints = 0;
  for (const state of snapshot.servicePorts.values()) endpoints += state.endpoints.length;
  const largeClusterMode = endpoints > (options.largeClusterThreshold ?? LARGE_CLUSTER_ENDPOINTS_THRESHOLD);
  const ctx = makeContext(options, snapshot, largeClusterMode);
  const cache: IptablesRenderCache =
    input.previous?.key === ctx.key ? input.previous : { key: ctx.key, fragments: new WeakMap() };

  const mark = masqueradeMark(options.masqueradeBit);
  const localhostNodePorts = effectiveLocalhostNodePorts(options, snapshot.node.nodeIPs);
  const warnings: string[] = [];

  const filterChains = FILTER_CHAINS.map((chain) => `:${chain} - [0:0]\n`);
  const filterRules: string[] = [];
  let filterRuleCount = 0;
  const natChains = NAT_CHAINS.map((chain) => `:${chain} - [0:0]\n`);
  const natRules: string[] = [
    `-A ${KUBE_POSTROUTING} -m mark ! --mark ${mark}/${mark} -j RETURN\n`,
    // Clear the mark so a packet that traverses the stack again is not masqueraded twice.
    `-A ${KUBE_POSTROUTING} -j MARK --xor-mark ${mark}\n`,
    `-A ${KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${options.randomFully ? ' --random-fully' : ''}\n`,
    `-A ${KUBE_MARK_MASQ} -j MARK --or-mark ${mark}\n`,
  ];
  let natRuleCount = natRules.length;
  let natRulesSkipped = 0;
  let natChainCount = natChains.length;

  if (localhostNodePorts) {
    // route_localnet opens NodePorts on 127.0.0.1 but also lets martians in (issue 90259);
    // kubelet writes the same rule, so its text must stay identical.
    filterChains.push(`:${KUBE_FIREWALL} - [0:0]\n`);
    filterRules.push(
      `-A ${KUBE_FIREWALL} -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n`,
    );
    filterRuleCount++;
  }

  const activeNatChains = new Set<string>();
  let noLocalInternal = 0;
  let noLocalExternal = 0;
  for (const state of snapshot.servicePorts.values()) {
    let fragment = cache.fragments.get(state);
    if (fragment === undefined) {
      fragment = renderServicePort(state, ctx);
      cache.fragments.set(state, fragment);
    }
    if (fragment.noLocalInternal) noLocalInternal++;
    if (fragment.noLocalExternal) noLocalExternal++;
    if (fragment.filterRuleCount > 0) {
      filterRules.push(fragment.filterRules);
      filterRuleCount += fragment.filterRuleCount;
    }
    if (fragment.natEntryRuleCount > 0) {
      natRules.push(fragment.natEntryRules);
      natRuleCount += fragment.natEntryRuleCount;
    }
    for (const chain of fragment.chains) activeNatChains.add(chain);
    if (input.full || snapshot.changedServices.has(state.servicePort.id.service)) {
      if (fragment.chains.length > 0) {
        natChains.push(fragment.natChainLines);
        natChainCount += fragment.chains.length;
      }
      if (fragment.natChainRuleCount > 0) {
        natRules.push(fragment.natChainRules);
        natRuleCount += fragment.natChainRuleCount;
      }
    } else {
      natRulesSkipped += fragment.natChainRuleCount;
    }
  }

  // Stale chains: declaring them flushes them, then -X removes them. Sorted for stable output.
  const deletedChains: string[] = [];
  if (input.existingNatChains) {
    for (const chain of input.existingNatChains) {
      if (isServiceChainName(chain) && !activeNatChains.has(chain)) deletedChains.push(chain);
    }
    deletedChains.sort();
    for (const chain of deletedChains) {
      natChains.push(`:${chain} - [0:0]\n`);
      natRules.push(`-X ${chain}\n`);
      natChainCount++;
    }
  }

  // Last rule(s) of KUBE-SERVICES: anything addressed to a node address goes to the NodePorts.
  const npa = nodePortAddressesFor(options.nodePortAddresses, options.family, snapshot.node.nodeIPs);
  if (npa.matchAll) {
    let destinations = '-m addrtype --dst-type LOCAL';
    if (options.family === 'IPv6') destinations += ' ! -d ::1/128';
    else if (!localhostNodePorts) destinations += ' ! -d 127.0.0.0/8';
    natRules.push(
      `-A ${KUBE_SERVICES} -m comment --comment ${NODEPORTS_COMMENT} ${destinations} -j ${KUBE_NODEPORTS}\n`,
    );
    natRuleCount++;
  } else {
    const cidrs = npa.cidrs.flatMap((text) => parseCIDR(text) ?? []);
    const seen = new Set<string>();
    for (const text of options.nodeIPsForNodePorts ?? []) {
      const ip = parseIP(text);
      if (!ip || ip.family !== options.family || seen.has(ip.text)) continue;
      if (!cidrs.some((cidr) => cidrContains(cidr, ip))) continue;
      seen.add(ip.text);
      const loopback = isLoopback(ip);
      if (loopback && ip.family === 'IPv6') {
        warnings.push(
          `--nodeport-addresses includes localhost ${ip.text} but localhost NodePorts are not supported on IPv6`,
        );
        continue;
      }
      if (loopback && !localhostNodePorts) {
        warnings.push(
          `--nodeport-addresses includes localhost ${ip.text} but localhost NodePorts are disabled`,
        );
        continue;
      }
      natRules.push(
        `-A ${KUBE_SERVICES} -m comment --comment ${NODEPORTS_COMMENT} -d ${ip.text} -j ${KUBE_NODEPORTS}\n`,
      );
      natRuleCount++;
    }
  }

  // KUBE-FORWARD: drop INVALID (unless the host is liberal), accept marked traffic and its replies.
  if (options.conntrackInvalidDrop) {
    const counter = options.nfacct.ctStateInvalidDropped
      ? ' -m nfacct --nfacct-name ct_state_invalid_dropped_pkts'
      : '';
    filterRules.push(`-A ${KUBE_FORWARD} -m conntrack --ctstate INVALID${counter} -j DROP\n`);
    filterRuleCount++;
  }
  filterRules.push(
    `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT\n`,
    `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n`,
  );
  filterRuleCount += 2;

  const text = [
    '*filter\n',
    ...filterChains,
    ...filterRules,
    'COMMIT\n',
    '*nat\n',
    ...natChains,
    ...natRules,
    'COMMIT\n',
  ].join('');

  return {
    text,
    activeNatChains,
    deletedChains,
    largeClusterMode,
    counts: {
      servicePorts: snapshot.servicePorts.size,
      endpoints,
      filterRules: filterRuleCount,
      natRulesWritten: natRuleCount,
      natRulesSkipped,
      natRulesTotal: natRuleCount + natRulesSkipped,
      natChainsWritten: natChainCount,
      natChainsDeleted: deletedChains.length,
      noLocalEndpointsInternal: noLocalInternal,
      noLocalEndpointsExternal: noLocalExternal,
    },
    warnings,
    cache,
  };
}
