// An in-memory Host for tests: fixed addresses and CPU count, sysctls in a map, and a record of
// what was written.
import type { Sysctl } from '../util/sysctl.ts';
import type { Host, HostAddress } from './host.ts';

export interface FakeHostOptions {
  readonly addresses?: readonly HostAddress[];
  readonly sysctls?: Readonly<Record<string, string>>;
  readonly ipv6?: boolean;
  readonly cpus?: number;
  /** Make every sysctl write fail with this message (a read-only /proc/sys). */
  readonly sysctlWriteError?: string;
}

export class FakeHost implements Host {
  readonly sysctls: Map<string, string>;
  /** Every sysctl write, in order. */
  readonly sysctlWrites: { key: string; value: string }[] = [];
  /** Every oom_score_adj written, in order. */
  readonly oomScoreAdjWrites: number[] = [];
  readonly sysctl: Sysctl;
  readonly #options: FakeHostOptions;

  constructor(options: FakeHostOptions = {}) {
    this.#options = options;
    this.sysctls = new Map(Object.entries(options.sysctls ?? {}));
    this.sysctl = {
      read: (key) => {
        const value = this.sysctls.get(key);
        return value === undefined
          ? Promise.reject(Object.assign(new Error(`no such sysctl: ${key}`), { code: 'ENOENT' }))
          : Promise.resolve(value);
      },
      write: (key, value) => {
        if (options.sysctlWriteError !== undefined)
          return Promise.reject(new Error(options.sysctlWriteError));
        this.sysctls.set(key, value);
        this.sysctlWrites.push({ key, value });
        return Promise.resolve();
      },
    };
  }

  interfaceAddresses(): readonly HostAddress[] {
    return this.#options.addresses ?? [{ address: '127.0.0.1', family: 'IPv4', internal: true }];
  }

  ipv6Available(): boolean {
    return this.#options.ipv6 ?? true;
  }

  setOomScoreAdj(value: number): Promise<void> {
    this.oomScoreAdjWrites.push(value);
    return Promise.resolve();
  }

  cpuCount(): number {
    return this.#options.cpus ?? 1;
  }
}
