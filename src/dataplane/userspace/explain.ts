// The userspace mode for the explainer: the capture rules a full sync writes (render.ts: REDIRECT
// or DNAT of each frontend to its listener's proxy port), traced by the iptables tracer, then the
// listener: which endpoints its router (routes.ts, the plan's decision for that frontend) lets a
// new connection from this client use. The proxy connects to the endpoint itself, so endpoints
// always see the node's address. Proxy ports are chosen when listeners open: offline they are
// numbered from the start of --proxy-port-range (or 41000), and say so.
import { planNodeOf, planOf } from '../../plan/service-port.ts';
import type { ModeExplainer, ModeRenderInput, RenderedRules } from '../common/explain.ts';
import { DEFAULT_USERSPACE_SETTINGS, localDetectorFor } from '../common/settings.ts';
import {
  combinePaths,
  splitHostPort,
  TraceError,
  type TracedPath,
  type TracedRule,
  type TraceResult,
} from '../common/trace.ts';
import { parseRestore, traceIptables } from '../iptables/tracer.ts';
import { hostIPFor, listenIPFor, nodeAddressCheck } from './addresses.ts';
import { USERSPACE_JUMPS } from './owner.ts';
import { frontendsOf, renderCapture, type CaptureListener } from './render.ts';
import type { Router } from './route.ts';
import { routerFor } from './routes.ts';

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
const FIRST_PLACEHOLDER_PORT = 41000;

interface Listener {
  readonly listener: CaptureListener;
  readonly router: Router;
}

/** The listeners a full sync opens, and the capture rules that send traffic to them. */
export function fullCapture(input: ModeRenderInput): {
  readonly text: string;
  readonly listeners: ReadonlyMap<number, Listener>;
} {
  const { family, snapshot, settings, node, hostAddresses } = input;
  const userspace = settings.userspace ?? DEFAULT_USERSPACE_SETTINGS;
  const planNode = planNodeOf(snapshot);
  const ctx = {
    localDetector: localDetectorFor(settings, family, node),
    isNodeAddress: nodeAddressCheck(family, node, hostAddresses),
  };
  const listeners = new Map<number, Listener>();
  let proxyPort = userspace.portRange?.base ?? FIRST_PLACEHOLDER_PORT;
  for (const state of snapshot.servicePorts.values()) {
    // Node.js has no SCTP sockets: SCTP service ports get no listener.
    if (state.servicePort.id.protocol === 'SCTP') continue;
    for (const frontend of frontendsOf(state.servicePort)) {
      const listener = { servicePort: state.servicePort, frontend, proxyPort };
      listeners.set(proxyPort++, { listener, router: routerFor(planOf(state, planNode), frontend, ctx) });
    }
  }
  const text = renderCapture(
    [...listeners.values()].map((l) => l.listener),
    {
      family,
      listenIP: listenIPFor(userspace.bindAddress, family),
      hostIP: hostIPFor(family, node, hostAddresses),
    },
  ).text;
  return { text, listeners };
}

function listenerStep(listener: CaptureListener, text: string): TracedRule {
  const sp = listener.servicePort;
  return {
    table: 'userspace',
    chain: 'listener',
    rule: `${sp.id.protocol} listener on proxy port ${listener.proxyPort} for the ${listener.frontend} of ${sp.id.printable}`,
    element: { set: 'route', text },
  };
}

export const userspaceExplainer: ModeExplainer = {
  localhostNodePorts: false,
  rejectsNodeTrafficToRemoteExternalFrontends: false,
  rejectsUnusedClusterIPPorts: false,
  verdictFromRules:
    'the userspace proxy opens its own connection to the endpoint, so the endpoint always sees the ' +
    "node's address; proxy ports in the quoted rules are numbered in order when explained offline",
  render(input): RenderedRules {
    const capture = fullCapture(input);
    const rules = parseRestore(capture.text);
    const trace = (...args: Parameters<RenderedRules['trace']>): TraceResult => {
      const [packet, host] = args;
      const captured = traceIptables(rules, packet, host, USERSPACE_JUMPS);
      if (captured.outcome.kind !== 'endpoints') return captured;
      const first = captured.paths[0];
      if (!first || first.end.kind !== 'dnat') throw new TraceError('a capture path without its proxy port');
      const port = splitHostPort(first.end.endpoint).port;
      const entry = capture.listeners.get(port);
      if (!entry) throw new TraceError(`captured to proxy port ${port}, which no listener has`);
      const route = entry.router({ ip: packet.sourceIP, port: 40000 });
      const before = first.rules;
      switch (route.kind) {
        case 'endpoints': {
          const paths: TracedPath[] = route.endpoints.map((ep, index) => ({
            end: { kind: 'dnat', endpoint: ep.endpoint },
            masquerade: true,
            choices: index === 0 ? [] : [`balancer: endpoint ${index + 1} of ${route.endpoints.length}`],
            rules: [
              ...before,
              listenerStep(entry.listener, `connects to ${ep.endpoint} from the node's address`),
            ],
          }));
          return combinePaths(paths);
        }
        case 'reject':
        case 'drop':
          return combinePaths([
            {
              end: { kind: route.kind },
              masquerade: false,
              choices: [],
              rules: [
                ...before,
                listenerStep(
                  entry.listener,
                  route.kind === 'reject'
                    ? 'no endpoint: the connection is reset (TCP) or the datagram dropped (UDP)'
                    : 'no endpoint this client may use: the connection is closed',
                ),
              ],
            },
          ]);
      }
    };
    return {
      syntax: 'iptables-save',
      trace,
      hookOf: (table, chain) =>
        table === 'userspace'
          ? { hook: 'listener' }
          : BUILTIN_CHAINS.has(chain)
            ? { hook: chain.toLowerCase() }
            : undefined,
      quote: (table, chain, rule) => (table === 'userspace' ? rule : `-A ${chain} ${rule}`),
    };
  },
};
