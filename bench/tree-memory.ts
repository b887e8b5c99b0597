// The resident memory of kube-proxy and the tools it runs, together (issue 16, goal 4: the whole
// process tree, because an `nft` child holding a 10k ruleset costs the node as much as the proxy
// does). /proc has no tree total and a child's peak is gone with it, so the tree is sampled: the
// proxy's VmRSS plus that of every descendant alive at the moment, every `periodMs`. A peak
// shorter than the period can be missed; a full sync's `nft` lives for seconds.
import { readdirSync, readFileSync } from 'node:fs';

export interface TreeMemoryPeak {
  /** Highest sum of VmRSS over the tree in one sample. */
  readonly treeMiB: number;
  /** The proxy's own VmRSS in that sample, and the descendants' sum. */
  readonly proxyMiB: number;
  readonly childrenMiB: number;
  /** Highest VmRSS seen of any single descendant. */
  readonly childPeakMiB: number;
  readonly samples: number;
  /** The descendants in the peak sample: command line and VmRSS. */
  readonly peakTools: readonly string[];
  /** The descendants' sum in the last sample (for an idle proxy: what its tools keep). */
  readonly lastChildrenMiB: number;
}

function rssMiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0; // gone between the listing and the read
  }
}

/** Direct children of every thread of `pid` (a child belongs to the thread that forked it). */
function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${String(pid)}/task`);
  } catch {
    return []; // gone
  }
  const out: number[] = [];
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${String(pid)}/task/${tid}/children`, 'utf8').trim();
      if (text !== '') out.push(...text.split(' ').map(Number));
    } catch {
      // the thread ended
    }
  }
  return out;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8')
      .split('\0')
      .join(' ')
      .trim();
  } catch {
    return `pid ${String(pid)}`;
  }
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  for (let queue = childrenOf(pid); queue.length > 0;) {
    const next: number[] = [];
    for (const child of queue) {
      out.push(child);
      next.push(...childrenOf(child));
    }
    queue = next;
  }
  return out;
}

export class TreeMemory {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  #peak: TreeMemoryPeak = {
    treeMiB: 0,
    proxyMiB: 0,
    childrenMiB: 0,
    childPeakMiB: 0,
    samples: 0,
    peakTools: [],
    lastChildrenMiB: 0,
  };

  constructor(pid: number, periodMs = 50) {
    this.#pid = pid;
    this.#timer = setInterval(() => this.sample(), periodMs);
    this.#timer.unref();
    this.sample();
  }

  sample(): void {
    const proxy = rssMiB(this.#pid);
    const pids = descendants(this.#pid);
    const children = pids.map(rssMiB);
    const childrenMiB = children.reduce((a, b) => a + b, 0);
    const peak = this.#peak;
    const tree = proxy + childrenMiB;
    this.#peak = {
      ...(tree > peak.treeMiB
        ? {
            treeMiB: tree,
            proxyMiB: proxy,
            childrenMiB,
            peakTools: pids.map((pid, i) => `${commandLine(pid)} (${(children[i] ?? 0).toFixed(0)} MiB)`),
          }
        : peak),
      childPeakMiB: Math.max(peak.childPeakMiB, ...children),
      samples: peak.samples + 1,
      lastChildrenMiB: childrenMiB,
    };
  }

  /** The peak so far (sampling goes on). */
  get peak(): TreeMemoryPeak {
    this.sample();
    return this.#peak;
  }

  stop(): TreeMemoryPeak {
    clearInterval(this.#timer);
    this.sample();
    return this.#peak;
  }
}
