// The kind registry: for every kind Rigging reads, its API group, the versions accepted (the
// first is the preferred one), whether it lives in a namespace, and the names it goes by.
// Internal kinds are unique; the kind a user writes is unique per group only (the Gateway API's
// `Gateway` is `KubernetesGateway` inside, beside Istio's `Gateway`), so reading a document
// resolves (group, kind) and everything shown to a user goes back through `writtenKind`.
import type { Kind } from './resource.ts';
import { KINDS } from './resource.ts';

export interface KindInfo {
  kind: Kind;
  group: string;
  versions: readonly string[];
  namespaced: boolean;
  /** The kind as written in YAML when it differs from `kind`. */
  written?: string;
  /** The lower-case plural resource name and short names (kubectl's), for the CLI. */
  plural: string;
  shortNames?: readonly string[];
}

const NET = 'networking.istio.io';
const SEC = 'security.istio.io';
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
const GW = GATEWAY_API_GROUP;
/** The label Istio's automated deployment puts on a Gateway API gateway's proxies, and selects them by. */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const NET_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;

export const KIND_INFO: Record<Kind, KindInfo> = {
  VirtualService: { kind: 'VirtualService', group: NET, versions: NET_VERSIONS, namespaced: true, plural: 'virtualservices', shortNames: ['vs'] },
  DestinationRule: { kind: 'DestinationRule', group: NET, versions: NET_VERSIONS, namespaced: true, plural: 'destinationrules', shortNames: ['dr'] },
  Gateway: { kind: 'Gateway', group: NET, versions: NET_VERSIONS, namespaced: true, plural: 'gateways', shortNames: ['gw'] },
  ServiceEntry: { kind: 'ServiceEntry', group: NET, versions: NET_VERSIONS, namespaced: true, plural: 'serviceentries', shortNames: ['se'] },
  Sidecar: { kind: 'Sidecar', group: NET, versions: NET_VERSIONS, namespaced: true, plural: 'sidecars' },
  WorkloadEntry: { kind: 'WorkloadEntry', group: NET, versions: NET_VERSIONS, namespaced: true, plural: 'workloadentries', shortNames: ['we'] },
  WorkloadGroup: { kind: 'WorkloadGroup', group: NET, versions: NET_VERSIONS, namespaced: true, plural: 'workloadgroups', shortNames: ['wg'] },
  PeerAuthentication: { kind: 'PeerAuthentication', group: SEC, versions: ['v1', 'v1beta1'], namespaced: true, plural: 'peerauthentications', shortNames: ['pa'] },
  RequestAuthentication: { kind: 'RequestAuthentication', group: SEC, versions: ['v1', 'v1beta1'], namespaced: true, plural: 'requestauthentications', shortNames: ['ra'] },
  AuthorizationPolicy: { kind: 'AuthorizationPolicy', group: SEC, versions: ['v1', 'v1beta1'], namespaced: true, plural: 'authorizationpolicies', shortNames: ['ap'] },
  Telemetry: { kind: 'Telemetry', group: 'telemetry.istio.io', versions: ['v1', 'v1alpha1'], namespaced: true, plural: 'telemetries', shortNames: ['telemetry'] },
  EnvoyFilter: { kind: 'EnvoyFilter', group: NET, versions: ['v1alpha3'], namespaced: true, plural: 'envoyfilters' },
  ProxyConfig: { kind: 'ProxyConfig', group: NET, versions: ['v1beta1'], namespaced: true, plural: 'proxyconfigs' },
  WasmPlugin: { kind: 'WasmPlugin', group: 'extensions.istio.io', versions: ['v1alpha1'], namespaced: true, plural: 'wasmplugins' },
  Service: { kind: 'Service', group: '', versions: ['v1'], namespaced: true, plural: 'services', shortNames: ['svc'] },
  Namespace: { kind: 'Namespace', group: '', versions: ['v1'], namespaced: false, plural: 'namespaces', shortNames: ['ns'] },
  // Read for the CA certificates (`ca.crt`) that BackendTLSPolicy and Gateway frontend validation refer to.
  ConfigMap: { kind: 'ConfigMap', group: '', versions: ['v1'], namespaced: true, plural: 'configmaps', shortNames: ['cm'] },
  Workload: { kind: 'Workload', group: 'local.rigging.dev', versions: ['v1alpha1'], namespaced: true, plural: 'workloads' },
  // Gateway API v1.2+: the versions its CRDs serve (GRPCRoute is v1 only; ReferenceGrant v1beta1, and v1 from v1.5).
  GatewayClass: { kind: 'GatewayClass', group: GW, versions: ['v1', 'v1beta1'], namespaced: false, plural: 'gatewayclasses', shortNames: ['gc'] },
  KubernetesGateway: { kind: 'KubernetesGateway', written: 'Gateway', group: GW, versions: ['v1', 'v1beta1'], namespaced: true, plural: 'gateways', shortNames: ['gtw'] },
  // Gateway API v1.5 (standard channel): listeners added to a Gateway that allows them (spec.allowedListeners).
  ListenerSet: { kind: 'ListenerSet', group: GW, versions: ['v1'], namespaced: true, plural: 'listenersets', shortNames: ['lset'] },
  HTTPRoute: { kind: 'HTTPRoute', group: GW, versions: ['v1', 'v1beta1'], namespaced: true, plural: 'httproutes' },
  GRPCRoute: { kind: 'GRPCRoute', group: GW, versions: ['v1'], namespaced: true, plural: 'grpcroutes' },
  // Experimental channel: TCPRoute v1alpha2; TLSRoute v1alpha2, v1alpha3 and (v1.5) v1.
  TCPRoute: { kind: 'TCPRoute', group: GW, versions: ['v1alpha2'], namespaced: true, plural: 'tcproutes' },
  TLSRoute: { kind: 'TLSRoute', group: GW, versions: ['v1', 'v1alpha3', 'v1alpha2'], namespaced: true, plural: 'tlsroutes' },
  ReferenceGrant: { kind: 'ReferenceGrant', group: GW, versions: ['v1beta1', 'v1'], namespaced: true, plural: 'referencegrants', shortNames: ['refgrant'] },
  // v1 from Gateway API v1.4; v1alpha3 is still served (and read by istiod).
  BackendTLSPolicy: { kind: 'BackendTLSPolicy', group: GW, versions: ['v1', 'v1alpha3'], namespaced: true, plural: 'backendtlspolicies', shortNames: ['btlspolicy'] },
};

/** Kinds whose content is top-level fields, not `spec` (a ConfigMap's data): they are held as the resource's spec. */
export const TOP_LEVEL_CONTENT: Partial<Record<Kind, readonly string[]>> = { ConfigMap: ['data', 'binaryData', 'immutable'] };

/** The document of a resource as written (a ConfigMap's data at top level again). */
export function writtenDocument(r: { apiVersion: string; kind: Kind; spec: unknown }, metadata: unknown): Record<string, unknown> {
  const head = { apiVersion: r.apiVersion, kind: writtenKind(r.kind), metadata };
  return TOP_LEVEL_CONTENT[r.kind] ? { ...head, ...(r.spec as object) } : { ...head, spec: r.spec };
}

export function isKind(kind: unknown): kind is Kind {
  return typeof kind === 'string' && (KINDS as readonly string[]).includes(kind);
}

/** The kind as users write it (`Gateway` for `KubernetesGateway`). */
export function writtenKind(kind: Kind): string {
  return KIND_INFO[kind].written ?? kind;
}

/** Every kind name users may write, each once. */
export const WRITTEN_KINDS: readonly string[] = [...new Set(KINDS.map(writtenKind))];

/** The internal kinds a written kind name may mean (several for `Gateway`), any group. */
export function kindsWritten(kind: string): Kind[] {
  return KINDS.filter((k) => writtenKind(k) === kind);
}

/** The internal kind of a written (group, kind); undefined when Rigging has no such kind in that group. */
export function kindOf(group: string, kind: string): Kind | undefined {
  return kindsWritten(kind).find((k) => KIND_INFO[k].group === group);
}

/**
 * How a resource's kind is shown: the written kind, qualified by its group where the written name
 * alone would be ambiguous (`Gateway.gateway.networking.k8s.io`, as kubectl names it).
 */
export function displayKind(kind: Kind): string {
  const written = writtenKind(kind);
  return written !== kind ? `${written}.${KIND_INFO[kind].group}` : written;
}

/** `Kind namespace/name` as the user wrote the kind (`Gateway.gateway.networking.k8s.io ns/name` for the Gateway API's). */
export function describeResource(r: { kind: Kind; metadata: { namespace: string; name: string } }): string {
  return `${displayKind(r.kind)} ${r.metadata.namespace ? r.metadata.namespace + '/' : ''}${r.metadata.name}`;
}

/**
 * The kind a CLI resource name means, as kubectl resolves it: the kind, its plural or a short
 * name (any case), optionally qualified by the group (`gateways.gateway.networking.k8s.io`). A
 * bare name shared by two groups (`gateway`, `gateways`) means Istio's, as with istioctl.
 */
export function resolveResourceName(name: string): Kind | undefined {
  const lower = name.toLowerCase();
  const matches = (info: KindInfo, n: string) => n === info.plural || n === writtenKind(info.kind).toLowerCase() || (info.shortNames ?? []).includes(n);
  for (const info of Object.values(KIND_INFO)) {
    if (info.group && lower.endsWith(`.${info.group}`) && matches(info, lower.slice(0, -info.group.length - 1))) return info.kind;
  }
  return Object.values(KIND_INFO).find((info) => matches(info, lower))?.kind;
}

/** The API group of an apiVersion (`gateway.networking.k8s.io/v1` → `gateway.networking.k8s.io`, `v1` → the core group ''). */
export function groupOf(apiVersion: string | undefined): string {
  const v = apiVersion ?? '';
  return v.includes('/') ? v.slice(0, v.indexOf('/')) : '';
}

/** `networking.istio.io/v1` or `v1` (core group). */
export function apiVersionsOf(kind: Kind): string[] {
  const info = KIND_INFO[kind];
  return info.versions.map((v) => (info.group ? `${info.group}/${v}` : v));
}

/** API groups whose kinds Rigging owns completely: an unknown kind there is an error, not "ignored". */
export const OWNED_GROUPS = new Set([NET, SEC, 'telemetry.istio.io', 'local.rigging.dev']);

/**
 * Groups Rigging reads some kinds of: their other kinds (UDPRoute, BackendLBPolicy…)
 * are warned about, since a route written for the mesh would otherwise do nothing without a word.
 */
export const PARTLY_READ_GROUPS = new Set([GW]);
