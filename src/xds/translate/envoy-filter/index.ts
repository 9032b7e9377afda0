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
