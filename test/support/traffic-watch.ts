// What a restart must not disturb (issue 15, goal 6), watched from a client pod: a new connection
// to one Service every `intervalMs`, each logged as ok or not, and one long-lived connection to
// another Service that writes a line every 100 ms and reads its echo. Used by the restart tests of
// every mode (test/e2e/restart.test.ts, and the VM lane's IPVS mode in test/vm/lane/ipvs-faults.ts).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import type { Netns } from '../../src/playground/netns.ts';
import { pollUntil, stopProcess } from './netns.ts';

export interface TrafficWatchOptions {
  /** The Service new connections go to (port 80; its endpoint answers at once). */
  readonly vip: string;
  /** The Service of the long-lived connection (port 80; its endpoint echoes lines). */
  readonly holdVip: string;
  /** How often a new connection starts. */
  readonly intervalMs: number;
  /** A new connection that has no answer after this long failed. */
  readonly connectTimeoutMs: number;
}

export class TrafficWatch {
  readonly #results: { t: number; ok: boolean }[] = [];
  #heldOutput = '';
  readonly #processes: ChildProcess[] = [];
  readonly #connectTimeoutMs: number;

  private constructor(connectTimeoutMs: number) {
    this.#connectTimeoutMs = connectTimeoutMs;
  }

  /** Starts both from `client` and waits until the long-lived connection has its first echo. */
  static async start(client: Netns, options: TrafficWatchOptions): Promise<TrafficWatch> {
    const watch = new TrafficWatch(options.connectTimeoutMs);
    const script = [
      "const net = require('node:net');",
      'setInterval(() => { const t = Date.now();',
      `const s = net.connect(80, '${options.vip}'); let ok = false;`,
      `s.on('data', () => (ok = true)); s.setTimeout(${String(options.connectTimeoutMs)}, () => s.destroy());`,
      `s.on('close', () => console.log(JSON.stringify({ t, ok }))); s.on('error', () => {}); }, ${String(options.intervalMs)});`,
    ].join('');
    const prober = client.spawn(process.execPath, ['-e', script]);
    watch.#processes.push(prober);
    createInterface({ input: prober.stdout ?? process.stdin }).on('line', (line) =>
      watch.#results.push(JSON.parse(line) as { t: number; ok: boolean }),
    );
    const held = client.spawn(process.execPath, [
      '-e',
      [
        `const s = require('node:net').connect(80, '${options.holdVip}');`,
        "s.on('data', (d) => process.stdout.write(d));",
        "s.on('close', () => { console.log('CLOSED'); process.exit(0); });",
        // A line every 100 ms, echoed back by the endpoint (namespaced processes get no stdin).
        "setInterval(() => s.write('ping-' + Date.now() + '\\n'), 100);",
      ].join(''),
    ]);
    watch.#processes.push(held);
    held.stdout?.on('data', (d: Buffer) => (watch.#heldOutput += d.toString()));
    try {
      await pollUntil('the held connection', () => (/ping-\d+/.test(watch.#heldOutput) ? true : undefined));
    } catch (error) {
      await watch.stop();
      throw error;
    }
    return watch;
  }

  /** New connections started after `since`. */
  startedSince(since: number): number {
    return this.#results.filter((r) => r.t > since).length;
  }

  /**
   * Checks the held connection still echoes and that every new connection since `since`
   * was served (the prober runs on a little past now first).
   */
  async throughout(t: TestContext, what: string, since: number): Promise<void> {
    const now = Date.now();
    await pollUntil(`the held connection to echo after ${what}`, () =>
      [...this.#heldOutput.matchAll(/ping-(\d+)/g)].some((m) => Number(m[1]) > now) ? true : undefined,
    );
    assert.ok(!this.#heldOutput.includes('CLOSED'), `the established connection survived ${what}`);
    const end = Date.now();
    // A connection is logged when it closes: one started before `end` may fail only after its
    // timeout, later than quicker ones started after `end`.
    const settled = end + this.#connectTimeoutMs + 500;
    await pollUntil('prober results past the event', () =>
      Date.now() > settled && this.#results.some((r) => r.t > end) ? true : undefined,
    );
    const window = this.#results.filter((r) => r.t >= since && r.t <= end);
    const failed = window.filter((r) => !r.ok);
    t.diagnostic(`${what}: ${String(window.length)} new connections, ${String(failed.length)} failed`);
    assert.ok(window.length > 10, 'the prober ran throughout');
    assert.deepEqual(failed, [], `new connections failed during ${what}`);
  }

  async stop(): Promise<void> {
    for (const child of this.#processes) await stopProcess(child, 'SIGKILL');
  }
}
