// Which iptables backend to drive: legacy x_tables or nf_tables. Rules written through one are
// invisible to the other, so we must use whatever kubelet and the CNI on this host already use,
// as upstream's image does with iptables-wrapper, and then never mix the two.
import { log } from '../../log/log.ts';
import { iptablesTools, type IptablesBackend, type Runner } from './tools.ts';

export const BACKEND_ENV = 'KUBE_PROXY_IPTABLES_BACKEND';

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
