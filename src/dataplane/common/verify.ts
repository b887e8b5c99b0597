// What a mode offers `kube-proxy verify`: read its rules back from the kernel and compare them
// with what it would write for the state the last successful sync applied. Each difference is
// attributed, where the rule or element says so, to the service port it belongs to.
import type { IPFamily } from '../../model/types.ts';
import type { ModeRenderInput } from './explain.ts';
import type { ExecOptions, ExecResult } from '../../util/exec.ts';

export type DriftKind = 'missing' | 'unexpected' | 'changed';

export interface DriftItem {
  readonly kind: DriftKind;
  /** Where: `chain nat KUBE-SVC-…`, `map ip-endpoints-tcp`, `chain ip kube-proxy services`. */
  readonly location: string;
  /** The rule or element, as written (missing) or as the kernel lists it (unexpected). */
  readonly text: string;
  /** `namespace/name:port` when the rule or element names it (comment, chain, frontend). */
  readonly servicePort?: string | undefined;
  /** The endpoint (`ip:port`) the rule or element sends traffic to, when it is one. */
  readonly endpoint?: string | undefined;
}

export interface KernelComparison {
  /** What was read, e.g. `table ip kube-proxy (312 elements, 24 chains)`. */
  readonly read: string;
  /** Objects compared (rules or elements and chains). */
  readonly objects: number;
  readonly items: readonly DriftItem[];
}

/** A rule (and the element it looked up) as an explanation's path quotes it. */
export interface QuotedStep {
  readonly table: string;
  readonly chain: string;
  readonly rule: string;
  readonly element?: { readonly set: string; readonly text: string } | undefined;
}

type Run = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

export interface ModeVerifier {
  /**
   * Whether each quoted step is in the kernel (`explain --kernel`), by a read scoped to what the
   * steps name; undefined for a step the mode cannot check.
   */
  confirm?(input: {
    readonly family: IPFamily;
    readonly steps: readonly QuotedStep[];
    readonly run: Run;
  }): Promise<(boolean | undefined)[]>;

  /** `run` runs a tool (mode.ts ToolRunner, restated: mode.ts imports this module). */
  compare(
    input: ModeRenderInput & {
      readonly run: (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;
    },
  ): Promise<KernelComparison>;
}
