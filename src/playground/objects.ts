// The Node objects the namespace cluster registers with the in-repo API server.
import type { Node } from 'kubernetes-types/core/v1.d.ts';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** A Node with InternalIPs, pod CIDRs and an optional zone label, as a kubelet would register it. */
export function nodeObject(spec: {
  readonly name: string;
  readonly ips: readonly string[];
  readonly podCIDRs: readonly string[];
  readonly zone?: string;
}): Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      labels: {
        'kubernetes.io/hostname': spec.name,
        ...(spec.zone ? { [ZONE_LABEL]: spec.zone } : {}),
      },
    },
    spec: { podCIDR: spec.podCIDRs[0] ?? '', podCIDRs: [...spec.podCIDRs] },
    status: {
      addresses: [
        ...spec.ips.map((address) => ({ type: 'InternalIP', address })),
        { type: 'Hostname', address: spec.name },
      ],
    },
  };
}
