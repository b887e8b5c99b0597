// The daemon's reading of its Node object, through the one Node parser (model/node.ts): the
// families and node IPs the backends are created with, and what a Node update must not change
// without a restart.
import type { Node } from 'kubernetes-types/core/v1.d.ts';
import type { NodeInfo } from '../dataplane/common/settings.ts';
import { parseNode } from '../model/node.ts';

export type { NodeInfo };

export function nodeInfoOf(node: Node, bindAddress: string | undefined): NodeInfo {
  const parsed = parseNode(node, { bindAddress });
  return {
    name: parsed.name,
    primaryFamily: parsed.primaryFamily,
    ips: parsed.ips,
    podCIDRs: parsed.podCIDRs,
  };
}

/** The node IPs as text that changes exactly when they do (the daemon restarts then). */
export function nodeIPsKey(node: Node): string {
  return JSON.stringify(parseNode(node).ips);
}

/** The podCIDRs as text that changes exactly when they do (NodeCIDR detection restarts then). */
export function podCIDRsKey(node: Node): string {
  return JSON.stringify(parseNode(node).podCIDRs);
}
