// Network namespaces for tests, benchmarks and the demo.
//
// Safety rules (DEVELOPERS.md): we only ever touch namespaces we created, all named with a
// unique prefix; nothing is added to the machine's own namespace; every namespace is removed on
// exit, also when a test fails or the process is interrupted. Processes started in a namespace
// are tracked by PID and killed on cleanup.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { execTool, type ExecOptions, type ExecResult } from '../util/exec.ts';

export const IS_ROOT = process.getuid?.() === 0;

/** Reason to pass to `test(name, { skip })` when kernel tests cannot run. */
export function kernelSkipReason(): string | false {
  if (!IS_ROOT) return 'needs root (network namespaces, iptables, nft): run `make test` as root';
  const ip = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (ip.error || ip.status !== 0) return 'the `ip` tool (iproute2) is missing or cannot list namespaces';
  return false;
}

const created = new Set<string>();
const children = new Set<ChildProcess>();
const directories = new Set<string>();

/** A temporary directory removed with the namespaces, also when the process is interrupted. */
export function removeOnExit(path: string): void {
  installExitHooks();
  directories.add(path);
}

/** Removes a directory given to removeOnExit now. */
export function removeDirectory(path: string): void {
  directories.delete(path);
  rmSync(path, { recursive: true, force: true });
}

function cleanupAllSync(): void {
  for (const child of children) {
    if (child.exitCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const name of created) spawnSync('ip', ['netns', 'delete', name]);
  created.clear();
  for (const path of directories) rmSync(path, { recursive: true, force: true });
  directories.clear();
}

let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanupAllSync();
      process.exit(130);
    });
  }
}

/** A unique prefix for one test file or run: `kpt<pid><random>-`. Namespace names stay short. */
export function uniquePrefix(tag = 'kpt'): string {
  return `${tag}${process.pid.toString(36)}${randomBytes(2).toString('hex')}-`;
}

export class Netns {
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }

  /** Runs a tool inside the namespace; rejects with the tool's stderr on failure. */
  exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return execTool('ip', ['netns', 'exec', this.name, file, ...args], options);
  }

  /** Shorthand for `ip <args>` inside the namespace. */
  ip(...args: string[]): Promise<ExecResult> {
    return this.exec('ip', args);
  }

  sysctl(key: string, value: string): Promise<ExecResult> {
    return this.exec('sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /**
   * Starts a long-running process inside the namespace. `ip netns exec` execs the program, so
   * the returned child's PID is the program's own; it is killed on cleanup.
   */
  spawn(file: string, args: readonly string[], env?: Readonly<Record<string, string>>): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  }
}

/**
 * Creates a namespace with loopback up, ICMP rate limits off (so REJECTs never look like
 * timeouts, kernel-notes.md) and forwarding on.
 */
export async function createNetns(name: string): Promise<Netns> {
  if (name.length > 64 || !/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`bad namespace name ${name}`);
  installExitHooks();
  await execTool('ip', ['netns', 'add', name]);
  created.add(name);
  const ns = new Netns(name);
  await ns.ip('link', 'set', 'lo', 'up');
  await ns.sysctl('net.ipv4.icmp_ratelimit', '0');
  await ns.sysctl('net.ipv6.icmp.ratelimit', '0');
  await ns.sysctl('net.ipv4.ip_forward', '1');
  await ns.sysctl('net.ipv6.conf.all.forwarding', '1');
  return ns;
}

export async function deleteNetns(ns: Netns): Promise<void> {
  if (!created.has(ns.name)) return;
  created.delete(ns.name);
  await execTool('ip', ['netns', 'delete', ns.name]).catch(() => undefined);
}

/** Stops a process started with Netns.spawn, by its PID, and waits for it to exit. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Removes every namespace and process this module created. Call from `after()`. */
export async function cleanupNetns(): Promise<void> {
  await Promise.all([...children].map((child) => stopProcess(child, 'SIGKILL')));
  await Promise.all([...created].map((name) => deleteNetns(new Netns(name))));
}

/**
 * Connects two namespaces with a veth pair created from inside the first one, straight into the
 * second, so the machine's own namespace never sees the link (kernel-notes.md).
 */
export async function linkNetns(a: Netns, aIf: string, b: Netns, bIf: string): Promise<void> {
  await a.ip('link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name);
  await a.ip('link', 'set', aIf, 'up');
  await b.ip('link', 'set', bIf, 'up');
}

/**
 * How much slower than this machine the tests run: the VM lane (test/vm/) sets
 * KUBE_PROXY_TEST_TIMEOUT_SCALE under software emulation, and every deadline here is multiplied.
 */
export const TIMEOUT_SCALE = Math.max(1, Number(process.env['KUBE_PROXY_TEST_TIMEOUT_SCALE'] ?? '1') || 1);

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs` (scaled). */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<T> {
  timeoutMs *= TIMEOUT_SCALE;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
