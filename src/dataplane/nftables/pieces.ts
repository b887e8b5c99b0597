// The first sync into a kernel without our table, in pieces (issue 16, goal 4). One transaction of
// a whole large cluster makes the single `nft` process hold all of it: 535 MiB at 10k Services x
// 10 endpoints, where kube-proxy itself holds a quarter of that. Into an empty kernel nothing can
// be half-replaced, so the first sync may be a sequence of transactions instead: the first writes
// the fixed part of the table alone (small enough to echo the handles of its rules, which the
// integrity check needs: integrity.ts), each later one adds Services through the partial sync's
// own diff (their chains, rules and dispatch elements in one transaction). At
// every moment each Service is all there (every port, every endpoint) or not there at all, as
// upstream's first sync of an empty kernel leaves Services unreachable until it lands. A table
// that exists (a restart) is still replaced in one transaction: its Services keep working.
import type { ProxySnapshot, ServicePortState } from '../../model/types.ts';

/** Service ports per transaction of a first sync in pieces (measured: bench/README.md). */
export const FIRST_SYNC_PIECE = 2000;

/**
 * The snapshots the pieces render in turn: the first holds no service port, each later one holds
 * those of the one before plus the next Services, up to `size` service ports more (all ports of a
 * Service in the same piece), in the snapshot's order; the last one holds them all.
 */
export function firstSyncPieces(snapshot: ProxySnapshot, size = FIRST_SYNC_PIECE): ProxySnapshot[] {
  const byService = new Map<string, [string, ServicePortState][]>();
  for (const [key, state] of snapshot.servicePorts) {
    const owner = `${state.servicePort.id.namespace}/${state.servicePort.id.name}`;
    let ports = byService.get(owner);
    if (!ports) {
      ports = [];
      byService.set(owner, ports);
    }
    ports.push([key, state]);
  }
  const pieces: ProxySnapshot[] = [piece(snapshot, new Map())];
  let current = new Map<string, ServicePortState>();
  let inPiece = 0;
  for (const ports of byService.values()) {
    if (inPiece > 0 && inPiece + ports.length > size) {
      pieces.push(piece(snapshot, current));
      current = new Map(current);
      inPiece = 0;
    }
    for (const [key, state] of ports) current.set(key, state);
    inPiece += ports.length;
  }
  if (inPiece > 0) pieces.push(piece(snapshot, current));
  return pieces;
}

/** The snapshot with these service ports; no change hint (a renderer compares every port). */
function piece(snapshot: ProxySnapshot, servicePorts: ReadonlyMap<string, ServicePortState>): ProxySnapshot {
  return { ...snapshot, servicePorts, generation: undefined, changedServicePorts: undefined };
}
