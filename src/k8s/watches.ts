// The watches kube-proxy runs (spec 1.1): Services and EndpointSlices without the
// service-proxy-name label (they belong to another proxy) and without the headless label (the
// EndpointSlice controller copies Service labels onto slices, so one selector serves both), this
// Node only, by field selector, and every ServiceCIDR (networking.k8s.io/v1).
import type { Node, Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import type { KubeRequester } from './client.ts';
import type { ServiceCIDR } from '../model/service-cidr.ts';
import { Reflector, type ReflectorHandlers, type ReflectorOptions } from './reflector.ts';

export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';
export const PROXY_LABEL_SELECTOR = `!${SERVICE_PROXY_NAME_LABEL},!${HEADLESS_LABEL}`;

export const SERVICES_PATH = '/api/v1/services';
export const ENDPOINT_SLICES_PATH = '/apis/discovery.k8s.io/v1/endpointslices';
export const NODES_PATH = '/api/v1/nodes';
export const SERVICE_CIDRS_PATH = '/apis/networking.k8s.io/v1/servicecidrs';
/** How often a ServiceCIDR list is tried again on an API server that does not serve them (404). */
export const SERVICE_CIDRS_NOT_FOUND_RETRY_MS = 60_000;

/** Tuning shared by all watches (backoff, timeouts, metrics); tests shrink the timings. */
export type WatchTuning<T extends KubeObjectLike> = Omit<
  ReflectorOptions<T>,
  | 'client'
  | 'path'
  | 'labelSelector'
  | 'fieldSelector'
  | 'handlers'
  | 'name'
  | 'cacheTransform'
  | 'expectedKind'
>;
type KubeObjectLike = Service | EndpointSlice | Node | ServiceCIDR;

/** What to watch for each kind, as plain data (pure). */
export interface WatchSpec {
  readonly name: string;
  readonly path: string;
  /** What every object of the collection is; anything else is skipped (Reflector.expectedKind). */
  readonly expectedKind: { readonly apiVersion: string; readonly kind: string };
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

export function serviceWatchSpec(): WatchSpec {
  return {
    name: 'services',
    path: SERVICES_PATH,
    expectedKind: { apiVersion: 'v1', kind: 'Service' },
    labelSelector: PROXY_LABEL_SELECTOR,
  };
}

export function endpointSliceWatchSpec(): WatchSpec {
  return {
    name: 'endpointslices',
    path: ENDPOINT_SLICES_PATH,
    expectedKind: { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' },
    labelSelector: PROXY_LABEL_SELECTOR,
  };
}

export function nodeWatchSpec(nodeName: string): WatchSpec {
  if (nodeName === '') throw new Error('node watch: the node name is empty');
  return {
    name: `node ${nodeName}`,
    path: NODES_PATH,
    expectedKind: { apiVersion: 'v1', kind: 'Node' },
    fieldSelector: `metadata.name=${nodeName}`,
  };
}

export function serviceCIDRWatchSpec(): WatchSpec {
  return {
    name: 'servicecidrs',
    path: SERVICE_CIDRS_PATH,
    expectedKind: { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR' },
  };
}

function make<T extends KubeObjectLike>(
  spec: WatchSpec,
  client: KubeRequester,
  handlers: ReflectorHandlers<T>,
  tuning: WatchTuning<T>,
  cacheTransform?: (obj: T) => T,
): Reflector<T> {
  return new Reflector<T>({
    ...tuning,
    ...spec,
    client,
    handlers,
    ...(cacheTransform ? { cacheTransform } : {}),
  });
}

/**
 * Keeps only identity and version in the cache: the relist diff reads the version, and a delete
 * found by a relist needs only namespace and name. The model holds its own parsed copy; caching
 * whole Services and EndpointSlices too would double the proxy's memory at scale, and even uid,
 * kind and apiVersion are a few MiB at 44k objects that nothing reads.
 */
export function metadataOnly<T extends KubeObjectLike>(obj: T): T {
  const meta = obj.metadata ?? {};
  return {
    metadata: { name: meta.name, namespace: meta.namespace, resourceVersion: meta.resourceVersion },
  } as T;
}

export function watchServices(
  client: KubeRequester,
  handlers: ReflectorHandlers<Service>,
  tuning: WatchTuning<Service> = {},
): Reflector<Service> {
  return make(serviceWatchSpec(), client, handlers, tuning, metadataOnly);
}

export function watchEndpointSlices(
  client: KubeRequester,
  handlers: ReflectorHandlers<EndpointSlice>,
  tuning: WatchTuning<EndpointSlice> = {},
): Reflector<EndpointSlice> {
  return make(endpointSliceWatchSpec(), client, handlers, tuning, metadataOnly);
}

export function watchNode(
  client: KubeRequester,
  nodeName: string,
  handlers: ReflectorHandlers<Node>,
  tuning: WatchTuning<Node> = {},
): Reflector<Node> {
  return make(nodeWatchSpec(nodeName), client, handlers, tuning);
}

/**
 * Every ServiceCIDR. An API server without the resource (404: before v1.33, or the API group
 * disabled) calls `onNotFound` once per try and is asked again every
 * SERVICE_CIDRS_NOT_FOUND_RETRY_MS (tests shrink it), quietly; the proxy works on without them.
 */
export function watchServiceCIDRs(
  client: KubeRequester,
  handlers: ReflectorHandlers<ServiceCIDR>,
  onNotFound: () => void,
  tuning: WatchTuning<ServiceCIDR> & { readonly notFoundRetryMs?: number } = {},
): Reflector<ServiceCIDR> {
  const { notFoundRetryMs, ...rest } = tuning;
  return new Reflector<ServiceCIDR>({
    ...rest,
    ...serviceCIDRWatchSpec(),
    client,
    handlers,
    notFound: { retryMs: notFoundRetryMs ?? SERVICE_CIDRS_NOT_FOUND_RETRY_MS, onNotFound },
  });
}
