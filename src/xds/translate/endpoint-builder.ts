// EDS: the ClusterLoadAssignment of an outbound cluster, endpoints grouped by locality, with the
// metadata auto mTLS needs (`envoy.transport_socket_match: { tlsMode: istio }` for sidecars whose
// PeerAuthentication accepts mTLS on the endpoint's port; `disabled` when it says DISABLE, as Istio does).
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { Endpoint } from '../../model/service.ts';
import { labelsMatch } from '../../model/service.ts';
import { applyLocalityLb, effectiveLocalitySetting, localityLbActive } from './locality-lb.ts';
import type { LocalityGroup, LocalityLbSetting } from './locality-lb.ts';
import { parseClusterName } from './names.ts';
import { networkKey, splitHorizon } from './split-horizon.ts';
import { effectivePolicy } from './traffic-policy.ts';
import { workloadMtlsMode } from './peer-authentication.ts';

/** Auto mTLS: whether clients originate Istio mTLS to this endpoint (it has a sidecar that does not DISABLE mTLS on its port). */
export function acceptsIstioMtls(push: PushContext, e: Endpoint): boolean {
  return e.tlsMode === 'istio' && workloadMtlsMode(push, e.namespace, e.labels, e.workloadPort) !== 'DISABLE';
}

/** istiod's mtlsChecker: the DestinationRule's tls mode when it sets one, else auto mTLS. */
export function sendsIstioMtls(push: PushContext, drMode: string | undefined, e: Endpoint): boolean {
  return drMode ? drMode === 'ISTIO_MUTUAL' : acceptsIstioMtls(push, e);
}

export function endpointJson(push: PushContext, e: Endpoint): EnvoyJson {
  const lb: EnvoyJson = {
    endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
    health_status: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
    metadata: {
      filter_metadata: {
        'envoy.transport_socket_match': { tlsMode: e.networkGateway || acceptsIstioMtls(push, e) ? 'istio' : 'disabled' },
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

/**
 * The load assignment for `outbound|port|subset|host` as seen from a proxy; undefined when the
 * cluster is unknown. Shared by every proxy of a namespace (that the same workload-selecting
 * DestinationRules select) unless a locality LB setting applies to the cluster, in which case it
 * depends on the proxy's locality (and labels, for failoverPriority).
 */
export function buildLoadAssignment(push: PushContext, proxy: Proxy, clusterName: string): EnvoyJson | undefined {
  // Every proxy of a namespace asks for the same names on every push: one lookup per name, keyed
  // by the requested name and namespace themselves (their hashes are cached in the strings; a
  // composed key would be built and hashed anew on each of the proxies × clusters calls).
  const tables = push.memo('eds-ns', () => new Map<string, Map<string, ClusterEndpoints | undefined>>());
  const selection = push.destinationRuleSelection(proxy);
  // Split horizon (multi-network meshes): the assignment also depends on the proxy's network.
  const network = networkKey(push, proxy);
  const scope = `${selection ? `${proxy.namespace}|${selection}` : proxy.namespace}${network ? `|net=${network}` : ''}`;
  let table = tables.get(scope);
  if (!table) tables.set(scope, (table = new Map()));
  let ce = table.get(clusterName);
  if (ce === undefined && !table.has(clusterName)) {
    ce = clusterEndpoints(push, proxy, clusterName);
    table.set(clusterName, ce);
  }
  if (!ce) return undefined;
  if (!ce.locality) return ce.shared;
  const { setting, outlierDetection } = ce.locality;
  const labelKey = setting.failoverPriority?.length ? JSON.stringify(proxy.labels) : '';
  return push.memo(`eds-loc|${scope}|${clusterName}|${proxy.locality}|${labelKey}`, () => assignment(push, clusterName, applyLocalityLb(ce.groups, proxy.locality, proxy.labels, setting, outlierDetection)));
}

interface ClusterEndpoints {
  groups: LocalityGroup[];
  /** The proxy-independent assignment (no locality LB setting in force). */
  shared: EnvoyJson;
  locality?: { setting: LocalityLbSetting; outlierDetection: boolean };
}

function clusterEndpoints(push: PushContext, proxy: Proxy, clusterName: string): ClusterEndpoints | undefined {
  const parsed = parseClusterName(clusterName);
  if (!parsed || parsed.direction !== 'outbound') return undefined;
  const svc = push.serviceByHost.get(parsed.host);
  if (!svc || !svc.ports.some((p) => p.port === parsed.port)) return undefined;
  const entry = push.destinationRuleEntryFor(proxy, svc);
  const dr = entry?.rule;
  let subsetLabels: Record<string, string> | undefined;
  if (parsed.subset) {
    const subset = dr?.spec.subsets?.find((s) => s.name === parsed.subset);
    // A subset no DestinationRule defines has no endpoints (Envoy answers 503 NC-like), as in Istio.
    subsetLabels = subset ? subset.labels ?? {} : { '\0no-such-subset': '' };
  }
  const drKey = entry ? entry.from.join(',') : '-';
  return push.memo(`eds|${clusterName}|${drKey}|${networkKey(push, proxy)}`, () => {
    const policy = effectivePolicy(dr, parsed.subset, parsed.port);
    // Unhealthy endpoints are left out, as Istio does by default (PILOT_SEND_UNHEALTHY_ENDPOINTS off):
    // sent as UNHEALTHY, Envoy's panic threshold would still route to them when too few are healthy.
    const healthy = push.endpointsOf(svc.hostname, parsed.port).filter((e) => e.healthy && labelsMatch(subsetLabels, e.labels));
    const groups = localityGroups(splitHorizon(push, proxy, clusterName, healthy, (e) => sendsIstioMtls(push, policy.tls?.mode, e)));
    const setting = effectiveLocalitySetting(policy.loadBalancer?.localityLbSetting, push.mesh.localityLbSetting);
    const outlierDetection = policy.outlierDetection !== undefined;
    return { groups, shared: assignment(push, clusterName, groups), locality: localityLbActive(setting, outlierDetection) ? { setting, outlierDetection } : undefined };
  });
}

/** Endpoints grouped by locality (priority 0, weight: the sum of the endpoints' weights). */
export function localityGroups(endpoints: readonly Endpoint[]): LocalityGroup[] {
  const byLocality = new Map<string, Endpoint[]>();
  for (const e of endpoints) byLocality.set(e.locality, [...(byLocality.get(e.locality) ?? []), e]);
  return [...byLocality.entries()].map(([locality, eps]) => ({ locality, endpoints: eps, weight: eps.reduce((n, e) => n + (e.weight || 1), 0), priority: 0 }));
}

/** A ClusterLoadAssignment from locality groups (empty groups left out). */
export function assignment(push: PushContext, clusterName: string, groups: LocalityGroup[]): EnvoyJson {
  const endpoints = groups
    .filter((g) => g.endpoints.length)
    .map((g) => {
      const out: EnvoyJson = { locality: localityOf(g.locality), lb_endpoints: g.endpoints.map((e) => endpointJson(push, e)), load_balancing_weight: g.weight };
      if (g.priority) out.priority = g.priority;
      return out;
    });
  return endpoints.length ? { cluster_name: clusterName, endpoints } : { cluster_name: clusterName };
}
