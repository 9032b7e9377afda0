// Envoy's Cluster (CDS or static) and ClusterLoadAssignment (EDS or load_assignment) compiled
// once per update into immutable configs.
import { isIP } from 'node:net';
import type { Issues} from '../config/reader.ts';
import { Reader } from '../config/reader.ts';
import { NEVER, readFractionalPercent, type FractionalPercent } from '../config/fractional-percent.ts';
import type { Locality } from './host.ts';
import { HealthFlag } from './host.ts';
import type { TlsContext } from '../tls/tls-context.ts';
import { HOST_TLVS_METADATA_KEY, readHostTlvs, readUpstreamTransportSocket, type UpstreamProxyProtocol } from './upstream-proxy-protocol.ts';
import type { ProxyTlv } from '../network/proxy-protocol-header.ts';
import { checkLbConfig } from './lb/index.ts';
import { readBufferLimit } from '../network/buffer-limit.ts';
import { readTcpKeepalive, type TcpKeepalive } from '../network/tcp-keepalive.ts';
import type { HeaderKeyFormat } from '../http/h1/header-case.ts';
import { readUpstreamH2Options, readUpstreamHttp1Options, type UpstreamH2Options } from './upstream-http-options.ts';
import { connectTarget, isPipe } from '../network/pipe-address.ts';
import { readDnsRefresh, type DnsRefresh } from './dns-refresh.ts';

export const DiscoveryType = { Static: 'STATIC', StrictDns: 'STRICT_DNS', LogicalDns: 'LOGICAL_DNS', Eds: 'EDS', OriginalDst: 'ORIGINAL_DST' } as const;

export interface EndpointSpec {
  /** IP or DNS name (resolved for STRICT_DNS / LOGICAL_DNS). */
  readonly address: string;
  readonly port: number;
  readonly hostname?: string;
  readonly weight: number;
  readonly locality: Locality;
  readonly priority: number;
  readonly metadata: Record<string, Record<string, unknown>>;
  /** HealthFlag bits from health_status. */
  readonly healthFlags: number;
  /** metadata.typed_filter_metadata envoy.transport_sockets.proxy_protocol: the host's own PROXY v2 TLVs. */
  readonly proxyProtocolTlvs?: readonly ProxyTlv[];
}

export interface LoadAssignment {
  readonly clusterName: string;
  readonly endpoints: readonly EndpointSpec[];
  /** policy.drop_overloads[0].drop_percentage: the share of requests the router drops (503, DO). */
  readonly dropOverload: FractionalPercent;
  readonly raw: Record<string, unknown>;
}

export interface TransportSocketMatch {
  readonly name: string;
  readonly match: Record<string, unknown>;
  readonly tls: TlsContext | undefined;
  /** An upstream_proxy_protocol wrapper's settings. */
  readonly proxyProtocol: UpstreamProxyProtocol | undefined;
}

export interface ClusterConfig {
  readonly name: string;
  readonly type: string;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: string;
  readonly edsServiceName: string;
  readonly loadAssignment?: LoadAssignment;
  /** When a STRICT_DNS / LOGICAL_DNS cluster resolves again (dns_refresh_rate, respect_dns_ttl, dns_jitter, dns_failure_refresh_rate). */
  readonly dnsRefresh: DnsRefresh;
  readonly dnsFamily: 4 | 6 | 0;
  /** Speak HTTP/2 upstream (h2c without TLS, h2 via ALPN with TLS). */
  readonly http2: boolean;
  /** Http1ProtocolOptions.enable_trailers: trailers cross to and from an HTTP/1.1 upstream (Envoy drops them otherwise). */
  readonly h1Trailers: boolean;
  /** Http1ProtocolOptions.header_key_format of the cluster's HTTP/1.1 connections. */
  readonly h1HeaderKeyFormat?: HeaderKeyFormat;
  /** Http2ProtocolOptions applied to the cluster's HTTP/2 connections (streams per connection, windows). */
  readonly h2Options: UpstreamH2Options;
  /** Use the downstream protocol (use_downstream_protocol_config / USE_DOWNSTREAM_PROTOCOL). */
  readonly useDownstreamProtocol: boolean;
  readonly maxRequestsPerConnection: number;
  readonly idleTimeoutMs: number;
  /** common_http_protocol_options.max_stream_duration: an upstream request lasting longer is reset (UMSDR); 0 = none. */
  readonly maxStreamDurationMs: number;
  /** common_http_protocol_options.max_connection_duration: an upstream connection (HTTP/1.1 or HTTP/2) takes no request after it and closes once idle (0: none). */
  readonly maxConnectionDurationMs: number;
  readonly tls: TlsContext | undefined;
  /** The settings of an upstream_proxy_protocol wrapper around the transport socket. */
  readonly proxyProtocol: UpstreamProxyProtocol | undefined;
  readonly transportSocketMatches: readonly TransportSocketMatch[];
  /** ORIGINAL_DST with original_dst_lb_config.use_http_header: the header naming host:port. */
  readonly originalDstHeader?: string;
  /** ORIGINAL_DST with original_dst_lb_config.upstream_port_override: the port every host uses, whatever the destination's (0: keep it). */
  readonly originalDstPortOverride: number;
  /** upstream_bind_config.source_address: the local address upstream sockets bind (Istio's
   *  inbound clusters use 127.0.0.6, which the capture rules never redirect). */
  readonly sourceAddress?: string;
  /** per_connection_buffer_limit_bytes (default 1 MiB): the watermark of the cluster's upstream sockets. */
  readonly bufferLimitBytes: number;
  /** upstream_connection_options.tcp_keepalive: SO_KEEPALIVE on the cluster's upstream sockets. */
  readonly tcpKeepalive?: TcpKeepalive;
  /** Raw JSON of the policies other parts compile (circuit breakers, outlier detection, health checks, LB config). */
  readonly raw: Record<string, unknown>;
}

/**
 * net.connect options of a new TCP connection of the cluster to `host`: its address and the local
 * address upstream_bind_config binds. Traffic and active health checks connect alike (Envoy's
 * health check connections are upstream connections of the cluster).
 */
export function upstreamTcpOptions(cfg: Pick<ClusterConfig, 'sourceAddress'>, host: { readonly address: string; readonly port: number }): ({ host: string; port: number } | { path: string }) & { localAddress: string | undefined } {
  return { ...connectTarget(host.address, host.port), localAddress: cfg.sourceAddress };
}

const HTTP_OPTS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const HEALTH: Record<string, number> = {
  UNKNOWN: 0,
  HEALTHY: 0,
  UNHEALTHY: HealthFlag.FailedEdsHealth,
  DRAINING: HealthFlag.FailedEdsHealth,
  TIMEOUT: HealthFlag.FailedEdsHealth,
  DEGRADED: HealthFlag.DegradedEdsHealth,
};

/**
 * An Address: a SocketAddress (`ipv4Compat`, ipv4_compat, only matters to a listener bound to an
 * IPv6 address) or a Pipe, whose path is the address (port 0; network/pipe-address.ts) and whose
 * `pipeMode` is the listener socket file's permissions.
 */
function readSocketAddress(r: Reader | undefined, issues: Issues, path: string): { address: string; port: number; ipv4Compat: boolean; pipeMode?: number } | undefined {
  if (!r) {
    issues.error(path, 'missing address');
    return undefined;
  }
  const pipe = r.obj('pipe');
  if (pipe) return readPipe(r, pipe);
  const sa = r.obj('socket_address');
  if (!sa) {
    issues.error(r.at('socket_address'), 'missing socket_address or pipe');
    r.done();
    return undefined;
  }
  const address = sa.str('address');
  const port = sa.num('port_value', 0);
  if (!address) issues.error(sa.at('address'), 'missing address');
  const proto = sa.str('protocol', 'TCP');
  if (proto !== 'TCP') issues.error(sa.at('protocol'), `only TCP is supported (got ${proto})`);
  // A custom resolver for the address (DNS clusters use the system's): warned when named.
  const resolver = sa.str('resolver_name');
  if (resolver) issues.warn(sa.at('resolver_name'), `custom resolvers are not supported; "${resolver}" is ignored and the system resolver is used`);
  const ipv4Compat = sa.bool('ipv4_compat', false);
  sa.done();
  r.done();
  return { address, port, ipv4Compat };
}

/** Envoy's Pipe: a path ('@' first: the abstract namespace, where a mode cannot be set), mode at most 0777. */
function readPipe(r: Reader, pipe: Reader): { address: string; port: number; ipv4Compat: boolean; pipeMode?: number } | undefined {
  const path = pipe.str('path');
  const mode = pipe.num('mode', 0);
  pipe.done();
  r.done();
  if (!path) return void r.issues.error(pipe.at('path'), 'a pipe needs a path');
  if (!isPipe(path)) return void r.issues.error(pipe.at('path'), `"${path}" is not a pipe path: give an absolute path, or @name for the abstract namespace`);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) return void r.issues.error(pipe.at('mode'), `mode ${mode} is out of range: file permissions go up to 0777 (511)`);
  if (mode && path.startsWith('@')) return void r.issues.error(pipe.at('mode'), 'a mode cannot be set on an abstract namespace pipe (as in Envoy): remove mode, or use a filesystem path');
  return { address: path, port: 0, ipv4Compat: false, pipeMode: mode || undefined };
}

export { readSocketAddress };

/** policy.drop_overloads: as Envoy, one category at most; overprovisioning settings are lb-config.ts's. */
function readDropOverload(policy: Reader | undefined): FractionalPercent {
  if (!policy) return NEVER;
  policy.accept('overprovisioning_factor', 'weighted_priority_health');
  const drops = policy.objs('drop_overloads');
  if (drops.length > 1) policy.issues.error(policy.at('drop_overloads'), `only one drop_overloads category is supported (as in Envoy), got ${drops.length}`);
  let out = NEVER;
  drops.forEach((d, i) => {
    if (!d.str('category')) d.issues.error(d.at('category'), 'a drop_overloads entry needs a category');
    const p = readFractionalPercent(d.obj('drop_percentage'), NEVER);
    d.done();
    if (i === 0) out = p;
  });
  policy.done();
  return out;
}

export function compileLoadAssignment(raw: Record<string, unknown>, path: string, issues: Issues): LoadAssignment {
  const r = new Reader(raw, path, issues);
  const clusterName = r.str('cluster_name');
  const endpoints: EndpointSpec[] = [];
  for (const le of r.objs('endpoints')) {
    const lr = le.obj('locality');
    const locality: Locality = lr ? { region: lr.str('region') || undefined, zone: lr.str('zone') || undefined, sub_zone: lr.str('sub_zone') || undefined } : {};
    lr?.done();
    const priority = le.num('priority', 0);
    // load_balancing_weight: read by lb-config.ts from the raw assignment; locality metadata has no effect on routing.
    le.accept('load_balancing_weight', 'metadata');
    for (const lb of le.objs('lb_endpoints')) {
      const ep = lb.obj('endpoint');
      const healthFlags = HEALTH[lb.str('health_status', 'UNKNOWN')] ?? 0;
      const weight = lb.num('load_balancing_weight', 1);
      const metadata = lb.opaque('metadata') as { filter_metadata?: Record<string, Record<string, unknown>>; typed_filter_metadata?: Record<string, unknown> } | undefined;
      const md = metadata?.filter_metadata ?? {};
      const hostPp = metadata?.typed_filter_metadata?.[HOST_TLVS_METADATA_KEY];
      const proxyProtocolTlvs = hostPp === undefined ? undefined : readHostTlvs(new Reader(hostPp, `${lb.at('metadata')}.typed_filter_metadata["${HOST_TLVS_METADATA_KEY}"]`, issues));
      lb.done();
      if (!ep) {
        issues.error(lb.at('endpoint'), 'missing endpoint');
        continue;
      }
      const sa = readSocketAddress(ep.obj('address'), issues, ep.at('address'));
      const hostname = ep.str('hostname') || undefined;
      readHealthCheckConfig(ep.obj('health_check_config'));
      ep.done();
      if (sa) endpoints.push({ address: sa.address, port: sa.port, hostname, weight, locality, priority, metadata: md, healthFlags, proxyProtocolTlvs });
    }
    le.done();
  }
  const dropOverload = readDropOverload(r.obj('policy'));
  r.done();
  return { clusterName, endpoints, dropOverload, raw };
}

export function compileCluster(raw: Record<string, unknown>, path: string, issues: Issues): ClusterConfig {
  const r = new Reader(raw, path, issues);
  const name = r.str('name');
  if (!name) issues.error(r.at('name'), 'a cluster needs a name');
  let type = r.str('type', 'STATIC');
  const ct = r.obj('cluster_type');
  if (ct) {
    issues.error(ct.path, `custom cluster types are not supported (${ct.str('name')})`);
    ct.done();
  }
  if (!Object.values(DiscoveryType).includes(type as never)) {
    issues.error(r.at('type'), `unsupported cluster type ${type}; supported: ${Object.values(DiscoveryType).join(', ')}`);
    type = 'STATIC';
  }
  const connectTimeoutMs = r.durationMs('connect_timeout', 5000);
  const lbPolicy = r.str('lb_policy', 'ROUND_ROBIN');
  if (type === DiscoveryType.OriginalDst) {
    if (!['CLUSTER_PROVIDED', 'ORIGINAL_DST_LB', 'ROUND_ROBIN'].includes(lbPolicy)) issues.error(r.at('lb_policy'), `an ORIGINAL_DST cluster needs lb_policy CLUSTER_PROVIDED (got ${lbPolicy})`);
  } else {
    const lb = checkLbConfig(lbPolicy, raw);
    for (const e of lb.errors) issues.error(path, e);
    for (const w of lb.warnings) issues.warn(path, w);
  }
  let edsServiceName = name;
  const eds = r.obj('eds_cluster_config');
  if (eds) {
    edsServiceName = eds.str('service_name') || name;
    // Where EDS comes from: ADS, the only source rig proxy subscribes to.
    eds.accept('eds_config');
    eds.done();
  }
  const la = r.obj('load_assignment');
  const loadAssignment = la ? compileLoadAssignment(la.raw, la.path, issues) : undefined;
  if (type === DiscoveryType.Eds && loadAssignment) issues.warn(r.at('load_assignment'), 'ignored for an EDS cluster (endpoints come from EDS)');
  // A STATIC cluster without load_assignment has no hosts (Envoy accepts it: Istio's BlackHoleCluster).
  if ((type === DiscoveryType.StrictDns || type === DiscoveryType.LogicalDns) && !loadAssignment) issues.error(r.at('load_assignment'), `a ${type} cluster needs load_assignment`);
  if (type === DiscoveryType.LogicalDns && loadAssignment && loadAssignment.endpoints.length !== 1) issues.error(r.at('load_assignment'), 'a LOGICAL_DNS cluster needs exactly one endpoint');
  const dnsRefresh = readDnsRefresh(r);
  const fam = r.str('dns_lookup_family', 'AUTO');
  const dnsFamily = fam === 'V4_ONLY' ? 4 : fam === 'V6_ONLY' ? 6 : fam === 'V4_PREFERRED' ? 4 : 0;

  let http2 = r.has('http2_protocol_options');
  let h2Options = readUpstreamH2Options(r.obj('http2_protocol_options'));
  let h1Options = readUpstreamHttp1Options(r.obj('http_protocol_options'));
  // Both protocols' options (use_downstream_protocol_config, auto_config): the HTTP/2 ones apply when h2 is spoken.
  const readBoth = (x: Reader) => {
    if (x.has('http_protocol_options')) h1Options = readUpstreamHttp1Options(x.obj('http_protocol_options'));
    if (x.has('http2_protocol_options')) h2Options = readUpstreamH2Options(x.obj('http2_protocol_options'));
  };
  let useDownstreamProtocol = r.str('protocol_selection', 'USE_CONFIGURED_PROTOCOL') === 'USE_DOWNSTREAM_PROTOCOL';
  let maxRequestsPerConnection = r.num('max_requests_per_connection', 0);
  let idleTimeoutMs = 3600_000;
  let maxStreamDurationMs = 0;
  let maxConnectionDurationMs = 0;
  const chpo = r.obj('common_http_protocol_options');
  const readCommon = (c: Reader) => {
    idleTimeoutMs = c.durationMs('idle_timeout', idleTimeoutMs);
    maxStreamDurationMs = c.durationMs('max_stream_duration', maxStreamDurationMs);
    maxConnectionDurationMs = c.durationMs('max_connection_duration', maxConnectionDurationMs);
    if (c.has('max_requests_per_connection')) maxRequestsPerConnection = c.num('max_requests_per_connection', 0);
    // headers_with_underscores_action, max_headers_count: not applied to upstream connections; done() warns when set.
    c.done();
  };
  if (chpo) readCommon(chpo);
  const teo = r.get('typed_extension_protocol_options') as Record<string, Record<string, unknown>> | undefined;
  for (const [k, v] of Object.entries(teo ?? {})) {
    const p = new Reader(v, r.at('typed_extension_protocol_options') + '.' + k, issues);
    if (p.str('@type') !== HTTP_OPTS) {
      issues.error(p.at('@type'), `unsupported protocol options ${p.str('@type')}`);
      continue;
    }
    const c = p.obj('common_http_protocol_options');
    if (c) readCommon(c);
    const e = p.obj('explicit_http_config');
    if (e) {
      http2 = e.has('http2_protocol_options');
      readBoth(e);
      e.done();
    }
    const d = p.obj('use_downstream_protocol_config');
    if (d) {
      useDownstreamProtocol = true;
      readBoth(d);
      d.done();
    }
    const a = p.obj('auto_config');
    if (a) {
      // ALPN-negotiated with TLS; h1 without.
      http2 = true;
      readBoth(a);
      // HTTP/3 discovery (Alt-Svc): rig speaks no HTTP/3, so the cache has nothing to change.
      a.accept('alternate_protocols_cache_options');
      a.done();
    }
    readUpstreamHttpProtocolOptions(p.obj('upstream_http_protocol_options'));
    p.done();
  }
  const { tls, proxyProtocol } = readUpstreamTransportSocket(r.obj('transport_socket'));
  const transportSocketMatches: TransportSocketMatch[] = r.objs('transport_socket_matches').map((m) => {
    const out = { name: m.str('name'), match: (m.opaque('match') ?? {}) as Record<string, unknown>, ...readUpstreamTransportSocket(m.obj('transport_socket')) };
    m.done();
    return out;
  });
  // Compiled by the circuit breakers' hook (circuit-breaker.ts), which the pools ask for connections.
  const cb = r.obj('circuit_breakers');
  if (cb) {
    cb.accept(...Object.keys(cb.raw));
    cb.done();
  }
  // Compiled by the upstream-policies part (outlier detection, health checks, LB configs): accepted here.
  r.accept(
    'outlier_detection',
    'health_checks',
    'common_lb_config',
    'ring_hash_lb_config',
    'maglev_lb_config',
    'least_request_lb_config',
    'round_robin_lb_config',
    'load_balancing_policy',
    'metadata',
    // Upstream network filters: run by the cluster hook that implements them (istio.metadata_exchange).
    'filters',
    // Without an observable effect here: optional stats rig does not emit (request/response sizes,
    // timeout budgets) and how often unused ORIGINAL_DST hosts are swept.
    'track_cluster_stats',
    'cleanup_interval',
  );
  const alt = r.str('alt_stat_name');
  if (alt) issues.warn(r.at('alt_stat_name'), `alt_stat_name is not supported; stats and logs keep the cluster name ${name} (not "${alt}")`);
  let originalDstHeader: string | undefined;
  let originalDstPortOverride = 0;
  const od = r.obj('original_dst_lb_config');
  if (od) {
    if (od.bool('use_http_header', false)) originalDstHeader = (od.str('http_header_name') || 'x-envoy-original-dst-host').toLowerCase();
    // Without use_http_header Envoy never reads the header name.
    else od.accept('http_header_name');
    if (od.has('upstream_port_override')) {
      originalDstPortOverride = od.num('upstream_port_override', 0);
      if (!(Number.isInteger(originalDstPortOverride) && originalDstPortOverride >= 1 && originalDstPortOverride <= 65535)) {
        issues.error(od.at('upstream_port_override'), `must be a port from 1 to 65535 (got ${String(originalDstPortOverride)})`);
        originalDstPortOverride = 0;
      }
    }
    // metadata_key (the destination from dynamic metadata) is left unread: done() names it.
    od.done();
  }
  const sourceAddress = readBindConfig(r.obj('upstream_bind_config'), issues);
  const uco = r.obj('upstream_connection_options');
  const kar = uco?.obj('tcp_keepalive');
  const tcpKeepalive = kar && readTcpKeepalive(kar);
  uco?.done();
  const bufferLimitBytes = readBufferLimit(r);
  r.done();
  return {
    name,
    type,
    connectTimeoutMs,
    lbPolicy,
    edsServiceName,
    loadAssignment,
    dnsRefresh,
    dnsFamily,
    http2,
    h1Trailers: h1Options.enableTrailers,
    h1HeaderKeyFormat: h1Options.headerKeyFormat,
    h2Options,
    useDownstreamProtocol,
    maxRequestsPerConnection,
    idleTimeoutMs,
    maxStreamDurationMs,
    maxConnectionDurationMs,
    tls,
    proxyProtocol,
    transportSocketMatches,
    originalDstHeader,
    originalDstPortOverride,
    sourceAddress,
    bufferLimitBytes,
    tcpKeepalive,
    raw,
  };
}

/** Endpoint.HealthCheckConfig: active health checks use the endpoint's own address; other values warn. */
function readHealthCheckConfig(r: Reader | undefined): void {
  if (!r) return;
  const unsupported = (k: string) => r.issues.warn(r.at(k), `${k} is not supported by rig proxy's active health checks and is ignored (they probe the endpoint address)`);
  if (r.num('port_value', 0) !== 0) unsupported('port_value');
  if (r.str('hostname')) unsupported('hostname');
  if (r.has('address')) unsupported('address');
  if (r.bool('disable_active_health_check', false)) unsupported('disable_active_health_check');
  r.done();
}

/** UpstreamHttpProtocolOptions: SNI and SAN taken from the request's Host, not supported (warned when on). */
function readUpstreamHttpProtocolOptions(r: Reader | undefined): void {
  if (!r) return;
  for (const k of ['auto_sni', 'auto_san_validation']) {
    if (r.bool(k, false)) r.issues.warn(r.at(k), `${k} is not supported by rig proxy and is ignored (SNI and SAN checks come from the transport socket)`);
  }
  // Only read by Envoy with auto_sni.
  r.accept('override_auto_sni_header');
  r.done();
}

function readBindConfig(r: Reader | undefined, issues: Issues): string | undefined {
  if (!r) return undefined;
  const sa = r.obj('source_address');
  r.done();
  if (!sa) {
    issues.error(r.at('source_address'), 'upstream_bind_config needs a source_address');
    return undefined;
  }
  const address = sa.str('address');
  if (isIP(address) === 0) issues.error(sa.at('address'), `source address "${address}" is not an IP address`);
  // Every upstream connection of the cluster binds it: one fixed port could serve one connection only.
  if (sa.num('port_value', 0) !== 0) issues.error(sa.at('port_value'), 'a fixed source port is not supported (use 0: the kernel picks one per connection)');
  const proto = sa.str('protocol', 'TCP');
  if (proto !== 'TCP') issues.error(sa.at('protocol'), `only TCP is supported (got ${proto})`);
  sa.done();
  return address || undefined;
}
