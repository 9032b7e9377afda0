// Which security policies (AuthorizationPolicy, RequestAuthentication) apply to a proxy, as in
// Istio: a policy in the root namespace without selector applies to the whole mesh, one in the
// root namespace with a selector to matching workloads of every namespace, one in the proxy's
// namespace without selector to the whole namespace, one with a selector to matching workloads.
// targetRef/targetRefs (Gateway API attachment) is not supported yet: such policies are skipped
// with a warning by the caller.
import type { Resource } from '../../../api/index.ts';
import type { WorkloadSelector } from '../../../api/index.ts';
import type { PushContext } from '../../../model/push-context.ts';
import type { Proxy } from '../../../model/proxy.ts';
import { selectorMatches } from '../../../model/service.ts';

interface Scoped {
  selector?: WorkloadSelector;
  targetRef?: unknown;
  targetRefs?: unknown[];
}

export function hasTargetRef(spec: Scoped): boolean {
  return spec.targetRef !== undefined || (spec.targetRefs?.length ?? 0) > 0;
}

export function policiesFor<S extends Scoped>(push: PushContext, kind: string, proxy: Proxy): Resource<S>[] {
  return push.memo(`${kind}|${proxy.namespace}|${JSON.stringify(proxy.labels)}`, () =>
    (push.resources.filter((r) => r.kind === kind) as Resource<S>[]).filter((r) => {
      const spec = r.spec ?? ({} as S);
      if (hasTargetRef(spec)) return false;
      const ns = r.metadata.namespace;
      if (ns !== proxy.namespace && ns !== push.mesh.rootNamespace) return false;
      const labels = spec.selector?.matchLabels;
      if (!labels || Object.keys(labels).length === 0) return true;
      return selectorMatches(labels, proxy.labels);
    }),
  );
}
