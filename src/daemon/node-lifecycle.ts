// Our Node object over the daemon's life, as upstream v1.36's NodeManager: wait for it at start up
// to 30 s (its addresses decide the families, its zone feeds topology), then carry on without it
// (the node IP comes from bindAddress, else loopback) unless NodeCIDR detection needs its
// podCIDRs. Then follow it: topology changes force a full sync; new node IPs and deletion are
// logged and the proxy keeps serving with what it has (v1.36 no longer exits on them); new podCIDRs
// under NodeCIDR detection still end the daemon so it restarts with them. Node eligibility
// (deletion, the autoscaler's taint) goes to /healthz. (docs/compatibility.md, "Node handling".)
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import type { KubeRequester } from '../k8s/client.ts';
import type { Reflector } from '../k8s/reflector.ts';
import { watchNode, type WatchTuning } from '../k8s/watches.ts';
import { log } from '../log/log.ts';
import type { ProxyHealth } from '../server/health.ts';
import { nodeIPsKey, podCIDRsKey } from './node.ts';

const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';
/** How long start-up waits for the Node, as upstream v1.36 (it waited 5 minutes before). */
export const NODE_WAIT_TIMEOUT_MS = 30_000;

export function nodeEligible(node: Node): boolean {
  if (node.metadata?.deletionTimestamp) return false;
  return !(node.spec?.taints ?? []).some((taint) => taint.key === TO_BE_DELETED_TAINT);
}

function usableNode(node: Node | undefined, requirePodCIDRs: boolean): node is Node {
  if (!node || (node.status?.addresses ?? []).length === 0) return false;
  return !requirePodCIDRs || (node.spec?.podCIDRs ?? []).length > 0;
}

export interface NodeLifecycleSettings {
  readonly nodeName: string;
  /** NodeCIDR local detection needs spec.podCIDRs before starting, and restarts when they change. */
  readonly requirePodCIDRs: boolean;
  readonly nodeWaitTimeoutMs?: number;
  /** Called when the daemon must exit (podCIDRs changed under NodeCIDR detection). */
  readonly onFatal: (message: string) => void;
}

/** What following the Node acts on once the daemon runs. */
export interface NodeFollowers {
  readonly health: Pick<ProxyHealth, 'setNodeEligible'>;
  /** Hands the updated Node to every family's model (which forces a full sync on a topology change). */
  readonly setNode: (node: Node) => void;
}

export class NodeLifecycle {
  readonly #settings: NodeLifecycleSettings;
  readonly #watch: Reflector<Node>;
  // Until the daemon follows the Node, the reflector's cache is all it needs.
  #update: (node: Node) => void = () => undefined;
  #remove: () => void = () => undefined;

  constructor(client: KubeRequester, settings: NodeLifecycleSettings, tuning: WatchTuning<never>) {
    this.#settings = settings;
    this.#watch = watchNode(
      client,
      settings.nodeName,
      {
        onAdd: (node) => this.#update(node),
        onUpdate: (_old, node) => this.#update(node),
        onDelete: () => this.#remove(),
      },
      tuning,
    );
  }

  start(): void {
    this.#watch.start();
  }

  stop(): Promise<void> {
    return this.#watch.stop();
  }

  /**
   * Resolves with the Node once it has addresses (and podCIDRs when required). After the timeout
   * (30 s, as v1.36) it resolves with undefined, and the caller falls back to bindAddress or
   * loopback; only when podCIDRs are required does it throw.
   */
  async waitForNode(): Promise<Node | undefined> {
    const settings = this.#settings;
    const deadline = Date.now() + (settings.nodeWaitTimeoutMs ?? NODE_WAIT_TIMEOUT_MS);
    let logged = false;
    for (;;) {
      const node = this.#watch.get(settings.nodeName);
      if (usableNode(node, settings.requirePodCIDRs)) return node;
      if (Date.now() > deadline) {
        if (settings.requirePodCIDRs) {
          throw new Error(
            `timed out waiting for Node ${settings.nodeName} to have addresses and spec.podCIDRs (detectLocalMode NodeCIDR)`,
          );
        }
        log.error('Timed out waiting for the Node; carrying on without its IPs', undefined, {
          node: settings.nodeName,
          timeout: `${String((settings.nodeWaitTimeoutMs ?? NODE_WAIT_TIMEOUT_MS) / 1000)}s`,
        });
        return undefined;
      }
      if (!logged) {
        log.info('Waiting for the Node object', { node: settings.nodeName });
        logged = true;
      }
      // Polls the informer cache (a map lookup), so a short interval costs nothing and saves
      // up to a second of cold start.
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * From now on, changes of the Node (`node` is the one the daemon started with) reach the
   * followers, or end the daemon when it must restart to pick them up.
   */
  follow(node: Node, followers: NodeFollowers, options: { readonly synthetic?: boolean } = {}): void {
    const settings = this.#settings;
    let knownIPs = nodeIPsKey(node);
    const initialPodCIDRs = podCIDRsKey(node);
    this.#update = (updated) => {
      followers.health.setNodeEligible(nodeEligible(updated));
      const ips = nodeIPsKey(updated);
      if (ips !== knownIPs) {
        // v1.36 logs this and goes on with the IPs it started with; so do we (rules that name a
        // node IP keep the old one until a restart).
        log.warn('The IPs of the Node changed; restart kube-proxy to use them', {
          node: settings.nodeName,
          old: knownIPs,
          new: ips,
        });
        knownIPs = ips;
      }
      if (settings.requirePodCIDRs && podCIDRsKey(updated) !== initialPodCIDRs) {
        settings.onFatal(`the podCIDRs of Node ${settings.nodeName} changed; restarting to pick them up`);
        return;
      }
      followers.setNode(updated);
    };
    this.#remove = () => {
      followers.health.setNodeEligible(false);
      log.warn('The Node was deleted; kube-proxy keeps its rules and goes on (as upstream v1.36)', {
        node: settings.nodeName,
      });
    };
    // The Node may have changed (or gone) while the backends were being created: replay it.
    const latest = this.#watch.get(settings.nodeName);
    if (!latest) {
      if (options.synthetic !== true) this.#remove();
    } else if (latest.metadata?.resourceVersion !== node.metadata?.resourceVersion) this.#update(latest);
  }
}

/**
 * The Node the daemon runs with when the real one did not show up in time: one InternalIP, the
 * bindAddress when it is a specific IP, else loopback (upstream's "assuming loopback").
 */
export function fallbackNode(nodeName: string, bindAddress: string | undefined): Node {
  return {
    metadata: { name: nodeName },
    status: { addresses: [{ type: 'InternalIP', address: bindAddress ?? '127.0.0.1' }] },
  };
}
