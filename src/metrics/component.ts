// The metrics every Kubernetes component exposes through component-base, besides its own:
// kubernetes_build_info, kubernetes_feature_enabled, registered_metrics_total and the
// disabled/hidden counters, with component-base's stability prefix in HELP. And the SLI registry
// behind /metrics/slis (kubernetes_healthcheck, kubernetes_healthchecks_total), which component-base
// keeps apart from /metrics.
import { Counter, Gauge, Registry } from 'prom-client';
import type { FeatureGateSpec } from '../config/featuregates.ts';
import type { BuildInfo } from '../util/version.ts';

export type Stability = 'ALPHA' | 'BETA' | 'STABLE';

/** component-base writes the stability level in front of every HELP text. */
export function helpOf(stability: Stability, help: string): string {
  return `[${stability}] ${help}`;
}

const STABILITY_IN_HELP = /^\[(ALPHA|BETA|STABLE)\] /;

/** The feature_enabled `stage` label: component-base leaves it empty for GA gates. */
function stageLabel(spec: FeatureGateSpec): string {
  return spec.stage === 'GA' ? '' : spec.stage;
}

export function registerComponentMetrics(
  registry: Registry,
  parts: {
    readonly build: BuildInfo;
    /** Every gate this proxy knows with whether it is on. */
    readonly gates: readonly {
      readonly name: string;
      readonly spec: FeatureGateSpec;
      readonly enabled: boolean;
    }[];
  },
): void {
  const registers = [registry];
  const buildInfo = new Gauge({
    name: 'kubernetes_build_info',
    help: helpOf(
      'ALPHA',
      "A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.",
    ),
    labelNames: [
      'build_date',
      'compiler',
      'git_commit',
      'git_tree_state',
      'git_version',
      'go_version',
      'major',
      'minor',
      'platform',
    ] as const,
    registers,
  });
  const b = parts.build;
  buildInfo.set(
    {
      build_date: b.buildDate,
      compiler: b.compiler,
      git_commit: b.gitCommit,
      git_tree_state: b.gitTreeState,
      git_version: b.gitVersion,
      go_version: b.goVersion,
      major: b.major,
      minor: b.minor,
      platform: b.platform,
    },
    1,
  );

  const featureEnabled = new Gauge({
    name: 'kubernetes_feature_enabled',
    help: helpOf('BETA', 'This metric records the data about the stage and enablement of a k8s feature.'),
    labelNames: ['name', 'stage'] as const,
    registers,
  });
  for (const gate of parts.gates) {
    featureEnabled.set({ name: gate.name, stage: stageLabel(gate.spec) }, gate.enabled ? 1 : 0);
  }

  new Counter({
    name: 'disabled_metrics_total',
    help: helpOf('BETA', 'The count of disabled metrics.'),
    registers,
  });
  new Counter({
    name: 'hidden_metrics_total',
    help: helpOf('BETA', 'The count of hidden metrics.'),
    registers,
  });
  // Counted when scraped, from the HELP prefixes, so metrics a mode registers later count too.
  new Counter({
    name: 'registered_metrics_total',
    help: helpOf(
      'BETA',
      'The count of registered metrics broken by stability level and deprecation version.',
    ),
    labelNames: ['stability_level', 'deprecated_version'] as const,
    registers,
    collect() {
      const counts = new Map<string, number>();
      for (const metric of registry.getMetricsAsArray()) {
        const level = STABILITY_IN_HELP.exec(metric.help)?.[1];
        if (level !== undefined) counts.set(level, (counts.get(level) ?? 0) + 1);
      }
      this.reset();
      for (const [level, count] of counts)
        this.inc({ stability_level: level, deprecated_version: '' }, count);
    },
  });
}

/** /metrics/slis: the health checks of the metrics server's /healthz, as component-base records them. */
export class SliMetrics {
  readonly registry = new Registry();
  readonly #healthcheck = new Gauge({
    name: 'kubernetes_healthcheck',
    help: helpOf('STABLE', 'This metric records the result of a single healthcheck.'),
    labelNames: ['name', 'type'] as const,
    registers: [this.registry],
  });
  readonly #healthchecks = new Counter({
    name: 'kubernetes_healthchecks_total',
    help: helpOf('STABLE', 'This metric records the results of all healthcheck.'),
    labelNames: ['name', 'status', 'type'] as const,
    registers: [this.registry],
  });

  observe(name: string, type: 'healthz' | 'livez' | 'readyz', success: boolean): void {
    this.#healthcheck.set({ name, type }, success ? 1 : 0);
    this.#healthchecks.inc({ name, type, status: success ? 'success' : 'error' });
  }
}
