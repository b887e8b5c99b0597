// Our own minimal schema of the Kubernetes protobuf messages kube-proxy reads: the kinds it
// watches (Service, EndpointSlice, Node, ServiceCIDR), their lists, object and list metadata, and
// Status. Field numbers and types are facts of upstream's generated.proto files
// (k8s.io/api core/v1, discovery/v1, networking/v1; k8s.io/apimachinery meta/v1, runtime, intstr)
// and must stay exactly as there. Fields kube-proxy never reads (node capacity, images, managed
// fields, ...) are left out: the decoder skips unknown fields, as protobuf intends.
//
// Each field is `[number, JSON name, kind, flags]`. Flags: `r` repeated; `p` a Go pointer field,
// whose zero value is meaningful (`ready: false`) and kept; `k` a non-pointer field whose JSON
// tag has no omitempty (`port`, `addressType`), so JSON shows its zero value too. Go always sends
// non-pointer scalars, even when empty, and the JSON encoding leaves the omitempty ones out, so
// the decoder drops their zero value: a decoded object has the same shape as the JSON one.

/**
 * `time`: meta/v1 Time `{seconds = 1 (int64), nanos = 2 (int32)}` as RFC 3339 (JSON's form);
 * `intOrString`: util/intstr `{type = 1, intVal = 2, strVal = 3}` as a number or a string;
 * `map`: `map<string, string>`, sent as repeated `{key = 1, value = 2}` entries.
 */
export type ScalarKind = 'string' | 'int32' | 'int64' | 'bool' | 'bytes' | 'time' | 'intOrString' | 'map';
export type FieldKind = ScalarKind | { readonly message: string };

export interface FieldDef {
  readonly no: number;
  readonly name: string;
  readonly kind: FieldKind;
  readonly repeated: boolean;
  readonly presence: boolean;
  /** JSON writes its zero value (no omitempty): decoding keeps it. */
  readonly keepZero: boolean;
}

export interface MessageDef {
  readonly name: string;
  /** In field-number order (the order Go writes them). */
  readonly fields: readonly FieldDef[];
  /** Index by field number; holes are undefined. */
  readonly byNumber: readonly (FieldDef | undefined)[];
}

type Spec = readonly [number, string, FieldKind, string?];

const m = (message: string): FieldKind => ({ message });

const SPECS: Readonly<Record<string, readonly Spec[]>> = {
  // k8s.io/apimachinery/pkg/apis/meta/v1
  ObjectMeta: [
    [1, 'name', 'string'],
    [2, 'generateName', 'string'],
    [3, 'namespace', 'string'],
    [4, 'selfLink', 'string'],
    [5, 'uid', 'string'],
    [6, 'resourceVersion', 'string'],
    [7, 'generation', 'int64'],
    [8, 'creationTimestamp', 'time'],
    [9, 'deletionTimestamp', 'time', 'p'],
    [10, 'deletionGracePeriodSeconds', 'int64', 'p'],
    [11, 'labels', 'map'],
    [12, 'annotations', 'map'],
    [13, 'ownerReferences', m('OwnerReference'), 'r'],
    [14, 'finalizers', 'string', 'r'],
  ],
  OwnerReference: [
    [1, 'kind', 'string', 'k'],
    [3, 'name', 'string', 'k'],
    [4, 'uid', 'string', 'k'],
    [5, 'apiVersion', 'string', 'k'],
    [6, 'controller', 'bool', 'p'],
    [7, 'blockOwnerDeletion', 'bool', 'p'],
  ],
  ListMeta: [
    [1, 'selfLink', 'string'],
    [2, 'resourceVersion', 'string'],
    [3, 'continue', 'string'],
    [4, 'remainingItemCount', 'int64', 'p'],
  ],
  Condition: [
    [1, 'type', 'string', 'k'],
    [2, 'status', 'string', 'k'],
    [3, 'observedGeneration', 'int64'],
    [4, 'lastTransitionTime', 'time', 'k'],
    [5, 'reason', 'string', 'k'],
    [6, 'message', 'string', 'k'],
  ],
  Status: [
    [1, 'metadata', m('ListMeta')],
    [2, 'status', 'string'],
    [3, 'message', 'string'],
    [4, 'reason', 'string'],
    [5, 'details', m('StatusDetails'), 'p'],
    [6, 'code', 'int32'],
  ],
  StatusDetails: [
    [1, 'name', 'string'],
    [2, 'group', 'string'],
    [3, 'kind', 'string'],
    [4, 'causes', m('StatusCause'), 'r'],
    [5, 'retryAfterSeconds', 'int32'],
    [6, 'uid', 'string'],
  ],
  StatusCause: [
    [1, 'reason', 'string'],
    [2, 'message', 'string'],
    [3, 'field', 'string'],
  ],

  // k8s.io/api/core/v1
  ObjectReference: [
    [1, 'kind', 'string'],
    [2, 'namespace', 'string'],
    [3, 'name', 'string'],
    [4, 'uid', 'string'],
    [5, 'apiVersion', 'string'],
    [6, 'resourceVersion', 'string'],
    [7, 'fieldPath', 'string'],
  ],
  Service: [
    [1, 'metadata', m('ObjectMeta')],
    [2, 'spec', m('ServiceSpec')],
    [3, 'status', m('ServiceStatus')],
  ],
  ServiceList: [
    [1, 'metadata', m('ListMeta')],
    [2, 'items', m('Service'), 'r'],
  ],
  ServiceSpec: [
    [1, 'ports', m('ServicePort'), 'r'],
    [2, 'selector', 'map'],
    [3, 'clusterIP', 'string'],
    [4, 'type', 'string'],
    [5, 'externalIPs', 'string', 'r'],
    [7, 'sessionAffinity', 'string'],
    [8, 'loadBalancerIP', 'string'],
    [9, 'loadBalancerSourceRanges', 'string', 'r'],
    [10, 'externalName', 'string'],
    [11, 'externalTrafficPolicy', 'string'],
    [12, 'healthCheckNodePort', 'int32'],
    [13, 'publishNotReadyAddresses', 'bool'],
    [14, 'sessionAffinityConfig', m('SessionAffinityConfig'), 'p'],
    [17, 'ipFamilyPolicy', 'string', 'p'],
    [18, 'clusterIPs', 'string', 'r'],
    [19, 'ipFamilies', 'string', 'r'],
    [20, 'allocateLoadBalancerNodePorts', 'bool', 'p'],
    [21, 'loadBalancerClass', 'string', 'p'],
    [22, 'internalTrafficPolicy', 'string', 'p'],
    [23, 'trafficDistribution', 'string', 'p'],
  ],
  ServicePort: [
    [1, 'name', 'string'],
    [2, 'protocol', 'string'],
    [3, 'port', 'int32', 'k'],
    [4, 'targetPort', 'intOrString'],
    [5, 'nodePort', 'int32'],
    [6, 'appProtocol', 'string', 'p'],
  ],
  SessionAffinityConfig: [[1, 'clientIP', m('ClientIPConfig'), 'p']],
  ClientIPConfig: [[1, 'timeoutSeconds', 'int32', 'p']],
  ServiceStatus: [
    [1, 'loadBalancer', m('LoadBalancerStatus')],
    [2, 'conditions', m('Condition'), 'r'],
  ],
  LoadBalancerStatus: [[1, 'ingress', m('LoadBalancerIngress'), 'r']],
  LoadBalancerIngress: [
    [1, 'ip', 'string'],
    [2, 'hostname', 'string'],
    [3, 'ipMode', 'string', 'p'],
    [4, 'ports', m('PortStatus'), 'r'],
  ],
  PortStatus: [
    [1, 'port', 'int32', 'k'],
    [2, 'protocol', 'string', 'k'],
    [3, 'error', 'string', 'p'],
  ],
  Node: [
    [1, 'metadata', m('ObjectMeta')],
    [2, 'spec', m('NodeSpec')],
    [3, 'status', m('NodeStatus')],
  ],
  NodeList: [
    [1, 'metadata', m('ListMeta')],
    [2, 'items', m('Node'), 'r'],
  ],
  NodeSpec: [
    [1, 'podCIDR', 'string'],
    [2, 'externalID', 'string'],
    [3, 'providerID', 'string'],
    [4, 'unschedulable', 'bool'],
    [5, 'taints', m('Taint'), 'r'],
    [7, 'podCIDRs', 'string', 'r'],
  ],
  Taint: [
    [1, 'key', 'string', 'k'],
    [2, 'value', 'string'],
    [3, 'effect', 'string', 'k'],
    [4, 'timeAdded', 'time', 'p'],
  ],
  NodeStatus: [
    [3, 'phase', 'string'],
    [4, 'conditions', m('NodeCondition'), 'r'],
    [5, 'addresses', m('NodeAddress'), 'r'],
  ],
  NodeCondition: [
    [1, 'type', 'string', 'k'],
    [2, 'status', 'string', 'k'],
    [3, 'lastHeartbeatTime', 'time'],
    [4, 'lastTransitionTime', 'time'],
    [5, 'reason', 'string'],
    [6, 'message', 'string'],
  ],
  NodeAddress: [
    [1, 'type', 'string', 'k'],
    [2, 'address', 'string', 'k'],
  ],

  // k8s.io/api/discovery/v1
  EndpointSlice: [
    [1, 'metadata', m('ObjectMeta')],
    [2, 'endpoints', m('Endpoint'), 'r'],
    [3, 'ports', m('EndpointPort'), 'r'],
    [4, 'addressType', 'string', 'k'],
  ],
  EndpointSliceList: [
    [1, 'metadata', m('ListMeta')],
    [2, 'items', m('EndpointSlice'), 'r'],
  ],
  Endpoint: [
    [1, 'addresses', 'string', 'r'],
    [2, 'conditions', m('EndpointConditions')],
    [3, 'hostname', 'string', 'p'],
    [4, 'targetRef', m('ObjectReference'), 'p'],
    [5, 'deprecatedTopology', 'map'],
    [6, 'nodeName', 'string', 'p'],
    [7, 'zone', 'string', 'p'],
    [8, 'hints', m('EndpointHints'), 'p'],
  ],
  EndpointConditions: [
    [1, 'ready', 'bool', 'p'],
    [2, 'serving', 'bool', 'p'],
    [3, 'terminating', 'bool', 'p'],
  ],
  EndpointHints: [
    [1, 'forZones', m('ForZone'), 'r'],
    [2, 'forNodes', m('ForNode'), 'r'],
  ],
  ForZone: [[1, 'name', 'string', 'k']],
  ForNode: [[1, 'name', 'string', 'k']],
  EndpointPort: [
    [1, 'name', 'string', 'p'],
    [2, 'protocol', 'string', 'p'],
    [3, 'port', 'int32', 'p'],
    [4, 'appProtocol', 'string', 'p'],
  ],

  // k8s.io/api/networking/v1
  ServiceCIDR: [
    [1, 'metadata', m('ObjectMeta')],
    [2, 'spec', m('ServiceCIDRSpec')],
    [3, 'status', m('ServiceCIDRStatus')],
  ],
  ServiceCIDRList: [
    [1, 'metadata', m('ListMeta')],
    [2, 'items', m('ServiceCIDR'), 'r'],
  ],
  ServiceCIDRSpec: [[1, 'cidrs', 'string', 'r']],
  ServiceCIDRStatus: [[1, 'conditions', m('Condition'), 'r']],
};

function build(): ReadonlyMap<string, MessageDef> {
  const out = new Map<string, MessageDef>();
  for (const [name, specs] of Object.entries(SPECS)) {
    const fields = specs
      .map(([no, field, kind, flags = '']) => ({
        no,
        name: field,
        kind,
        repeated: flags.includes('r'),
        presence: flags.includes('p'),
        keepZero: flags.includes('k'),
      }))
      .sort((a, b) => a.no - b.no);
    const byNumber: (FieldDef | undefined)[] = [];
    for (const field of fields) byNumber[field.no] = field;
    out.set(name, { name, fields, byNumber });
  }
  for (const def of out.values()) {
    for (const field of def.fields) {
      if (typeof field.kind === 'object' && !out.has(field.kind.message)) {
        throw new Error(
          `protobuf schema: ${def.name}.${field.name} names unknown message ${field.kind.message}`,
        );
      }
    }
  }
  return out;
}

export const MESSAGES: ReadonlyMap<string, MessageDef> = build();

export function message(name: string): MessageDef {
  const def = MESSAGES.get(name);
  if (def === undefined) throw new Error(`protobuf schema: no message ${name}`);
  return def;
}

/** The message of each `apiVersion/kind` the decoder understands (objects and their lists). */
export const KINDS: ReadonlyMap<string, string> = new Map([
  ['v1/Service', 'Service'],
  ['v1/ServiceList', 'ServiceList'],
  ['v1/Node', 'Node'],
  ['v1/NodeList', 'NodeList'],
  ['v1/Status', 'Status'],
  ['discovery.k8s.io/v1/EndpointSlice', 'EndpointSlice'],
  ['discovery.k8s.io/v1/EndpointSliceList', 'EndpointSliceList'],
  ['networking.k8s.io/v1/ServiceCIDR', 'ServiceCIDR'],
  ['networking.k8s.io/v1/ServiceCIDRList', 'ServiceCIDRList'],
]);
