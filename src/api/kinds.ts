// The kind registry: for every kind Rigging reads, its API group, the versions accepted (the
// first is the preferred one) and whether it lives in a namespace.
import type { Kind } from './resource.ts';
import { KINDS } from './resource.ts';

export interface KindInfo {
  kind: Kind;
  group: string;
  versions: readonly string[];
  namespaced: boolean;
}

const NET = 'networking.istio.io';
const SEC = 'security.istio.io';
const NET_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;

export const KIND_INFO: Record<Kind, KindInfo> = {
  VirtualService: { kind: 'VirtualService', group: NET, versions: NET_VERSIONS, namespaced: true },
  DestinationRule: { kind: 'DestinationRule', group: NET, versions: NET_VERSIONS, namespaced: true },
  Gateway: { kind: 'Gateway', group: NET, versions: NET_VERSIONS, namespaced: true },
  ServiceEntry: { kind: 'ServiceEntry', group: NET, versions: NET_VERSIONS, namespaced: true },
  Sidecar: { kind: 'Sidecar', group: NET, versions: NET_VERSIONS, namespaced: true },
  WorkloadEntry: { kind: 'WorkloadEntry', group: NET, versions: NET_VERSIONS, namespaced: true },
  WorkloadGroup: { kind: 'WorkloadGroup', group: NET, versions: NET_VERSIONS, namespaced: true },
  PeerAuthentication: { kind: 'PeerAuthentication', group: SEC, versions: ['v1', 'v1beta1'], namespaced: true },
  RequestAuthentication: { kind: 'RequestAuthentication', group: SEC, versions: ['v1', 'v1beta1'], namespaced: true },
  AuthorizationPolicy: { kind: 'AuthorizationPolicy', group: SEC, versions: ['v1', 'v1beta1'], namespaced: true },
  Telemetry: { kind: 'Telemetry', group: 'telemetry.istio.io', versions: ['v1', 'v1alpha1'], namespaced: true },
  EnvoyFilter: { kind: 'EnvoyFilter', group: NET, versions: ['v1alpha3'], namespaced: true },
  Service: { kind: 'Service', group: '', versions: ['v1'], namespaced: true },
  Namespace: { kind: 'Namespace', group: '', versions: ['v1'], namespaced: false },
  Workload: { kind: 'Workload', group: 'local.rigging.dev', versions: ['v1alpha1'], namespaced: true },
};

export function isKind(kind: unknown): kind is Kind {
  return typeof kind === 'string' && (KINDS as readonly string[]).includes(kind);
}

/** `networking.istio.io/v1` or `v1` (core group). */
export function apiVersionsOf(kind: Kind): string[] {
  const info = KIND_INFO[kind];
  return info.versions.map((v) => (info.group ? `${info.group}/${v}` : v));
}

/** API groups whose kinds Rigging owns completely: an unknown kind there is an error, not "ignored". */
export const OWNED_GROUPS = new Set([NET, SEC, 'telemetry.istio.io', 'local.rigging.dev']);
