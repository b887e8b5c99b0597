// /debug/proxy/explain and /debug/proxy/state on the metrics server: the same engine and dump as
// `kube-proxy explain`, over the live proxy's last applied state.
import type { IPFamily } from '../model/types.ts';
import type { DebugRoute } from '../server/debug-routes.ts';
import { dumpOf } from './dump.ts';
import { explain, ExplainError } from './engine.ts';
import { parsePacketQuery } from './query.ts';
import type { ExplainState } from './state.ts';
import type { Explanation } from './types.ts';

export interface LiveState {
  /** The node's view as the last successful syncs applied it. */
  readonly state: () => ExplainState;
  /** What /debug/proxy says of a family's last sync. */
  readonly lastSync?: (family: IPFamily) => Record<string, unknown> | undefined;
  readonly version?: string;
  /** `kernel=1`: marks each quoted rule or element present in the kernel or not (verify/confirm.ts). */
  readonly confirm?: (explanation: Explanation) => Promise<Explanation>;
  /** `conntrack=1`: adds the flows the kernel tracks for the tuple (explain/conntrack.ts). */
  readonly conntrack?: (explanation: Explanation) => Promise<Explanation>;
}

export function explainRoutes(live: LiveState): Record<string, DebugRoute> {
  return {
    '/debug/proxy/explain': async (params) => {
      try {
        const query = parsePacketQuery((name) => params.get(name) ?? undefined);
        let explanation = explain(live.state(), query);
        const on = (name: string): boolean => params.get(name) === '1' || params.get(name) === 'true';
        if (on('kernel') && live.confirm) explanation = await live.confirm(explanation);
        if (on('conntrack') && live.conntrack) explanation = await live.conntrack(explanation);
        return { status: 200, body: explanation };
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
