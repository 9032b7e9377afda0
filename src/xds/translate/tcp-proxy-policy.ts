// DestinationRule settings istiod puts on an outbound tcp_proxy filter rather than on the cluster
// (pilot networkfilter.go, buildOutboundNetworkFiltersWithSingleDestination / WithWeightedClusters,
// for TCP and TLS routes of sidecars and gateways), from the rule of the first route's destination:
// - connectionPool.tcp.idleTimeout → idle_timeout (Envoy's default, 1 h, without it) and
//   connectionPool.tcp.maxConnectionDuration → max_downstream_connection_duration, from the rule's
//   top-level trafficPolicy only;
// - trafficPolicy.tunnel → tunneling_config (tunnelingconfig/apply.go): hostname targetHost:targetPort
//   (an IPv6 host in brackets), use_post for protocol POST. A single destination with a subset takes
//   that subset's tunnel only; one without a subset, or weighted destinations, the rule's top-level
//   tunnel (istiod: "tunneling config for a subset is ignored" with weighted clusters).
// AUTO_PASSTHROUGH gateways' SNI-DNAT tcp_proxies get the connection fields, never a tunnel.
// HTTP routes never get them: their traffic goes through the HCM. tcp_proxy filters are built in
// several places (service ports, tcp and tls routes, Sidecar egress, gateways), so this is one pass
// over the finished listeners, before EnvoyFilter patches as istiod: the first cluster a filter
// names is the first route's destination.
import type { EnvoyJson } from '../../envoy/index.ts';
import type { DestinationRuleSpec, TrafficPolicy } from '../../api/types/networking.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { envoyDuration } from './duration.ts';
import { outboundClusterName, parseClusterName } from './names.ts';

const TCP_PROXY = 'envoy.filters.network.tcp_proxy';

type Tunnel = NonNullable<TrafficPolicy['tunnel']>;

/** Envoy's tunneling_config for a DestinationRule tunnel. */
function tunnelingConfig(t: Tunnel): EnvoyJson {
  const host = t.targetHost.includes(':') ? `[${t.targetHost}]` : t.targetHost;
  return { hostname: `${host}:${t.targetPort}`, ...(t.protocol === 'POST' ? { use_post: true } : {}) };
}

/** The tcp_proxy fields of a rule's top-level connectionPool.tcp. */
function connectionFields(tcp: { idleTimeout?: string; maxConnectionDuration?: string } | undefined): EnvoyJson {
  const out: EnvoyJson = {};
  if (tcp?.idleTimeout) out.idle_timeout = envoyDuration(tcp.idleTimeout);
  if (tcp?.maxConnectionDuration) out.max_downstream_connection_duration = envoyDuration(tcp.maxConnectionDuration);
  return out;
}

function setsTcpProxyFields(dr: DestinationRuleSpec): boolean {
  const tp = dr.trafficPolicy;
  return !!(tp?.connectionPool?.tcp?.idleTimeout || tp?.connectionPool?.tcp?.maxConnectionDuration || tp?.tunnel || dr.subsets?.some((s) => s.trafficPolicy?.tunnel));
}

/** The fields a rule puts on a tcp_proxy whose first destination is `subset` (single destination) or a weighted list. */
function fieldsOf(rule: DestinationRuleSpec, subset: string | undefined, weighted: boolean): EnvoyJson {
  const tunnel = weighted || !subset ? rule.trafficPolicy?.tunnel : rule.subsets?.find((s) => s.name === subset)?.trafficPolicy?.tunnel;
  return { ...connectionFields(rule.trafficPolicy?.connectionPool?.tcp), ...(tunnel ? { tunneling_config: tunnelingConfig(tunnel) } : {}) };
}

/** Listeners whose outbound tcp_proxy filters carry their destination's DestinationRule settings (copied where changed). */
export function withTcpProxyPolicy(push: PushContext, proxy: Proxy, listeners: EnvoyJson[]): EnvoyJson[] {
  if (!push.destinationRules.some((dr) => setsTcpProxyFields(dr.spec))) return listeners;
  const fieldsFor = (cluster: string, weighted: boolean): EnvoyJson | undefined => {
    const dest = parseClusterName(cluster);
    const svc = dest?.direction === 'outbound' ? push.serviceByHost.get(dest.host) : undefined;
    const rule = svc && push.destinationRuleFor(proxy, svc)?.spec;
    const fields = rule && fieldsOf(rule, dest!.subset, weighted);
    // An AUTO_PASSTHROUGH gateway's SNI-DNAT forwarding carries the client's mTLS: never tunnelled (istiod's tunnelingconfig.Skip).
    if (fields && cluster !== outboundClusterName(dest!.port, dest!.subset, dest!.host)) delete fields.tunneling_config;
    return fields;
  };
  const filter = (f: EnvoyJson): EnvoyJson => {
    const cfg = f.typed_config as EnvoyJson | undefined;
    if (f.name !== TCP_PROXY || !cfg) return f;
    const weighted = ((cfg.weighted_clusters as EnvoyJson | undefined)?.clusters as EnvoyJson[] | undefined)?.[0]?.name;
    const fields = typeof cfg.cluster === 'string' ? fieldsFor(cfg.cluster, false) : typeof weighted === 'string' ? fieldsFor(weighted, true) : undefined;
    if (fields && cfg.tunneling_config) delete fields.tunneling_config; // a tunnel the filter already has stays
    return fields && Object.keys(fields).length ? { ...f, typed_config: { ...cfg, ...fields } } : f;
  };
  const chain = (c: EnvoyJson): EnvoyJson => {
    const filters = c.filters as EnvoyJson[] | undefined;
    const patched = filters?.map(filter);
    return !filters || patched!.every((f, i) => f === filters[i]) ? c : { ...c, filters: patched };
  };
  return listeners.map((l) => {
    const chains = l.filter_chains as EnvoyJson[] | undefined;
    const patched = chains?.map(chain);
    return !chains || patched!.every((c, i) => c === chains[i]) ? l : { ...l, filter_chains: patched };
  });
}
