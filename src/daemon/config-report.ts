// Fields of the config file that were ignored (unknown to v1alpha1, or legacy): upstream only
// logs them once; an operator rolling this proxy out over an installer's stale ConfigMap must not
// miss them, so each is also a Node Event and a metric sample (issue 14, item 1).
import { Gauge } from 'prom-client';
import type { EventRecorder } from '../k8s/events.ts';
import { log } from '../log/log.ts';
import type { Registry } from '../metrics/registry.ts';

export const IGNORED_FIELDS_METRIC = 'kubeproxy_ts_config_ignored_fields';
export const IGNORED_FIELDS_REASON = 'IgnoredConfigFields';

/** The Event's note: every field by path, within the API's 1 kB limit (the recorder truncates). */
export function ignoredFieldsNote(file: string, fields: readonly string[]): string {
  return (
    `Config file ${file} has ${fields.length} field(s) this kube-proxy ignores (unknown to ` +
    `kubeproxy.config.k8s.io/v1alpha1 or legacy): ${fields.join(', ')}. Remove them from the ConfigMap.`
  );
}

export function reportIgnoredConfigFields(parts: {
  readonly file: string;
  readonly fields: readonly string[];
  readonly registry: Registry;
  readonly recorder: Pick<EventRecorder, 'nodeEvent'>;
}): void {
  const gauge = new Gauge({
    name: IGNORED_FIELDS_METRIC,
    help: 'Fields of the config file that were ignored (1 per field path); 0 series when none',
    labelNames: ['field'] as const,
    registers: [parts.registry],
  });
  for (const field of parts.fields) {
    gauge.set({ field }, 1);
    log.warn('Ignoring a field of the config file', { file: parts.file, field });
  }
  if (parts.fields.length === 0) return;
  void parts.recorder.nodeEvent(
    'Warning',
    IGNORED_FIELDS_REASON,
    'StartKubeProxy',
    ignoredFieldsNote(parts.file, parts.fields),
  );
}
