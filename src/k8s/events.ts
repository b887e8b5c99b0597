// Kubernetes Events as upstream kube-proxy records them (spec 9.3): events.k8s.io/v1, reporting
// controller `kube-proxy`. Events are informational: a failed post is logged and never fails
// the caller, and recording never throws.
import type { ObjectReference, Service } from 'kubernetes-types/core/v1.d.ts';
import type { Event } from 'kubernetes-types/events/v1.d.ts';
import { log } from '../log/log.ts';
import type { KubeRequester } from './client.ts';

export type EventType = 'Normal' | 'Warning';

export const REPORTING_CONTROLLER = 'kube-proxy';
/** The API limits a note to 1 kB. */
const MAX_NOTE_BYTES = 1024;
const POST_TIMEOUT_MS = 10_000;

/** The Node reference upstream uses: the node name stands in for the UID. */
export function nodeRef(nodeName: string): ObjectReference {
  return { kind: 'Node', name: nodeName, uid: nodeName };
}

export function serviceRef(service: Service): ObjectReference {
  const meta = service.metadata ?? {};
  return {
    kind: 'Service',
    apiVersion: 'v1',
    ...(meta.namespace !== undefined ? { namespace: meta.namespace } : {}),
    ...(meta.name !== undefined ? { name: meta.name } : {}),
    ...(meta.uid !== undefined ? { uid: meta.uid } : {}),
    ...(meta.resourceVersion !== undefined ? { resourceVersion: meta.resourceVersion } : {}),
  };
}

/** RFC 3339 with microseconds, as metav1.MicroTime serialises. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function truncateNote(note: string): string {
  if (Buffer.byteLength(note) <= MAX_NOTE_BYTES) return note;
  let cut = note.slice(0, MAX_NOTE_BYTES);
  while (Buffer.byteLength(cut) > MAX_NOTE_BYTES) cut = cut.slice(0, -1);
  return cut;
}

export interface EventInput {
  readonly regarding: ObjectReference;
  readonly type: EventType;
  readonly reason: string;
  readonly action: string;
  readonly note: string;
}

/** Pure: the Event object to post (name `<object>.<hex nanoseconds>` as client-go). */
export function buildEvent(input: EventInput, reportingInstance: string, now: Date): Event {
  const namespace =
    input.regarding.namespace !== undefined && input.regarding.namespace !== ''
      ? input.regarding.namespace
      : 'default';
  const nanos = BigInt(now.getTime()) * 1_000_000n;
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${input.regarding.name ?? 'unknown'}.${nanos.toString(16)}`, namespace },
    eventTime: microTime(now),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance,
    action: input.action,
    reason: input.reason,
    note: truncateNote(input.note),
    type: input.type,
    regarding: input.regarding,
  };
}

export interface EventRecorderOptions {
  readonly client: Pick<KubeRequester, 'postJSON'>;
  readonly nodeName: string;
  readonly now?: () => Date;
}

export class EventRecorder {
  readonly reportingInstance: string;
  readonly nodeName: string;
  #client: Pick<KubeRequester, 'postJSON'>;
  #now: () => Date;

  constructor(options: EventRecorderOptions) {
    this.#client = options.client;
    this.nodeName = options.nodeName;
    this.reportingInstance = `${REPORTING_CONTROLLER}-${options.nodeName}`;
    this.#now = options.now ?? (() => new Date());
  }

  /** Posts the event; resolves true when the API server accepted it. Never rejects. */
  async record(input: EventInput): Promise<boolean> {
    const event = buildEvent(input, this.reportingInstance, this.#now());
    const namespace = event.metadata?.namespace ?? 'default';
    try {
      await this.#client.postJSON(
        `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`,
        event,
        {
          timeoutMs: POST_TIMEOUT_MS,
        },
      );
      log.v(4).info('Event recorded', { reason: input.reason, object: input.regarding.name ?? '' });
      return true;
    } catch (error) {
      log.error('Failed to record event', error, {
        reason: input.reason,
        kind: input.regarding.kind ?? '',
        object: input.regarding.name ?? '',
      });
      return false;
    }
  }

  /** An event about this Node. */
  nodeEvent(type: EventType, reason: string, action: string, note: string): Promise<boolean> {
    return this.record({ regarding: nodeRef(this.nodeName), type, reason, action, note });
  }

  /** An event about a Service (e.g. FailedToStartServiceHealthcheck). */
  serviceEvent(
    service: Service,
    type: EventType,
    reason: string,
    action: string,
    note: string,
  ): Promise<boolean> {
    return this.record({ regarding: serviceRef(service), type, reason, action, note });
  }

  /** Upstream's start-up event: Normal `Starting`, action `StartKubeProxy`, on the Node. */
  starting(): Promise<boolean> {
    return this.nodeEvent('Normal', 'Starting', 'StartKubeProxy', '');
  }
}
