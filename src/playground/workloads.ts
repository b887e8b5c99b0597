// Pods and Deployments as the playground runs them: read from manifests (only the fields it
// acts on), checked with errors that name the object and the field. The playground keeps them
// itself (the in-repo API server serves what kube-proxy watches: Services, EndpointSlices, Nodes);
// each Pod becomes a network namespace with an echo server on its container ports. Pure.
import {
  arrayField,
  field,
  isDNSLabel,
  isDNSSubdomain,
  isIntInRange,
  isRecord,
  stringField,
} from '../model/validate.ts';
import type { Protocol } from '../model/types.ts';

export type NodeName = 'node1' | 'node2';
export const NODE_NAMES: readonly NodeName[] = ['node1', 'node2'];

/** Readiness as the playground's kubelet reports it: set by this annotation ("false" = not ready). */
export const READY_ANNOTATION = 'playground.kube-proxy-ts/ready';

export interface ContainerPort {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
}

/** What a Pod manifest asks for. */
export interface PodSpec {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Undefined: the playground picks (the node with fewer pods). */
  readonly node: NodeName | undefined;
  readonly ports: readonly ContainerPort[];
  readonly ready: boolean;
  /** The Deployment that owns it, if any. */
  readonly owner?: string;
}

export interface DeploymentSpec {
  readonly namespace: string;
  readonly name: string;
  readonly replicas: number;
  readonly selector: Readonly<Record<string, string>>;
  /** The pod template as a Pod spec without a name. */
  readonly template: Omit<PodSpec, 'name' | 'namespace'>;
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

function labelsOf(value: unknown, where: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new ManifestError(`${where}: must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new ManifestError(`${where}.${key}: must be a string`);
    out[key] = v;
  }
  return out;
}

/** `namespace/name` of a manifest, checked; the namespace defaults to `default`. */
export function metaOf(obj: unknown, kind: string): { namespace: string; name: string } {
  const meta = field(obj, 'metadata');
  const name = stringField(meta, 'name') ?? '';
  if (!isDNSSubdomain(name)) {
    throw new ManifestError(`${kind} ${JSON.stringify(name)}: metadata.name must be a DNS subdomain`);
  }
  const namespace = stringField(meta, 'namespace') ?? 'default';
  if (!isDNSLabel(namespace)) {
    throw new ManifestError(
      `${kind} ${name}: metadata.namespace ${JSON.stringify(namespace)} is not a DNS label`,
    );
  }
  return { namespace, name };
}

function portsOf(spec: unknown, where: string): ContainerPort[] {
  const out: ContainerPort[] = [];
  const containers = arrayField(spec, 'containers') ?? [];
  containers.forEach((container, c) => {
    (arrayField(container, 'ports') ?? []).forEach((port, p) => {
      const at = `${where}.containers[${c}].ports[${p}]`;
      const number = field(port, 'containerPort');
      if (!isIntInRange(number, 1, 65535)) throw new ManifestError(`${at}.containerPort: must be 1-65535`);
      const protocol = stringField(port, 'protocol') ?? 'TCP';
      if (protocol !== 'TCP' && protocol !== 'UDP') {
        throw new ManifestError(
          `${at}.protocol: the playground's pods serve TCP and UDP, not ${JSON.stringify(protocol)}`,
        );
      }
      const name = stringField(port, 'name') ?? '';
      if (name !== '' && !isDNSLabel(name))
        throw new ManifestError(`${at}.name: ${JSON.stringify(name)} is not a port name`);
      if (out.some((other) => other.port === number && other.protocol === protocol)) {
        throw new ManifestError(`${at}: ${protocol} port ${number} is declared twice`);
      }
      out.push({ name, port: number, protocol });
    });
  });
  return out;
}

function nodeOf(spec: unknown, where: string): NodeName | undefined {
  const node = stringField(spec, 'nodeName');
  if (node === undefined || node === '') return undefined;
  if (node !== 'node1' && node !== 'node2') {
    throw new ManifestError(
      `${where}.nodeName: the playground has node1 and node2, not ${JSON.stringify(node)}`,
    );
  }
  return node;
}

/** `object`: `Pod web-1`; `path`: where the template sits in it (`spec.template.` or ''). */
function podTemplate(
  meta: unknown,
  spec: unknown,
  object: string,
  path: string,
): Omit<PodSpec, 'name' | 'namespace'> {
  const where = `${object}: ${path}`;
  const annotations = labelsOf(field(meta, 'annotations'), `${where}metadata.annotations`);
  return {
    labels: labelsOf(field(meta, 'labels'), `${where}metadata.labels`),
    node: nodeOf(spec, `${where}spec`),
    ports: portsOf(spec, `${where}spec`),
    ready: annotations[READY_ANNOTATION] !== 'false',
  };
}

export function parsePod(obj: unknown): PodSpec {
  const { namespace, name } = metaOf(obj, 'Pod');
  return { namespace, name, ...podTemplate(field(obj, 'metadata'), field(obj, 'spec'), `Pod ${name}`, '') };
}

export function parseDeployment(obj: unknown): DeploymentSpec {
  const { namespace, name } = metaOf(obj, 'Deployment');
  const where = `Deployment ${name}`;
  const spec = field(obj, 'spec');
  const replicas = field(spec, 'replicas') ?? 1;
  if (!isIntInRange(replicas, 0, 20))
    throw new ManifestError(`${where}: spec.replicas must be 0-20 in the playground`);
  const selector = labelsOf(
    field(field(spec, 'selector'), 'matchLabels'),
    `${where}: spec.selector.matchLabels`,
  );
  if (Object.keys(selector).length === 0)
    throw new ManifestError(`${where}: spec.selector.matchLabels is required`);
  const template = field(spec, 'template');
  const podT = podTemplate(field(template, 'metadata'), field(template, 'spec'), where, 'spec.template.');
  if (!Object.entries(selector).every(([key, value]) => podT.labels[key] === value)) {
    throw new ManifestError(`${where}: spec.template.metadata.labels must match spec.selector.matchLabels`);
  }
  return { namespace, name, replicas, selector, template: podT };
}

/**
 * The pods a Deployment should have: `<name>-1` … `<name>-<replicas>`; without a nodeName in the
 * template, odd ordinals go to node1 and even ones to node2, so replicas spread over both nodes.
 */
export function deploymentPods(deployment: DeploymentSpec): PodSpec[] {
  return Array.from({ length: deployment.replicas }, (_, i) => ({
    ...deployment.template,
    namespace: deployment.namespace,
    name: `${deployment.name}-${i + 1}`,
    node: deployment.template.node ?? (i % 2 === 0 ? 'node1' : 'node2'),
    owner: deployment.name,
  }));
}

/** True when the selector (Service spec.selector: equality on every key) picks these labels. */
export function selects(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value);
}
