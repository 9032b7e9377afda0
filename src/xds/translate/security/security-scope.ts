// Which security policies (AuthorizationPolicy, RequestAuthentication) apply to a proxy, as in
// Istio: a policy in the root namespace without selector applies to the whole mesh, one in the
// root namespace with a selector to matching workloads of every namespace, one in the proxy's
// namespace without selector to the whole namespace, one with a selector to matching workloads,
// and one with targetRefs to the proxies of the Gateway API Gateway it names in its own namespace
// (model/policy-attachment.ts).
import type { Resource } from '../../../api/index.ts';
import type { AttachableSpec } from '../../../api/policy-targets.ts';
import type { PushContext } from '../../../model/push-context.ts';
import type { Proxy } from '../../../model/proxy.ts';
import { attachesToProxy } from '../../../model/policy-attachment.ts';

export function policiesFor<S extends AttachableSpec>(push: PushContext, kind: string, proxy: Proxy): Resource<S>[] {
  return push.memo(`${kind}|${proxy.namespace}|${JSON.stringify(proxy.labels)}`, () =>
    (push.resources.filter((r) => r.kind === kind) as Resource<S>[]).filter((r) => {
      const ns = r.metadata.namespace;
      if (ns !== proxy.namespace && ns !== push.mesh.rootNamespace) return false;
      return attachesToProxy(r.spec ?? {}, ns, proxy);
    }),
  );
}
