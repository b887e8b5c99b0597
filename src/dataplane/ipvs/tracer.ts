// A packet tracer for the IPVS mode: what the kernel does with a new connection's first packet
// given what the mode rendered (its iptables-restore text, the ipset members, the virtual server
// table and the addresses on kube-ipvs0). Pure; the packet-flow tables run it without root.
//
// The path follows the kernel's hook order (modes-ipvs-userspace.md 1.10.2): nat PREROUTING or
// OUTPUT (masquerade marks), then for a local destination filter INPUT (source ranges, the IPVS
// access filter) before IPVS's LOCAL_IN hook; for the node's own packets IPVS's LOCAL_OUT runs
// before filter OUTPUT (KUBE-IPVS-OUT-FILTER, `-m ipvs`). A virtual server without real servers
// answers with an ICMP port unreachable (the kernel's ip_vs_leave): REJECT. Then nat POSTROUTING
// decides masquerade per real server (the hairpin set compares the rewritten destination). It
// reads only the rule language rules.ts writes and throws naming anything else.
import type { IPFamily } from '../../model/types.ts';
import { isLoopback, joinHostPort, parseCIDR, type ParsedIP } from '../../util/ip.ts';
import {
  combinePaths,
  inCIDR,
  isLocalAddress,
  requireIP,
  TraceError,
  type FlowOutcome,
  type HostFacts,
  type Packet,
  type PathEnd,
  type TracedPath,
  type TracedRule,
  type TraceResult,
} from '../common/trace.ts';
import { splitArgs } from '../iptables/tracer.ts';
import { rsKey, vsKey, type VirtualServer } from './desired.ts';
import { SET_KEYS, SETS, setName, type SetType } from './names.ts';
import { jumpArgs } from '../xtables/owner.ts';
import { IPVS_JUMPS } from './owner.ts';

export interface IpvsTraceState {
  readonly family: IPFamily;
  /** iptables-restore text (rules.ts). */
  readonly rules: string;
  /** Members by kernel set name. */
  readonly sets: ReadonlyMap<string, ReadonlySet<string>>;
  readonly virtualServers: ReadonlyMap<string, VirtualServer>;
  /** Addresses on kube-ipvs0: local addresses as far as routing and addrtype go. */
  readonly bound: readonly string[];
}

interface Rule {
  readonly text: string;
  readonly args: readonly string[];
}

type Chains = ReadonlyMap<string, ReadonlyMap<string, readonly Rule[]>>;

function parseRules(text: string): Chains {
  const tables = new Map<string, Map<string, Rule[]>>();
  let table: Map<string, Rule[]> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = new Map();
      tables.set(line.slice(1), table);
    } else if (line.startsWith(':')) table?.set(line.slice(1).split(' ')[0] ?? '', []);
    else if (line.startsWith('-A ')) {
      const args = splitArgs(line);
      const chain = args[1] ?? '';
      const rules = table?.get(chain);
      if (!rules) throw new TraceError(`rule in an undeclared chain: ${line}`);
      rules.push({ text: line, args: args.slice(2) });
    }
  }
  return tables;
}

/** The packet as a rule sees it at one point of its path. */
interface Flight {
  source: ParsedIP;
  destination: ParsedIP;
  port: number;
  readonly protocol: string;
  readonly iif: string | undefined;
  mark: number;
  /** The virtual server IPVS chose (for `-m ipvs`). */
  vs: VirtualServer | undefined;
}

type Verdict = 'continue' | 'ACCEPT' | 'DROP' | 'REJECT';

class Walker {
  masquerade = false;
  /** The rules that matched so far, in order (the explainer's path). */
  trail: TracedRule[] = [];
  /** The set member the last matching rule's lookup found. */
  #element: { set: string; text: string } | undefined;
  readonly #chains: Chains;
  readonly #state: IpvsTraceState;
  readonly #host: HostFacts;
  readonly #setTypes: ReadonlyMap<string, SetType>;

  constructor(chains: Chains, state: IpvsTraceState, host: HostFacts) {
    this.#chains = chains;
    this.#state = state;
    this.#host = { localAddresses: [...host.localAddresses, ...state.bound] };
    this.#setTypes = new Map(SET_KEYS.map((key) => [setName(key, state.family), SETS[key].type]));
  }

  isLocal(ip: ParsedIP): boolean {
    return isLocalAddress(this.#host, ip);
  }

  /** The set member the last rule's lookup found (set by #inSet while #matches runs). */
  #foundElement(): { set: string; text: string } | undefined {
    return this.#element;
  }

  /** Whether the set holds the packet's fields named by `flags`; remembers the member found. */
  #inSet(name: string, flags: string, f: Flight): boolean {
    const member = this.#memberOf(name, flags, f);
    if (member !== undefined) this.#element = { set: name, text: member };
    return member !== undefined;
  }

  /** The member of the set that holds the packet's fields named by `flags` (`dst,dst`, …). */
  #memberOf(name: string, flags: string, f: Flight): string | undefined {
    const type = this.#setTypes.get(name);
    const members = this.#state.sets.get(name) ?? new Set<string>();
    if (!type) throw new TraceError(`unknown set ${name}`);
    const [a, b, c] = flags.split(',');
    const ipOf = (flag: string | undefined): ParsedIP => (flag === 'src' ? f.source : f.destination);
    const portPart = `${f.protocol}:${String(f.port)}`;
    if (b === 'src' || (type === 'bitmap:port' && a === 'src'))
      throw new TraceError(`source ports are not traced (${name} ${flags})`);
    const found = (member: string): string | undefined => (members.has(member) ? member : undefined);
    switch (type) {
      case 'bitmap:port':
        return found(String(f.port));
      case 'hash:ip':
        return found(ipOf(a).text);
      case 'hash:ip,port':
        return found(`${ipOf(a).text},${portPart}`);
      case 'hash:ip,port,ip':
        return found(`${ipOf(a).text},${portPart},${ipOf(c).text}`);
      case 'hash:ip,port,net': {
        const prefix = `${ipOf(a).text},${portPart},`;
        const third = ipOf(c);
        for (const member of members) {
          if (!member.startsWith(prefix)) continue;
          const net = member.slice(prefix.length);
          const cidr = parseCIDR(net.includes('/') ? net : `${net}/${third.family === 'IPv4' ? 32 : 128}`);
          if (cidr && inCIDR(third, cidr.text)) return member;
        }
        return undefined;
      }
    }
  }

  /** Evaluates one rule's matches; the target's index in args, or -1 when it does not match. */
  #matches(rule: Rule, f: Flight): boolean {
    const args = rule.args;
    let negate = false;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i] ?? '';
      const next = (): string => {
        const value = args[++i];
        if (value === undefined) throw new TraceError(`${arg} without a value in ${rule.text}`);
        return value;
      };
      let result: boolean | undefined;
      switch (arg) {
        case '!':
          negate = true;
          continue;
        case '-m':
          next();
          continue;
        case '-j':
          return true;
        case '--comment':
          next();
          continue;
        case '-s':
          result = inCIDR(f.source, next());
          break;
        case '-d':
          result = inCIDR(f.destination, next());
          break;
        case '-p':
          result = f.protocol === next();
          break;
        case '-i': {
          const name = next();
          result =
            f.iif !== undefined &&
            (name.endsWith('+') ? f.iif.startsWith(name.slice(0, -1)) : f.iif === name);
          break;
        }
        case '--match-set': {
          const name = next();
          result = this.#inSet(name, next(), f);
          break;
        }
        case '--dst-type':
          result = next() === 'LOCAL' && this.isLocal(f.destination);
          break;
        case '--src-type':
          result = next() === 'LOCAL' && this.isLocal(f.source);
          break;
        case '--physdev-is-in':
          // No traced packet comes through a bridge port.
          result = false;
          break;
        case '--mark': {
          const [value, mask] = next().split('/').map(Number);
          result = (f.mark & (mask ?? 0xffffffff)) >>> 0 === value;
          break;
        }
        case '--ctstate':
          // The first packet of a connection.
          result = next().split(',').includes('NEW');
          break;
        case '--vaddr':
          result = f.vs !== undefined && f.vs.ip === requireIP(next(), '--vaddr').text;
          break;
        case '--vproto':
          result = f.vs !== undefined && f.vs.protocol.toLowerCase() === next();
          break;
        case '--vport':
          result = f.vs !== undefined && String(f.vs.port) === next();
          break;
        default:
          throw new TraceError(`unknown rule argument ${arg} in ${rule.text}`);
      }
      if (result === negate) return false;
      negate = false;
    }
    throw new TraceError(`rule without a target: ${rule.text}`);
  }

  run(table: string, chain: string, f: Flight, depth = 0): Verdict {
    if (depth > 8) throw new TraceError(`jumps nested too deep at ${table}/${chain}`);
    const rules = this.#chains.get(table)?.get(chain);
    if (!rules) throw new TraceError(`no chain ${table}/${chain}`);
    for (const rule of rules) {
      this.#element = undefined;
      if (!this.#matches(rule, f)) continue;
      const element = this.#foundElement();
      this.trail.push({
        table,
        chain,
        rule: rule.text.slice(`-A ${chain} `.length),
        ...(element ? { element } : {}),
      });
      const j = rule.args.indexOf('-j');
      const target = rule.args[j + 1] ?? '';
      const option = rule.args[j + 2];
      switch (target) {
        case 'RETURN':
          return 'continue';
        case 'ACCEPT':
        case 'DROP':
        case 'REJECT':
          return target;
        case 'MASQUERADE':
          this.masquerade = true;
          return 'ACCEPT';
        case 'MARK': {
          const value = Number(rule.args[j + 3]);
          if (option === '--or-mark') f.mark = (f.mark | value) >>> 0;
          else if (option === '--xor-mark') f.mark = (f.mark ^ value) >>> 0;
          else throw new TraceError(`unknown MARK option in ${rule.text}`);
          continue;
        }
        default: {
          const verdict = this.run(table, target, f, depth + 1);
          if (verdict !== 'continue') return verdict;
        }
      }
    }
    return 'continue';
  }

  /** A built-in chain: our jump rules into it, in the order the proxier leaves them. */
  hook(table: 'nat' | 'filter', builtin: string, f: Flight): Verdict {
    const jumps = IPVS_JUMPS.filter((jump) => jump.table === table && jump.chain === builtin).reverse();
    for (const jump of jumps) {
      const args = jumpArgs(jump).map((arg) => (arg.includes(' ') ? `"${arg}"` : arg));
      this.trail.push({ table, chain: builtin, rule: args.join(' ') });
      const verdict = this.run(table, jump.target, f);
      if (verdict !== 'continue') return verdict;
    }
    return 'continue';
  }
}

/** A virtual server as `ipvsadm -Ln` lists it (protocol, address, scheduler, persistence). */
export function ipvsadmVirtualServer(vs: VirtualServer): string {
  const persistent = vs.persistentSeconds > 0 ? ` persistent ${vs.persistentSeconds}` : '';
  return `${vs.protocol}  ${joinHostPort(vs.ip, vs.port)} ${vs.scheduler}${persistent}`;
}

/** A real server line under its virtual server, as `ipvsadm -Ln` lists it (NAT forwarding, weight 1). */
export function ipvsadmRealServer(rs: { ip: string; port: number }): string {
  return `  -> ${joinHostPort(rs.ip, rs.port).padEnd(28)} Masq    1`;
}

/** The kernel's IPVS table as a traced step (the explainer quotes it). */
function ipvsStep(vs: VirtualServer, rs: { ip: string; port: number } | undefined): TracedRule {
  return {
    table: 'ipvs',
    chain: 'virtual server',
    rule: ipvsadmVirtualServer(vs),
    ...(rs ? { element: { set: 'real servers', text: ipvsadmRealServer(rs).trim() } } : {}),
  };
}

/** What the kernel does with the packet, with the rules and the IPVS entries it meets. */
export function traceIpvsPaths(state: IpvsTraceState, packet: Packet, host: HostFacts): TraceResult {
  const walker = new Walker(parseRules(state.rules), state, host);
  const one = (end: PathEnd, masquerade = false): TraceResult =>
    combinePaths([{ end, masquerade, choices: [], rules: walker.trail }]);
  const fromNode = packet.origin.kind === 'local';
  const flight: Flight = {
    source: requireIP(packet.sourceIP, 'source'),
    destination: requireIP(packet.destIP, 'destination'),
    port: packet.destPort,
    protocol: packet.protocol.toLowerCase(),
    iif: packet.origin.kind === 'arriving' ? packet.origin.iif : undefined,
    mark: 0,
    vs: undefined,
  };
  const natVerdict = walker.hook('nat', fromNode ? 'OUTPUT' : 'PREROUTING', flight);
  if (natVerdict === 'DROP' || natVerdict === 'REJECT')
    return one({ kind: natVerdict === 'DROP' ? 'drop' : 'reject' });
  // Loopback is local, but IPVS never has a virtual server there (no localhost node ports).
  const local = walker.isLocal(flight.destination) && !isLoopback(flight.destination);
  const vs = local
    ? state.virtualServers.get(
        vsKey({ ip: flight.destination.text, port: flight.port, protocol: packet.protocol }),
      )
    : undefined;
  // The node's own packets reach INPUT only when IPVS did not take them (they loop back).
  if (local && (!fromNode || vs === undefined)) {
    const verdict = walker.hook('filter', 'INPUT', flight);
    if (verdict === 'DROP') return one({ kind: 'drop' });
    if (verdict === 'REJECT') return one({ kind: 'reject' });
  }
  if (vs === undefined) return one({ kind: 'pass' });
  if (vs.realServers.length === 0) {
    walker.trail.push(ipvsStep(vs, undefined));
    return one({ kind: 'reject' });
  }
  if (fromNode) {
    flight.vs = vs;
    const verdict = walker.hook('filter', 'OUTPUT', flight);
    if (verdict === 'DROP') return one({ kind: 'drop' });
    if (verdict === 'REJECT') return one({ kind: 'reject' });
  }
  const before = walker.trail;
  const paths: TracedPath[] = vs.realServers.map((rs, index) => {
    const after: Flight = { ...flight, destination: requireIP(rs.ip, 'real server'), port: rs.port, vs };
    walker.masquerade = false;
    walker.trail = [...before, ipvsStep(vs, rs)];
    walker.hook('nat', 'POSTROUTING', after);
    return {
      end: { kind: 'dnat', endpoint: rsKey(rs) },
      masquerade: walker.masquerade,
      choices:
        index === 0
          ? []
          : [`${vs.scheduler} scheduler: real server ${index + 1} of ${vs.realServers.length}`],
      rules: walker.trail,
    };
  });
  return combinePaths(paths);
}

export function traceIpvs(state: IpvsTraceState, packet: Packet, host: HostFacts): FlowOutcome {
  return traceIpvsPaths(state, packet, host).outcome;
}
