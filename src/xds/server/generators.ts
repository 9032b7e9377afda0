// xDS generators by type URL (Istio's XdsResourceGenerator): pure functions of (push context,
// proxy, requested names) → resources in Envoy's JSON shape.
import { CLUSTER_TYPE, ENDPOINT_TYPE, EXTENSION_CONFIG_TYPE, LISTENER_TYPE, NDS_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { buildClusters } from '../translate/cluster-builder.ts';
import { buildLoadAssignment } from '../translate/endpoint-builder.ts';
import { buildListeners } from '../translate/listener-builder.ts';
import { buildNameTable } from '../translate/name-table.ts';
import { buildRouteConfig } from '../translate/route-config.ts';
import { buildSecret } from '../translate/secret-builder.ts';
import { envoyFilterExtensionConfigs, withClusterPatches, withListenerPatches, withRoutePatches } from '../translate/envoy-filter/index.ts';
import { wasmExtensionConfigs } from '../translate/wasm-plugins.ts';

export interface XdsGenerator {
  typeUrl: string;
  /** Short name used in metrics and status (`cds`, `eds`…). */
  short: 'cds' | 'eds' | 'lds' | 'rds' | 'ecds' | 'sds' | 'nds';
  /** State of the world sends every resource of the type in each response (LDS, CDS). */
  fullState: boolean;
  generate(push: PushContext, proxy: Proxy, names: readonly string[] | undefined): EnvoyJson[];
}

function byNames(list: EnvoyJson[], names: readonly string[] | undefined): EnvoyJson[] {
  if (!names?.length) return list;
  const want = new Set(names);
  return list.filter((r) => want.has(r.name as string));
}

export const GENERATORS: Record<string, XdsGenerator> = {
  [CLUSTER_TYPE]: { typeUrl: CLUSTER_TYPE, short: 'cds', fullState: true, generate: (push, proxy, names) => (proxy.generator === 'grpc' ? byNames(buildClusters(push, proxy), names) : withClusterPatches(push, proxy, buildClusters(push, proxy))) },
  [LISTENER_TYPE]: { typeUrl: LISTENER_TYPE, short: 'lds', fullState: true, generate: (push, proxy, names) => withListenerPatches(push, proxy, buildListeners(push, proxy, names)) },
  [ROUTE_TYPE]: {
    typeUrl: ROUTE_TYPE,
    short: 'rds',
    fullState: false,
    // A name that means nothing to the proxy gets an empty configuration, as from istiod: a listener
    // waits for its routes (Envoy's RDS init target; istiod's initial_fetch_timeout 0s waits for good).
    generate: (push, proxy, names) =>
      withRoutePatches(
        push,
        proxy,
        (names ?? []).map((n) => buildRouteConfig(push, proxy, n) ?? { name: n, virtual_hosts: [], validate_clusters: false }),
      ),
  },
  [ENDPOINT_TYPE]: {
    typeUrl: ENDPOINT_TYPE,
    short: 'eds',
    fullState: false,
    // An unknown cluster gets an empty assignment, so the proxy does not wait for it.
    generate: (push, proxy, names) => (names ?? []).map((n) => buildLoadAssignment(push, proxy, n) ?? { cluster_name: n }),
  },
  // ECDS: the EnvoyFilters' EXTENSION_CONFIG patches, then the WasmPlugins' configs, by the names
  // their filters give (istiod's BuildExtensionConfiguration); a changed config is pushed here
  // alone, the listeners (which only name it) unchanged.
  [EXTENSION_CONFIG_TYPE]: { typeUrl: EXTENSION_CONFIG_TYPE, short: 'ecds', fullState: false, generate: (push, proxy, names) => [...envoyFilterExtensionConfigs(push, proxy, names ?? []), ...wasmExtensionConfigs(push, proxy, names ?? [])] },
  [SECRET_TYPE]: {
    typeUrl: SECRET_TYPE,
    short: 'sds',
    fullState: false,
    generate: (push, _proxy, names) => (names ?? []).map((n) => buildSecret(push, n)).filter((r): r is EnvoyJson => r !== undefined),
  },
  // One unnamed NameTable per proxy (Istio's NDS), recomputed on every push like EDS.
  [NDS_TYPE]: { typeUrl: NDS_TYPE, short: 'nds', fullState: true, generate: (push, proxy) => buildNameTable(push, proxy) },
};

/** The name of a resource of any xDS type (ClusterLoadAssignment names itself `cluster_name`). */
export function resourceName(r: EnvoyJson): string {
  return (r.name ?? r.cluster_name) as string;
}
