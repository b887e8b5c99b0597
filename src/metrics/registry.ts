// The Prometheus registry a daemon reports on. Every daemon (and every test) builds its own,
// never prom-client's global one, so several can live in one process. Core metrics
// (metrics/proxy.ts) and each mode's own metrics (dataplane/<mode>/mode.ts) register on it.
import { Registry, collectDefaultMetrics } from 'prom-client';

export type { Registry } from 'prom-client';

/** The label every per-family metric carries, as upstream names it. */
export const FAMILY_LABEL = ['ip_family'] as const;

export function createRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}
