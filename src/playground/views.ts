// What get and describe print: kubectl's columns and fields for the playground's objects, and
// the Pod and Deployment objects the playground keeps outside the API server. Pure.
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import { field, isRecord, stringField } from '../model/validate.ts';
import type { Kind } from './commands.ts';
import type { RunningPod } from './controller.ts';
import { NODE_NAMES, READY_ANNOTATION, type DeploymentSpec, type NodeName } from './workloads.ts';

export const ZONES: Readonly<Record<NodeName, string>> = { node1: 'zone-a', node2: 'zone-b' };
export const NODE_IPS: Readonly<Record<NodeName, string>> = { node1: '192.0.2.11', node2: '192.0.2.12' };

export function resourceName(kind: Kind): string {
  switch (kind) {
    case 'Service':
      return 'service';
    case 'EndpointSlice':
      return 'endpointslice.discovery.k8s.io';
    case 'Pod':
      return 'pod';
    case 'Deployment':
      return 'deployment.apps';
    case 'Node':
      return 'node';
  }
}

export function plural(kind: Kind): string {
  return `${kind.toLowerCase()}s`;
}

/** A Pod object for -o yaml/json (the playground's pods are not in the API server). */
export function podObject(pod: RunningPod): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      namespace: pod.spec.namespace,
      name: pod.spec.name,
      labels: pod.spec.labels,
      ...(pod.spec.ready ? {} : { annotations: { [READY_ANNOTATION]: 'false' } }),
      ...(pod.spec.owner !== undefined
        ? { ownerReferences: [{ kind: 'Deployment', name: pod.spec.owner }] }
        : {}),
    },
    spec: {
      nodeName: pod.node,
      containers: [
        {
          name: 'echo',
          ports: pod.spec.ports.map((p) => ({
            ...(p.name ? { name: p.name } : {}),
            containerPort: p.port,
            protocol: p.protocol,
          })),
        },
      ],
    },
    status: {
      phase: 'Running',
      podIP: pod.ipv4,
      conditions: [{ type: 'Ready', status: pod.spec.ready ? 'True' : 'False' }],
    },
  };
}

export function deploymentObject(d: DeploymentSpec): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { namespace: d.namespace, name: d.name },
    spec: {
      replicas: d.replicas,
      selector: { matchLabels: d.selector },
      template: {
        metadata: { labels: d.template.labels },
        spec: {
          ...(d.template.node ? { nodeName: d.template.node } : {}),
          containers: [
            {
              name: 'echo',
              ports: d.template.ports.map((p) => ({ containerPort: p.port, protocol: p.protocol })),
            },
          ],
        },
      },
    },
  };
}

/**
 * `describe svc/NAME`: kubectl's fields, then what kube-proxy on node1 made of the Service (its
 * service ports, endpoints and selection, from the state dump).
 */
export function describeService(svc: Service, slices: readonly EndpointSlice[], dump: unknown): string[] {
  const namespace = svc.metadata?.namespace ?? 'default';
  const name = svc.metadata?.name ?? '';
  const spec = svc.spec ?? {};
  const lines = [
    `Name:                     ${name}`,
    `Namespace:                ${namespace}`,
    `Selector:                 ${
      Object.entries(spec.selector ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '<none>'
    }`,
    `Type:                     ${spec.type ?? 'ClusterIP'}`,
    `IP:                       ${spec.clusterIP ?? '<none>'}`,
    ...(svc.status?.loadBalancer?.ingress?.[0]?.ip
      ? [`LoadBalancer Ingress:     ${svc.status.loadBalancer.ingress[0].ip}`]
      : []),
  ];
  for (const port of spec.ports ?? []) {
    const label = port.name ?? '<unset>';
    lines.push(`Port:                     ${label}  ${port.port}/${port.protocol ?? 'TCP'}`);
    lines.push(`TargetPort:               ${String(port.targetPort ?? port.port)}/${port.protocol ?? 'TCP'}`);
    if (port.nodePort !== undefined)
      lines.push(`NodePort:                 ${label}  ${port.nodePort}/${port.protocol ?? 'TCP'}`);
    const eps = slices.flatMap((s) => {
      const p = (s.ports ?? []).find((sp) => (sp.name ?? '') === (port.name ?? ''));
      return p === undefined
        ? []
        : s.endpoints
            .filter((e) => e.conditions?.ready !== false)
            .flatMap((e) => e.addresses.map((a) => `${a}:${p.port ?? ''}`));
    });
    lines.push(`Endpoints:                ${eps.join(',') || '<none>'}`);
  }
  lines.push(
    `Session Affinity:         ${spec.sessionAffinity ?? 'None'}`,
    ...(spec.type === 'NodePort' || spec.type === 'LoadBalancer'
      ? [`External Traffic Policy:  ${spec.externalTrafficPolicy ?? 'Cluster'}`]
      : []),
    `Internal Traffic Policy:  ${spec.internalTrafficPolicy ?? 'Cluster'}`,
    '',
    'kube-proxy on node1 (GET /debug/proxy/state):',
  );
  const families = field(dump, 'families');
  let shown = false;
  for (const family of Array.isArray(families) ? families : []) {
    const ports = field(family, 'servicePorts');
    for (const sp of Array.isArray(ports) ? ports : []) {
      if (field(sp, 'namespace') !== namespace || field(sp, 'name') !== name) continue;
      shown = true;
      const selection = field(sp, 'selection');
      const list = (name: string): string => {
        const v = field(selection, name);
        return Array.isArray(v) && v.length > 0 ? v.join(', ') : '<none>';
      };
      lines.push(
        `  ${String(field(sp, 'portName')) || '<unset>'} ${String(field(sp, 'clusterIP'))}:${String(field(sp, 'port'))}/${String(field(sp, 'protocol'))}`,
        `    endpoints:            ${((field(sp, 'endpoints') as unknown[] | undefined) ?? []).map((ep) => `${String(field(ep, 'ip'))}:${String(field(ep, 'port'))} (${field(ep, 'ready') === true ? 'ready' : 'not ready'}, ${String(field(ep, 'nodeName'))})`).join(', ') || '<none>'}`,
        `    cluster traffic to:   ${list('clusterEndpoints')}`,
        `    local traffic to:     ${list('localEndpoints')}`,
      );
    }
  }
  if (!shown) lines.push('  not programmed (see explain for why)');
  return lines;
}

export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 2)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

function portsText(svc: Service): string {
  return (
    (svc.spec?.ports ?? [])
      .map((p) => `${p.port}${p.nodePort !== undefined ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`)
      .join(',') || '<none>'
  );
}

function labelsText(labels: unknown): string {
  return isRecord(labels)
    ? Object.entries(labels)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(',') || '<none>'
    : '<none>';
}

/** kubectl-like columns for one kind. */
export function tableOf(
  kind: Kind,
  items: readonly unknown[],
  wide: boolean,
  withNamespace: boolean,
): string[][] {
  const ns = (item: unknown) =>
    withNamespace ? [stringField(field(item, 'metadata'), 'namespace') ?? ''] : [];
  const nsHead = withNamespace ? ['NAMESPACE'] : [];
  switch (kind) {
    case 'Pod':
      return [
        [...nsHead, 'NAME', 'READY', 'STATUS', 'IP', 'NODE', ...(wide ? ['PORTS', 'LABELS'] : [])],
        ...items.map((item) => {
          const pod = item as {
            metadata: { name: string; labels: unknown };
            spec: {
              nodeName: string;
              containers: { ports: { containerPort: number; protocol: string }[] }[];
            };
            status: { podIP: string; conditions: { status: string }[] };
          };
          const ready = pod.status.conditions[0]?.status === 'True';
          return [
            ...ns(item),
            pod.metadata.name,
            ready ? '1/1' : '0/1',
            'Running',
            pod.status.podIP,
            pod.spec.nodeName,
            ...(wide
              ? [
                  pod.spec.containers
                    .flatMap((c) => c.ports.map((p) => `${p.containerPort}/${p.protocol}`))
                    .join(',') || '<none>',
                  labelsText(pod.metadata.labels),
                ]
              : []),
          ];
        }),
      ];
    case 'Service':
      return [
        [...nsHead, 'NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', ...(wide ? ['SELECTOR'] : [])],
        ...items.map((item) => {
          const svc = item as Service;
          return [
            ...ns(item),
            svc.metadata?.name ?? '',
            svc.spec?.type ?? 'ClusterIP',
            svc.spec?.clusterIP ?? '<none>',
            svc.status?.loadBalancer?.ingress?.[0]?.ip ??
              (svc.spec?.type === 'LoadBalancer' ? '<pending>' : '<none>'),
            portsText(svc),
            ...(wide ? [labelsText(svc.spec?.selector)] : []),
          ];
        }),
      ];
    case 'EndpointSlice':
      return [
        [...nsHead, 'NAME', 'ADDRESSTYPE', 'PORTS', 'ENDPOINTS', ...(wide ? ['CONDITIONS'] : [])],
        ...items.map((item) => {
          const slice = item as EndpointSlice;
          return [
            ...ns(item),
            slice.metadata?.name ?? '',
            slice.addressType,
            (slice.ports ?? []).map((p) => String(p.port ?? '')).join(',') || '<unset>',
            slice.endpoints.flatMap((e) => e.addresses).join(',') || '<none>',
            ...(wide
              ? [
                  slice.endpoints
                    .map(
                      (e) =>
                        `${e.addresses[0] ?? ''}=${e.conditions?.ready === false ? 'not-ready' : 'ready'}@${e.nodeName ?? '?'}`,
                    )
                    .join(','),
                ]
              : []),
          ];
        }),
      ];
    case 'Deployment':
      return [
        [...nsHead, 'NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE'],
        ...items.map((item) => {
          const replicas = Number(field(field(item, 'spec'), 'replicas'));
          return [
            ...ns(item),
            stringField(field(item, 'metadata'), 'name') ?? '',
            `${replicas}/${replicas}`,
            String(replicas),
            String(replicas),
          ];
        }),
      ];
    case 'Node':
      return [
        ['NAME', 'STATUS', 'INTERNAL-IP', 'ZONE', 'KUBE-PROXY'],
        ...items.map((item) => {
          const name = stringField(field(item, 'metadata'), 'name') ?? '';
          const node = NODE_NAMES.find((n) => n === name);
          return [
            name,
            'Ready',
            node ? NODE_IPS[node] : '?',
            node ? ZONES[node] : '?',
            name === 'node1' ? 'yes' : 'no',
          ];
        }),
      ];
  }
}
