// The seam between the userspace mode (which decides, from the plan, what a new connection may
// use) and the data path (which accepts, balances and forwards). The mode builds one Router per
// listener; the data path calls it once per new TCP connection or UDP flow.
import type { Endpoint } from '../../model/types.ts';

/** What one new connection or UDP flow from `client` may use, decided by the mode from the plan. */
export type Route =
  | { readonly kind: 'endpoints'; readonly endpoints: readonly Endpoint[] } // never empty
  | { readonly kind: 'reject' } // no endpoints: TCP RST / close at once; UDP: drop the datagram
  | { readonly kind: 'drop' }; // policy says drop: close without reply

export type Router = (client: { readonly ip: string; readonly port: number }) => Route;

export interface BalancerSettings {
  readonly policy: 'round-robin' | 'least-connections'; // round-robin default (upstream)
  readonly affinitySeconds: number; // 0: none; sliding window (upstream)
}

export interface ListenerSpec {
  readonly key: string; // stable id, e.g. `${servicePortKey}|${frontend}`
  readonly protocol: 'TCP' | 'UDP';
  readonly host: string; // address to bind (0.0.0.0 / :: or a specific IP)
  readonly port: number; // 0: the kernel picks (then read back the bound port)
  readonly router: Router;
  readonly balancer: BalancerSettings;
  /** Every endpoint some client may still reach (`ip:port`): connections to others are drained. */
  readonly reachable: ReadonlySet<string>;
  readonly labels: { readonly servicePort: string; readonly frontend: string }; // for metrics/logs
}

/** What a listener's routing is made of; replaced as a whole when its service port changes. */
export type ListenerRouting = Pick<ListenerSpec, 'router' | 'balancer' | 'reachable'>;
