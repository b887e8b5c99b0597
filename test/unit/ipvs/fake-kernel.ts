// A fake of what the IPVS proxier drives, enough to test its syncs without root or IPVS: the
// IPVS table behind `ipvsadm` (-S, -L with connection counts, -R, --set), ipsets behind `ipset`
// (save, restore, list -t), addresses behind `ip`, and iptables restores recorded as text.
import type { ToolRunner } from '../../../src/dataplane/common/mode.ts';
import { ExecError, inputText, type ExecResult } from '../../../src/util/exec.ts';

interface Dest {
  weight: number;
  active: number;
  inactive: number;
}

interface Service {
  proto: string;
  addr: string;
  scheduler: string;
  persistent: number;
  flags: string;
  dests: Map<string, Dest>;
}

const ok = (stdout = '', stderr = ''): Promise<ExecResult> => Promise.resolve({ stdout, stderr, code: 0 });
const fail = (command: string, stderr: string): Promise<ExecResult> =>
  Promise.reject(new ExecError(command, 1, '', stderr, 'exit status 1'));

const PROTO_NAME: Readonly<Record<string, string>> = { '-t': 'TCP', '-u': 'UDP', '--sctp-service': 'SCTP' };

export class FakeKernel {
  /** By `-t 10.96.0.10:80`. */
  readonly services = new Map<string, Service>();
  readonly sets = new Map<string, Set<string>>();
  readonly addresses = new Map<string, string[]>([
    ['eth0', ['192.168.1.10']],
    ['lo', ['127.0.0.1']],
  ]);
  linkExists = false;
  /** Every tool run, as `file args...`. */
  readonly calls: string[] = [];
  /** Every stdin given to a tool, by tool. */
  readonly inputs: { file: string; args: string; input: string }[] = [];
  ipvsAvailable = true;
  /** Make the next iptables restore fail. */
  failRestore = false;
  /** Make every address add fail (a kernel that refuses it). */
  refuseBind = false;
  /** Make `ipvsadm -R` fail as a tool (exit 1, nothing applied), like a crash or a missing module. */
  failIpvsadm = false;
  /** `ipset restore` fails as a tool (exit 1), applying nothing. */
  failIpset = false;
  timeouts: string[] = [];

  readonly run: ToolRunner = (file, args, options) => {
    const command = [file, ...args].join(' ');
    this.calls.push(command);
    const input = inputText(options?.input);
    if (options?.input !== undefined) this.inputs.push({ file, args: args.join(' '), input });
    switch (file) {
      case 'modprobe':
        return ok();
      case 'ipvsadm':
        return this.#ipvsadm(command, args, input);
      case 'ipset':
        return this.#ipset(command, args, input);
      case 'ip':
        return this.#ip(command, args, input);
      default:
        if (file.endsWith('-save'))
          return ok('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n');
        if (file.endsWith('-restore')) {
          if (this.failRestore) {
            this.failRestore = false;
            return fail(command, 'iptables-restore: line 3 failed');
          }
          return ok();
        }
        if (args[0] === '--version') return ok('iptables v1.8.9 (nf_tables)');
        // `-C` (the integrity check): the restores are only recorded, their jumps are taken as there.
        if (args.includes('-C')) return ok();
        return fail(command, `unexpected tool ${command}`);
    }
  };

  /** The kernel table in `ipvsadm -S -n` form. */
  save(): string {
    let text = '';
    for (const [key, svc] of this.services) {
      text += `-A ${key} -s ${svc.scheduler}${svc.flags ? ` -b ${svc.flags}` : ''}${svc.persistent ? ` -p ${svc.persistent}` : ''}\n`;
      for (const [dest, d] of svc.dests) text += `-a ${key} -r ${dest} -m -w ${d.weight}\n`;
    }
    return text;
  }

  #list(): string {
    let text = 'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n';
    for (const svc of this.services.values()) {
      text += `${PROTO_NAME[svc.proto]}  ${svc.addr} ${svc.scheduler}\n`;
      for (const [dest, d] of svc.dests)
        text += `  -> ${dest}  Masq  ${d.weight}  ${d.active}  ${d.inactive}\n`;
    }
    return text;
  }

  #ipvsadm(command: string, args: readonly string[], input: string): Promise<ExecResult> {
    if (!this.ipvsAvailable) return fail(command, "Can't initialize ipvs: Protocol not available");
    if (args[0] === '-S') return ok(this.save());
    if (args[0] === '-L') return ok(this.#list());
    if (args[0] === '--set') {
      this.timeouts = args.slice(1);
      return ok();
    }
    if (args[0] !== '-R') return fail(command, 'unexpected ipvsadm call');
    if (this.failIpvsadm) return fail(command, 'injected failure');
    const errors: string[] = [];
    for (const line of input.split('\n')) {
      if (line === '') continue;
      const a = line.split(' ');
      const key = `${a[1]} ${a[2]}`;
      const opt = (name: string): string | undefined => a[a.indexOf(name) + 1];
      const svc = this.services.get(key);
      switch (a[0]) {
        case '-A':
        case '-E':
          if (a[0] === '-A' && svc) errors.push('Service already exists');
          else if (a[0] === '-E' && !svc) errors.push('No such service');
          else
            this.services.set(key, {
              proto: a[1] ?? '',
              addr: a[2] ?? '',
              scheduler: opt('-s') ?? 'wlc',
              persistent: a.includes('-p') ? Number(opt('-p')) : 0,
              flags: a.includes('-b') ? (opt('-b') ?? '') : '',
              dests: svc?.dests ?? new Map<string, Dest>(),
            });
          break;
        case '-D':
          if (!this.services.delete(key)) errors.push('No such service');
          break;
        case '-a':
        case '-e': {
          const dest = opt('-r') ?? '';
          if (!svc) errors.push('Service not defined');
          else if (a[0] === '-a' && svc.dests.has(dest)) errors.push('Destination already exists');
          else {
            const d = svc.dests.get(dest) ?? { weight: 1, active: 0, inactive: 0 };
            d.weight = Number(opt('-w'));
            svc.dests.set(dest, d);
          }
          break;
        }
        case '-d':
          if (!svc?.dests.delete(opt('-r') ?? '')) errors.push('No such destination');
          break;
        default:
          return fail(command, `syntax error: ${line}`);
      }
    }
    return ok('', errors.map((e) => `${e}\n`).join(''));
  }

  #ipset(command: string, args: readonly string[], input: string): Promise<ExecResult> {
    if (args[0] === '--version') return ok('ipset v7.17, protocol version: 7');
    if (args[0] === 'save') {
      let text = '';
      for (const [name, members] of this.sets) {
        text += `create ${name} hash:ip,port family inet hashsize 1024 maxelem 65536\n`;
        for (const member of members) text += `add ${name} ${member}\n`;
      }
      return ok(text);
    }
    if (args.join(' ') === 'list -t')
      return ok(
        [...this.sets]
          .map(([name, members]) => `Name: ${name}\nNumber of entries: ${String(members.size)}\n`)
          .join('\n'),
      );
    if (args[0] !== 'restore') return fail(command, 'unexpected ipset call');
    if (this.failIpset) return fail(command, 'injected failure');
    for (const line of input.split('\n')) {
      const [op, name = '', member = ''] = line.split(' ');
      if (op === 'create') this.sets.set(name, this.sets.get(name) ?? new Set());
      else if (op === 'add') {
        const set = this.sets.get(name);
        if (!set) return fail(command, `The set with the given name does not exist: ${name}`);
        set.add(member);
      } else if (op === 'del') this.sets.get(name)?.delete(member);
      else if (op === 'destroy') this.sets.delete(name);
    }
    return ok();
  }

  #ip(command: string, args: readonly string[], input: string): Promise<ExecResult> {
    const joined = args.join(' ');
    if (joined === '-force -batch -') {
      // Like ip: each line on its own, an error and `Command failed -:N` for a failing one.
      let stderr = '';
      input
        .split('\n')
        .filter(Boolean)
        .forEach((line, i) => {
          const error = this.#addressLine(line);
          if (error) stderr += `${error}\nCommand failed -:${String(i + 1)}\n`;
        });
      return stderr === '' ? ok() : fail(command, stderr);
    }
    if (joined === '-j addr show') {
      const links = [...this.addresses].map(([ifname, ips]) => ({
        ifname,
        addr_info: ips.map((local) => ({ local, scope: ifname === 'lo' ? 'host' : 'global' })),
      }));
      return ok(JSON.stringify(links));
    }
    if (joined === '-j addr show dev kube-ipvs0') {
      if (!this.linkExists) return fail(command, 'Device "kube-ipvs0" does not exist.');
      return ok(
        JSON.stringify([
          { ifname: 'kube-ipvs0', addr_info: this.bound().map((local) => ({ local, scope: 'global' })) },
        ]),
      );
    }
    if (joined === 'link del kube-ipvs0') {
      this.linkExists = false;
      this.addresses.delete('kube-ipvs0');
      return ok();
    }
    const one = /^-o addr show dev kube-ipvs0 to (\S+)\/\d+$/.exec(joined);
    if (one) {
      if (!this.linkExists) return fail(command, 'Device "kube-ipvs0" does not exist.');
      const ip = one[1] ?? '';
      return ok(this.bound().includes(ip) ? `9: kube-ipvs0    inet ${ip}/32 scope global kube-ipvs0\n` : '');
    }
    if (joined === 'link show kube-ipvs0')
      return this.linkExists ? ok() : fail(command, 'Device "kube-ipvs0" does not exist.');
    if (joined === 'link add kube-ipvs0 type dummy') {
      this.linkExists = true;
      this.addresses.set('kube-ipvs0', []);
      return ok();
    }
    return fail(command, `unexpected ip call: ${joined}`);
  }

  /** One `addr add|del IP/len dev kube-ipvs0` line; its error text, or undefined. */
  #addressLine(line: string): string | undefined {
    const add = /^addr (add|del) (\S+)\/\d+ dev kube-ipvs0$/.exec(line);
    if (!add) return `unexpected ip batch line: ${line}`;
    if (!this.linkExists) return 'Cannot find device "kube-ipvs0"';
    if (this.refuseBind && add[1] === 'add') return 'RTNETLINK answers: Operation not permitted';
    const list = this.addresses.get('kube-ipvs0') ?? [];
    const ip = add[2] ?? '';
    if (add[1] === 'add' && list.includes(ip)) return 'Error: ipv4: Address already assigned.';
    if (add[1] === 'del' && !list.includes(ip)) return 'Error: ipv4: Address not found.';
    this.addresses.set('kube-ipvs0', add[1] === 'add' ? [...list, ip] : list.filter((x) => x !== ip));
    return undefined;
  }

  /** Connection counts of one real server (`-t 10.96.0.10:80`, `10.244.1.5:8080`). */
  setConnections(service: string, dest: string, active: number, inactive: number): void {
    const d = this.services.get(service)?.dests.get(dest);
    if (!d) throw new Error(`no real server ${dest} in ${service}`);
    d.active = active;
    d.inactive = inactive;
  }

  bound(): string[] {
    return this.addresses.get('kube-ipvs0') ?? [];
  }
}
