// The playground's EndpointSlice controller: for every Service with a selector, the slices that
// list the pods it selects, as kube-controller-manager's would. Pure: the session writes the
// result to the API server. Differences from the real controller, on purpose: IPv4 only; one
// slice per distinct port mapping (named `<service>-auto`, `<service>-auto-2`, …) with no
// 100-endpoint limit; readiness comes from the pod's annotation, not from probes; a deleted pod
// leaves at once (no terminating phase); hints are set for `trafficDistribution: PreferClose`.
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice, Endpoint, EndpointPort } from 'kubernetes-types/discovery/v1.d.ts';
import { SERVICE_NAME_LABEL } from '../model/endpointslice.ts';
import { arrayField, field, isRecord, stringField } from '../model/validate.ts';
import { selects, type NodeName, type PodSpec } from './workloads.ts';

export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY = 'playground.kube-proxy-ts';

/** A pod as it runs: its spec, where, and its address. */
export interface RunningPod {
  readonly spec: PodSpec;
  readonly node: NodeName;
  readonly ipv4: string;
}

function selectorOf(service: Service): Record<string, string> | undefined {
  const selector = field(field(service, 'spec'), 'selector');
  if (!isRecord(selector)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(selector)) if (typeof value === 'string') out[key] = value;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The pod port a Service port's targetPort names (a number, a container port name, or the port). */
function targetPortOf(port: unknown, pod: RunningPod): number | undefined {
  const protocol = stringField(port, 'protocol') ?? 'TCP';
  const target = field(port, 'targetPort') ?? field(port, 'port');
  if (typeof target === 'number') return target;
  if (typeof target === 'string') {
    if (/^\d+$/.test(target)) return Number(target);
    return pod.spec.ports.find((p) => p.name === target && p.protocol === protocol)?.port;
  }
  return undefined;
}

/** The slices this controller wants for one Service (none without a selector). */
export function desiredSlices(
  service: Service,
  pods: readonly RunningPod[],
  zones: Readonly<Record<NodeName, string>>,
): EndpointSlice[] {
  const selector = selectorOf(service);
  const namespace = service.metadata?.namespace ?? 'default';
  const name = service.metadata?.name ?? '';
  if (!selector || name === '') return [];
  const spec = field(service, 'spec');
  const ports = arrayField(spec, 'ports') ?? [];
  const publishNotReady = field(spec, 'publishNotReadyAddresses') === true;
  const preferClose = stringField(spec, 'trafficDistribution') === 'PreferClose';
  // Pods grouped by how the Service's ports map onto them: one slice per mapping.
  const groups = new Map<string, { ports: EndpointPort[]; endpoints: Endpoint[] }>();
  const selected = pods
    .filter((pod) => pod.spec.namespace === namespace && selects(selector, pod.spec.labels))
    .sort((a, b) => a.spec.name.localeCompare(b.spec.name));
  for (const pod of selected) {
    const mapped: EndpointPort[] = [];
    for (const port of ports) {
      const target = targetPortOf(port, pod);
      if (target === undefined) continue;
      mapped.push({
        name: stringField(port, 'name') ?? '',
        port: target,
        protocol: stringField(port, 'protocol') ?? 'TCP',
      });
    }
    const key = JSON.stringify(mapped);
    const group = groups.get(key) ?? { ports: mapped, endpoints: [] };
    groups.set(key, group);
    const ready = publishNotReady || pod.spec.ready;
    group.endpoints.push({
      addresses: [pod.ipv4],
      conditions: { ready, serving: ready, terminating: false },
      nodeName: pod.node,
      zone: zones[pod.node],
      targetRef: { kind: 'Pod', namespace, name: pod.spec.name },
      ...(preferClose ? { hints: { forZones: [{ name: zones[pod.node] }] } } : {}),
    });
  }
  const slices = [...groups.values()];
  // A Service that selects nothing still gets one empty slice, as the real controller writes.
  if (slices.length === 0) slices.push({ ports: [], endpoints: [] });
  return slices.map((group, i) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace,
      name: i === 0 ? `${name}-auto` : `${name}-auto-${i + 1}`,
      labels: { [SERVICE_NAME_LABEL]: name, [MANAGED_BY_LABEL]: MANAGED_BY },
    },
    addressType: 'IPv4',
    ports: group.ports,
    endpoints: group.endpoints,
  }));
}

/** True for a slice this controller wrote. */
export function isManaged(slice: EndpointSlice): boolean {
  return slice.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
}

/** The parts of a slice the controller sets, to tell whether an update is needed. */
export function sliceContent(slice: EndpointSlice): string {
  return JSON.stringify([slice.metadata?.labels ?? {}, slice.ports ?? [], slice.endpoints]);
}
