// The JSON routes behind the web page, all GET and read-only: /debug/proxy/services (paged
// Services → ports → endpoints), /debug/proxy/syncs (the timeline), /debug/proxy/problems
// (objects skipped and why) and /debug/proxy/verify/last (the last verify, without running one).
// They share the guards of every debug route (server/debug-routes.ts).
import type { ExplainState } from '../explain/state.ts';
import type { DebugRoute } from '../server/debug-routes.ts';
import type { FamilySync } from '../sync/family-sync.ts';
import type { VerifyReport } from '../verify/verify.ts';
import { servicesView, syncView } from './views.ts';

export interface UiSources {
  readonly state: () => ExplainState;
  readonly syncs: readonly FamilySync[];
  /** Objects the model skipped, newest last, as formatProblem prints them. */
  readonly problems: () => readonly string[];
  readonly lastVerify: () => VerifyReport | undefined;
}

const MAX_LIMIT = 500;

function intParam(params: URLSearchParams, name: string, fallback: number, max: number): number | string {
  const text = params.get(name);
  if (text === null || text === '') return fallback;
  if (!/^\d{1,9}$/.test(text)) return `${name} must be a number from 0 to ${max}`;
  return Math.min(Number(text), max);
}

export function uiRoutes(sources: UiSources): Record<string, DebugRoute> {
  return {
    '/debug/proxy/services': (params) => {
      const offset = intParam(params, 'offset', 0, 1_000_000_000);
      const limit = intParam(params, 'limit', 100, MAX_LIMIT);
      if (typeof offset === 'string') return { status: 400, body: { error: offset } };
      if (typeof limit === 'string') return { status: 400, body: { error: limit } };
      return {
        status: 200,
        body: servicesView(sources.state(), { q: (params.get('q') ?? '').slice(0, 200), offset, limit }),
      };
    },
    '/debug/proxy/syncs': () => ({
      status: 200,
      body: {
        families: sources.syncs.map((sync) => ({
          family: sync.family,
          successfulSyncs: sync.successfulSyncs,
          syncs: sync.recentSyncs.map(syncView),
        })),
      },
    }),
    '/debug/proxy/problems': () => ({ status: 200, body: { problems: sources.problems() } }),
    '/debug/proxy/verify/last': () => ({ status: 200, body: { report: sources.lastVerify() ?? null } }),
  };
}

/** A bounded list of problem lines, the same line kept once (its newest occurrence last). */
export class ProblemLog {
  private readonly lines: string[] = [];
  private readonly max: number;

  constructor(max = 100) {
    this.max = max;
  }

  add(line: string): void {
    const at = this.lines.indexOf(line);
    if (at >= 0) this.lines.splice(at, 1);
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }

  list(): readonly string[] {
    return [...this.lines];
  }
}
