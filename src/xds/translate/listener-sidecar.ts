// LDS for sidecars. Explicit mode (INTERCEPTION_MODE NONE, docs/CONTRACTS.md §3): the
// `http_proxy` listener, one inbound listener per workload port, per-upstream loopback
// listeners. REDIRECT mode: virtualOutbound (15001) with original destination handing off to
// per-port outbound listeners, and virtualInbound (15006).
import { ORIGINAL_DST_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { isHttpProtocol, normalizeProtocol, resolveShortName } from '../../model/service.ts';
import { warnOnce } from '../../model/config-warnings.ts';
import type { IstioEgressListener } from '../../api/index.ts';
import { UNIX_PREFIX, inboundPorts } from './inbound-ports.ts';
import { pilotFeatures } from '../features.ts';
import { acceptsHttp10, buildHcm } from './http-filters.ts';
import { proxyHeadersKey } from './proxy-headers.ts';
import { TLS_INSPECTOR, chainsForMode, inboundChains, needsTlsInspector, tcpProxy } from './listener-inbound.ts';
import { HTTP_PROXY_ROUTE, INBOUND_PASSTHROUGH_CLUSTER, INBOUND_PORT, OUTBOUND_PORT, VIRTUAL_INBOUND, VIRTUAL_OUTBOUND, listenerAddress, listenerName } from './names.ts';
import { inboundMtlsMode } from './peer-authentication.ts';
import { needsHttpInspector, sniffedHttpChain, sniffingListener } from './listener-sniffing.ts';
import { withOutboundTcpTelemetry } from '../telemetry/index.ts';
import { tracingServiceName } from '../telemetry/telemetry-config.ts';
import { telemetryLevels } from '../telemetry/telemetry-policy.ts';
import { destinationsTarget, l4MatchApplies, tcpRouteTargets, tcpTarget, udsServices } from './route-config.ts';
import type { RouteContext } from './route-builder.ts';
import { unknownDestinationCluster } from './unknown-destinations.ts';

const RDS_SOURCE = { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' };

function hcmFilter(push: PushContext, proxy: Proxy, port: number, statPrefix: string, routeName: string, extra?: EnvoyJson): EnvoyJson {
  const remote = routeName !== HTTP_PROXY_ROUTE && pilotFeatures().sidecarUseRemoteAddress ? { use_remote_address: true } : {};
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: buildHcm({ push, proxy, kind: 'outbound', port }, { statPrefix, routes: { rds: { route_config_name: routeName, config_source: RDS_SOURCE } }, extra: { ...remote, ...extra } }),
  };
}

function withInspector(push: PushContext, listener: EnvoyJson, chains: EnvoyJson[]): EnvoyJson {
  if (needsTlsInspector(chains)) listener.listener_filters = [...((listener.listener_filters as EnvoyJson[] | undefined) ?? []), TLS_INSPECTOR];
  return needsHttpInspector(chains) ? sniffingListener(push, listener) : listener;
}

export function explicitListeners(push: PushContext, proxy: Proxy): EnvoyJson[] {
  const x = proxy.explicit!;
  const out: EnvoyJson[] = [];
  if (x.outboundPort) {
    out.push({
      name: HTTP_PROXY_ROUTE,
      address: listenerAddress(x.bind, x.outboundPort),
      traffic_direction: 'OUTBOUND',
      filter_chains: [
        {
          filters: [
            hcmFilter(push, proxy, x.outboundPort, 'outbound_http_proxy', HTTP_PROXY_ROUTE, {
              http_protocol_options: { allow_absolute_url: true },
              http2_protocol_options: { allow_connect: true },
              upgrade_configs: [{ upgrade_type: 'websocket' }, { upgrade_type: 'CONNECT' }],
            }),
          ],
        },
      ],
    });
  }
  for (const p of inboundPorts(push, proxy)) {
    const port = x.inboundPorts[String(p.port)];
    const chains = inboundChains(push, proxy, p);
    out.push(withInspector(push, { name: listenerName(x.bind, port), address: listenerAddress(x.bind, port), traffic_direction: 'INBOUND', filter_chains: chains }, chains));
  }
  out.push(...dedicatedEgressListeners(push, proxy, true));
  // The listeners REDIRECT mode hands captured connections to (bind_to_port: false): the inside of
  // a CONNECT to a service goes through the one for its address and port, as a captured connection
  // would (the CONNECT route names that destination; src/proxy/http/connect-redispatch.ts).
  const named = new Set(out.map((l) => l.name));
  out.push(...outboundPortListeners(push, proxy).filter((l) => !named.has(l.name)));
  for (const [hostPort, localPort] of Object.entries(x.upstreamPorts)) {
    const resolved = resolveUpstream(push, proxy, hostPort);
    if (!resolved) continue;
    const [svc, sp] = resolved;
    const name = listenerName(x.bind, localPort);
    const routeName = `${svc.hostname}:${sp.port}`;
    const tcp = { filters: [tcpProxy(`outbound|${sp.port}||${svc.hostname}`, tcpTarget(ctxFor(push, proxy, sp.port), svc, sp))] };
    const listener = { name, address: listenerAddress(x.bind, localPort), traffic_direction: 'OUTBOUND' };
    if (isHttpProtocol(sp.protocol)) out.push({ ...listener, filter_chains: [{ filters: [hcmFilter(push, proxy, sp.port, `outbound_${routeName}`, routeName)] }] });
    else if (sp.protocol === 'UNKNOWN') {
      const chains = [sniffedHttpChain(hcmFilter(push, proxy, sp.port, `outbound_${routeName}`, routeName)), tcp];
      out.push(withInspector(push, { ...listener, filter_chains: chains }, chains));
    }
    else out.push({ ...listener, filter_chains: [tcp] });
  }
  return withOutboundTcpTelemetry(push, proxy, out);
}

function ctxFor(push: PushContext, proxy: Proxy, port: number): RouteContext {
  return { push, proxy, gateway: 'mesh', port, grpc: false };
}

/** `host:port` of RIG_EXPLICIT.upstreamPorts → the service port (short names resolve in the proxy's namespace). */
export function resolveUpstream(push: PushContext, proxy: Proxy, hostPort: string): [Service, ServicePort] | undefined {
  const i = hostPort.lastIndexOf(':');
  if (i < 0) return undefined;
  const port = Number(hostPort.slice(i + 1));
  const host = hostPort.slice(0, i);
  const candidates = [host, resolveShortName(host, proxy.namespace), `${host}.svc.cluster.local`];
  for (const c of candidates) {
    const svc = push.serviceByHost.get(c);
    const sp = svc?.ports.find((p) => p.port === port);
    if (svc && sp) return [svc, sp];
  }
  return undefined;
}

export function redirectListeners(push: PushContext, proxy: Proxy): EnvoyJson[] {
  const out: EnvoyJson[] = [];
  const passthrough = unknownDestinationCluster(push, proxy);
  out.push(...withOutboundTcpTelemetry(push, proxy, [{
    name: VIRTUAL_OUTBOUND,
    address: listenerAddress('0.0.0.0', OUTBOUND_PORT),
    use_original_dst: true,
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxy(passthrough, { cluster: passthrough })] }],
  }]));
  out.push(...outboundPortListeners(push, proxy));
  const chains: EnvoyJson[] = [];
  for (const p of inboundPorts(push, proxy)) {
    if (!p.bind) chains.push(...inboundChains(push, proxy, p, { destination_port: p.port }));
    else {
      // Sidecar ingress captureMode NONE: a listener bound on bind:port, not reached through the capture.
      const own = inboundChains(push, proxy, p);
      out.push(withInspector(push, { name: listenerName(p.bind, p.port), address: listenerAddress(p.bind, p.port), traffic_direction: 'INBOUND', filter_chains: own }, own));
    }
  }
  chains.push(...chainsForMode(inboundMtlsMode(push, proxy, 0), 'virtualInbound-catchall', [tcpProxy(INBOUND_PASSTHROUGH_CLUSTER, { cluster: INBOUND_PASSTHROUGH_CLUSTER })], {}));
  const original = { name: 'envoy.filters.listener.original_dst', typed_config: { '@type': ORIGINAL_DST_TYPE } };
  out.push(withInspector(push, { name: VIRTUAL_INBOUND, address: listenerAddress('0.0.0.0', INBOUND_PORT), traffic_direction: 'INBOUND', listener_filters: [original], filter_chains: chains }, chains));
  return out;
}

/**
 * Per service port: HTTP ports share `0.0.0.0_<port>` (RDS by port); TCP/TLS get `<vip>_<port>`.
 * Built once per namespace, Sidecar, the Telemetry resources that apply (HCM filters and TCP
 * istio.stats differ by them), HTTP10 and its own proxyHeaders; only the tracer's service name is the workload's own, patched in.
 */
function outboundPortListeners(push: PushContext, proxy: Proxy): EnvoyJson[] {
  const telemetry = telemetryLevels(push, proxy).map((r) => `${r.metadata.namespace}/${r.metadata.name}`).join(',');
  const shared = push.memo(`lds-out|${proxy.namespace}|${push.sidecarFor(proxy)?.metadata.name ?? ''}|${push.usesSourceLabels ? JSON.stringify(proxy.labels) : ''}|${telemetry}|${acceptsHttp10(proxy)}|${proxyHeadersKey(proxy)}`, () => {
    const listeners = new Map<string, EnvoyJson>();
    for (const l of dedicatedEgressListeners(push, proxy, false)) listeners.set(l.name as string, l);
    const dedicated = new Set(dedicatedEgress(push, proxy).map((e) => e.port!.number!));
    const reaches = portScope(push, proxy);
    const services = push.visibleServices(proxy);
    const declared = capturedEgressProtocols(push, proxy);
    const listened = (sp: ServicePort): ServicePort => {
      const protocol = declared.get(sp.port);
      return protocol && protocol !== sp.protocol ? { ...sp, protocol } : sp;
    };
    for (const svc of services) {
      for (const sp of svc.ports.map(listened)) {
        if (dedicated.has(sp.port) || !reaches(svc, sp.port)) continue;
        if (isHttpProtocol(sp.protocol)) {
          const name = listenerName('0.0.0.0', sp.port);
          if (!listeners.has(name)) listeners.set(name, { name, address: listenerAddress('0.0.0.0', sp.port), bind_to_port: false, traffic_direction: 'OUTBOUND', filter_chains: [{ filters: [hcmFilter(push, proxy, sp.port, `outbound_0.0.0.0_${sp.port}`, String(sp.port))] }] });
        }
      }
    }
    for (const svc of services) {
      for (const sp of svc.ports.map(listened)) {
        if (isHttpProtocol(sp.protocol) || dedicated.has(sp.port) || !reaches(svc, sp.port)) continue;
        const ip = svc.address || '0.0.0.0';
        const name = listenerName(ip, sp.port);
        if (listeners.has(name)) continue;
        const chains = l4Chains(push, proxy, svc, sp, ip);
        listeners.set(name, withInspector(push, { name, address: listenerAddress(ip, sp.port), bind_to_port: false, traffic_direction: 'OUTBOUND', filter_chains: chains }, chains));
      }
    }
    return withOutboundTcpTelemetry(push, proxy, [...listeners.values()]);
  });
  return withTracingServiceName(shared, tracingServiceName(proxy));
}

const HCM = 'envoy.filters.network.http_connection_manager';

/** The listeners with `service` as their HCMs' tracer service name (OpenTelemetry), copying only what differs. */
function withTracingServiceName(listeners: EnvoyJson[], service: string): EnvoyJson[] {
  const filter = (f: EnvoyJson): EnvoyJson => {
    const hcm = f.typed_config as EnvoyJson | undefined;
    const tracing = hcm?.tracing as EnvoyJson | undefined;
    const provider = tracing?.provider as EnvoyJson | undefined;
    const cfg = provider?.typed_config as EnvoyJson | undefined;
    if (f.name !== HCM || cfg?.service_name === undefined || cfg.service_name === service) return f;
    return { ...f, typed_config: { ...hcm, tracing: { ...tracing, provider: { ...provider, typed_config: { ...cfg, service_name: service } } } } };
  };
  const chain = (c: EnvoyJson): EnvoyJson => {
    const filters = c.filters as EnvoyJson[];
    const patched = filters.map(filter);
    return patched.every((f, i) => f === filters[i]) ? c : { ...c, filters: patched };
  };
  return listeners.map((l) => {
    const chains = l.filter_chains as EnvoyJson[];
    const patched = chains.map(chain);
    return patched.every((c, i) => c === chains[i]) ? l : { ...l, filter_chains: patched };
  });
}

/** The chains of a non-HTTP service port: tls routes by SNI, tcp routes by destination subnet, sniffed HTTP, then the port's tcp route or the service. */
function l4Chains(push: PushContext, proxy: Proxy, svc: Service, sp: ServicePort, ip: string): EnvoyJson[] {
  const ctx = ctxFor(push, proxy, sp.port);
  const chains: EnvoyJson[] = [];
  const vsList = push.virtualServicesFor(proxy.namespace, 'mesh', svc.hostname);
  const statPrefix = `outbound|${sp.port}||${svc.hostname}`;
  for (const vs of vsList) {
    for (const r of vs.spec.tls ?? []) {
      for (const m of r.match ?? []) {
        if (!l4MatchApplies(ctx, vs, m, sp.port)) continue;
        const sni = m.sniHosts.map((h) => resolveShortName(h, vs.metadata.namespace));
        const match: EnvoyJson = { server_names: sni };
        if (m.destinationSubnets?.length) match.prefix_ranges = m.destinationSubnets.map(cidr);
        if (r.route?.length) chains.push({ filter_chain_match: match, filters: [tcpProxy(statPrefix, destinationsTarget(ctx, r.route, vs.metadata.namespace))] });
      }
    }
  }
  const tcpRoutes = tcpRouteTargets(ctx, vsList, sp.port);
  for (const t of tcpRoutes) if (t.subnets.length) chains.push({ filter_chain_match: { prefix_ranges: t.subnets.map(cidr) }, filters: [tcpProxy(statPrefix, t.target)] });
  // No declared protocol: HTTP (as the http_inspector sees it) goes through the port's routes.
  if (sp.protocol === 'UNKNOWN') chains.push(sniffedHttpChain(hcmFilter(push, proxy, sp.port, `outbound_${ip}_${sp.port}`, String(sp.port))));
  chains.push({ filters: [tcpProxy(statPrefix, tcpRoutes.find((t) => !t.subnets.length)?.target ?? { cluster: statPrefix })] });
  return chains;
}

/** Whether a proxy reaches `svc` on `port` (the Sidecar egress listener covering the port imports it). */
function portScope(push: PushContext, proxy: Proxy): (svc: Service, port: number) => boolean {
  if (!push.sidecarFor(proxy)?.spec.egress?.length) return () => true;
  const byPort = new Map<number, Set<Service>>();
  return (svc, port) => {
    let set = byPort.get(port);
    if (!set) byPort.set(port, (set = new Set(push.servicesForPort(proxy, port))));
    return set.has(svc);
  };
}

/**
 * The protocols of the ports Sidecar egress listeners capture (a port, no bind, not captureMode
 * NONE): istiod's buildSidecarOutboundListeners (pilot/pkg/networking/core/listener.go) builds such a
 * port's listeners with the egress listener's port protocol, not the services' — none declared is
 * protocol sniffing (istiod's ValidateProtocol: "Empty string is used for protocol sniffing"). Routes
 * keep the services' own: istiod's virtual hosts are those of HTTP service ports.
 */
function capturedEgressProtocols(push: PushContext, proxy: Proxy): Map<number, ServicePort['protocol']> {
  const out = new Map<number, ServicePort['protocol']>();
  for (const e of push.sidecarFor(proxy)?.spec.egress ?? []) {
    if (e.port?.number !== undefined && !e.bind && e.captureMode !== 'NONE') out.set(e.port.number, e.port.protocol ? normalizeProtocol(e.port.protocol) : 'UNKNOWN');
  }
  return out;
}

/** Sidecar egress listeners with a port and a bind address or captureMode NONE: a listener of their own. */
function dedicatedEgress(push: PushContext, proxy: Proxy): IstioEgressListener[] {
  return (push.sidecarFor(proxy)?.spec.egress ?? []).filter((e) => e.port?.number !== undefined && (e.bind || e.captureMode === 'NONE'));
}

/**
 * Istio's Sidecar egress listener on `bind:port` (captureMode NONE: bound for real, the application
 * connects to it; default bind 127.0.0.1): HTTP routes over the listener's hosts, or a TCP relay to
 * its service. In explicit mode such listeners always bind.
 */
function dedicatedEgressListeners(push: PushContext, proxy: Proxy, explicit: boolean): EnvoyJson[] {
  const sidecar = push.sidecarFor(proxy);
  const out: EnvoyJson[] = [];
  for (const e of dedicatedEgress(push, proxy)) {
    const port = e.port!.number!;
    const where = `Sidecar ${sidecar!.metadata.namespace}/${sidecar!.metadata.name} egress port ${port}`;
    // A Unix domain socket (port 0, bind unix://path): always bound, on a pipe address.
    const uds = e.bind?.startsWith(UNIX_PREFIX) ?? false;
    const bindToPort = explicit || uds || e.captureMode === 'NONE';
    const bind = e.bind || (bindToPort ? '127.0.0.1' : '0.0.0.0');
    const services = uds ? udsServices(push, proxy, e) : push.servicesForPort(proxy, port);
    const declared = e.port!.protocol ? normalizeProtocol(e.port!.protocol) : undefined;
    const protocol = declared ?? services[0]?.ports.find((p) => p.port === port)?.protocol ?? 'TCP';
    const address = uds ? { pipe: { path: bind.slice(UNIX_PREFIX.length) } } : listenerAddress(bind, port);
    const base = { name: listenerName(bind, port), address, bind_to_port: bindToPort, traffic_direction: 'OUTBOUND' };
    if (isHttpProtocol(protocol)) {
      // As istiod, a Unix domain socket listener's route configuration is named by its bind.
      out.push({ ...base, filter_chains: [{ filters: [hcmFilter(push, proxy, port, `outbound_${bind}_${port}`, uds ? bind : String(port))] }] });
      continue;
    }
    const svc = services[0];
    // On a Unix domain socket, the service's one port (istiod's default port of a single-port service).
    const sp = uds ? (svc?.ports.length === 1 ? svc.ports[0] : undefined) : svc?.ports.find((p) => p.port === port);
    if (!svc || !sp) {
      warnOnce('lds', uds ? `${where}: bind ${bind}: a ${protocol} listener on a Unix domain socket relays to a service with one port; ${svc ? `${svc.hostname} has ${svc.ports.length}` : 'none of its hosts is a service'}; listener not created` : `${where}: no service of its hosts has port ${port}; listener not created`);
      continue;
    }
    if (services.length > 1) warnOnce('lds', `${where}: a ${protocol} listener relays to one service; ${services.length} match its hosts, ${svc.hostname} is used`);
    const chains = l4Chains(push, proxy, svc, sp, bind);
    out.push(withInspector(push, { ...base, filter_chains: chains }, chains));
  }
  return withOutboundTcpTelemetry(push, proxy, out);
}

export function cidr(s: string): EnvoyJson {
  const [ip, len] = s.split('/');
  return { address_prefix: ip, prefix_len: len === undefined ? (ip.includes(':') ? 128 : 32) : Number(len) };
}
