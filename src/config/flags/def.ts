// The shape of one command-line flag: what it parses (its value kind), which precedence class
// it belongs to, and how it changes the state (configuration plus run-only options). The table
// builds every flag with flag(); the parser and --help only see the untyped FlagDef.
import type { KubeProxyConfiguration } from '../types.ts';
import type { Kind } from './kinds.ts';

/** Run options carried by flags that are not part of KubeProxyConfiguration. */
export interface FlagExtras {
  readonly configFile: string;
  readonly writeConfigTo: string;
  readonly cleanup: boolean;
  readonly initOnly: boolean;
  readonly master: string;
  /** Raw --hostname-override text; applied on top of either the flags or the file. */
  readonly hostnameOverride: string;
  /** Deprecated --healthz-port / --metrics-port: port of the bind address, 0 disables. */
  readonly healthzPort: number;
  readonly metricsPort: number;
  /** --userspace-drain-timeout (Go duration); 0s: connections run until they end. */
  readonly userspaceDrainTimeout: string;
  /** --userspace-balancer, validated in load.ts. */
  readonly userspaceBalancer: string;
  /** --userspace-capture, validated in load.ts. */
  readonly userspaceCapture: string;
  /** --version: 'false', 'true', 'raw' or a version to report (vX.Y.Z…). */
  readonly version: string;
  /** --debug-handlers-allowed-cidrs, validated in load.ts. */
  readonly debugAllowedCIDRs: readonly string[];
}

export interface FlagState {
  readonly config: KubeProxyConfiguration;
  readonly extras: FlagExtras;
}

/**
 * Which precedence class a flag belongs to: `config` flags are ignored when --config is given,
 * `logging` flags override the file when explicitly set, `extra` flags are never in the file.
 */
export type FlagTarget = 'config' | 'logging' | 'extra';

export interface FlagDef {
  readonly name: string;
  readonly shorthand?: string;
  /** pflag's type word in --help ("string", "duration", ...); empty for booleans. */
  readonly typeName: string;
  readonly isBool: boolean;
  /** The value of `--flag` without `=value`, for non-boolean flags that allow it (--version). */
  readonly noOptDefault?: string;
  readonly usage: string;
  /** Default as --help shows it; empty when pflag would not show one (zero values). */
  readonly defaultText: string;
  readonly target: FlagTarget;
  /** Set for deprecated flags: what to use instead. */
  readonly deprecated?: string;
  /** Parses one occurrence; throws an Error carrying the reason when the text is not valid. */
  readonly check: (text: string) => void;
  /** Applies every occurrence (in command-line order) to the state. */
  readonly applyAll: (state: FlagState, texts: readonly string[]) => FlagState;
}

export interface FlagSpec<V> {
  readonly name: string;
  readonly shorthand?: string;
  readonly kind: Kind<V>;
  readonly usage: string;
  readonly target: FlagTarget;
  readonly deprecated?: string;
  /** Default for --help, taken from the defaulted configuration. */
  readonly defaultValue: V;
  readonly apply: (state: FlagState, value: V) => FlagState;
}

/** Turns a typed flag spec into the untyped definition the parser and --help work with. */
export function flag<V>(spec: FlagSpec<V>): FlagDef {
  const { kind } = spec;
  return {
    name: spec.name,
    ...(spec.shorthand === undefined ? {} : { shorthand: spec.shorthand }),
    typeName: kind.typeName,
    isBool: kind.isBool,
    ...(kind.noOptDefault === undefined ? {} : { noOptDefault: kind.noOptDefault }),
    usage: spec.usage,
    defaultText: kind.show(spec.defaultValue),
    target: spec.target,
    ...(spec.deprecated === undefined ? {} : { deprecated: spec.deprecated }),
    check: (text) => {
      kind.parse(text);
    },
    applyAll: (state, texts) => {
      const [first, ...rest] = texts;
      if (first === undefined) return state;
      const merged = rest.reduce((acc, text) => kind.merge(acc, kind.parse(text)), kind.parse(first));
      return spec.apply(state, merged);
    },
  };
}

/** Applies a change to the configuration part of the state. */
export function config(
  state: FlagState,
  patch: (c: KubeProxyConfiguration) => KubeProxyConfiguration,
): FlagState {
  return { ...state, config: patch(state.config) };
}

/** Applies a change to the run options part of the state. */
export function extras(state: FlagState, patch: Partial<FlagExtras>): FlagState {
  return { ...state, extras: { ...state.extras, ...patch } };
}
