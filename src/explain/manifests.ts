// Manifests (Services, EndpointSlices, the Node, as `kubectl get -o yaml` writes them) into the
// explainer's state, through the real model: offline, the same decisions as the proxy would make
// on that node. Objects the live proxy never sees (another proxy's, headless) are kept apart, so
// "why not" can name them. Pure: the caller reads the files.
import type { Node, Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import type { DataplaneSettings } from '../dataplane/common/settings.ts';
import { SERVICE_NAME_LABEL } from '../model/endpointslice.ts';
import { parseNode } from '../model/node.ts';
import { describeValue, formatProblem, type Problem } from '../model/problem.ts';
import { servicePortsFromService } from '../model/service.ts';
import { ProxyModel } from '../model/tracker.ts';
import type { IPFamily } from '../model/types.ts';
import { field, isRecord, stringField } from '../model/validate.ts';
import type { ExplainFamily, ExplainState, SkippedService, SliceSummary } from './state.ts';

// The labels the live watches exclude server-side (src/k8s/watches.ts): restated here, since
// the explainer must not import the API client.
const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';
const HEADLESS_LABEL = 'service.kubernetes.io/headless';

export interface ManifestObjects {
  readonly services: readonly Service[];
  readonly slices: readonly EndpointSlice[];
  readonly nodes: readonly Node[];
  /** ServiceCIDR objects (networking.k8s.io/v1): in nftables mode their unallocated addresses drop. */
  readonly serviceCIDRs: readonly unknown[];
  /** Objects of other kinds, by `kind name`: ignored, listed so the CLI can say so. */
  readonly ignored: readonly string[];
}

/** Splits documents (and `List`s, nested) by kind; anything that is not an object is an error. */
export function sortObjects(documents: readonly unknown[], where: string): ManifestObjects {
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  const nodes: Node[] = [];
  const serviceCIDRs: unknown[] = [];
  const ignored: string[] = [];
  const visit = (doc: unknown, at: string): void => {
    if (doc === null || doc === undefined) return;
    if (!isRecord(doc)) throw new Error(`${at}: not a Kubernetes object: ${describeValue(doc)}`);
    const kind = stringField(doc, 'kind');
    const items = field(doc, 'items');
    if (kind !== undefined && kind.endsWith('List') && Array.isArray(items)) {
      items.forEach((item, i) => visit(item, `${at} items[${i}]`));
      return;
    }
    switch (kind) {
      case 'Service':
        services.push(doc);
        return;
      case 'EndpointSlice':
        slices.push(doc as unknown as EndpointSlice);
        return;
      case 'Node':
        nodes.push(doc);
        return;
      case 'ServiceCIDR':
        serviceCIDRs.push(doc);
        return;
      default:
        ignored.push(`${describeValue(kind)} ${describeValue(stringField(field(doc, 'metadata'), 'name'))}`);
    }
  };
  documents.forEach((doc, i) => visit(doc, `${where} document ${i + 1}`));
  return { services, slices, nodes, serviceCIDRs, ignored };
}

function labelsOf(obj: unknown): Readonly<Record<string, unknown>> {
  const labels = field(field(obj, 'metadata'), 'labels');
  return isRecord(labels) ? labels : {};
}

function namespacedName(obj: unknown): string {
  const metadata = field(obj, 'metadata');
  return `${stringField(metadata, 'namespace') ?? 'default'}/${stringField(metadata, 'name') ?? ''}`;
}

function stringsAt(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** The addresses a Service would answer on, for "why not" matching. */
function addressesOf(svc: Service): string[] {
  const spec = field(svc, 'spec');
  const ingress = field(field(field(svc, 'status'), 'loadBalancer'), 'ingress');
  const ingressIPs = Array.isArray(ingress) ? ingress.map((i) => stringField(i, 'ip') ?? '') : [];
  return [
    ...stringsAt(field(spec, 'clusterIPs')),
    stringField(spec, 'clusterIP') ?? '',
    ...stringsAt(field(spec, 'externalIPs')),
    ...ingressIPs,
  ].filter((text) => text !== '' && text !== 'None');
}

/** Why a Service has no service port in this family, when it has none. */
function skipReason(svc: Service, family: IPFamily, problems: readonly Problem[]): string {
  const labels = labelsOf(svc);
  if (SERVICE_PROXY_NAME_LABEL in labels)
    return `labelled ${SERVICE_PROXY_NAME_LABEL}=${describeValue(labels[SERVICE_PROXY_NAME_LABEL])}: another proxy handles it`;
  if (HEADLESS_LABEL in labels) return `labelled ${HEADLESS_LABEL}: headless, DNS only`;
  const spec = field(svc, 'spec');
  if (field(spec, 'type') === 'ExternalName') return 'type ExternalName: a DNS alias, nothing to proxy';
  const clusterIP = field(spec, 'clusterIP');
  if (clusterIP === 'None') return 'headless (spec.clusterIP None): DNS only';
  if (clusterIP === undefined || clusterIP === '') return 'no spec.clusterIP yet';
  const first = problems[0];
  if (first) return `skipped as invalid: ${formatProblem(first)}`;
  const ports = field(spec, 'ports');
  if (!Array.isArray(ports) || ports.length === 0) return 'no spec.ports';
  return `no ${family} cluster IP (spec.clusterIPs, spec.ipFamilies)`;
}

function sliceSummary(slice: EndpointSlice): SliceSummary {
  const labels = labelsOf(slice);
  const serviceName = labels[SERVICE_NAME_LABEL];
  const namespace = stringField(field(slice, 'metadata'), 'namespace') ?? 'default';
  const ports = field(slice, 'ports');
  const endpoints = field(slice, 'endpoints');
  return {
    slice: namespacedName(slice),
    service: typeof serviceName === 'string' ? `${namespace}/${serviceName}` : '',
    addressType: stringField(slice, 'addressType') ?? '',
    ports: Array.isArray(ports)
      ? ports.map((p) => ({
          name: stringField(p, 'name') ?? '',
          protocol: stringField(p, 'protocol') ?? 'TCP',
          port: typeof field(p, 'port') === 'number' ? (field(p, 'port') as number) : 0,
        }))
      : [],
    endpoints: Array.isArray(endpoints) ? endpoints.length : 0,
  };
}

export interface ManifestState {
  readonly state: ExplainState;
  /** Objects skipped as invalid, formatted (formatProblem). */
  readonly problems: readonly string[];
}

/**
 * The node's view of the objects: one model per family, as the daemon keeps them. `nodeName`
 * picks the Node among the objects (the only one when empty); without a Node object the node
 * has no addresses and every endpoint counts as remote unless its nodeName matches.
 */
export function stateFromManifests(
  objects: ManifestObjects,
  options: {
    readonly nodeName: string;
    readonly mode: string;
    readonly settings: DataplaneSettings;
    readonly from: string;
  },
): ManifestState {
  const node =
    options.nodeName === ''
      ? objects.nodes.length === 1
        ? objects.nodes[0]
        : undefined
      : objects.nodes.find((n) => stringField(field(n, 'metadata'), 'name') === options.nodeName);
  const nodeName = options.nodeName || (node ? (stringField(field(node, 'metadata'), 'name') ?? '') : '');
  if (nodeName === '') {
    throw new Error(
      objects.nodes.length === 0
        ? 'no node: pass --node NAME (and ideally the Node object, for its addresses and zone)'
        : `${objects.nodes.length} Node objects: pass --node NAME to pick one`,
    );
  }
  const problems: string[] = [];
  const onProblem = (problem: Problem): void => {
    const text = formatProblem(problem);
    if (!problems.includes(text)) problems.push(text);
  };
  const parsedNode = node ? parseNode(node) : undefined;
  for (const problem of parsedNode?.problems ?? []) onProblem(problem);
  const proxied = (obj: unknown): boolean => {
    const labels = labelsOf(obj);
    return !(SERVICE_PROXY_NAME_LABEL in labels) && !(HEADLESS_LABEL in labels);
  };

  const families: ExplainFamily[] = (['IPv4', 'IPv6'] as const).map((family) => {
    const model = new ProxyModel({ family, nodeName, proxyStartTimeMs: 0, onProblem });
    if (node) model.setNode(node);
    const skipped: SkippedService[] = [];
    for (const svc of objects.services) {
      const result = servicePortsFromService(svc, family);
      if (result.ports.length === 0 || !proxied(svc)) {
        const addresses = addressesOf(svc);
        // Only name a Service for a family it has an address of (or none at all).
        if (addresses.length > 0 || family === 'IPv4')
          skipped.push({
            service: namespacedName(svc),
            reason: skipReason(svc, family, result.problems),
            addresses,
          });
        if (!proxied(svc)) continue;
      }
      model.upsertService(svc);
    }
    for (const slice of objects.slices) if (proxied(slice)) model.upsertSlice(slice);
    for (const serviceCIDR of objects.serviceCIDRs) model.upsertServiceCIDR(serviceCIDR);
    const snapshot = model.snapshot();
    return {
      family,
      node: snapshot.node,
      servicePorts: new Map(snapshot.servicePorts),
      hostAddresses: [],
      serviceCIDRs: snapshot.serviceCIDRs,
      skipped,
    };
  });
  return {
    state: {
      source: { kind: 'manifests', from: options.from },
      node: nodeName,
      mode: options.mode,
      settings: options.settings,
      families,
      slices: objects.slices.map(sliceSummary),
    },
    problems,
  };
}
