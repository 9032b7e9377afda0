// CDS: one cluster per visible service port and per DestinationRule subset, plus the inbound
// clusters of a sidecar's workload ports and Istio's infrastructure clusters.
import type { Resource } from '../../api/index.ts';
import type { DestinationRuleSpec, LoadBalancerSettings } from '../../api/index.ts';
import { HTTP_PROTOCOL_OPTIONS_TYPE, UPSTREAM_PROXY_PROTOCOL_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { spiffeId } from '../../model/proxy.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { isHttp2Protocol, isHttpProtocol, labelsMatch } from '../../model/service.ts';
import { inboundPorts } from './inbound-ports.ts';
import { envoyDuration, toSeconds } from './duration.ts';
import { acceptsIstioMtls, assignment, localityGroups, sendsIstioMtls } from './endpoint-builder.ts';
import { networkKey, splitHorizon } from './split-horizon.ts';
import { applyLocalityLb, effectiveLocalitySetting, localityLbActive } from './locality-lb.ts';
import { BLACKHOLE_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER, inboundClusterName, outboundClusterName, sniDnatClusterName } from './names.ts';
import { hasAutoPassthroughServer } from './gateway-servers.ts';
import { RAW_BUFFER_SOCKET, istioMutualUpstream, originationUpstream } from './tls.ts';
import type { PortPolicy } from './traffic-policy.ts';
import { TCP_METADATA_EXCHANGE } from '../telemetry/index.ts';
import { effectivePolicy } from './traffic-policy.ts';
import { http1Options, preservesHeaderCase } from './proxy-headers.ts';
import { pilotFeatures } from '../features.ts';

const MAX = 4294967295;
const ADS_EDS = { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' };

/** Every cluster of a proxy (CDS is wildcard: the full set each time). */
export function buildClusters(push: PushContext, proxy: Proxy): EnvoyJson[] {
  if (proxy.generator === 'grpc') return buildGrpcClusters(push, proxy);
  const out = [...outboundClusters(push, proxy)];
  if (proxy.type === 'sidecar') out.push(...inboundClusters(push, proxy));
  if (proxy.type === 'router' && hasAutoPassthroughServer(push, proxy)) out.push(...sniDnatClusters(push, proxy));
  out.push(...infraClusters(push, proxy));
  return out;
}

/** Outbound clusters are the same for every proxy of a namespace/Sidecar scope (and workload-selecting DestinationRule selection): built once per snapshot. */
export function outboundClusters(push: PushContext, proxy: Proxy): EnvoyJson[] {
  const sidecar = push.sidecarFor(proxy);
  // DNS clusters carry their endpoints, ordered by locality relative to the proxy (and its labels for failoverPriority).
  const labels = push.memo('uses-failover-priority', () => !!push.mesh.localityLbSetting?.failoverPriority?.length || push.destinationRules.some((d) => JSON.stringify(d.spec).includes('"failoverPriority"')));
  const key = `cds|${proxy.namespace}|${sidecar?.metadata.name ?? ''}|${proxy.explicit ? 'x' : ''}|${proxy.locality}|${labels ? JSON.stringify(proxy.labels) : ''}|${push.destinationRuleSelection(proxy)}|${preservesHeaderCase(push, proxy) ? 'case' : ''}|${networkKey(push, proxy)}`;
  return push.memo(key, () => {
    const out: EnvoyJson[] = [];
    for (const svc of push.visibleServices(proxy)) {
      const dr = push.destinationRuleFor(proxy, svc);
      for (const port of svc.ports) {
        out.push(serviceCluster(push, proxy, svc, port, dr, ''));
        for (const s of dr?.spec.subsets ?? []) out.push(serviceCluster(push, proxy, svc, port, dr, s.name));
      }
    }
    return out;
  });
}

/**
 * istiod's buildOutboundSniDnatClusters, for a gateway with an AUTO_PASSTHROUGH server: each mesh
 * service port (and DestinationRule subset) once more as `outbound_.<port>_.<subset>_.<host>`, the
 * SNI a sidecar sends, with the same endpoints and policy but no TLS of its own: the client's mTLS
 * passes through to the endpoint.
 */
function sniDnatClusters(push: PushContext, proxy: Proxy): EnvoyJson[] {
  const out: EnvoyJson[] = [];
  for (const svc of push.visibleServices(proxy)) {
    if (svc.meshExternal) continue;
    const dr = push.destinationRuleFor(proxy, svc);
    for (const port of svc.ports) {
      for (const subset of ['', ...(dr?.spec.subsets ?? []).map((s) => s.name)]) {
        const { transport_socket: _ts, transport_socket_matches: _tsm, filters: _mx, ...c } = serviceCluster(push, proxy, svc, port, dr, subset);
        const name = sniDnatClusterName(port.port, subset, svc.hostname);
        c.name = name;
        if (c.eds_cluster_config) c.eds_cluster_config = { ...(c.eds_cluster_config as EnvoyJson), service_name: name };
        if (c.load_assignment) c.load_assignment = { ...(c.load_assignment as EnvoyJson), cluster_name: name };
        out.push(c);
      }
    }
  }
  return out;
}

/** Proxyless gRPC: plain EDS clusters with round robin (what grpc-js-xds accepts). */
function buildGrpcClusters(push: PushContext, proxy: Proxy): EnvoyJson[] {
  return push.memo(`cds-grpc|${proxy.namespace}|${push.destinationRuleSelection(proxy)}`, () => {
    const out: EnvoyJson[] = [];
    for (const svc of push.visibleServices(proxy)) {
      const dr = push.destinationRuleFor(proxy, svc);
      for (const port of svc.ports) {
        for (const subset of ['', ...(dr?.spec.subsets ?? []).map((s) => s.name)]) {
          const name = outboundClusterName(port.port, subset, svc.hostname);
          out.push({ name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name }, metadata: serviceMetadata(svc, port, subset) });
        }
      }
    }
    return out;
  });
}

function serviceMetadata(svc: Service, port: ServicePort, subset: string): EnvoyJson {
  const istio: EnvoyJson = { services: [{ host: svc.hostname, name: svc.name, namespace: svc.namespace }], default_original_port: port.port };
  if (subset) istio.subset = subset;
  // As istiod: the peer metadata filter's skip_external_clusters (proxyHeaders IN_MESH) reads it.
  if (svc.meshExternal) istio.external = true;
  return { filter_metadata: { istio } };
}

export function serviceCluster(push: PushContext, proxy: Proxy, svc: Service, port: ServicePort, dr: Resource<DestinationRuleSpec> | undefined, subset: string): EnvoyJson {
  const name = outboundClusterName(port.port, subset, svc.hostname);
  const policy = effectivePolicy(dr, subset, port.port);
  const c: EnvoyJson = { name, connect_timeout: envoyDuration(policy.connectionPool?.tcp?.connectTimeout ?? push.mesh.connectTimeout) };
  switch (svc.resolution) {
    case 'ClientSideLB':
      c.type = 'EDS';
      c.eds_cluster_config = { eds_config: ADS_EDS, service_name: name };
      break;
    case 'DNS':
    case 'DNSRoundRobin': {
      c.type = svc.resolution === 'DNS' ? 'STRICT_DNS' : 'LOGICAL_DNS';
      c.dns_lookup_family = 'V4_ONLY';
      // As istiod: the records' TTL decides when to resolve again, MeshConfig dnsRefreshRate when they have none.
      c.dns_jitter = envoyDuration(`${pilotFeatures().dnsJitterMs}ms`);
      c.dns_refresh_rate = envoyDuration(push.mesh.dnsRefreshRate);
      c.respect_dns_ttl = true;
      // The subset's endpoints, with the proxy-relative locality LB of EDS.
      const subsetLabels = subset ? dr?.spec.subsets?.find((s) => s.name === subset)?.labels : undefined;
      const healthy = push.endpointsOf(svc.hostname, port.port).filter((e) => e.healthy && labelsMatch(subsetLabels, e.labels));
      let groups = localityGroups(splitHorizon(push, proxy, name, healthy, (e) => sendsIstioMtls(push, policy.tls?.mode, e)));
      const setting = effectiveLocalitySetting(policy.loadBalancer?.localityLbSetting, push.mesh.localityLbSetting);
      const outlier = policy.outlierDetection !== undefined;
      if (localityLbActive(setting, outlier)) groups = applyLocalityLb(groups, proxy.locality, proxy.labels, setting, outlier);
      c.load_assignment = assignment(push, name, groups);
      break;
    }
    case 'Passthrough':
      c.type = 'ORIGINAL_DST';
      if (proxy.explicit) c.original_dst_lb_config = { use_http_header: true, http_header_name: ':authority' };
      break;
  }
  applyLoadBalancer(c, policy.loadBalancer, svc.resolution === 'Passthrough');
  applyConnectionPool(c, policy, port, preservesHeaderCase(push, proxy));
  applyOutlierDetection(c, policy);
  // `distribute` sets locality weights in EDS, which Envoy honours only with locality weighted LB.
  if (effectiveLocalitySetting(policy.loadBalancer?.localityLbSetting, push.mesh.localityLbSetting)?.distribute?.length && svc.resolution === 'ClientSideLB') {
    c.common_lb_config = { ...(c.common_lb_config as EnvoyJson | undefined), locality_weighted_lb_config: {} };
  }
  c.metadata = serviceMetadata(svc, port, subset);
  if (dr) ((c.metadata as EnvoyJson).filter_metadata as { istio: EnvoyJson }).istio.config = `/apis/networking.istio.io/v1/namespaces/${dr.metadata.namespace}/destination-rule/${dr.metadata.name}`;
  applyTls(c, push, svc, port, subset, policy);
  applyUpstreamProxyProtocol(c, policy.proxyProtocol);
  return c;
}

/**
 * trafficPolicy.proxyProtocol, as istiod's applyUpstreamProxyProtocol: the transport socket (raw
 * when there is none), and each transport_socket_matches entry's (Istio mTLS and plaintext under
 * auto mTLS), is wrapped in upstream_proxy_protocol, so the PROXY header precedes the TLS bytes.
 */
function applyUpstreamProxyProtocol(c: EnvoyJson, pp: PortPolicy['proxyProtocol']): void {
  if (!pp) return;
  const wrap = (inner: unknown): EnvoyJson => ({
    name: 'envoy.transport_sockets.upstream_proxy_protocol',
    typed_config: { '@type': UPSTREAM_PROXY_PROTOCOL_TYPE, config: { version: pp.version ?? 'V1' }, transport_socket: inner },
  });
  const matches = c.transport_socket_matches as EnvoyJson[] | undefined;
  if (matches?.length) {
    for (const m of matches) m.transport_socket = wrap(m.transport_socket ?? RAW_BUFFER_SOCKET);
    if (c.transport_socket) c.transport_socket = wrap(c.transport_socket);
    return;
  }
  c.transport_socket = wrap(c.transport_socket ?? RAW_BUFFER_SOCKET);
}

function applyLoadBalancer(c: EnvoyJson, lb: LoadBalancerSettings | undefined, originalDst: boolean): void {
  if (originalDst) {
    c.lb_policy = 'CLUSTER_PROVIDED';
    return;
  }
  if (lb?.consistentHash) {
    if (lb.consistentHash.maglev) {
      c.lb_policy = 'MAGLEV';
      if (lb.consistentHash.maglev.tableSize) c.maglev_lb_config = { table_size: lb.consistentHash.maglev.tableSize };
    } else {
      c.lb_policy = 'RING_HASH';
      const min = lb.consistentHash.ringHash?.minimumRingSize ?? lb.consistentHash.minimumRingSize;
      if (min) c.ring_hash_lb_config = { minimum_ring_size: min };
    }
    return;
  }
  switch (lb?.simple) {
    case 'RANDOM':
      c.lb_policy = 'RANDOM';
      break;
    case 'ROUND_ROBIN':
      break; // Envoy's default (the field's zero value)
    case 'PASSTHROUGH':
      c.type = 'ORIGINAL_DST';
      delete c.eds_cluster_config;
      c.lb_policy = 'CLUSTER_PROVIDED';
      return;
    default:
      // Istio's default is LEAST_REQUEST.
      c.lb_policy = 'LEAST_REQUEST';
  }
  const warmup = lb?.warmup?.duration ?? lb?.warmupDurationSecs;
  if (warmup && (c.lb_policy === undefined || c.lb_policy === 'LEAST_REQUEST')) {
    const slow: EnvoyJson = { slow_start_window: envoyDuration(/^\d+$/.test(warmup) ? `${warmup}s` : warmup) };
    if (lb?.warmup?.aggression) slow.aggression = { default_value: lb.warmup.aggression, runtime_key: 'upstream.warmup.aggression' };
    if (lb?.warmup?.minimumPercent !== undefined) slow.min_weight_percent = { value: lb.warmup.minimumPercent };
    c[c.lb_policy === undefined ? 'round_robin_lb_config' : 'least_request_lb_config'] = { slow_start_config: slow };
  }
}

function applyConnectionPool(c: EnvoyJson, policy: PortPolicy, port: ServicePort, preserveCase: boolean): void {
  const tcp = policy.connectionPool?.tcp;
  const http = policy.connectionPool?.http;
  c.circuit_breakers = {
    thresholds: [
      {
        max_connections: tcp?.maxConnections ?? MAX,
        max_pending_requests: http?.http1MaxPendingRequests ?? MAX,
        max_requests: http?.http2MaxRequests ?? MAX,
        max_retries: http?.maxRetries ?? MAX,
        ...(policy.retryBudget ? { retry_budget: retryBudget(policy.retryBudget) } : {}),
        track_remaining: true,
      },
    ],
  };
  if (tcp?.tcpKeepalive) {
    const ka: EnvoyJson = {};
    if (tcp.tcpKeepalive.probes) ka.keepalive_probes = tcp.tcpKeepalive.probes;
    if (tcp.tcpKeepalive.time) ka.keepalive_time = Math.round(toSeconds(tcp.tcpKeepalive.time));
    if (tcp.tcpKeepalive.interval) ka.keepalive_interval = Math.round(toSeconds(tcp.tcpKeepalive.interval));
    c.upstream_connection_options = { tcp_keepalive: ka };
  }
  const common: EnvoyJson = {};
  // As istiod: the TCP idle timeout stands in for the HTTP one on the cluster's connections.
  const idleTimeout = http?.idleTimeout ?? tcp?.idleTimeout;
  if (idleTimeout) common.idle_timeout = envoyDuration(idleTimeout);
  if (http?.maxRequestsPerConnection) common.max_requests_per_connection = http.maxRequestsPerConnection;
  if (tcp?.maxConnectionDuration) common.max_connection_duration = envoyDuration(tcp.maxConnectionDuration);
  const h2 = isHttp2Protocol(port.protocol) || http?.h2UpgradePolicy === 'UPGRADE';
  // A sniffed port (no declared protocol) carries whatever HTTP version the client spoke.
  const sniffed = port.protocol === 'UNKNOWN';
  if (!isHttpProtocol(port.protocol) && !sniffed && !Object.keys(common).length) return;
  const opts: EnvoyJson = { '@type': HTTP_PROTOCOL_OPTIONS_TYPE };
  if (Object.keys(common).length) opts.common_http_protocol_options = common;
  // HTTP/1 options keep the header case on HTTP and sniffed ports (istiod's setUpstreamProtocol); an h2 upgrade replaces them.
  const h1 = http1Options(preserveCase && (isHttpProtocol(port.protocol) || sniffed));
  if (http?.useClientProtocol || (sniffed && !h2)) opts.use_downstream_protocol_config = { http_protocol_options: h1, http2_protocol_options: {} };
  else opts.explicit_http_config = h2 ? { http2_protocol_options: http?.maxConcurrentStreams ? { max_concurrent_streams: http.maxConcurrentStreams } : {} } : { http_protocol_options: h1 };
  c.typed_extension_protocol_options = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': opts };
}

/** Istio's retryBudget: retries limited to a share of active requests (Envoy's retry_budget replaces max_retries). */
function retryBudget(b: NonNullable<PortPolicy['retryBudget']>): EnvoyJson {
  const out: EnvoyJson = {};
  if (b.percent !== undefined) out.budget_percent = { value: b.percent };
  if (b.minRetryConcurrency !== undefined) out.min_retry_concurrency = b.minRetryConcurrency;
  return out;
}

function applyOutlierDetection(c: EnvoyJson, policy: PortPolicy): void {
  const od = policy.outlierDetection;
  if (!od) return;
  const o: EnvoyJson = { enforcing_success_rate: 0 };
  const c5xx = od.consecutive5xxErrors ?? od.consecutiveErrors;
  if (c5xx !== undefined) {
    o.consecutive_5xx = c5xx;
    o.enforcing_consecutive_5xx = c5xx > 0 ? 100 : 0;
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    o.consecutive_gateway_failure = od.consecutiveGatewayErrors;
    o.enforcing_consecutive_gateway_failure = od.consecutiveGatewayErrors > 0 ? 100 : 0;
  }
  if (od.splitExternalLocalOriginErrors) {
    o.split_external_local_origin_errors = true;
    if (od.consecutiveLocalOriginFailures !== undefined) {
      o.consecutive_local_origin_failure = od.consecutiveLocalOriginFailures;
      o.enforcing_consecutive_local_origin_failure = 100;
    }
  }
  if (od.interval) o.interval = envoyDuration(od.interval);
  if (od.baseEjectionTime) o.base_ejection_time = envoyDuration(od.baseEjectionTime);
  if (od.maxEjectionPercent !== undefined) o.max_ejection_percent = od.maxEjectionPercent;
  c.outlier_detection = o;
  if (od.minHealthPercent !== undefined) c.common_lb_config = { healthy_panic_threshold: { value: od.minHealthPercent } };
}

/** Server identities allowed to serve a service: its endpoints' service accounts plus declared SANs. */
function serviceSans(push: PushContext, svc: Service, port: ServicePort): string[] {
  const sans = new Set(svc.subjectAltNames);
  for (const e of push.endpointsOf(svc.hostname, port.port)) if (e.serviceAccount && acceptsIstioMtls(push, e)) sans.add(spiffeId(push.mesh.trustDomain, e.namespace, e.serviceAccount));
  return [...sans].sort();
}

function applyTls(c: EnvoyJson, push: PushContext, svc: Service, port: ServicePort, subset: string, policy: PortPolicy): void {
  const h2 = isHttp2Protocol(port.protocol);
  const sni = sniDnatClusterName(port.port, subset, svc.hostname);
  const tls = policy.tls;
  if (tls?.mode === 'DISABLE') return;
  if (tls?.mode === 'ISTIO_MUTUAL') {
    c.transport_socket = istioMutualUpstream(tls.sni ?? sni, tls.subjectAltNames ?? serviceSans(push, svc, port), h2);
    if (!isHttpProtocol(port.protocol)) c.filters = [TCP_METADATA_EXCHANGE];
    return;
  }
  if (tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL') {
    c.transport_socket = originationUpstream(tls, svc.hostname.startsWith('*') ? '' : svc.hostname, h2);
    // Not Istio mTLS: istio.alpn must leave the ALPN of this origination alone.
    ((c.metadata as EnvoyJson).filter_metadata as { istio: EnvoyJson }).istio.alpn_override = 'false';
    return;
  }
  if (!push.mesh.enableAutoMtls || svc.resolution === 'Passthrough') return;
  // Auto mTLS: Istio mTLS to endpoints that have a sidecar not DISABLEd by PeerAuthentication (EDS marks
  // them tlsMode: istio), plaintext otherwise.
  c.transport_socket_matches = [
    { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: istioMutualUpstream(sni, serviceSans(push, svc, port), h2) },
    { name: 'tlsMode-disabled', match: {}, transport_socket: RAW_BUFFER_SOCKET },
  ];
  if (!isHttpProtocol(port.protocol)) c.filters = [TCP_METADATA_EXCHANGE];
}

/** A sidecar's inbound clusters: `inbound|P||` → the application (explicit: 127.0.0.1:appPorts[P]; a Sidecar ingress defaultEndpoint unix:// path: a pipe, as istiod's BuildAddress with port 0). */
export function inboundClusters(push: PushContext, proxy: Proxy): EnvoyJson[] {
  const out: EnvoyJson[] = [];
  const preserveCase = preservesHeaderCase(push, proxy);
  for (const p of inboundPorts(push, proxy)) {
    const name = inboundClusterName(p.port);
    const c: EnvoyJson = {
      name,
      type: 'STATIC',
      connect_timeout: envoyDuration(p.connectionPool?.tcp?.connectTimeout ?? push.mesh.connectTimeout),
      load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: p.pipe ? { pipe: { path: p.pipe } } : { socket_address: { address: p.endpointAddress ?? '127.0.0.1', port_value: p.appPort } } } }] }] },
      circuit_breakers: { thresholds: [{ max_connections: MAX, max_pending_requests: MAX, max_requests: MAX, max_retries: MAX, track_remaining: true }] },
    };
    // Connections to the application come from 127.0.0.6 (outside the capture), unless it listens on the pod address.
    if (!proxy.explicit && !p.endpointAddress && !p.pipe) c.upstream_bind_config = { source_address: { address: '127.0.0.6', port_value: 0 } };
    if (p.connectionPool) {
      applyConnectionPool(c, { connectionPool: p.connectionPool }, { name: p.name ?? '', port: p.port, protocol: p.protocol }, preserveCase);
      out.push(c);
      continue;
    }
    if (isHttp2Protocol(p.protocol)) c.typed_extension_protocol_options = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_PROTOCOL_OPTIONS_TYPE, explicit_http_config: { http2_protocol_options: {} } } };
    else if (p.protocol === 'UNKNOWN') c.typed_extension_protocol_options = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_PROTOCOL_OPTIONS_TYPE, use_downstream_protocol_config: { http_protocol_options: http1Options(preserveCase), http2_protocol_options: {} } } };
    else if (preserveCase && isHttpProtocol(p.protocol)) c.typed_extension_protocol_options = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_PROTOCOL_OPTIONS_TYPE, explicit_http_config: { http_protocol_options: http1Options(true) } } };
    out.push(c);
  }
  return out;
}

function infraClusters(push: PushContext, proxy: Proxy): EnvoyJson[] {
  const passthrough: EnvoyJson = {
    name: PASSTHROUGH_CLUSTER,
    type: 'ORIGINAL_DST',
    connect_timeout: envoyDuration(push.mesh.connectTimeout),
    lb_policy: 'CLUSTER_PROVIDED',
    circuit_breakers: { thresholds: [{ max_connections: MAX, max_pending_requests: MAX, max_requests: MAX, max_retries: MAX, track_remaining: true }] },
    typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_PROTOCOL_OPTIONS_TYPE, use_downstream_protocol_config: { http_protocol_options: http1Options(preservesHeaderCase(push, proxy)), http2_protocol_options: {} } } },
  };
  // Explicit mode has no original destination on the socket: the target comes from the request's authority.
  if (proxy.explicit || proxy.type === 'router') passthrough.original_dst_lb_config = { use_http_header: true, http_header_name: ':authority' };
  const out: EnvoyJson[] = [passthrough, { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: envoyDuration(push.mesh.connectTimeout) }];
  if (proxy.type === 'sidecar' && !proxy.explicit) {
    out.push({
      name: INBOUND_PASSTHROUGH_CLUSTER,
      type: 'ORIGINAL_DST',
      connect_timeout: envoyDuration(push.mesh.connectTimeout),
      lb_policy: 'CLUSTER_PROVIDED',
      upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } },
      circuit_breakers: { thresholds: [{ max_connections: MAX, max_pending_requests: MAX, max_requests: MAX, max_retries: MAX, track_remaining: true }] },
    });
  }
  return out;
}
