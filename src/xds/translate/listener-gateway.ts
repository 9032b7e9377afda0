// LDS for routers (ingress/egress gateways): one listener per Gateway server port, with HTTP,
// HTTPS (SIMPLE / MUTUAL / ISTIO_MUTUAL termination), TLS PASSTHROUGH (by SNI), AUTO_PASSTHROUGH
// (east-west: by the mesh SNI to SNI-DNAT clusters) and TCP chains.
import type { Resource } from '../../api/index.ts';
import type { GatewaySpec, Server } from '../../api/index.ts';
import { PROXY_PROTOCOL_TYPE, type EnvoyJson } from '../../envoy/index.ts';
import { effectiveGatewayTopology } from '../../model/gateway-topology.ts';
import type { PushContext } from '../../model/push-context.ts';
import { bindsTo } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { hostMatches, hostsIntersect, normalizeProtocol, isHttpProtocol, resolveShortName } from '../../model/service.ts';
import { gatewaysFor, plainServerHosts, serverHosts } from './gateway-servers.ts';
import { buildHcm } from './http-filters.ts';
import { tcpProxy, needsTlsInspector, TLS_INSPECTOR } from './listener-inbound.ts';
import { BLACKHOLE_CLUSTER, gatewayHttpsRouteName, gatewayRouteName, listenerAddress, listenerName, sniDnatClusterName } from './names.ts';
import { destinationsTarget, l4MatchApplies, tcpRouteTargets } from './route-config.ts';
import type { TcpRouteTarget } from './route-config.ts';
import { cidr } from './listener-sidecar.ts';
import type { RouteContext } from './route-builder.ts';
import { ALPN_ISTIO_MTLS, gatewayDownstream } from './tls.ts';

/** gatewayTopology.proxyProtocol: istiod's listener filter, with its defaults (a PROXY header is required). */
const PROXY_PROTOCOL_FILTER: EnvoyJson = { name: 'envoy.filters.listener.proxy_protocol', typed_config: { '@type': PROXY_PROTOCOL_TYPE } };

const RDS_SOURCE = { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' };

interface BoundServer {
  gw: Resource<GatewaySpec>;
  server: Server;
}

export function gatewayListeners(push: PushContext, proxy: Proxy): EnvoyJson[] {
  const byPort = new Map<number, BoundServer[]>();
  for (const gw of gatewaysFor(push, proxy)) {
    for (const server of gw.spec.servers ?? []) {
      const list = byPort.get(server.port.number) ?? [];
      list.push({ gw, server });
      byPort.set(server.port.number, list);
    }
  }
  const bind = proxy.explicit?.bind ?? '0.0.0.0';
  const proxyProtocol = effectiveGatewayTopology(push.mesh.defaultConfig.gatewayTopology, proxy.gatewayTopology).proxyProtocol !== undefined;
  const out: EnvoyJson[] = [];
  for (const [port, servers] of [...byPort.entries()].sort((a, b) => a[0] - b[0])) {
    const chains = dedupe(servers.flatMap((bs) => serverChains(push, proxy, port, bs)));
    if (!chains.length) continue;
    const listener: EnvoyJson = { name: listenerName('0.0.0.0', port), address: listenerAddress(servers[0].server.bind ?? bind, proxy.explicit?.inboundPorts[String(port)] ?? port), traffic_direction: 'OUTBOUND', filter_chains: chains };
    // As istiod: proxy_protocol first, so the TLS inspector reads the ClientHello after the PROXY header.
    listener.listener_filters = [...(proxyProtocol ? [PROXY_PROTOCOL_FILTER] : []), ...(needsTlsInspector(chains) ? [TLS_INSPECTOR] : [])];
    if (!(listener.listener_filters as EnvoyJson[]).length) delete listener.listener_filters;
    out.push(listener);
  }
  return out;
}

function dedupe(chains: EnvoyJson[]): EnvoyJson[] {
  const seen = new Set<string>();
  return chains.filter((c) => {
    const k = JSON.stringify(c.filter_chain_match ?? {});
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function hcm(push: PushContext, proxy: Proxy, port: number, routeName: string): EnvoyJson {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: buildHcm(
      { push, proxy, kind: 'gateway', port },
      { statPrefix: `outbound_0.0.0.0_${port}`, routes: { rds: { route_config_name: routeName, config_source: RDS_SOURCE } }, extra: { http2_protocol_options: {} } },
    ),
  };
}

function serverChains(push: PushContext, proxy: Proxy, port: number, { gw, server }: BoundServer): EnvoyJson[] {
  const protocol = normalizeProtocol(server.port.protocol ?? 'HTTP');
  const hosts = plainServerHosts(server).filter((h) => h !== '*');
  const sni: EnvoyJson = hosts.length ? { server_names: hosts } : {};
  const tlsMode = server.tls?.mode;
  const gwKey = `${gw.metadata.namespace}/${gw.metadata.name}`;
  if (isHttpProtocol(protocol) || (server.tls?.httpsRedirect && protocol !== 'HTTPS')) {
    return [{ filters: [hcm(push, proxy, port, gatewayRouteName(port))] }];
  }
  if ((protocol === 'HTTPS' || protocol === 'TLS') && tlsMode && tlsMode !== 'PASSTHROUGH' && tlsMode !== 'AUTO_PASSTHROUGH') {
    const alpn = protocol === 'HTTPS' ? ['h2', 'http/1.1'] : [];
    const filters = protocol === 'HTTPS' ? [hcm(push, proxy, port, gatewayHttpsRouteName(port, server.port.name, gw.metadata.name, gw.metadata.namespace))] : [tcpProxy(`outbound_${port}`, l4Target(push, proxy, port, gwKey, server) ?? { cluster: BLACKHOLE_CLUSTER })];
    return [{ filter_chain_match: sni, transport_socket: gatewayDownstream(server.tls!, alpn), filters }];
  }
  if (tlsMode === 'AUTO_PASSTHROUGH') return autoPassthroughChains(push, proxy, server);
  if (protocol === 'HTTPS' || protocol === 'TLS') {
    // Passthrough: route by SNI per the VirtualServices' tls routes.
    const ctx: RouteContext = { push, proxy, gateway: gwKey, port, grpc: false };
    const out: EnvoyJson[] = [];
    for (const vs of push.virtualServices) {
      if (!bindsTo(vs, gwKey)) continue;
      const vsHosts = serverHosts(server, vs.metadata.namespace, gw.metadata.namespace);
      for (const r of vs.spec.tls ?? []) {
        for (const m of r.match ?? []) {
          if (!l4MatchApplies(ctx, vs, m, port)) continue;
          const names = m.sniHosts.map((h) => resolveShortName(h, vs.metadata.namespace)).filter((h) => vsHosts.some((sh) => hostsIntersect(sh, h)));
          if (!names.length || !r.route?.length) continue;
          // sniHosts "*" takes every name (Istio leaves server_names out; Envoy has no bare "*").
          const chainMatch = names.includes('*') ? {} : { filter_chain_match: { server_names: names } };
          out.push({ ...chainMatch, filters: [tcpProxy(`outbound_${port}`, destinationsTarget(ctx, r.route, vs.metadata.namespace))] });
        }
      }
    }
    return out;
  }
  return l4Routes(push, proxy, port, gwKey, server).map((t) => (t.subnets.length ? { filter_chain_match: { prefix_ranges: t.subnets.map(cidr) }, filters: [tcpProxy(`outbound_${port}`, t.target)] } : { filters: [tcpProxy(`outbound_${port}`, t.target)] }));
}

/**
 * istiod's builtAutoPassthroughFilterChains: no VirtualService, one chain per mesh service port (and
 * DestinationRule subset) the server's hosts cover, matching the SNI a sidecar sends for it and an
 * Istio mTLS ALPN (so only mesh mTLS gets through), forwarding the still encrypted connection to
 * the SNI-DNAT cluster of the same name.
 */
function autoPassthroughChains(push: PushContext, proxy: Proxy, server: Server): EnvoyJson[] {
  const hosts = plainServerHosts(server);
  const out: EnvoyJson[] = [];
  for (const svc of push.visibleServices(proxy)) {
    if (svc.meshExternal || !hosts.some((h) => hostMatches(h, svc.hostname))) continue;
    const subsets = ['', ...(push.destinationRuleFor(proxy, svc)?.spec.subsets ?? []).map((s) => s.name)];
    for (const port of svc.ports) {
      for (const subset of subsets) {
        const name = sniDnatClusterName(port.port, subset, svc.hostname);
        out.push({ filter_chain_match: { server_names: [name], application_protocols: ALPN_ISTIO_MTLS }, filters: [tcpProxy(name, { cluster: name })] });
      }
    }
  }
  return out;
}

function l4Target(push: PushContext, proxy: Proxy, port: number, gwKey: string, server: Server): EnvoyJson | undefined {
  return l4Routes(push, proxy, port, gwKey, server).find((t) => !t.subnets.length)?.target;
}

/** The tcp routes of VirtualServices bound to the gateway whose hosts the server exposes, with their matches (gateways, port, source) applied. */
function l4Routes(push: PushContext, proxy: Proxy, port: number, gwKey: string, server: Server): TcpRouteTarget[] {
  const ctx: RouteContext = { push, proxy, gateway: gwKey, port, grpc: false };
  const gwNs = gwKey.slice(0, gwKey.indexOf('/'));
  const vsList = push.virtualServices.filter((vs) => {
    if (!bindsTo(vs, gwKey)) return false;
    const hosts = serverHosts(server, vs.metadata.namespace, gwNs);
    return (vs.spec.hosts ?? []).some((h) => hosts.some((sh) => hostsIntersect(sh, resolveShortName(h, vs.metadata.namespace))));
  });
  return tcpRouteTargets(ctx, vsList, port);
}
