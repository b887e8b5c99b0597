// The proxies the data-path benchmark compares, each started in the node namespace by PID:
// the real kube-proxy (nftables or userspace mode) against the in-repo API server, and HAProxy
// in TCP mode with a config written here. Plus what the bench reads of them (RSS).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { execTool } from '../src/util/exec.ts';
import { stopProcess, type Netns } from '../test/support/netns.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const KUBE_PROXY_BIN = join(ROOT, 'bin', 'kube-proxy');

export interface ServicePorts {
  readonly short: number;
  readonly sink: number;
  readonly echo: number;
}

/** The ports by name, in a fixed order. */
export function portList(ports: ServicePorts): { name: string; port: number }[] {
  return [
    { name: 'short', port: ports.short },
    { name: 'sink', port: ports.sink },
    { name: 'echo', port: ports.echo },
  ];
}

/** A process the bench started, with the last lines of its output for error messages. */
export class Started {
  readonly child: ChildProcess;
  private readonly tail: string[] = [];

  constructor(child: ChildProcess) {
    this.child = child;
    // Both pipes are read to the end: a full pipe would stall the process.
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.tail.push(line);
        if (this.tail.length > 40) this.tail.shift();
      });
    }
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error('bench: process has no PID');
    return pid;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  output(): string {
    return this.tail.join('\n');
  }

  stop(): Promise<void> {
    return stopProcess(this.child);
  }
}

export type KubeProxyMode = 'nftables' | 'userspace';

/** Starts the real kube-proxy in the node namespace, with the flags the other benches use. */
export function startKubeProxy(node: Netns, mode: KubeProxyMode, kubeconfig: string): Started {
  return new Started(
    node.spawn(KUBE_PROXY_BIN, [
      `--proxy-mode=${mode}`,
      `--kubeconfig=${kubeconfig}`,
      '--hostname-override=node1',
      '--cluster-cidr=10.244.0.0/16,fd00:10:244::/48',
      '--conntrack-max-per-core=0',
      '--iptables-min-sync-period=100ms',
      '--metrics-bind-address=127.0.0.1:10249',
      '--logging-format=json',
      '--v=1',
    ]),
  );
}

/** `kube-proxy --cleanup` in the node namespace: removes every mode's rules between columns. */
export async function cleanupKubeProxy(node: Netns): Promise<void> {
  await node.exec(KUBE_PROXY_BIN, ['--cleanup', '--logging-format=json'], { timeoutMs: 60_000 });
}

/**
 * The message of a kube-proxy that refused its mode (the userspace mode before it landed), or
 * undefined when it failed for another reason.
 */
export function refusal(output: string): string | undefined {
  const line = output
    .split('\n')
    .find((l) => /not implemented|unavailable|unsupported|unknown proxy mode/i.test(l));
  return line?.trim();
}

export interface HaproxySpec {
  readonly bind: string;
  readonly ports: ServicePorts;
  readonly backends: readonly string[];
  readonly maxconn: number;
}

/**
 * HAProxy in TCP mode, round robin over the same backends, one listener per port. No logging
 * and no health checks (kube-proxy has none either); long client/server timeouts so the idle
 * connections stay. Threads: HAProxy's default (one per CPU it may run on).
 */
export function haproxyConfig(spec: HaproxySpec): string {
  const lines = [
    'global',
    `  maxconn ${spec.maxconn}`,
    'defaults',
    '  mode tcp',
    '  balance roundrobin',
    '  timeout connect 5s',
    '  timeout client 10m',
    '  timeout server 10m',
  ];
  for (const { name, port } of portList(spec.ports)) {
    lines.push(`listen ${name}`, `  bind ${spec.bind}:${port}`);
    spec.backends.forEach((ip, i) => lines.push(`  server b${i + 1} ${ip}:${port}`));
  }
  return `${lines.join('\n')}\n`;
}

/** Starts HAProxy in the foreground (-db: its PID is the one whose RSS is read). */
export function startHaproxy(node: Netns, haproxy: string, configPath: string): Started {
  return new Started(node.spawn(haproxy, ['-db', '-f', configPath]));
}

/** HAProxy's path: Debian puts it in /usr/sbin, which a non-login PATH may lack. */
export async function findHaproxy(): Promise<string | undefined> {
  for (const path of ['haproxy', '/usr/sbin/haproxy', '/usr/local/sbin/haproxy']) {
    try {
      await execTool(path, ['-v']);
      return path;
    } catch {
      // next candidate
    }
  }
  return undefined;
}

/** VmRSS of a process, MiB. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`bench: no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

/** The hard limit of open files this process (and so every process it starts) may raise to. */
export function openFilesHardLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const match = /^Max open files\s+\S+\s+(\S+)/m.exec(limits);
  if (!match || match[1] === 'unlimited') return Number.MAX_SAFE_INTEGER;
  return Number(match[1]);
}
