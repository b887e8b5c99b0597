// The Explanation: what `kube-proxy explain`, GET /debug/proxy/explain and the web page return.
// The JSON is a contract (docs/explain.md): apiVersion changes when a field changes meaning;
// fields are only added within v1alpha1.
import type { Protocol } from '../model/types.ts';

export const EXPLAIN_API_VERSION = 'explain.kube-proxy-ts/v1alpha1';

export type Arrival = 'pod' | 'node' | 'external';

export type MatchKind =
  | 'clusterIP'
  | 'externalIP'
  | 'loadBalancerIP'
  | 'nodePort'
  | 'healthCheckNodePort'
  | 'clusterIPOtherPort'
  | 'none';

export type DecisionStep =
  | 'sourceRanges'
  | 'trafficPolicy'
  | 'topology'
  | 'readiness'
  | 'terminatingFallback'
  | 'sessionAffinity'
  | 'masquerade'
  | 'hairpin'
  | 'noEndpoints';

export interface Decision {
  readonly step: DecisionStep;
  readonly outcome: string;
  readonly because: string;
  /** The Kubernetes (or KubeProxyConfiguration) fields behind the decision. */
  readonly fields: readonly string[];
}

export interface ExplainedEndpoint {
  readonly endpoint: string;
  readonly node: string;
  readonly local: boolean;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly zoneHints?: readonly string[];
  readonly eligible: boolean;
  /** Why it is not eligible (or how it is, when that is not obvious). */
  readonly why?: string;
  /** Chance a new connection goes here: 1/n over the eligible endpoints. */
  readonly chance?: number;
  /** iptables: the statistic match's conditional probability on its rule. */
  readonly ruleProbability?: number;
  /** Position among the eligible endpoints (iptables rule order, nftables numgen value). */
  readonly slot?: number;
}

export type VerdictAction = 'DNAT' | 'REJECT' | 'DROP' | 'ACCEPT' | 'NOT_HANDLED';

export interface PathStep {
  readonly table: string;
  readonly hook?: string;
  readonly priority?: number;
  readonly chain: string;
  /** As `iptables-save` or `nft list` prints it. */
  readonly rule: string;
  readonly matched: boolean;
  readonly why?: string;
  readonly element?: { readonly set: string; readonly text: string };
  readonly inKernel?: boolean;
}

export interface Explanation {
  readonly apiVersion: typeof EXPLAIN_API_VERSION;
  readonly kind: 'Explanation';
  readonly source: {
    readonly kind: 'live' | 'dump' | 'manifests';
    readonly node: string;
    readonly mode: string;
    readonly family: 'IPv4' | 'IPv6';
    readonly modelGeneration?: number;
    /** What the source is: the server URL, the dump file, the manifests. */
    readonly from?: string;
  };
  readonly packet: {
    readonly protocol: Protocol;
    readonly src: string;
    readonly dst: string;
    readonly dport: number;
    readonly arrival: {
      readonly from: Arrival;
      readonly hook: 'prerouting' | 'output';
      readonly iif?: string;
      /** `from` was inferred from the source address, not given. */
      readonly inferred: boolean;
    };
  };
  readonly source_class: {
    readonly localDetection: { readonly mode: string; readonly matched: boolean };
    readonly isNodeAddress: boolean;
  };
  readonly match: {
    readonly kind: MatchKind;
    readonly servicePort?: string;
    readonly key?: string;
    readonly notProgrammed?: readonly { readonly service: string; readonly reason: string }[];
  };
  readonly decisions: readonly Decision[];
  readonly endpoints: readonly ExplainedEndpoint[];
  readonly verdict: {
    readonly action: VerdictAction;
    readonly to?: readonly string[];
    readonly snat: boolean;
    readonly because: string;
  };
  readonly path: readonly PathStep[];
  readonly pathSyntax?: 'iptables-save' | 'nft list';
  readonly hints: readonly string[];
  readonly caveats: readonly string[];
  /** `conntrack=1` / `--conntrack` (live): the flows the kernel already tracks for this tuple. */
  readonly conntrack?: ConntrackSection;
}

export interface ConntrackFlow {
  /** `src:sport -> dst:dport`, the original direction. */
  readonly orig: string;
  /** The reply direction: its source is where the flow was DNATed. */
  readonly reply: string;
  readonly state?: string;
  /** `ip:port` the flow was DNATed to; absent when it was not. */
  readonly endpoint?: string;
  /** DNATed to an endpoint the service port no longer has: it keeps it until it ends or expires. */
  readonly stale: boolean;
}

export interface ConntrackSection {
  /** The command that listed them. */
  readonly read: string;
  readonly flows: readonly ConntrackFlow[];
  /** The flows were not read (the tool failed); nothing else is said. */
  readonly error?: string;
}
