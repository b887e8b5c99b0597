// The per-connection decision of the userspace mode: for one listener (a service port's frontend
// kind), which endpoints a new connection or UDP flow from a client may use. Nothing is decided
// here: the plan's per-frontend decision (plan/packet.ts decideFrontend) is asked, with what a
// listener knows of its client, so traffic policies, the eTP=Local shortcut for pods and the
// node, and loadBalancerSourceRanges mean the same as in the kernel modes. Pure.
import { isFromLocalPod, type LocalTrafficDetector } from '../../plan/local-traffic.ts';
import { decideFrontend, firewallAllows, type FrontendDecision } from '../../plan/packet.ts';
import type { Frontend, ServicePortPlan } from '../../plan/service-port.ts';
import type { Route, Router } from './route.ts';

export interface RouteContext {
  /**
   * Which clients are local pods. A listener sees only the client's address, not the interface
   * its packets came in on, so the interface-based detectors (BridgeInterface,
   * InterfaceNamePrefix) never recognise a pod here: those clients are routed as external ones.
   */
  readonly localDetector: LocalTrafficDetector;
  /** Whether an address is one of this node's (loopback included): the client is the node itself. */
  readonly isNodeAddress: (ip: string) => boolean;
}

/** An IPv4 client of a dual-stack socket shows up as `::ffff:a.b.c.d`. */
export function clientAddress(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice('::ffff:'.length) : ip;
}

function routeOf(decision: FrontendDecision): Route {
  switch (decision.kind) {
    case 'dnat':
      return { kind: 'endpoints', endpoints: decision.endpoints };
    case 'reject':
      return { kind: 'reject' };
    case 'drop':
      return { kind: 'drop' };
    default: {
      const unknown: never = decision;
      throw new Error(`unknown decision ${JSON.stringify(unknown)}`);
    }
  }
}

/**
 * The router of one listener. A decision depends on the client only through three facts (the
 * node itself, a local pod, allowed by the source ranges), so the route of each combination is
 * computed once, at its first client. Masquerade is not part of a route: the proxy's own
 * connection to the endpoint always has the node's address as its source.
 */
export function routerFor(plan: ServicePortPlan, frontend: Frontend, ctx: RouteContext): Router {
  const routes = new Map<number, Route>();
  const checksRanges = frontend === 'load balancer IP' && plan.firewall !== undefined;
  return (client) => {
    const source = clientAddress(client.ip);
    const fromNode = ctx.isNodeAddress(source);
    const fromLocalPod = !fromNode && isFromLocalPod(ctx.localDetector, { ip: source });
    const allowed = !checksRanges || firewallAllows(plan, source);
    const key = (fromNode ? 1 : 0) | (fromLocalPod ? 2 : 0) | (allowed ? 4 : 0);
    let route = routes.get(key);
    if (route === undefined) {
      // masqueradeAll only decides masquerade, which a route does not carry.
      route = routeOf(
        decideFrontend(
          plan,
          frontend,
          { masqueradeAll: false, localDetector: ctx.localDetector },
          {
            source,
            fromNode,
            fromLocalPod,
          },
        ),
      );
      routes.set(key, route);
    }
    return route;
  };
}
