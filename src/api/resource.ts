// The envelope every configuration object shares (Kubernetes style), with the position it was
// read from so that every message can say file:line:column.

export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

export interface ObjectMeta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Set by the config store: increases on every change of this object. */
  resourceVersion?: string;
  creationTimestamp?: string;
}

/**
 * Every kind Rigging reads. `Workload` is the local runtime's own kind (`rig up`). `KubernetesGateway`
 * is the Gateway API's `Gateway` (gateway.networking.k8s.io), named apart from Istio's `Gateway` as
 * Istio's pilot does; users write `kind: Gateway` (see writtenKind in kinds.ts).
 */
export const KINDS = [
  'VirtualService',
  'DestinationRule',
  'Gateway',
  'ServiceEntry',
  'Sidecar',
  'WorkloadEntry',
  'WorkloadGroup',
  'PeerAuthentication',
  'RequestAuthentication',
  'AuthorizationPolicy',
  'Telemetry',
  'EnvoyFilter',
  'WasmPlugin',
  'ProxyConfig',
  'Service',
  'Namespace',
  'ConfigMap',
  'Workload',
  'GatewayClass',
  'KubernetesGateway',
  'ListenerSet',
  'HTTPRoute',
  'GRPCRoute',
  'TCPRoute',
  'TLSRoute',
  'ReferenceGrant',
  'BackendTLSPolicy',
] as const;

export type Kind = (typeof KINDS)[number];

export interface Resource<S = Record<string, unknown>> {
  apiVersion: string;
  kind: Kind;
  metadata: ObjectMeta;
  spec: S;
  source?: SourcePosition;
}

/**
 * Oldest first, then by `tieBreak` (kind/namespace/name unless given): the order in which Istio lets
 * the older of two competing resources win (keys built once: every snapshot sorts every resource).
 */
export function sortedByCreation<R extends Resource>(resources: readonly R[], tieBreak: (r: R) => string = resourceKey): R[] {
  const keyed = resources.map((r) => ({ r, t: r.metadata.creationTimestamp ?? '', k: tieBreak(r) }));
  keyed.sort((a, b) => (a.t !== b.t ? (a.t < b.t ? -1 : 1) : a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.r);
}

/** `Kind/namespace/name`: the identity of a resource in a store. */
export function resourceKey(r: { kind: string; metadata: { namespace: string; name: string } }): string {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}
