// Which Envoy stats a local mesh's proxy keeps (Istio's proxyStatsMatcher), handed to `rig proxy`
// as Istio hands them to pilot-agent in a pod: PROXY_CONFIG, the injector's merge of MeshConfig
// defaultConfig with the pod's proxy.istio.io/config (the pod's lists replace the mesh's, list by
// list), and the pod's sidecar.istio.io/statsInclusion* annotations as node metadata ANNOTATIONS.
// `rig proxy` then builds Istio's stats_matcher from them (src/proxy/bootstrap/istio-stats-config.ts).
import type { ProxyStatsMatcher } from './mesh-plan.ts';

export function proxyStatsEnv(mesh: ProxyStatsMatcher | undefined, own?: { matcher?: ProxyStatsMatcher; annotations: Record<string, string> }): Record<string, string> {
  const env: Record<string, string> = {};
  const matcher = { ...mesh, ...own?.matcher };
  if (Object.keys(matcher).length) env.PROXY_CONFIG = JSON.stringify({ proxyStatsMatcher: matcher });
  if (own && Object.keys(own.annotations).length) env.ISTIO_METAJSON_ANNOTATIONS = JSON.stringify(own.annotations);
  return env;
}
