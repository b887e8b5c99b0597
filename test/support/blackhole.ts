// A silent network black hole between kube-proxy and the API server, for the fault tests and the
// long black-hole run (bench/blackhole.ts): packets to and from the API server's port are dropped
// on arrival (input hook), so nothing tells either side: no reset, no ICMP error. A table of the
// caller's own beside the proxy's, in the given namespace only (node1, where both run).
import type { FakeApiClient } from './apiserver-client.ts';
import type { Netns } from './netns.ts';

const TABLE = 'kpft_blackhole';

/** The collections kube-proxy watches (src/k8s/watches.ts). */
export const WATCHED_PATHS = [
  '/api/v1/services',
  '/apis/discovery.k8s.io/v1/endpointslices',
  '/api/v1/nodes',
  '/apis/networking.k8s.io/v1/servicecidrs',
] as const;

/** Starts dropping; resolves with the function that ends it (safe to call again, e.g. in `finally`). */
export async function blackholeApiServer(ns: Netns, port = 6443): Promise<() => Promise<void>> {
  await ns.exec('nft', ['-f', '-'], {
    input:
      `table inet ${TABLE} {\n` +
      `  chain in { type filter hook input priority -300; tcp dport ${String(port)} drop; tcp sport ${String(port)} drop; }\n` +
      '}\n',
  });
  let removed = false;
  return async () => {
    if (removed) return;
    await ns.exec('nft', ['delete', 'table', 'inet', TABLE]);
    removed = true;
  };
}

/** How many requests the API server has recorded: pass it to watchesServedSince later. */
export async function requestCount(api: FakeApiClient): Promise<number> {
  return (await api.requests()).length;
}

/**
 * True once the API server has answered a watch of every collection kube-proxy watches among the
 * requests it received after the first `from`: each watch is established again (a watch request
 * sent before the black hole and delivered only after it counts too: it is served all the same).
 */
export async function everyWatchServedSince(api: FakeApiClient, from: number): Promise<boolean> {
  const served = new Set<string>();
  for (const request of (await api.requests()).slice(from)) {
    const url = new URL(request.url, 'http://api');
    if (url.searchParams.get('watch') !== null && request.served !== '') served.add(url.pathname);
  }
  return WATCHED_PATHS.every((path) => served.has(path));
}
