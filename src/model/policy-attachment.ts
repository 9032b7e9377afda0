// Whether a workload-scoped policy (AuthorizationPolicy, RequestAuthentication, Telemetry) attaches
// to a proxy, as Istio's WorkloadPolicyMatcher.ShouldAttachPolicy decides it for sidecars and
// Gateway API gateways (the proxies labelled gateway.networking.k8s.io/gateway-name):
// - a policy with target references attaches only to a Gateway API gateway's proxies, when one of
//   them names that Gateway and the policy sits in the gateway's namespace (so a root-namespace
//   policy with targetRefs reaches only gateways of the root namespace);
// - otherwise the selector decides (none, or no labels: every workload in scope), for gateways too
//   (Istio's ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY, on by default).
// Which namespaces a policy may come from (its own, the root namespace) is the caller's rule.
import { GATEWAY_NAME_LABEL } from '../api/index.ts';
import { isKubernetesGatewayRef, targetRefsOf, type AttachableSpec } from '../api/policy-targets.ts';
import type { Resource } from '../api/index.ts';
import type { Proxy } from './proxy.ts';

export function hasTargetRefs(spec: AttachableSpec): boolean {
  return spec.targetRef !== undefined || (spec.targetRefs?.length ?? 0) > 0;
}

export function attachesToProxy(spec: AttachableSpec, policyNamespace: string, proxy: Pick<Proxy, 'namespace' | 'labels'>): boolean {
  const refs = targetRefsOf(spec);
  if (refs.length === 0) {
    const labels = spec.selector?.matchLabels ?? {};
    return Object.entries(labels).every(([k, v]) => proxy.labels[k] === v);
  }
  const gateway = proxy.labels[GATEWAY_NAME_LABEL];
  if (gateway === undefined || policyNamespace !== proxy.namespace) return false;
  return refs.some(({ ref }) => isKubernetesGatewayRef(ref) && ref.name === gateway && (!ref.namespace || ref.namespace === proxy.namespace));
}

/** Whether a Gateway API Gateway of that namespace and name is among `resources`. */
export function kubernetesGatewayLookup(resources: readonly Resource[]): (namespace: string, name: string) => boolean {
  const keys = new Set(resources.filter((r) => r.kind === 'KubernetesGateway').map((g) => `${g.metadata.namespace}/${g.metadata.name}`));
  return (namespace, name) => keys.has(`${namespace}/${name}`);
}
