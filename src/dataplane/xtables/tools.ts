// The binaries of the iptables tool family, per backend and IP family, and the arguments every
// call shares. Every mode that programs x_tables (iptables, and the IPVS and userspace modes'
// capture and masquerade rules) drives the same binaries through a Runner.
import type { IPFamily } from '../../model/types.ts';
import type { ExecOptions, ExecResult } from '../../util/exec.ts';

/** Runs a system tool; resolves on exit status 0, rejects (ExecError) otherwise. */
export type Runner = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

/** legacy x_tables or nf_tables: rules written through one are invisible to the other. */
export type IptablesBackend = 'legacy' | 'nft';

/** The tables a kube-proxy mode writes to. */
export type Table = 'filter' | 'nat' | 'mangle';

/** The order in which restore inputs covering several tables list them. */
export const TABLES: readonly Table[] = ['mangle', 'nat', 'filter'];

/** The binaries of one backend and family; we never call the unsuffixed `iptables`. */
export interface IptablesTools {
  readonly backend: IptablesBackend;
  readonly family: IPFamily;
  readonly iptables: string;
  readonly restore: string;
  readonly save: string;
}

export function iptablesTools(backend: IptablesBackend, family: IPFamily): IptablesTools {
  const base = family === 'IPv6' ? 'ip6tables' : 'iptables';
  return {
    backend,
    family,
    iptables: `${base}-${backend}`,
    restore: `${base}-${backend}-restore`,
    save: `${base}-${backend}-save`,
  };
}

/** `-w 5 -W 100000`: wait up to 5 s for the xtables lock, polling every 100 ms. */
export const WAIT_ARGS: readonly string[] = ['-w', '5', '-W', '100000'];
export const RESTORE_ARGS: readonly string[] = [...WAIT_ARGS, '--noflush', '--counters'];

/** iptables >= 1.6.2 has `--random-fully` (and the -w/-W wait flags). */
export function supportsRandomFully(versionOutput: string): boolean {
  const match = /v(\d+)\.(\d+)\.(\d+)/.exec(versionOutput);
  if (!match) return false;
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (major !== 1) return major > 1;
  if (minor !== 6) return minor > 6;
  return patch >= 2;
}
