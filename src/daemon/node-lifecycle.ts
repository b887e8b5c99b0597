// Our Node object over the daemon's life: wait for it at start (its addresses decide the families,
// its zone feeds topology), then follow it. Topology changes force a full sync; deletion, new IPs
// or (with NodeCIDR detection) new podCIDRs end the daemon so it restarts with them, as upstream
// does. Node eligibility (deletion, the autoscaler's taint) goes to /healthz.
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import type { KubeRequester } from '../k8s/client.ts';
import type { Reflector } from '../k8s/reflector.ts';
import { watchNode, type WatchTuning } from '../k8s/watches.ts';
import { log } from '../log/log.ts';
import type { ProxyHealth } from '../server/health.ts';
import { nodeIPsKey, podCIDRsKey } from './node.ts';

const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

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
  /** Called when the daemon must exit (node deleted, node IPs or podCIDRs changed). */
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

  /** Resolves with the Node once it has addresses (and podCIDRs when required); throws after the timeout. */
  async waitForNode(): Promise<Node> {
    const settings = this.#settings;
    const deadline = Date.now() + (settings.nodeWaitTimeoutMs ?? 300_000);
    let logged = false;
    for (;;) {
      const node = this.#watch.get(settings.nodeName);
      if (usableNode(node, settings.requirePodCIDRs)) return node;
      if (Date.now() > deadline) {
        throw new Error(
          settings.requirePodCIDRs
            ? `timed out waiting for Node ${settings.nodeName} to have addresses and spec.podCIDRs (detectLocalMode NodeCIDR)`
            : `timed out waiting for Node ${settings.nodeName} to exist with addresses`,
        );
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
  follow(node: Node, followers: NodeFollowers): void {
    const settings = this.#settings;
    const initialIPs = nodeIPsKey(node);
    const initialPodCIDRs = podCIDRsKey(node);
    this.#update = (updated) => {
      followers.health.setNodeEligible(nodeEligible(updated));
      if (nodeIPsKey(updated) !== initialIPs) {
        settings.onFatal(`the IPs of Node ${settings.nodeName} changed; restarting to pick them up`);
        return;
      }
      if (settings.requirePodCIDRs && podCIDRsKey(updated) !== initialPodCIDRs) {
        settings.onFatal(`the podCIDRs of Node ${settings.nodeName} changed; restarting to pick them up`);
        return;
      }
      followers.setNode(updated);
    };
    this.#remove = () => {
      followers.health.setNodeEligible(false);
      settings.onFatal(`Node ${settings.nodeName} was deleted`);
    };
    // The Node may have changed (or gone) while the backends were being created: replay it.
    const latest = this.#watch.get(settings.nodeName);
    if (!latest) this.#remove();
    else if (latest.metadata?.resourceVersion !== node.metadata?.resourceVersion) this.#update(latest);
  }
}
