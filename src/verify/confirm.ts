// `explain --kernel`: is each rule and element the explanation quotes in the kernel? A scoped
// read of what the path names only (one iptables-save per table; one check-mode `nft -c` per
// quoted element), by the mode's verifier. The explanation itself stays the engine's; this only
// marks its path steps.
import type { ModeVerifier } from '../dataplane/common/verify.ts';
import { MODES, type ModeName } from '../dataplane/modes.ts';
import type { ExecOptions, ExecResult } from '../util/exec.ts';
import type { Explanation } from '../explain/types.ts';

export type Runner = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

/** The explanation with `inKernel` on every path step the mode can check, and a caveat when some are missing. */
export async function confirmPath(explanation: Explanation, run: Runner): Promise<Explanation> {
  const mode = explanation.source.mode;
  const verifier: ModeVerifier | undefined = Object.hasOwn(MODES, mode)
    ? MODES[mode as ModeName].verifier
    : undefined;
  if (!verifier?.confirm || explanation.path.length === 0) {
    return {
      ...explanation,
      caveats: [...explanation.caveats, `the ${mode} mode cannot confirm rules in the kernel`],
    };
  }
  const found = await verifier.confirm({ family: explanation.source.family, steps: explanation.path, run });
  const path = explanation.path.map((step, i) => {
    const inKernel = found[i];
    return inKernel === undefined ? step : { ...step, inKernel };
  });
  const missing = path.filter((step) => step.inKernel === false).length;
  const checked = path.filter((step) => step.inKernel !== undefined).length;
  const caveats = [
    ...explanation.caveats,
    `kernel: ${checked - missing} of ${checked} checked rules and elements present`,
  ];
  const hints =
    missing > 0
      ? [
          ...explanation.hints,
          `${missing} quoted rule${missing === 1 ? '' : 's'} or element${missing === 1 ? ' is' : 's are'} missing from the kernel: run kube-proxy verify (it reports the drift and asks for a full sync)`,
        ]
      : explanation.hints;
  return { ...explanation, path, hints, caveats };
}
