// The DNS-like UDP client (udp-client.ts) as a process in a namespace, its answers collected:
// one source port for its whole life, so it shows what stale conntrack (or IPVS) entries do.
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { pollUntil, stopProcess, type Netns } from './netns.ts';

const UDP_CLIENT = fileURLToPath(new URL('./udp-client.ts', import.meta.url));

export interface UdpReply {
  readonly t: number;
  readonly seq: number;
  readonly name?: string;
}

/** The DNS-like client (test/support/udp-client.ts) running in a namespace, its answers collected. */
export class UdpClient {
  readonly replies: UdpReply[] = [];
  /** Datagrams sent so far. */
  sent = 0;
  private readonly child: ChildProcess;
  private constructor(child: ChildProcess) {
    this.child = child;
  }

  static async start(ns: Netns, host: string, port: number): Promise<UdpClient> {
    const child = ns.spawn(process.execPath, [
      UDP_CLIENT,
      '--host',
      host,
      '--port',
      String(port),
      '--interval',
      '50',
    ]);
    const client = new UdpClient(child);
    const lines = createInterface({ input: child.stdout ?? process.stdin });
    const ready = new Promise<void>((resolve) => {
      lines.on('line', (line) => {
        const parsed = JSON.parse(line) as UdpReply & { ready?: boolean; sent?: number };
        if (parsed.ready) resolve();
        else if (parsed.sent !== undefined) client.sent = parsed.sent;
        else client.replies.push(parsed);
      });
    });
    await ready;
    return client;
  }

  /** Polls until an answer from `name` arrives that was sent after `since`; returns its time. */
  async firstFrom(name: string, since: number, timeoutMs: number): Promise<number> {
    const reply = await pollUntil(
      `an answer from ${name}`,
      () => this.replies.find((r) => r.t >= since && r.name === name),
      timeoutMs,
      10,
    );
    return reply.t;
  }

  stop(): Promise<void> {
    return stopProcess(this.child);
  }
}
