// Feature gates kube-proxy-ts knows about. Upstream rejects gate names it does not know; its list
// covers every Kubernetes component (hundreds of gates) and changes each release, so a copy here
// would go stale and turn a harmless DaemonSet flag into a crash loop. We therefore know the
// gates this proxy reads, and report any other name as a warning instead of an error.

export type FeatureStage = 'ALPHA' | 'BETA' | 'GA' | 'DEPRECATED';

export interface FeatureGateSpec {
  readonly default: boolean;
  readonly stage: FeatureStage;
}

/** Defaults as of Kubernetes v1.35. */
const KNOWN_FEATURE_GATES: Readonly<Record<string, FeatureGateSpec>> = {
  ContextualLogging: { default: true, stage: 'BETA' },
  LoggingAlphaOptions: { default: false, stage: 'ALPHA' },
  LoggingBetaOptions: { default: true, stage: 'BETA' },
  MultiCIDRServiceAllocator: { default: true, stage: 'GA' },
  PreferSameTrafficDistribution: { default: true, stage: 'BETA' },
  ServiceTrafficDistribution: { default: true, stage: 'GA' },
};

export function isKnownFeatureGate(name: string): boolean {
  return Object.hasOwn(KNOWN_FEATURE_GATES, name);
}

/** Whether a gate is on: the configured value, else its default, else off. */
export function featureEnabled(gates: Readonly<Record<string, boolean>>, name: string): boolean {
  if (Object.hasOwn(gates, name)) return gates[name] === true;
  return KNOWN_FEATURE_GATES[name]?.default ?? false;
}

/** `Name=true|false (STAGE - default=x)` lines for --help, sorted by name. */
export function describeFeatureGates(): string[] {
  return Object.entries(KNOWN_FEATURE_GATES)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, spec]) => `${name}=true|false (${spec.stage} - default=${spec.default})`);
}

/** Every known gate with its spec and whether it is on (kubernetes_feature_enabled). */
export function gateStates(
  gates: Readonly<Record<string, boolean>>,
): { name: string; spec: FeatureGateSpec; enabled: boolean }[] {
  return Object.entries(KNOWN_FEATURE_GATES)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, spec]) => ({ name, spec, enabled: featureEnabled(gates, name) }));
}
