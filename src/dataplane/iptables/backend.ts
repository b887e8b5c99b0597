// Which iptables backend to drive: legacy x_tables or nf_tables. Rules written through one are
// invisible to the other, so we must use whatever kubelet and the CNI on this host already use,
// as upstream's image does with iptables-wrapper, and then never mix the two.
import type { IPFamily } from '../../model/types.ts';
import { log } from '../../log/log.ts';
import type { ExecOptions, ExecResult } from '../../util/exec.ts';

/** Runs a system tool; resolves on exit status 0, rejects (ExecError) otherwise. */
export type Runner = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

export type IptablesBackend = 'legacy' | 'nft';

export const BACKEND_ENV = 'KUBE_PROXY_IPTABLES_BACKEND';

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

// kubelet creates these in mangle on every host; whichever backend has them is the host's.
const KUBELET_HINT = /^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) /m;

async function saveBoth(run: Runner, backend: IptablesBackend, args: readonly string[]): Promise<string> {
  const outputs = await Promise.all(
    (['IPv4', 'IPv6'] as const).map((family) =>
      run(iptablesTools(backend, family).save, args, { timeoutMs: 5000 }).then(
        (result) => result.stdout,
        () => '',
      ),
    ),
  );
  return outputs.join('\n');
}

function countRules(saveOutput: string): number {
  let count = 0;
  for (const line of saveOutput.split('\n')) if (line.startsWith('-')) count++;
  return count;
}

export interface BackendChoice {
  readonly backend: IptablesBackend;
  readonly reason: string;
}

/**
 * Picks the backend the host already uses (iptables-wrapper's order): the environment override,
 * then kubelet's hint chains in nft then legacy, then whichever holds more rules; nft when both
 * are empty. Save failures count as "nothing there".
 */
export async function chooseIptablesBackend(
  run: Runner,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<BackendChoice> {
  const override = env[BACKEND_ENV];
  if (override !== undefined && override !== '') {
    if (override !== 'legacy' && override !== 'nft') {
      throw new Error(`${BACKEND_ENV}=${JSON.stringify(override)}: expected "legacy" or "nft"`);
    }
    return { backend: override, reason: `${BACKEND_ENV} is set` };
  }
  if (KUBELET_HINT.test(await saveBoth(run, 'nft', ['-t', 'mangle']))) {
    return { backend: 'nft', reason: 'kubelet hint chain found in the nf_tables backend' };
  }
  // Without -t, iptables-legacy-save lists only tables that already exist: looking does not
  // create legacy tables on an nft host.
  const legacy = await saveBoth(run, 'legacy', []);
  if (KUBELET_HINT.test(legacy)) {
    return { backend: 'legacy', reason: 'kubelet hint chain found in the legacy backend' };
  }
  const legacyRules = countRules(legacy);
  const nftRules = countRules(await saveBoth(run, 'nft', []));
  if (legacyRules > nftRules) {
    return { backend: 'legacy', reason: `legacy backend has more rules (${legacyRules} vs ${nftRules})` };
  }
  return {
    backend: 'nft',
    reason:
      nftRules > 0
        ? `nf_tables backend has more rules (${nftRules} vs ${legacyRules})`
        : 'no rules in either backend',
  };
}

/** chooseIptablesBackend, logged. */
export async function detectIptablesBackend(
  run: Runner,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<IptablesBackend> {
  const choice = await chooseIptablesBackend(run, env);
  log.info('Using iptables backend', { backend: choice.backend, reason: choice.reason });
  return choice.backend;
}

/** iptables >= 1.6.2 has `--random-fully` (and the -w/-W wait flags). */
export function supportsRandomFully(versionOutput: string): boolean {
  const match = /v(\d+)\.(\d+)\.(\d+)/.exec(versionOutput);
  if (!match) return false;
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (major !== 1) return major > 1;
  if (minor !== 6) return minor > 6;
  return patch >= 2;
}
