// HttpConnectionManager compiled once per LDS update: route source (inline or RDS holder), HTTP
// filter chain (factories from the registry with compiled configs; filters with config_discovery
// take theirs over ECDS, filters/extension-config-discovery.ts), access loggers, tracer,
// header handling options, timeouts and stats.
import { Reader } from '../config/reader.ts';
import type { NetworkCompileContext } from '../network/network-filter.ts';
import { httpFilterFactory } from '../filters/registry.ts';
import { DISCOVERED_HTTP_FILTER, discoveredConfig, type DiscoveredHttpConfig } from '../filters/extension-config-discovery.ts';
import { effectiveTypeUrl } from '../filters/extension-config.ts';
import type { HttpFilterFactory } from '../filters/filter.ts';
import { compileRouteConfig } from '../routing/route-config.ts';
import type { RouteHolder } from '../context.ts';
import type { RdsRouteHolder } from '../routing/rds-route-holder.ts';
import { compileAccessLogs, type AccessLogger } from '../access-log/access-log.ts';
import { compileTracer, type Tracer } from './tracer.ts';
import { StatusCounters, type Histogram, type Stat } from '../stats/stats.ts';
import { compileInternalAddresses, type InternalAddresses } from './header-sanitizing.ts';
import { compileLocalReplyConfig, type LocalReplyConfig } from './local-reply.ts';
import { readConnectionLimits, type ConnectionLimits } from './connection-limits.ts';
import { readStrictCheckHeaders } from './strict-check-headers.ts';
import { readXfccConfig, type XfccConfig } from './xfcc.ts';
import { readRequestIdExtension, type RequestIdConfig } from './request-id.ts';
import { readHeaderKeyFormat, type HeaderKeyFormat } from './h1/header-case.ts';

export interface CompiledHttpFilter {
  readonly name: string;
  readonly factory: HttpFilterFactory;
  readonly config: unknown;
  /** HttpFilter.disabled: runs only where a route or virtual host typed_per_filter_config enables it. */
  readonly disabled?: boolean;
}

export interface HcmStats {
  readonly rqTotal: Stat;
  readonly rqActive: Stat;
  readonly rqHttp1: Stat;
  readonly rqHttp2: Stat;
  readonly cxTotal: Stat;
  readonly cxActive: Stat;
  readonly cxHttp1Total: Stat;
  readonly cxHttp2Total: Stat;
  readonly cxDestroyRemote: Stat;
  readonly rqTimeout: Stat;
  readonly rqIdleTimeout: Stat;
  readonly rqMaxDurationReached: Stat;
  readonly codes: StatusCounters;
  readonly noRoute: Stat;
  readonly noCluster: Stat;
  readonly rqDirectResponse: Stat;
  readonly rqRedirect: Stat;
  /** downstream_rq_time: stream start to its end (response sent, or reset), ms. */
  readonly rqTime: Histogram;
  /** downstream_cx_length_ms: connection accepted to closed. */
  readonly cxLengthMs: Histogram;
}

export interface HcmConfig {
  readonly statPrefix: string;
  readonly codec: 'AUTO' | 'HTTP1' | 'HTTP2';
  readonly routes: RouteHolder;
  readonly filters: readonly CompiledHttpFilter[];
  readonly accessLogs: readonly AccessLogger[];
  readonly tracer: Tracer | undefined;
  readonly direction: 'inbound' | 'outbound' | 'gateway';
  readonly useRemoteAddress: boolean;
  readonly skipXffAppend: boolean;
  readonly xffTrustedHops: number;
  /** internal_address_config (default: RFC 1918, loopback, RFC 4193). */
  readonly internalAddresses: InternalAddresses;
  readonly via?: string;
  readonly generateRequestId: boolean;
  /** request_id_extension (the UUID one, Envoy's default): trace reason packing and request-id sampling. */
  readonly requestId: RequestIdConfig;
  readonly preserveExternalRequestId: boolean;
  readonly serverName: string;
  /** 0 OVERWRITE, 1 APPEND_IF_ABSENT, 2 PASS_THROUGH */
  readonly serverHeader: number;
  readonly suppressEnvoyHeaders: boolean;
  /** The router's strict_check_headers: x-envoy-* request headers refused (400, IH) when invalid. */
  readonly strictCheckHeaders: readonly string[];
  /** The router's respect_expected_rq_timeout: an internal request's x-envoy-expected-rq-timeout-ms is its timeout. */
  readonly respectExpectedRqTimeout: boolean;
  /** The router's dynamic_stats (default on): cluster.<name>.upstream_rq_time is recorded. */
  readonly dynamicStats: boolean;
  readonly streamIdleTimeoutMs: number;
  /** common_http_protocol_options.max_stream_duration: a stream lasting longer is ended (0: none). */
  readonly maxStreamDurationMs: number;
  readonly requestTimeoutMs: number;
  readonly requestHeadersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxRequestHeadersKb: number;
  /** max_requests_per_connection, max_connection_duration, headers_with_underscores_action. */
  readonly limits: ConnectionLimits;
  /** common_http_protocol_options.max_headers_count (Envoy's default 100): more → 431 / stream reset. */
  readonly maxHeadersCount: number;
  /** http2_protocol_options that node's HTTP/2 server can apply (SETTINGS and windows); unset keeps node's defaults. */
  /** allowConnect: extended CONNECT (RFC 8441, WebSocket over HTTP/2) and CONNECT accepted downstream. */
  readonly h2: { readonly maxConcurrentStreams?: number; readonly initialWindowSize?: number; readonly connectionWindowSize?: number; readonly headerTableSize?: number; readonly allowConnect?: boolean };
  readonly upgrades: ReadonlyMap<string, boolean>;
  readonly allowAbsoluteUrl: boolean;
  /** http_protocol_options.accept_http_10: without it an HTTP/1.0 request is answered 426. */
  readonly acceptHttp10: boolean;
  readonly defaultHostForHttp10?: string;
  /** http_protocol_options.enable_trailers: HTTP/1.1 requests and responses keep their trailers (Envoy drops them otherwise). */
  readonly enableTrailers: boolean;
  /** http_protocol_options.header_key_format (HTTP/1 header name case). */
  readonly headerKeyFormat?: HeaderKeyFormat;
  readonly stripPort: 0 | 1 | 2;
  readonly normalizePath: boolean;
  /** path_with_escaped_slashes_action: 0 keep, 1 REJECT_REQUEST, 2 UNESCAPE_AND_REDIRECT, 3 UNESCAPE_AND_FORWARD. */
  readonly escapedSlashes: 0 | 1 | 2 | 3;
  readonly mergeSlashes: boolean;
  /** forward_client_cert_details and set_current_client_cert_details. */
  readonly xfcc: XfccConfig;
  /** The listener's per_connection_buffer_limit_bytes: the request buffer limit where the route sets none. */
  readonly maxRequestBodyBytes: number;
  /** local_reply_config: mappers and body format for the replies the proxy makes itself. */
  readonly localReply: LocalReplyConfig | undefined;
  readonly stats: HcmStats;
}

const ROUTER = 'envoy.filters.http.router';

/** Envoy's HTTP/2 flood protection settings and their defaults. */
const H2_FLOOD_LIMITS: readonly [string, number][] = [
  ['max_outbound_frames', 10000],
  ['max_outbound_control_frames', 1000],
  ['max_consecutive_inbound_frames_with_empty_payload', 1],
  ['max_inbound_priority_frames_per_stream', 100],
  ['max_inbound_window_update_frames_per_data_frame_sent', 10],
];

export function compileHcm(r: Reader, ctx: NetworkCompileContext): HcmConfig {
  const { issues, proxy } = ctx;
  const statPrefix = r.str('stat_prefix');
  if (!statPrefix) issues.error(r.at('stat_prefix'), 'missing stat_prefix');
  const codec = r.str('codec_type', 'AUTO');
  if (!['AUTO', 'HTTP1', 'HTTP2'].includes(codec)) issues.error(r.at('codec_type'), `unsupported codec_type ${codec}; supported: AUTO, HTTP1, HTTP2`);

  let routes: RouteHolder;
  const rc = r.obj('route_config');
  const rds = r.obj('rds');
  if (rc && rds) issues.error(r.path, 'route_config and rds are alternatives; set only one');
  if (rc) {
    routes = { name: rc.str('name'), table: compileRouteConfig(rc.raw, rc.path, issues, proxy.runtime, proxy.stats) };
    rc.accept(...Object.keys(rc.raw)); // read by compileRouteConfig's own reader
  } else if (rds) {
    const name = rds.str('route_config_name');
    if (!name) issues.error(rds.at('route_config_name'), 'missing route_config_name');
    routes = rdsRoutes(name, rds.obj('config_source'), ctx);
    rds.done();
  } else {
    issues.error(r.path, 'an http_connection_manager needs route_config or rds');
    routes = { name: '', table: undefined };
  }
  if (r.has('scoped_routes')) issues.error(r.at('scoped_routes'), 'scoped_routes are not supported');

  const filters: CompiledHttpFilter[] = [];
  const fl = r.objs('http_filters');
  let sawRouter = false;
  let suppressEnvoyHeaders = false;
  let strictCheckHeaders: readonly string[] = [];
  let respectExpectedRqTimeout = false;
  let dynamicStats = true;
  fl.forEach((f, i) => {
    const name = f.str('name');
    const tc = f.obj('typed_config');
    const typeUrl = tc?.str('@type');
    const optional = f.bool('is_optional', false);
    const disabled = f.bool('disabled', false);
    const discovery = f.obj('config_discovery');
    f.done();
    if (discovery) {
      if (tc) issues.error(f.path, 'typed_config and config_discovery are alternatives; set only one');
      const provider = discoveredConfig<DiscoveredHttpConfig>('http_filter', name, discovery, ctx, (t) => httpFilterFactory(t, '') !== undefined, (c, is, initManager) => {
        const factory = httpFilterFactory(effectiveTypeUrl(c.raw), '') ?? httpFilterFactory(c.str('@type'), name);
        if (!factory) {
          is.error(c.path, `no HTTP filter implements ${effectiveTypeUrl(c.raw) || '(no @type)'}`);
          return { factory: DISCOVERED_HTTP_FILTER, config: undefined };
        }
        return { factory, config: factory.compile(c, { name, statPrefix, stats: proxy.stats, issues: is, clusters: proxy.clusters, server: proxy, runtime: proxy.runtime, log: proxy.log, node: proxy.node, initManager }) };
      });
      filters.push(disabled ? { name, factory: DISCOVERED_HTTP_FILTER, config: provider, disabled } : { name, factory: DISCOVERED_HTTP_FILTER, config: provider });
      return;
    }
    if (sawRouter) issues.error(f.path, 'the router must be the last HTTP filter');
    if (name === ROUTER || typeUrl?.endsWith('.router.v3.Router')) {
      sawRouter = true;
      if (i !== fl.length - 1) issues.error(f.path, 'the router must be the last HTTP filter');
      if (disabled) issues.error(f.at('disabled'), 'the router (the terminal filter) cannot be disabled by default');
      if (tc) {
        suppressEnvoyHeaders = tc.bool('suppress_envoy_headers', false);
        strictCheckHeaders = readStrictCheckHeaders(tc);
        respectExpectedRqTimeout = tc.bool('respect_expected_rq_timeout', false);
        dynamicStats = tc.bool('dynamic_stats', true);
        readRouterExtras(tc);
      }
      return;
    }
    const factory = httpFilterFactory(typeUrl, name);
    if (!factory) {
      if (optional) issues.warn(f.path, `no HTTP filter implements ${typeUrl ?? name}; skipped (is_optional)`);
      else issues.error(f.path, `unsupported HTTP filter ${typeUrl ?? name}`);
      tc?.accept(...Object.keys(tc.raw));
      return;
    }
    const config = factory.compile(tc ?? new Reader({}, f.at('typed_config'), issues), { name, statPrefix, stats: proxy.stats, issues, clusters: proxy.clusters, server: proxy, runtime: proxy.runtime, log: proxy.log, node: proxy.node, initManager: ctx.initManager });
    filters.push(disabled ? { name, factory, config, disabled } : { name, factory, config });
  });
  if (!sawRouter) issues.error(r.at('http_filters'), 'the HTTP filter chain must end with envoy.filters.http.router');

  const accessLogs = compileAccessLogs(r.objs('access_log'), proxy.runtime);
  const requestId = readRequestIdExtension(r.obj('request_id_extension'));
  const tracer = compileTracer(r.obj('tracing'), { issues, statPrefix, direction: ctx.direction, proxy, requestId });

  const upgrades = new Map<string, boolean>();
  for (const u of r.objs('upgrade_configs')) {
    upgrades.set(u.str('upgrade_type').toLowerCase(), u.bool('enabled', true));
    if (u.objs('filters').length) u.issues.warn(u.at('filters'), 'an upgrade-specific HTTP filter chain is not supported: the connection manager http_filters run for upgrades too');
    u.done();
  }
  let idleTimeoutMs = 3600_000;
  let maxStreamDurationMs = 0;
  let maxRequestHeadersKb = r.num('max_request_headers_kb', 60);
  let maxHeadersCount = 100;
  const cpo = r.obj('common_http_protocol_options');
  if (cpo) {
    idleTimeoutMs = cpo.durationMs('idle_timeout', idleTimeoutMs);
    maxStreamDurationMs = cpo.durationMs('max_stream_duration', 0);
    maxHeadersCount = cpo.num('max_headers_count', 100);
    if (!(Number.isInteger(maxHeadersCount) && maxHeadersCount >= 1)) {
      issues.error(cpo.at('max_headers_count'), 'must be a positive integer');
      maxHeadersCount = 100;
    }
  }
  const limits = readConnectionLimits(cpo, statPrefix, proxy.stats);
  cpo?.done();
  let allowAbsoluteUrl = true;
  let acceptHttp10 = false;
  let defaultHostForHttp10: string | undefined;
  let enableTrailers = false;
  let headerKeyFormat: HeaderKeyFormat | undefined;
  const hpo = r.obj('http_protocol_options');
  if (hpo) {
    allowAbsoluteUrl = hpo.bool('allow_absolute_url', true);
    acceptHttp10 = hpo.bool('accept_http_10', false);
    defaultHostForHttp10 = hpo.str('default_host_for_http_10') || undefined;
    headerKeyFormat = readHeaderKeyFormat(hpo.obj('header_key_format'));
    enableTrailers = hpo.bool('enable_trailers', false);
    for (const k of ['allow_chunked_length', 'override_stream_error_on_invalid_http_message']) {
      if (hpo.bool(k, false)) issues.warn(hpo.at(k), `${k} is not supported by rig proxy's HTTP/1.1 codec and is ignored`);
    }
    // Options of an upstream (client) connection: no effect on the downstream codec in Envoy either.
    hpo.accept('send_fully_qualified_url', 'use_balsa_parser', 'allow_custom_methods', 'ignore_http_11_upgrade');
    hpo.done();
  }
  const h2o = r.obj('http2_protocol_options');
  const h2: { maxConcurrentStreams?: number; initialWindowSize?: number; connectionWindowSize?: number; headerTableSize?: number; allowConnect?: boolean } = {};
  if (h2o) {
    // Envoy's bounds: streams 1..2^31-1, windows 65535..2^31-1.
    const read = (k: string, min: number): number | undefined => {
      if (!h2o.has(k)) return undefined;
      const v = h2o.num(k, min);
      if (Number.isInteger(v) && v >= min && v <= 2147483647) return v;
      issues.error(h2o.at(k), `must be an integer in [${min}, 2147483647]`);
      return undefined;
    };
    h2.maxConcurrentStreams = read('max_concurrent_streams', 1);
    h2.initialWindowSize = read('initial_stream_window_size', 65535);
    h2.connectionWindowSize = read('initial_connection_window_size', 65535);
    h2.allowConnect = h2o.bool('allow_connect', false);
    if (h2o.has('hpack_table_size')) h2.headerTableSize = h2o.num('hpack_table_size', 4096);
    // node's HTTP/2 codec has fixed flood limits of its own (it closes PING, SETTINGS, empty DATA
    // and reset floods): Envoy's default values pass quietly, other values are warned about.
    for (const [k, def] of H2_FLOOD_LIMITS) {
      if (h2o.has(k) && h2o.num(k, def) !== def) issues.warn(h2o.at(k), `${k} cannot be set in rig proxy (node's HTTP/2 codec applies its own flood limits); ignored`);
    }
    h2o.done();
  }
  if (maxRequestHeadersKb > 8192) {
    issues.error(r.at('max_request_headers_kb'), 'must be at most 8192');
    maxRequestHeadersKb = 60;
  }
  const xfcc = readXfccConfig(r);
  const sht = r.str('server_header_transformation', 'OVERWRITE');
  const stripAny = r.bool('strip_any_host_port', false);
  const stripMatching = r.bool('strip_matching_host_port', false);
  const p = `http.${statPrefix}.`;
  const s = proxy.stats;
  const stats: HcmStats = {
    rqTotal: s.counter(p + 'downstream_rq_total'),
    // Read back by drain (ProxyRuntime.activeRequests): live even when the stats matcher rejects it.
    rqActive: s.stateGauge(p + 'downstream_rq_active'),
    rqHttp1: s.counter(p + 'downstream_rq_http1_total'),
    rqHttp2: s.counter(p + 'downstream_rq_http2_total'),
    cxTotal: s.counter(p + 'downstream_cx_total'),
    cxActive: s.gauge(p + 'downstream_cx_active'),
    cxHttp1Total: s.counter(p + 'downstream_cx_http1_total'),
    cxHttp2Total: s.counter(p + 'downstream_cx_http2_total'),
    cxDestroyRemote: s.counter(p + 'downstream_cx_destroy_remote'),
    rqTimeout: s.counter(p + 'downstream_rq_timeout'),
    rqIdleTimeout: s.counter(p + 'downstream_rq_idle_timeout'),
    rqMaxDurationReached: s.counter(p + 'downstream_rq_max_duration_reached'),
    codes: new StatusCounters(s, p + 'downstream_rq_'),
    noRoute: s.counter(p + 'no_route'),
    noCluster: s.counter(p + 'no_cluster'),
    rqDirectResponse: s.counter(p + 'rq_direct_response'),
    rqRedirect: s.counter(p + 'rq_redirect'),
    rqTime: s.histogram(p + 'downstream_rq_time'),
    cxLengthMs: s.histogram(p + 'downstream_cx_length_ms'),
  };
  const config: HcmConfig = {
    statPrefix,
    codec: codec as HcmConfig['codec'],
    routes,
    filters,
    accessLogs,
    tracer,
    direction: ctx.direction,
    useRemoteAddress: r.bool('use_remote_address', false),
    skipXffAppend: r.bool('skip_xff_append', false),
    xffTrustedHops: r.num('xff_num_trusted_hops', 0),
    internalAddresses: compileInternalAddresses(r.obj('internal_address_config')),
    via: r.str('via') || undefined,
    generateRequestId: r.bool('generate_request_id', true),
    requestId,
    preserveExternalRequestId: r.bool('preserve_external_request_id', false),
    serverName: r.str('server_name', 'envoy'),
    serverHeader: sht === 'APPEND_IF_ABSENT' ? 1 : sht === 'PASS_THROUGH' ? 2 : 0,
    suppressEnvoyHeaders,
    strictCheckHeaders,
    respectExpectedRqTimeout,
    dynamicStats,
    streamIdleTimeoutMs: r.durationMs('stream_idle_timeout', 300_000),
    maxStreamDurationMs,
    requestTimeoutMs: r.durationMs('request_timeout', 0),
    requestHeadersTimeoutMs: r.durationMs('request_headers_timeout', 0),
    idleTimeoutMs,
    maxRequestHeadersKb,
    maxHeadersCount,
    limits,
    h2,
    upgrades,
    allowAbsoluteUrl,
    acceptHttp10,
    defaultHostForHttp10,
    enableTrailers,
    headerKeyFormat,
    stripPort: stripAny ? 2 : stripMatching ? 1 : 0,
    normalizePath: r.bool('normalize_path', false),
    escapedSlashes: readEscapedSlashesAction(r),
    mergeSlashes: r.bool('merge_slashes', false),
    xfcc,
    maxRequestBodyBytes: ctx.bufferLimitBytes,
    localReply: compileLocalReplyConfig(r.obj('local_reply_config')),
    stats,
  };
  // No HTTP/3 (QUIC) listeners; how long a closing connection waits for the peer to read.
  r.accept('http3_protocol_options', 'delayed_close_timeout');
  if (r.bool('stream_error_on_invalid_http_message', false)) issues.warn(r.at('stream_error_on_invalid_http_message'), 'not supported and ignored: the HTTP/1.1 and HTTP/2 codecs decide whether a protocol error ends the connection');
  if (r.objs('early_header_mutation_extensions').length) issues.warn(r.at('early_header_mutation_extensions'), 'early header mutations are not supported and are ignored');
  r.done();
  return config;
}

/** Envoy's default initial_fetch_timeout of a config source. */
const INITIAL_FETCH_TIMEOUT_MS = 15_000;

/**
 * The route configuration an HCM takes over RDS and, until it is known, an init target of the
 * listener version: as Envoy's, the version serves once it arrived (or an RDS update was refused,
 * or the config source's initial_fetch_timeout passed: then without routes, 404 NR, until it comes).
 */
function rdsRoutes(name: string, source: Reader | undefined, ctx: NetworkCompileContext): RdsRouteHolder {
  const timeoutMs = source?.durationMs('initial_fetch_timeout', INITIAL_FETCH_TIMEOUT_MS) ?? INITIAL_FETCH_TIMEOUT_MS;
  source?.accept(...Object.keys(source.raw)); // routes come over ADS, the one source rig proxy subscribes to
  const holder = ctx.proxy.routeHolder(name);
  if (!name || holder.current) return holder;
  const log = ctx.proxy.log;
  const timedOut = () => log.warn({ listener: ctx.listenerName, routeConfig: name, initialFetchTimeoutMs: timeoutMs }, 'RDS: no route configuration within initial_fetch_timeout; the listener serves without it (404 NR) until it arrives');
  ctx.initManager.add(`RDS route configuration ${name}`, (signal) => holder.arrival(timeoutMs, timedOut, signal));
  return holder;
}

/** Router fields rig has no counterpart for: quiet at Envoy's defaults, warned by path otherwise. */
function readRouterExtras(tc: Reader): void {
  if (tc.bool('start_child_span', false)) tc.issues.warn(tc.at('start_child_span'), 'start_child_span is not supported and is ignored: upstream calls get no span of their own');
  if (tc.objs('upstream_log').length) tc.issues.warn(tc.at('upstream_log'), 'upstream_log is not supported and is ignored: use the connection manager access_log (one entry per request)');
  tc.done();
}

const ESCAPED_SLASHES_ACTIONS: Record<string, 0 | 1 | 2 | 3> = { IMPLEMENTATION_SPECIFIC_DEFAULT: 0, KEEP_UNCHANGED: 0, REJECT_REQUEST: 1, UNESCAPE_AND_REDIRECT: 2, UNESCAPE_AND_FORWARD: 3 };

function readEscapedSlashesAction(r: Reader): 0 | 1 | 2 | 3 {
  const v = r.str('path_with_escaped_slashes_action', 'IMPLEMENTATION_SPECIFIC_DEFAULT');
  const a = ESCAPED_SLASHES_ACTIONS[v];
  if (a !== undefined) return a;
  r.issues.error(r.at('path_with_escaped_slashes_action'), `unknown action ${v}; expected one of ${Object.keys(ESCAPED_SLASHES_ACTIONS).join(', ')}`);
  return 0;
}
