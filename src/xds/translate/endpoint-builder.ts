// EDS: the ClusterLoadAssignment of an outbound cluster, endpoints grouped by locality, with the
// metadata auto mTLS needs (`envoy.transport_socket_match: { tlsMode: istio }` for sidecars whose
// PeerAuthentication accepts mTLS on the endpoint's port; `disabled` when it says DISABLE, as Istio does).
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Endpoint } from '../../model/service.ts';
import { labelsMatch } from '../../model/service.ts';
import { parseClusterName } from './names.ts';
import { workloadMtlsMode } from './peer-authentication.ts';

/** Auto mTLS: whether clients originate Istio mTLS to this endpoint (it has a sidecar that does not DISABLE mTLS on its port). */
export function acceptsIstioMtls(push: PushContext, e: Endpoint): boolean {
  return e.tlsMode === 'istio' && workloadMtlsMode(push, e.namespace, e.labels, e.workloadPort) !== 'DISABLE';
}

export function endpointJson(push: PushContext, e: Endpoint): EnvoyJson {
  const lb: EnvoyJson = {
    endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
    health_status: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
    metadata: {
      filter_metadata: {
        'envoy.transport_socket_match': { tlsMode: acceptsIstioMtls(push, e) ? 'istio' : 'disabled' },
        istio: { workload: `${e.workloadName};${e.namespace};${e.labels['app'] ?? ''};${e.labels['version'] ?? ''};` },
      },
    },
    load_balancing_weight: e.weight || 1,
  };
  return lb;
}

/** Always present (possibly empty), as Istio sends it: gRPC clients reject endpoints without one. */
function localityOf(l: string): EnvoyJson {
  if (!l) return {};
  const [region, zone, subZone] = l.split('/');
  const out: EnvoyJson = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone) out.sub_zone = subZone;
  return out;
}

/** The load assignment for `outbound|port|subset|host` as seen from a proxy namespace; undefined when the cluster is unknown. */
export function buildLoadAssignment(push: PushContext, proxyNamespace: string, clusterName: string): EnvoyJson | undefined {
  // Every proxy of a namespace asks for the same names on every push: one lookup per name, keyed
  // by the requested name itself (its hash is cached in the string; a composed key is hashed anew).
  const table = push.memo(`eds-ns|${proxyNamespace}`, () => new Map<string, EnvoyJson | undefined>());
  const hit = table.get(clusterName);
  if (hit !== undefined || table.has(clusterName)) return hit;
  const built = loadAssignment(push, proxyNamespace, clusterName);
  table.set(clusterName, built);
  return built;
}

function loadAssignment(push: PushContext, proxyNamespace: string, clusterName: string): EnvoyJson | undefined {
  const parsed = parseClusterName(clusterName);
  if (!parsed || parsed.direction !== 'outbound') return undefined;
  const svc = push.serviceByHost.get(parsed.host);
  if (!svc || !svc.ports.some((p) => p.port === parsed.port)) return undefined;
  let subsetLabels: Record<string, string> | undefined;
  let drKey = '';
  if (parsed.subset) {
    const dr = push.destinationRuleFor(proxyNamespace, svc);
    const subset = dr?.spec.subsets?.find((s) => s.name === parsed.subset);
    // A subset no DestinationRule defines has no endpoints (Envoy answers 503 NC-like), as in Istio.
    subsetLabels = subset ? subset.labels ?? {} : { '\0no-such-subset': '' };
    drKey = dr ? `${dr.metadata.namespace}/${dr.metadata.name}` : '-';
  }
  return push.memo(`eds|${clusterName}|${drKey}`, () => {
    const byLocality = new Map<string, EnvoyJson[]>();
    for (const e of push.endpointsOf(svc.hostname, parsed.port)) {
      if (!labelsMatch(subsetLabels, e.labels)) continue;
      const list = byLocality.get(e.locality) ?? [];
      list.push(endpointJson(push, e));
      byLocality.set(e.locality, list);
    }
    const endpoints = [...byLocality.entries()].map(([loc, eps]) => {
      return { locality: localityOf(loc), lb_endpoints: eps, load_balancing_weight: eps.reduce((n, e) => n + ((e.load_balancing_weight as number) ?? 1), 0) };
    });
    return endpoints.length ? { cluster_name: clusterName, endpoints } : { cluster_name: clusterName };
  });
}
