// Istio's policy attachment by target reference (AuthorizationPolicy, RequestAuthentication,
// Telemetry): the kinds a `targetRef`/`targetRefs` may name, and which of them attach a policy to a
// proxy Rigging runs. A Gateway API Gateway (group gateway.networking.k8s.io) in the policy's
// namespace attaches it to that gateway's proxies; Service, ServiceEntry and GatewayClass attach
// it to ambient waypoints only, which sidecar mode does not have.
import type { FieldPath } from './source-map.ts';
import type { WorkloadSelector } from './types/networking.ts';
import type { PolicyTargetReference } from './types/security.ts';

import { GATEWAY_API_GROUP } from './kinds.ts';

export interface AttachableSpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
}

/** A target reference with the field path it was written at. */
export interface PlacedTargetRef {
  ref: PolicyTargetReference;
  path: FieldPath;
}

/** targetRefs, else the deprecated single targetRef (Istio's GetTargetRefs). */
export function targetRefsOf(spec: AttachableSpec): PlacedTargetRef[] {
  if (spec.targetRefs?.length) return spec.targetRefs.map((ref, i) => ({ ref, path: ['spec', 'targetRefs', i] }));
  return spec.targetRef ? [{ ref: spec.targetRef, path: ['spec', 'targetRef'] }] : [];
}

/** Istio's canonical group: "" is the core group. */
function canonicalGroup(ref: PolicyTargetReference): string {
  return ref.group || 'core';
}

export function isKubernetesGatewayRef(ref: PolicyTargetReference): boolean {
  return ref.kind === 'Gateway' && canonicalGroup(ref) === GATEWAY_API_GROUP;
}

/** The kinds Istio's validation accepts besides Gateway: each attaches only to ambient waypoints. */
const WAYPOINT_ONLY: readonly { kind: string; group: string; what: (name: string) => string }[] = [
  { kind: 'Service', group: 'core', what: (name) => `the waypoint of Service "${name}"` },
  { kind: 'ServiceEntry', group: 'networking.istio.io', what: (name) => `the waypoint of ServiceEntry "${name}"` },
  { kind: 'GatewayClass', group: GATEWAY_API_GROUP, what: (name) => `the waypoints of GatewayClass "${name}"` },
];

export type TargetRefClass = 'gateway' | 'waypoint-only' | 'invalid';

export function classifyTargetRef(ref: PolicyTargetReference): TargetRefClass {
  if (isKubernetesGatewayRef(ref)) return 'gateway';
  return WAYPOINT_ONLY.some((w) => w.kind === ref.kind && w.group === canonicalGroup(ref)) ? 'waypoint-only' : 'invalid';
}

export interface TargetRefNote {
  path: FieldPath;
  message: string;
  hint: string;
}

const NO_PROXY_HINT = `attach it to a Gateway API Gateway (kind: Gateway, group: ${GATEWAY_API_GROUP}), or select sidecars with selector.matchLabels`;

/** Target references that attach the policy to no proxy in sidecar mode (Service, ServiceEntry, GatewayClass). */
export function waypointOnlyTargets(kind: string, spec: AttachableSpec): TargetRefNote[] {
  const out: TargetRefNote[] = [];
  for (const { ref, path } of targetRefsOf(spec)) {
    const w = WAYPOINT_ONLY.find((x) => x.kind === ref.kind && x.group === canonicalGroup(ref));
    if (!w) continue;
    out.push({ path: [...path, 'kind'], message: `a ${ref.kind} target attaches the policy to ${w.what(ref.name)} (ambient mode); in sidecar mode this ${kind} applies to no proxy`, hint: NO_PROXY_HINT });
  }
  return out;
}

/** Gateway references naming no Gateway API Gateway in the policy's namespace (such a reference attaches to nothing). */
export function missingGatewayTargets(kind: string, namespace: string, spec: AttachableSpec, gatewayExists: (namespace: string, name: string) => boolean): TargetRefNote[] {
  const out: TargetRefNote[] = [];
  for (const { ref, path } of targetRefsOf(spec)) {
    if (!isKubernetesGatewayRef(ref) || gatewayExists(namespace, ref.name)) continue;
    out.push({ path: [...path, 'name'], message: `Gateway "${ref.name}" (${GATEWAY_API_GROUP}) not found in namespace ${namespace}: this target attaches the ${kind} to no proxy`, hint: `create the Gateway in namespace ${namespace}, or fix the name (a target reference only reaches Gateways in the policy's own namespace)` });
  }
  return out;
}
