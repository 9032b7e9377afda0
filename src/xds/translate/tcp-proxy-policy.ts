// DestinationRule settings istiod puts on an outbound tcp_proxy filter rather than on the cluster:
// connectionPool.tcp.idleTimeout becomes the filter's idle_timeout (Envoy's default, 1 h, without
// it) and connectionPool.tcp.maxConnectionDuration its max_downstream_connection_duration. Istio
// reads the rule of the first route's destination host, from its top-level trafficPolicy only
// (pilot networkfilter.go, buildOutboundNetworkFiltersWithSingleDestination / WithWeightedClusters).
// tcp_proxy filters are built in several places (service ports, tcp and tls routes, Sidecar
// egress, gateways), so this is one pass over the finished listeners: the first cluster a filter
// names is the first route's destination.
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { envoyDuration } from './duration.ts';
import { parseClusterName } from './names.ts';

const TCP_PROXY = 'envoy.filters.network.tcp_proxy';

/** The first cluster a tcp_proxy config sends to (its cluster, else its first weighted cluster). */
function firstCluster(cfg: EnvoyJson): string | undefined {
  if (typeof cfg.cluster === 'string') return cfg.cluster;
  const weighted = (cfg.weighted_clusters as EnvoyJson | undefined)?.clusters as EnvoyJson[] | undefined;
  return weighted?.[0]?.name as string | undefined;
}

/** The tcp_proxy fields of a rule's top-level connectionPool.tcp; undefined when it sets none. */
function tcpProxyFields(tcp: { idleTimeout?: string; maxConnectionDuration?: string } | undefined): EnvoyJson | undefined {
  if (!tcp?.idleTimeout && !tcp?.maxConnectionDuration) return undefined;
  const out: EnvoyJson = {};
  if (tcp.idleTimeout) out.idle_timeout = envoyDuration(tcp.idleTimeout);
  if (tcp.maxConnectionDuration) out.max_downstream_connection_duration = envoyDuration(tcp.maxConnectionDuration);
  return out;
}

/** Listeners whose outbound tcp_proxy filters carry their destination's DestinationRule connection settings (copied where changed). */
export function withTcpProxyPolicy(push: PushContext, proxy: Proxy, listeners: EnvoyJson[]): EnvoyJson[] {
  if (!push.destinationRules.some((dr) => tcpProxyFields(dr.spec.trafficPolicy?.connectionPool?.tcp))) return listeners;
  const byHost = new Map<string, EnvoyJson | undefined>();
  const fieldsFor = (host: string): EnvoyJson | undefined => {
    if (!byHost.has(host)) {
      const svc = push.serviceByHost.get(host);
      byHost.set(host, svc && tcpProxyFields(push.destinationRuleFor(proxy, svc)?.spec.trafficPolicy?.connectionPool?.tcp));
    }
    return byHost.get(host);
  };
  const filter = (f: EnvoyJson): EnvoyJson => {
    const cfg = f.typed_config as EnvoyJson | undefined;
    if (f.name !== TCP_PROXY || !cfg) return f;
    const name = firstCluster(cfg);
    const dest = name === undefined ? undefined : parseClusterName(name);
    const fields = dest?.direction === 'outbound' ? fieldsFor(dest.host) : undefined;
    return fields ? { ...f, typed_config: { ...cfg, ...fields } } : f;
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
