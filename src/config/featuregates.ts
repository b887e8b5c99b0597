// Feature gates kube-proxy-ts knows about: the ones v1.36's kube-proxy reads, with v1.36's stages
// and defaults. Each that can be turned off changes behaviour here as it does upstream
// (LoggingAlphaOptions, ComponentFlagz, ComponentStatusz); a GA gate is locked to its default, and
// setting it otherwise is an error, as upstream. Upstream also rejects gate names it does not
// know; its list covers every Kubernetes component (hundreds of gates) and changes each release,
// so a copy here would go stale and turn a harmless DaemonSet flag into a crash loop: any other
// name is a warning instead (docs/compatibility.md).

export type FeatureStage = 'ALPHA' | 'BETA' | 'GA' | 'DEPRECATED';

export interface FeatureGateSpec {
  readonly default: boolean;
  readonly stage: FeatureStage;
  /** GA gates: setting another value is an error. */
  readonly locked?: boolean;
  /** What the gate changes in this proxy (docs/compatibility.md). */
  readonly effect: string;
}

/** Defaults and stages as of Kubernetes v1.36. AllAlpha/AllBeta are component-base's switches. */
const KNOWN_FEATURE_GATES: Readonly<Record<string, FeatureGateSpec>> = {
  AllAlpha: { default: false, stage: 'ALPHA', effect: 'turns every ALPHA gate on unless set on its own' },
  AllBeta: { default: false, stage: 'BETA', effect: 'turns every BETA gate on unless set on its own' },
  ComponentFlagz: { default: true, stage: 'BETA', effect: 'serves /flagz on the metrics server' },
  ComponentStatusz: { default: true, stage: 'BETA', effect: 'serves /statusz on the metrics server' },
  ContextualLogging: { default: true, stage: 'BETA', effect: 'none (our log lines carry no logger names)' },
  LoggingAlphaOptions: {
    default: false,
    stage: 'ALPHA',
    effect: 'allows the logging.options split-stream settings',
  },
  LoggingBetaOptions: { default: true, stage: 'BETA', effect: 'none (no beta logging options remain)' },
  MultiCIDRServiceAllocator: {
    default: true,
    stage: 'GA',
    locked: true,
    effect: 'ServiceCIDR objects are the source of allocated cluster IPs',
  },
  PreferSameTrafficDistribution: {
    default: true,
    stage: 'GA',
    locked: true,
    effect: 'trafficDistribution PreferSameNode and PreferSameZone',
  },
};

export function isKnownFeatureGate(name: string): boolean {
  return Object.hasOwn(KNOWN_FEATURE_GATES, name);
}

/**
 * Whether a gate is on: the configured value, else AllAlpha/AllBeta for its stage, else its
 * default, else off.
 */
export function featureEnabled(gates: Readonly<Record<string, boolean>>, name: string): boolean {
  if (Object.hasOwn(gates, name)) return gates[name] === true;
  const spec = KNOWN_FEATURE_GATES[name];
  if (spec === undefined) return false;
  if (spec.stage === 'ALPHA' && name !== 'AllAlpha' && gates['AllAlpha'] === true) return true;
  if (spec.stage === 'BETA' && name !== 'AllBeta' && gates['AllBeta'] === true) return true;
  return spec.default;
}

/** Errors for locked gates set to another value, in upstream's words. */
export function lockedGateErrors(gates: Readonly<Record<string, boolean>>): string[] {
  return Object.keys(gates)
    .sort()
    .flatMap((name) => {
      const spec = KNOWN_FEATURE_GATES[name];
      return spec?.locked === true && gates[name] !== spec.default
        ? [
            `cannot set feature gate ${name} to ${String(gates[name])}, feature is locked to ${String(spec.default)}`,
          ]
        : [];
    });
}

/**
 * `Name=true|false (STAGE - default=x)` lines for --help, sorted by name. As upstream, GA and
 * deprecated gates are not listed (they cannot usefully be set).
 */
export function describeFeatureGates(): string[] {
  return Object.entries(KNOWN_FEATURE_GATES)
    .filter(([, spec]) => spec.stage !== 'GA' && spec.stage !== 'DEPRECATED')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, spec]) => `${name}=true|false (${spec.stage} - default=${spec.default})`);
}

/** Every known gate with its spec, sorted (docs/compatibility.md). */
export function knownFeatureGates(): [string, FeatureGateSpec][] {
  return Object.entries(KNOWN_FEATURE_GATES).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Every known gate with its spec and whether it is on (kubernetes_feature_enabled). */
export function gateStates(
  gates: Readonly<Record<string, boolean>>,
): { name: string; spec: FeatureGateSpec; enabled: boolean }[] {
  return Object.entries(KNOWN_FEATURE_GATES)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, spec]) => ({ name, spec, enabled: featureEnabled(gates, name) }));
}
