// /debug/proxy/explain and /debug/proxy/state on the metrics server: the same engine and dump as
// `kube-proxy explain`, over the live proxy's last applied state.
import type { IPFamily } from '../model/types.ts';
import type { DebugRoute } from '../server/debug-routes.ts';
import { dumpOf } from './dump.ts';
import { explain, ExplainError } from './engine.ts';
import { parsePacketQuery } from './query.ts';
import type { ExplainState } from './state.ts';

export interface LiveState {
  /** The node's view as the last successful syncs applied it. */
  readonly state: () => ExplainState;
  /** What /debug/proxy says of a family's last sync. */
  readonly lastSync?: (family: IPFamily) => Record<string, unknown> | undefined;
  readonly version?: string;
}

export function explainRoutes(live: LiveState): Record<string, DebugRoute> {
  return {
    '/debug/proxy/explain': (params) => {
      try {
        const query = parsePacketQuery((name) => params.get(name) ?? undefined);
        return { status: 200, body: explain(live.state(), query) };
      } catch (error) {
        if (error instanceof ExplainError) return { status: 400, body: { error: error.message } };
        throw error;
      }
    },
    '/debug/proxy/state': () => ({
      status: 200,
      body: dumpOf(live.state(), {
        generatedAt: new Date(),
        ...(live.version !== undefined ? { version: live.version } : {}),
        ...(live.lastSync ? { lastSync: live.lastSync } : {}),
      }),
    }),
  };
}
