// DestinationRule trafficPolicy.tunnel on outbound tcp_proxy filters, as istiod's
// tunnelingconfig.Apply (pilot/pkg/networking/core/tunnelingconfig/apply.go, called from
// networkfilter.go for TCP and TLS routes of sidecars and gateways): tunneling_config with hostname
// targetHost:targetPort (an IPv6 host in brackets) and use_post for protocol POST. The rule is the
// one for the first route's destination host; a single destination with a subset takes that
// subset's tunnel only, a single destination without one or weighted destinations the rule's
// top-level tunnel (istiod: "tunneling config for a subset is ignored" with weighted clusters).
// HTTP routes never get it: their traffic goes through the HCM, not tcp_proxy. tcp_proxy filters
// are built in several places (service ports, tcp and tls routes, Sidecar egress, gateways), so
// this is one pass over the finished listeners (before EnvoyFilter patches, as istiod).
import type { EnvoyJson } from '../../envoy/index.ts';
import type { TrafficPolicy } from '../../api/types/networking.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { parseClusterName } from './names.ts';

const TCP_PROXY = 'envoy.filters.network.tcp_proxy';

type Tunnel = NonNullable<TrafficPolicy['tunnel']>;

/** Envoy's tunneling_config for a DestinationRule tunnel. */
export function tunnelingConfig(t: Tunnel): EnvoyJson {
  const host = t.targetHost.includes(':') ? `[${t.targetHost}]` : t.targetHost;
  return { hostname: `${host}:${t.targetPort}`, ...(t.protocol === 'POST' ? { use_post: true } : {}) };
}

/** Listeners whose outbound tcp_proxy filters tunnel as their destination's DestinationRule says (copied where changed). */
export function withTcpProxyTunnels(push: PushContext, proxy: Proxy, listeners: EnvoyJson[]): EnvoyJson[] {
  if (!push.destinationRules.some((dr) => dr.spec.trafficPolicy?.tunnel || dr.spec.subsets?.some((s) => s.trafficPolicy?.tunnel))) return listeners;
  const tunnelFor = (cluster: string, weighted: boolean): Tunnel | undefined => {
    const dest = parseClusterName(cluster);
    const svc = dest?.direction === 'outbound' ? push.serviceByHost.get(dest.host) : undefined;
    const rule = svc && push.destinationRuleFor(proxy, svc)?.spec;
    if (!rule) return undefined;
    if (weighted || !dest!.subset) return rule.trafficPolicy?.tunnel;
    return rule.subsets?.find((s) => s.name === dest!.subset)?.trafficPolicy?.tunnel;
  };
  const filter = (f: EnvoyJson): EnvoyJson => {
    const cfg = f.typed_config as EnvoyJson | undefined;
    if (f.name !== TCP_PROXY || !cfg || cfg.tunneling_config) return f;
    const weighted = ((cfg.weighted_clusters as EnvoyJson | undefined)?.clusters as EnvoyJson[] | undefined)?.[0]?.name;
    const tunnel = typeof cfg.cluster === 'string' ? tunnelFor(cfg.cluster, false) : typeof weighted === 'string' ? tunnelFor(weighted, true) : undefined;
    return tunnel ? { ...f, typed_config: { ...cfg, tunneling_config: tunnelingConfig(tunnel) } } : f;
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
