// RDS: route configurations by name — sidecar port routes (`9080`), the explicit-mode proxy
// route (`http_proxy`), per-upstream and proxyless gRPC routes (`host:port`), gateway routes
// (`http.<port>`, `https.<port>.<portName>.<gw>.<ns>`).
import type { Resource } from '../../api/index.ts';
import type { GatewaySpec, IstioEgressListener, L4MatchAttributes, RouteDestination, Server, VirtualServiceSpec } from '../../api/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import { bindsTo, egressHostsMatch, qualifyGateway } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { hostMatches, hostsIntersect, isHttpProtocol, labelsMatch, resolveShortName } from '../../model/service.ts';
import { gatewaysFor, serverHosts } from './gateway-servers.ts';
import { includesAttemptCount } from './proxy-headers.ts';
import { HTTP_PROXY_ROUTE, gatewayHttpsRouteName, outboundClusterName } from './names.ts';
import type { RouteContext } from './route-builder.ts';
import { clusterFor, defaultRoute, hashPolicyFor, virtualServiceRoutes } from './route-builder.ts';
import { unknownDestinationCluster } from './unknown-destinations.ts';
import { UNIX_PREFIX } from './inbound-ports.ts';

/**
 * Which names a virtual host lists: `bare` only the names (the route configuration ignores the
 * port in host matching), `both` each name with and without the port (proxyless gRPC matches the
 * target authority as is), `proxy` with the port (bare too for port 80: the explicit proxy's one
 * route table covers every port).
 */
type DomainMode = 'bare' | 'both' | 'proxy';

function scopeKey(push: PushContext, proxy: Proxy): string {
  const sc = push.sidecarFor(proxy);
  return `${proxy.namespace}|${sc?.metadata.name ?? ''}|${proxy.generator ?? ''}|${push.usesSourceLabels ? JSON.stringify(proxy.labels) : ''}|${push.destinationRuleSelection(proxy)}`;
}

/**
 * Istio's limit on direct_response bodies (1 MiB), set on every sidecar and gateway route
 * configuration: without it Envoy allows 4096 bytes. Proxyless gRPC routes don't carry it, as Istio's.
 */
const MAX_DIRECT_RESPONSE_BODY_BYTES = 1024 * 1024;

/** The route configuration named `name` for a proxy, or undefined when the name means nothing to it. */
export function buildRouteConfig(push: PushContext, proxy: Proxy, name: string): EnvoyJson | undefined {
  const attempts = includesAttemptCount(push, proxy) && proxy.generator !== 'grpc';
  if (proxy.type === 'router') return push.memo(`rds|gw|${name}|${JSON.stringify(proxy.labels)}|${proxy.namespace}|${attempts}`, () => withAttemptCount(gatewayRouteConfig(push, proxy, name), attempts));
  return push.memo(`rds|${name}|${scopeKey(push, proxy)}|${attempts}`, () => withAttemptCount(sidecarRouteConfig(push, proxy, name), attempts));
}

/** As istiod, every virtual host of sidecar and gateway routes sends x-envoy-attempt-count upstream unless proxyHeaders.attemptCount.disabled. */
function withAttemptCount(rc: EnvoyJson | undefined, on: boolean): EnvoyJson | undefined {
  if (!rc || !on) return rc;
  return { ...rc, virtual_hosts: (rc.virtual_hosts as EnvoyJson[]).map((vh) => ({ ...vh, include_request_attempt_count: true })) };
}

function sidecarRouteConfig(push: PushContext, proxy: Proxy, name: string): EnvoyJson | undefined {
  if (name === HTTP_PROXY_ROUTE) return explicitProxyRoutes(push, proxy);
  if (name.startsWith(UNIX_PREFIX)) return udsRoutes(push, proxy, name);
  const hostPort = /^(.+):(\d+)$/.exec(name);
  if (hostPort) {
    const svc = push.serviceByHost.get(hostPort[1]);
    const port = svc?.ports.find((p) => p.port === Number(hostPort[2]));
    if (!svc || !port) return undefined;
    const ctx = routeContext(push, proxy, port.port);
    const domains = proxy.generator === 'grpc' ? serviceDomains(svc, port, proxy, 'both') : ['*'];
    return { name, virtual_hosts: [{ name, domains, routes: serviceRoutes(ctx, svc, port) }], validate_clusters: false };
  }
  if (!/^\d+$/.test(name)) return undefined;
  const portNum = Number(name);
  const ctx = routeContext(push, proxy, portNum);
  const used = new Set<string>();
  const vhosts: EnvoyJson[] = [];
  // As Istio: a sidecar's port route lists each name once and ignores the port of the Host header
  // (every request on it came to this port); half the domains of name + name:port.
  const ignorePort = proxy.generator !== 'grpc';
  for (const svc of push.servicesForPort(proxy, portNum)) {
    const port = svc.ports.find((p) => p.port === portNum && (isHttpProtocol(p.protocol) || p.protocol === 'UNKNOWN'));
    if (!port) continue;
    const domains = unique(serviceDomains(svc, port, proxy, ignorePort ? 'bare' : 'both'), used);
    if (domains.length) vhosts.push({ name: `${svc.hostname}:${portNum}`, domains, routes: serviceRoutes(ctx, svc, port) });
  }
  vhosts.push(catchAll(push, proxy, false));
  return { name, virtual_hosts: vhosts, validate_clusters: false, ...(ignorePort && { ignore_port_in_host_matching: true }), max_direct_response_body_size_bytes: MAX_DIRECT_RESPONSE_BODY_BYTES };
}

function routeContext(push: PushContext, proxy: Proxy, port: number, gateway = 'mesh', tls = false): RouteContext {
  return { push, proxy, gateway, port, grpc: proxy.generator === 'grpc', tls };
}

function serviceRoutes(ctx: RouteContext, svc: Service, port: ServicePort): EnvoyJson[] {
  const vsList = ctx.push.virtualServicesFor(ctx.proxy.namespace, ctx.gateway, svc.hostname).filter((vs) => vs.spec.http?.length);
  if (vsList.length) return virtualServiceRoutes(ctx, vsList);
  return [defaultRoute(ctx, outboundClusterName(port.port, '', svc.hostname), hashPolicyFor(ctx, svc.hostname))];
}

/** Istio's virtual host domains for a service port, as seen from the proxy's namespace. */
export function serviceDomains(svc: Service, port: ServicePort, proxy: Proxy, mode: DomainMode): string[] {
  const names = [svc.hostname];
  if (svc.source === 'Service') {
    const [name, ns] = [svc.name, svc.namespace];
    if (ns === proxy.namespace) names.push(name);
    names.push(`${name}.${ns}`, `${name}.${ns}.svc`);
  }
  if (svc.address && svc.address !== '0.0.0.0') names.push(svc.address);
  if (mode === 'bare') return names;
  const out: string[] = [];
  const bare = mode === 'both' || port.port === 80;
  for (const n of names) {
    if (bare) out.push(n);
    out.push(`${n}:${port.port}`);
  }
  return out;
}

function unique(domains: string[], used: Set<string>): string[] {
  const out = domains.filter((d) => !used.has(d));
  for (const d of out) used.add(d);
  return out;
}

/** Whether an L4 (tcp/tls) match applies to traffic on `port` through `ctx.gateway` from `ctx.proxy` (its own `gateways`, else the VirtualService's). */
export function l4MatchApplies(ctx: RouteContext, vs: Resource<VirtualServiceSpec>, m: L4MatchAttributes, port: number): boolean {
  const ns = vs.metadata.namespace;
  const gateways = m.gateways?.length ? m.gateways : vs.spec.gateways?.length ? vs.spec.gateways : ['mesh'];
  if (!gateways.some((g) => qualifyGateway(g, ns) === ctx.gateway)) return false;
  if (m.port !== undefined && m.port !== port) return false;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, ctx.proxy.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== ctx.proxy.namespace) return false;
  return true;
}

export interface TcpRouteTarget {
  /** destinationSubnets of the match (a filter chain of their own); empty: the port's default. */
  subnets: string[];
  target: EnvoyJson;
}

/** The tcp routes of VirtualServices that apply on `port`, in order: one entry per match with destinationSubnets, then the first catch-all. */
export function tcpRouteTargets(ctx: RouteContext, vsList: readonly Resource<VirtualServiceSpec>[], port: number): TcpRouteTarget[] {
  const out: TcpRouteTarget[] = [];
  for (const vs of vsList) {
    for (const r of vs.spec.tcp ?? []) {
      if (!r.route?.length) continue;
      const matches = r.match?.length ? r.match.filter((m) => l4MatchApplies(ctx, vs, m, port)) : l4MatchApplies(ctx, vs, {}, port) ? [{}] : [];
      for (const m of matches as L4MatchAttributes[]) {
        const target = destinationsTarget(ctx, r.route, vs.metadata.namespace);
        if (m.destinationSubnets?.length) out.push({ subnets: m.destinationSubnets, target });
        else {
          out.push({ subnets: [], target });
          return out;
        }
      }
    }
  }
  return out;
}

/** The target of non-HTTP traffic to a service port: the first applicable tcp route without destinationSubnets, else the service. */
export function tcpTarget(ctx: RouteContext, svc: Service, port: ServicePort): EnvoyJson {
  const routes = tcpRouteTargets(ctx, ctx.push.virtualServicesFor(ctx.proxy.namespace, ctx.gateway, svc.hostname), port.port);
  return routes.find((r) => !r.subnets.length)?.target ?? { cluster: outboundClusterName(port.port, '', svc.hostname) };
}

export function destinationsTarget(ctx: RouteContext, dests: RouteDestination[], ns: string): EnvoyJson {
  if (dests.length === 1) return { cluster: clusterFor(ctx, dests[0].destination, ns) };
  return { weighted_clusters: { clusters: dests.filter((d) => (d.weight ?? 0) > 0).map((d) => ({ name: clusterFor(ctx, d.destination, ns), weight: d.weight ?? 0 })) } };
}

/**
 * The target of a CONNECT to a service port by a `tls` route (explicit mode): the tunnel's
 * authority stands for the SNI the client sends inside it, as with a TLS client that connects
 * to the host it names. Undefined when no tls route of a VirtualService bound here matches.
 */
function tlsConnectTarget(ctx: RouteContext, svc: Service, port: ServicePort): EnvoyJson | undefined {
  for (const vs of ctx.push.virtualServicesFor(ctx.proxy.namespace, ctx.gateway, svc.hostname)) {
    const ns = vs.metadata.namespace;
    for (const r of vs.spec.tls ?? []) {
      const applies = r.match.some((m) => l4MatchApplies(ctx, vs, m, port.port) && m.sniHosts.some((h) => hostMatches(resolveShortName(h, ns), svc.hostname)));
      if (applies && r.route?.length) return destinationsTarget(ctx, r.route, ns);
    }
  }
  return undefined;
}

/**
 * Route metadata naming the destination a CONNECT to a service port stands for (its VIP and
 * port): the proxy then takes the tunnel's inside as a connection captured to that destination,
 * through the listener built for it (src/proxy/http/connect-redispatch.ts says why).
 */
const CONNECT_REDISPATCH_METADATA = 'rigging.connect_redispatch';

function connectRoute(target: EnvoyJson, svc?: Service, port?: ServicePort): EnvoyJson {
  const route: EnvoyJson = { name: 'connect', match: { connect_matcher: {} }, route: { ...target, timeout: '0s', upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] } };
  // Not for services without an address (headless, wildcard hosts): a captured connection keeps
  // the address it was made to, which an explicit proxy's CONNECT does not have.
  if (svc?.address && svc.address !== '0.0.0.0' && port) route.metadata = { filter_metadata: { [CONNECT_REDISPATCH_METADATA]: { original_dst: { address: svc.address, port_value: port.port } } } };
  return route;
}

function catchAll(push: PushContext, proxy: Proxy, withConnect: boolean): EnvoyJson {
  if (push.outboundMode(proxy) === 'REGISTRY_ONLY') {
    return { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }] };
  }
  const routes: EnvoyJson[] = [];
  const cluster = unknownDestinationCluster(push, proxy);
  if (withConnect) routes.push(connectRoute({ cluster }));
  routes.push({ name: 'allow_any', match: { prefix: '/' }, route: { cluster, timeout: '0s', max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' } } });
  return { name: 'allow_any', domains: ['*'], routes };
}

/** `http_proxy`: every visible service host:port, absolute-form and CONNECT (explicit mode). */
function explicitProxyRoutes(push: PushContext, proxy: Proxy): EnvoyJson {
  const used = new Set<string>();
  const vhosts: EnvoyJson[] = [];
  const scoped = new Map<number, Set<Service>>();
  const reaches = (svc: Service, port: number) => {
    let set = scoped.get(port);
    if (!set) scoped.set(port, (set = new Set(push.servicesForPort(proxy, port))));
    return set.has(svc);
  };
  for (const svc of push.visibleServices(proxy)) {
    for (const port of svc.ports) {
      if (!reaches(svc, port.port)) continue;
      const domains = unique(serviceDomains(svc, port, proxy, 'proxy'), used);
      if (!domains.length) continue;
      const ctx = routeContext(push, proxy, port.port);
      const routes = [connectRoute(tlsConnectTarget(ctx, svc, port) ?? tcpTarget(ctx, svc, port), svc, port)];
      if (isHttpProtocol(port.protocol) || port.protocol === 'UNKNOWN') routes.push(...serviceRoutes(ctx, svc, port));
      vhosts.push({ name: `${svc.hostname}:${port.port}`, domains, routes });
    }
  }
  vhosts.push(catchAll(push, proxy, true));
  return { name: HTTP_PROXY_ROUTE, virtual_hosts: vhosts, validate_clusters: false, max_direct_response_body_size_bytes: MAX_DIRECT_RESPONSE_BODY_BYTES };
}

/** The services of a Sidecar egress listener on a Unix domain socket (port 0): its hosts' services, every port. */
export function udsServices(push: PushContext, proxy: Proxy, e: IstioEgressListener): Service[] {
  return push.visibleServices(proxy).filter((s) => egressHostsMatch(e.hosts, s, proxy.namespace));
}

/**
 * The route configuration of a Sidecar egress listener on a Unix domain socket, named by its bind
 * as istiod names it: its hosts' HTTP ports, all of them (istiod's listener port 0 takes every
 * port), each virtual host under `host:port` and the bare names (the first port of a service
 * keeps them), then the catch-all.
 */
function udsRoutes(push: PushContext, proxy: Proxy, name: string): EnvoyJson | undefined {
  const listener = push.sidecarFor(proxy)?.spec.egress?.find((e) => e.bind === name && !e.port?.number);
  if (!listener) return undefined;
  const used = new Set<string>();
  const vhosts: EnvoyJson[] = [];
  for (const svc of udsServices(push, proxy, listener)) {
    for (const port of svc.ports) {
      if (!isHttpProtocol(port.protocol) && port.protocol !== 'UNKNOWN') continue;
      const domains = unique(serviceDomains(svc, port, proxy, 'both'), used);
      if (domains.length) vhosts.push({ name: `${svc.hostname}:${port.port}`, domains, routes: serviceRoutes(routeContext(push, proxy, port.port), svc, port) });
    }
  }
  vhosts.push(catchAll(push, proxy, false));
  return { name, virtual_hosts: vhosts, validate_clusters: false, max_direct_response_body_size_bytes: MAX_DIRECT_RESPONSE_BODY_BYTES };
}

/** Gateway routes: VirtualServices bound to the Gateways whose servers on this port select the proxy. */
function gatewayRouteConfig(push: PushContext, proxy: Proxy, name: string): EnvoyJson | undefined {
  const http = /^http\.(\d+)$/.exec(name);
  const https = /^https\.(\d+)\.([^.]+)\.([^.]+)\.(.+)$/.exec(name);
  if (!http && !https) return undefined;
  const port = Number((http ?? https)![1]);
  const servers: { gw: Resource<GatewaySpec>; server: Server }[] = [];
  for (const gw of gatewaysFor(push, proxy)) {
    for (const server of gw.spec.servers ?? []) {
      if (server.port.number !== port) continue;
      if (https) {
        if (gatewayHttpsRouteName(port, server.port.name, gw.metadata.name, gw.metadata.namespace) !== name) continue;
      } else if (server.tls && !server.tls.httpsRedirect && isTlsProtocol(server.port.protocol)) continue;
      servers.push({ gw, server });
    }
  }
  if (!servers.length) return undefined;
  const byHost = new Map<string, EnvoyJson>();
  for (const { gw, server } of servers) {
    const gwKey = `${gw.metadata.namespace}/${gw.metadata.name}`;
    const ctx = routeContext(push, proxy, port, gwKey, server.tls !== undefined);
    for (const vs of push.virtualServices) {
      if (!vs.spec.http?.length || !bindsTo(vs, gwKey)) continue;
      const hosts = serverHosts(server, vs.metadata.namespace, gw.metadata.namespace);
      // The virtual host is the narrower of each intersecting (server host, VirtualService host) pair.
      const vhostNames = new Set<string>();
      for (const h of vs.spec.hosts ?? []) {
        const vsHost = resolveShortName(h, vs.metadata.namespace);
        for (const sh of hosts) if (hostsIntersect(sh, vsHost)) vhostNames.add(hostMatches(sh, vsHost) ? vsHost : sh);
      }
      for (const host of vhostNames) {
        const routes = virtualServiceRoutes(ctx, [vs]);
        if (!routes.length) continue;
        const existing = byHost.get(host);
        if (existing) {
          (existing.routes as EnvoyJson[]).push(...routes);
          continue;
        }
        const vh: EnvoyJson = { name: `${host}:${port}`, domains: host === '*' ? ['*'] : [host, `${host}:${port}`], routes };
        if (server.tls?.httpsRedirect) vh.require_tls = 'ALL';
        byHost.set(host, vh);
      }
    }
  }
  const vhosts = [...byHost.values()];
  if (!vhosts.length) vhosts.push({ name: `blackhole:${port}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, direct_response: { status: 404 } }] });
  return { name, virtual_hosts: vhosts, validate_clusters: false, max_direct_response_body_size_bytes: MAX_DIRECT_RESPONSE_BODY_BYTES };
}

export function isTlsProtocol(p: string | undefined): boolean {
  const u = (p ?? '').toUpperCase();
  return u === 'HTTPS' || u === 'TLS';
}
