// EnvoyFilter (networking.istio.io/v1alpha3): the generators' output for a proxy, patched by the
// EnvoyFilters that select it. Validation (what is supported) is src/api/validation/envoy-filter.ts.
import type { EnvoyJson } from '../../../envoy/index.ts';
import type { PushContext } from '../../../model/push-context.ts';
import type { Proxy } from '../../../model/proxy.ts';
import { patchesFor } from './envoy-filter-select.ts';
import { patchClusters, patchListeners, patchRouteConfig, routeContext } from './envoy-filter-patch.ts';

export function withListenerPatches(push: PushContext, proxy: Proxy, listeners: EnvoyJson[]): EnvoyJson[] {
  const t = patchesFor(push, proxy);
  return t ? patchListeners(t, proxy, listeners) : listeners;
}

export function withClusterPatches(push: PushContext, proxy: Proxy, clusters: EnvoyJson[]): EnvoyJson[] {
  const t = patchesFor(push, proxy);
  return t ? patchClusters(t, proxy, clusters) : clusters;
}

export function withRoutePatches(push: PushContext, proxy: Proxy, routes: EnvoyJson[]): EnvoyJson[] {
  const t = patchesFor(push, proxy);
  return t ? routes.map((rc) => patchRouteConfig(t, routeContext(proxy), rc)) : routes;
}

/**
 * ECDS: the TypedExtensionConfigs of the EXTENSION_CONFIG patches selecting the proxy, of those
 * `names` it asks for (istiod's InsertedExtensionConfigurations: ADD patches only, no object match;
 * a name given twice is served from the first patch).
 */
export function envoyFilterExtensionConfigs(push: PushContext, proxy: Proxy, names: readonly string[]): EnvoyJson[] {
  const patches = names.length ? patchesFor(push, proxy)?.get('EXTENSION_CONFIG') : undefined;
  if (!patches) return [];
  const want = new Set(names);
  const out = new Map<string, EnvoyJson>();
  for (const p of patches) {
    const name = p.value?.name as string | undefined;
    if (p.operation === 'ADD' && name && want.has(name) && !out.has(name)) out.set(name, p.value!);
  }
  return [...out.values()];
}
