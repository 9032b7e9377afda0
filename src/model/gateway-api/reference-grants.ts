// ReferenceGrant: a reference across namespaces (a route's backendRef to a Service, a Gateway's
// certificateRef to a Secret) is allowed only when the target namespace grants it.
import type { GatewayApi, Resource } from '../../api/index.ts';
import { GATEWAY_API_GROUP } from '../../api/index.ts';


export class ReferenceGrants {
  /** `fromKind|fromNamespace|toKind|toNamespace` → the names granted (`*` for all). */
  readonly #grants = new Map<string, Set<string>>();

  constructor(grants: readonly Resource<GatewayApi.ReferenceGrantSpec>[]) {
    for (const g of grants) {
      for (const from of g.spec.from) {
        if (from.group !== GATEWAY_API_GROUP) continue;
        for (const to of g.spec.to) {
          if (to.group !== '' && to.group !== 'core') continue;
          const key = `${from.kind}|${from.namespace}|${to.kind}|${g.metadata.namespace}`;
          let names = this.#grants.get(key);
          if (!names) this.#grants.set(key, (names = new Set()));
          names.add(to.name ?? '*');
        }
      }
    }
  }

  /** Whether a `fromKind` (HTTPRoute, GRPCRoute, Gateway) in `fromNamespace` may refer to `toKind` (Service, Secret) `name` in `toNamespace`. */
  allowed(fromKind: string, fromNamespace: string, toKind: string, toNamespace: string, name: string): boolean {
    if (fromNamespace === toNamespace) return true;
    const names = this.#grants.get(`${fromKind}|${fromNamespace}|${toKind}|${toNamespace}`);
    return !!names && (names.has('*') || names.has(name));
  }
}
