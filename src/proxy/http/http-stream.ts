// One HTTP request through the connection manager: request head → route → HTTP filters → router
// (cluster, host, upstream attempt with retries and timeouts) → response back through the
// encoder filters, filling the StreamInfo on the way. One object per request; no per-request
// closures on the common path (node's and undici's callbacks land on methods).
import { PassThrough, type Readable } from 'node:stream';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
// The module's performance, not the global: globalThis.performance is an accessor, ~170 instructions a read (callgrind).
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { FilterStatus, type BodyCodec, type ConnectionInfo, type HeaderMap, type HttpFilter, type LocalReply, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filters/filter.ts';
import { DISABLED, ENABLED } from '../filters/registry.ts';
import { ResponseFlag } from '../response-flags.ts';
import { newStreamInfo, type StreamInfo } from '../stream-info.ts';
import type { ProxyContext } from '../context.ts';
import type { HcmConfig } from './hcm-config.ts';
import { ActionKind, matchRoute, pickWeighted, redirectLocation, rewritePath, type Route, type WeightedCluster } from '../routing/route-config.ts';
import { ResetReason, RetryOn, backoffMs, wouldRetryFromReset, type RetryPolicy } from '../routing/retry-policy.ts';
import { APPLICATION_PROTOCOLS_STATE, type Cluster, type UpstreamHost } from '../upstream/cluster.ts';
import { DiscoveryType } from '../upstream/cluster-config.ts';
import { UpstreamOutcome } from '../upstream/cluster-hooks.ts';
import { UpstreamRequest, isConnectFailure, isProtocolError, isResponseTimeout, remoteResetReason, type AttemptOwner } from './upstream-request.ts';
import { UPSTREAM_SERVERNAME, type TrailerSource, type UpstreamDispatchOptions } from '../upstream/upstream-pool.ts';
import type { DownstreamOrigin } from '../upstream/upstream-proxy-protocol.ts';
import { H1Exchange } from '../upstream/h1-pool/h1-exchange.ts';
import { grpcStatusFor, isGrpcContentType, rewriteLocalReply } from './local-reply.ts';
import { mutateRequestHeaders } from './mutate-request-headers.ts';
import { invalidEnvoyHeader } from './strict-check-headers.ts';
import { hasEnvoyHeader, retriesEnabled, takeRetryHeaders, takeTimeoutHeader } from './router-headers.ts';
import { ReplayableBody } from './retry-body.ts';
import { lendBody } from '../upstream/h2-stream-body.ts';
import { sample } from '../config/fractional-percent.ts';
import { MirrorBodies } from './mirror-body.ts';
import type { Span } from './tracer.ts';
import type { H1Request } from './h1/h1-request.ts';
import type { H2Request, H2Response } from './h2-server-stream.ts';
import type { H1Response } from './h1/h1-response.ts';
import { firstHeaderValue } from './first-header-value.ts';
import { RecodedBody, type RecodedBodyOwner } from './recoded-body.ts';
import { transportFailureReason } from '../upstream/transport-failure-reason.ts';
import { carryRecordedCase } from './h1/header-case.ts';
import { requestTimer } from '../request-timer.ts';
import { requestDeadline, type RequestDeadline } from '../request-deadline.ts';

export type DownstreamRequest = IncomingMessage | H2Request | H1Request;
export type DownstreamResponse = ServerResponse | H2Response | H1Response;

/** What a stream uses of its response: node's HTTP/2 compat response and the HTTP/1 codec's H1Response both have it. */
interface ResponseWriter {
  writeHead(status: number, headers: Record<string, string | string[]>): unknown;
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer): unknown;
  addTrailers(trailers: Record<string, string>): void;
  destroy(): void;
  readonly headersSent: boolean;
  once(event: 'close' | 'drain', listener: () => void): unknown;
}

/** Per downstream connection state shared by its streams. */
export interface ConnState {
  readonly hcm: HcmConfig;
  readonly ctx: ProxyContext;
  readonly info: ConnectionInfo;
  readonly originalDst?: { address: string; port: number };
  readonly remoteAddr: string;
  /** The socket's peer (Envoy's direct remote address): remoteAddr unless a PROXY header named another client. */
  readonly directRemoteAddr: string;
  readonly localAddr: string;
  /** For the upstream_proxy_protocol transport socket: the PROXY header's addresses, and when their pools close. */
  readonly downstream: DownstreamOrigin;
  /** The client presented a TLS certificate. */
  readonly clientCert: boolean;
  /** This proxy's x-forwarded-client-cert element (APPEND_FORWARD / SANITIZE_SET with a client certificate). */
  readonly xfccElement?: string;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te', 'expect', 'host']);

/**
 * Headers the proxy forwards: without the hop-by-hop ones in `drop`, nor HTTP/2 pseudo-headers.
 * A copy rather than `delete`s on the codec's object: one delete turns an object into a dictionary,
 * and every later read, write and enumeration of its headers then takes V8's slow path.
 */
function withoutHeaders(headers: HeaderMap, drop: ReadonlySet<string>): HeaderMap {
  const out: HeaderMap = {};
  for (const k in headers) if (!drop.has(k) && k.charCodeAt(0) !== 58) out[k] = headers[k];
  carryRecordedCase(headers, out);
  return out;
}

const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Parses a grpc-timeout header ("100m", "2S") into ms; undefined when absent or malformed. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H':
      return n * 3600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return n / 1000;
    default:
      return n / 1e6;
  }
}

export class HttpStream implements StreamCallbacks, AttemptOwner, RecodedBodyOwner {
  readonly streamInfo: StreamInfo;
  readonly connection: ConnectionInfo;
  private readonly conn: ConnState;
  private readonly req: DownstreamRequest;
  /** The request body: the request itself, or for HTTP/2 its Http2Stream's readable side (or a filter's codec stream of it). */
  private source: Readable;
  private readonly res: ResponseWriter;
  private readonly head: RequestHead;
  private readonly isH2: boolean;
  /**
   * Where the request's trailers come from (requestTrailersTo): an HTTP/2 request with a body, as
   * Envoy's HTTP/2 codec always takes them (not gRPC: H2Request.keepsTrailers); a chunked HTTP/1.1
   * one with the connection manager's enable_trailers.
   */
  private readonly trailerSource: TrailerSource | undefined;
  private isGrpc = false;
  /** Envoy's internal request (header-sanitizing.ts): decides require_tls EXTERNAL_ONLY. */
  private internal = false;
  private route: Route | undefined;
  private routeResolved = false;
  /** Set when the path had %2F or %5C: the HCM's path_with_escaped_slashes_action (1 reject, 2 redirect, 3 forward). */
  private escapedSlashAction = 0;
  private filters: HttpFilter[] | undefined;
  private filterIndex = 0;
  private body: Buffer | undefined;
  private hasBody: boolean;
  private bodyStream: Readable | undefined;
  /** A streamed body kept replayable for retries (retry-body.ts). */
  private replayBody: ReplayableBody | undefined;
  private done = false;
  private responseStarted = false;
  private resHead: ResponseHead | undefined;
  /** Filters' codecs for the response body (recodeResponseBody), in the order the body meets them. */
  private resCodecs: BodyCodec[] | undefined;
  /** The response body on its way through resCodecs, from its first byte. */
  private recoded: RecodedBody | undefined;
  /** When a codec holds the head: the recoded body so far, until the head goes out at the body's end. */
  private heldBody: Buffer[] | undefined;
  /** How many codecs hold the head and have not let it go (releaseResponseHead). */
  private headHolds = 0;
  private span: Span | undefined;
  private cluster: Cluster | undefined;
  private weighted: WeightedCluster | undefined;
  private retry: RetryPolicy | undefined;
  private retriesLeft = 0;
  private attempt: UpstreamRequest | undefined;
  private attempted: Set<UpstreamHost> | undefined;
  private hash: bigint | undefined;
  private setCookie: string | undefined;
  private timeoutMs = 0;
  private timer: RequestDeadline | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The cluster's max_stream_duration for the current attempt (UMSDR). */
  private maxDurationTimer: NodeJS.Timeout | undefined;
  /** stream_idle_timeout: refreshed by response activity. */
  private idleTimer: RequestDeadline | undefined;
  /** max_stream_duration of the HCM, or of the route once matched: counted from the stream start. */
  private durationTimer: NodeJS.Timeout | undefined;
  private admitted = 0;
  /** How many hooks hold a retry unit for this stream's pending retry (acquireRetry). */
  private retryHolds = 0;
  private attempts = 0;
  private upstreamStart = 0;
  private dispatchOpts: UpstreamDispatchOptions | undefined;
  private grpcTrailers: Record<string, string> | undefined;
  /** Some attempt may have sent bytes upstream (router.cc upstream_request_started_): reset-before-request no longer retries. */
  private upstreamRequestStarted = false;
  /** A gRPC response whose host rq_success / rq_error waits for its grpc-status (router.cc grpcRqSuccessDeferred). */
  private grpcSuccessDeferred = false;
  private readonly onDownstreamClose = (): void => this.downstreamClosed();
  private onDrain: (() => void) | undefined;

  constructor(conn: ConnState, req: DownstreamRequest, res: DownstreamResponse, isH2: boolean) {
    this.conn = conn;
    this.req = req;
    this.source = isH2 ? (req as H2Request).stream : (req as Readable);
    this.res = res as ResponseWriter;
    this.isH2 = isH2;
    this.connection = conn.info;
    const hcm = conn.hcm;
    const info = (this.streamInfo = newStreamInfo(hcm.direction, isH2 ? 'HTTP/2' : req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1'));
    // The peer until x-forwarded-for processing (mutateRequestHeaders) finds another trusted client address.
    info.downstreamRemoteAddress = conn.remoteAddr;
    info.downstreamDirectRemoteAddress = conn.directRemoteAddr;
    info.downstreamRemoteIp = conn.info.remoteAddress;
    info.downstreamLocalAddress = conn.localAddr;
    info.requestedServerName = conn.info.sni;
    info.mtls = conn.info.tls && conn.info.peerPrincipal !== undefined;
    if (conn.info.peerPrincipal) info.downstreamPeer = { principal: conn.info.peerPrincipal };
    const headers = req.headers as HeaderMap;
    const method = req.method ?? 'GET';
    let authority: string;
    let path = req.url ?? '/';
    if (isH2) {
      authority = (headers[':authority'] as string | undefined) ?? (headers.host as string | undefined) ?? '';
    } else {
      authority = (headers.host as string | undefined) ?? '';
      // http_protocol_options.default_host_for_http_10: the authority of an HTTP/1.0 request without Host.
      if (!authority && hcm.defaultHostForHttp10 && req.httpVersion === '1.0') authority = hcm.defaultHostForHttp10;
    }
    let scheme = conn.info.tls ? 'https' : 'http';
    if (path.charCodeAt(0) !== 47 && path !== '*' && hcm.allowAbsoluteUrl && method !== 'CONNECT') {
      // Absolute form (explicit forward proxy): GET http://host:port/path HTTP/1.1
      const m = /^(https?):\/\/([^/?#]+)(.*)$/i.exec(path);
      if (m) {
        scheme = m[1].toLowerCase();
        authority = m[2];
        path = m[3] || '/';
      }
    }
    if (hcm.stripPort) authority = stripPort(authority, hcm.stripPort, conn.info.localPort);
    if ((hcm.normalizePath || hcm.mergeSlashes) && path.charCodeAt(0) === 47) path = normalizePath(path, hcm.normalizePath, hcm.mergeSlashes);
    if (hcm.escapedSlashes !== 0 && path.charCodeAt(0) === 47) {
      const unescaped = unescapeSlashes(path);
      if (unescaped !== path) {
        this.escapedSlashAction = hcm.escapedSlashes;
        // Unescaping may make new dot segments or repeated slashes: normalized again, as Envoy does.
        path = hcm.normalizePath || hcm.mergeSlashes ? normalizePath(unescaped, hcm.normalizePath, hcm.mergeSlashes) : unescaped;
      }
    }
    this.isGrpc = isGrpcContentType(headers['content-type']);
    info.isGrpc = this.isGrpc;
    this.hasBody = isH2 ? !(req as H2Request).stream.endAfterHeaders : headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
    if (isH2) this.trailerSource = (req as H2Request).keepsTrailers ? (req as H2Request) : undefined;
    else this.trailerSource = hcm.enableTrailers && headers['transfer-encoding'] !== undefined ? (req as H1Request) : undefined;
    const forwarded = withoutHeaders(headers, HOP_BY_HOP);
    // Hop-by-hop te is dropped above: gRPC needs it upstream.
    if (this.isGrpc) forwarded.te = 'trailers';
    this.head = { method, path, authority, scheme, headers: forwarded };
    info.method = this.head.method;
    info.path = path;
    info.authority = authority;
    info.scheme = scheme;
    info.userAgent = firstHeaderValue(headers['user-agent']);
    info.forwardedFor = firstHeaderValue(headers['x-forwarded-for']);
    info.bytesReceived = Number(headers['content-length'] ?? 0) || 0;
  }

  start(): void {
    const hcm = this.conn.hcm;
    const s = hcm.stats;
    s.rqTotal.value++;
    s.rqActive.value++;
    if (this.isH2) s.rqHttp2.value++;
    else s.rqHttp1.value++;
    this.res.once('close', this.onDownstreamClose);
    if (hcm.streamIdleTimeoutMs > 0) this.idleTimer = requestDeadline(onIdleTimeout, hcm.streamIdleTimeoutMs, this);
    if (hcm.maxStreamDurationMs > 0) this.durationTimer = requestTimer(onStreamDuration, hcm.maxStreamDurationMs, this);
    if (this.escapedSlashAction === 1 || (this.escapedSlashAction === 2 && this.isGrpc)) {
      this.sendLocalReply({ status: 400, details: 'path_normalization_failed' });
      return;
    }
    if (this.escapedSlashAction === 2) {
      this.sendLocalReply({ status: 307, headers: { location: this.head.path }, details: 'path_normalization_failed' });
      return;
    }
    if (!hcm.acceptHttp10 && this.streamInfo.protocol === 'HTTP/1.0') {
      // As Envoy's codec without http_protocol_options.accept_http_10: 426, and the connection closes.
      this.sendLocalReply({ status: 426, body: 'Upgrade Required', headers: { connection: 'close' }, flags: ResponseFlag.DownstreamProtocolError, details: 'http1.codec_error' });
      return;
    }
    this.internal = mutateRequestHeaders(this.conn, this.head, this.streamInfo);
    if (hcm.tracer) this.span = hcm.tracer.startSpan(this.head, this.streamInfo);
    if (this.conn.ctx.overload?.shedRequest()) {
      this.sendLocalReply({ status: 503, body: 'envoy overloaded', flags: ResponseFlag.OverloadManager, details: 'overload_manager' });
      return;
    }
    if (hcm.filters.length) {
      const fs: HttpFilter[] = [];
      for (const f of hcm.filters) {
        // As Envoy's filter chain, built once the route is known: a route (or its virtual host)
        // disables a filter with FilterConfig.disabled, and enables a disabled one with any entry.
        const perRoute = this.perRouteConfigRaw(f.name);
        if (perRoute === DISABLED || (f.disabled && perRoute === undefined)) continue;
        fs.push(f.factory.create(f.config, this));
      }
      this.filters = fs;
      this.runDecodeHeaders();
    } else this.decodeBodyThenRoute();
  }

  // === route ===

  private resolveRoute(): Route | undefined {
    if (this.routeResolved) return this.route;
    this.routeResolved = true;
    const table = this.conn.hcm.routes.table;
    const vh = table?.findVirtualHost(this.head.authority);
    const r = (this.route = vh ? matchRoute(vh, this.head, this.isGrpc) : undefined);
    const info = this.streamInfo;
    // As Envoy's route entry: the weighted cluster is chosen with the route, so its per-filter
    // config applies to the filters and telemetry of local replies knows the cluster.
    this.weighted = r?.action === ActionKind.Weighted ? pickWeighted(r) : undefined;
    info.routeName = r?.name;
    info.routeDecorator = r?.decorator;
    info.upstreamCluster = r === undefined ? undefined : r.action === ActionKind.Cluster ? r.cluster : r.action === ActionKind.Weighted ? this.weighted!.name : r.action === ActionKind.ClusterHeader ? firstHeaderValue(this.head.headers[r.clusterHeader]) : undefined;
    return r;
  }

  matchedRoute(): Route | undefined {
    return this.resolveRoute();
  }

  clearRouteCache(): void {
    this.routeResolved = false;
    this.route = undefined;
  }

  private perRouteConfigRaw(name: string): unknown {
    const r = this.resolveRoute();
    if (!r) return undefined;
    return this.weighted?.perFilter?.get(name) ?? r.perFilter?.get(name);
  }

  perRouteConfig<T>(filterName: string): T | undefined {
    const v = this.perRouteConfigRaw(filterName);
    return v === DISABLED || v === ENABLED ? undefined : (v as T | undefined);
  }

  // === decoder filter chain ===

  private runDecodeHeaders(): void {
    const fs = this.filters!;
    const end = !this.hasBody;
    while (this.filterIndex < fs.length) {
      const f = fs[this.filterIndex++];
      if (!f.decodeHeaders) continue;
      const st = f.decodeHeaders(this.head, end);
      if (this.done || this.responseStarted) return;
      if (st === FilterStatus.StopIterationAndBuffer && this.hasBody && f.decodeData) {
        this.bodyFor = f;
        this.startReadingBody();
        this.bodyProgress();
        return;
      }
      if (st !== FilterStatus.Continue) return;
    }
    this.filterIndex = fs.length + 1;
    this.decodeBodyThenRoute();
  }

  continueDecoding(): void {
    if (this.done || this.responseStarted || this.bodyFor || this.filterIndex > this.filters!.length) return;
    this.runDecodeHeaders();
  }

  private decodeBodyThenRoute(): void {
    const route = this.resolveRoute();
    // The body is buffered for replay when the request may be retried (route policy and retry
    // headers) and its announced length is within the buffer limit; others stream.
    const bufferForRetry = route !== undefined && this.hasBody && this.body === undefined && Number(this.req.headers['content-length'] ?? Infinity) <= this.retryBufferLimit() && retriesEnabled(this.head.headers, route.retry);
    if (bufferForRetry) {
      this.routeOnBodyEnd = true;
      this.startReadingBody();
      return;
    }
    this.routeRequest();
  }

  /** Envoy's retry_shadow_buffer_limit: the connection's buffer limit, lowered by the route's per_request_buffer_limit_bytes. */
  private retryBufferLimit(): number {
    return Math.min(this.conn.hcm.maxRequestBodyBytes, this.route?.bufferLimitBytes ?? Infinity);
  }

  // === request body (buffered for a filter's decodeData or for retries) ===

  /** The body received so far while the connection manager reads it; undefined once whole or streamed. */
  private chunks: Buffer[] | undefined;
  private chunkBytes = 0;
  /** The filter waiting in StopIterationAndBuffer for its decodeData. */
  private bodyFor: HttpFilter | undefined;
  private routeOnBodyEnd = false;
  private onChunk: ((c: Buffer) => void) | undefined;
  private onChunksEnd: (() => void) | undefined;

  private startReadingBody(): void {
    if (this.onChunk || this.body !== undefined) return;
    this.chunks = [];
    this.source.on('error', noop);
    this.observeBody();
    this.onChunk = (c) => {
      if (this.done || !this.chunks) return;
      this.chunks.push(c);
      this.chunkBytes += c.length;
      this.bodyProgress();
    };
    this.onChunksEnd = () => {
      if (this.done || !this.chunks) return;
      this.body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      this.streamInfo.bytesReceived = this.body.length;
      this.chunks = undefined;
      this.bodyProgress();
    };
    this.source.on('data', this.onChunk);
    this.source.once('end', this.onChunksEnd);
  }

  /** After each body event: hand the body to the waiting filter, route, or hold the client back. */
  private bodyProgress(): void {
    const f = this.bodyFor;
    if (f) {
      const early = this.chunks !== undefined && this.chunkBytes >= (f.decodeDataEarlyBytes ?? Infinity);
      if (this.body !== undefined || early) {
        this.bodyFor = undefined;
        const st = f.decodeData!(this.body ?? this.joinChunks(), this.body !== undefined);
        if (this.done || this.responseStarted) return;
        if (st === FilterStatus.Continue) this.runDecodeHeaders();
        else this.holdBody();
        return;
      }
    } else if (this.routeOnBodyEnd && this.body !== undefined) {
      this.routeOnBodyEnd = false;
      this.routeRequest();
      return;
    }
    this.holdBody();
  }

  /**
   * Past the buffer limit (the route's per_request_buffer_limit_bytes, else the connection manager's,
   * or more when the waiting filter asked for more, as Envoy's setDecoderBufferLimit): 413 when the
   * whole body is needed, else stop reading.
   */
  private holdBody(): void {
    const early = this.bodyFor?.decodeDataEarlyBytes ?? 0;
    if (!this.chunks || this.chunkBytes <= Math.max(this.route?.bufferLimitBytes ?? this.conn.hcm.maxRequestBodyBytes, early)) return;
    if (this.bodyFor || this.routeOnBodyEnd) {
      this.chunks = undefined;
      this.sendLocalReply({ status: 413, body: 'Payload Too Large', details: 'request_payload_too_large' });
    } else this.source.pause();
  }

  private joinChunks(): Buffer {
    const c = this.chunks!;
    if (c.length > 1) c.splice(0, c.length, Buffer.concat(c));
    return c[0] ?? EMPTY;
  }

  /** The router streams the body: what was read so far, then the rest of the request. */
  private takeReadChunks(): Buffer[] | undefined {
    const c = this.chunks;
    if (!c) return undefined;
    this.source.off('data', this.onChunk!);
    this.source.off('end', this.onChunksEnd!);
    this.chunks = undefined;
    return c;
  }

  private observing = false;

  /** Hands request body chunks to the filters with observeRequestData (once per stream). */
  private observeBody(): void {
    if (this.observing || !this.filters) return;
    this.observing = true;
    const fs = this.filters.filter((f) => f.observeRequestData);
    if (fs.length === 0) return;
    this.source.on('data', (c: Buffer) => {
      for (const f of fs) f.observeRequestData!(c);
    });
  }

  // === router ===

  private routeRequest(): void {
    const hcm = this.conn.hcm;
    const route = this.resolveRoute();
    const info = this.streamInfo;
    if (!route) {
      hcm.stats.noRoute.value++;
      this.sendLocalReply({ status: 404, flags: ResponseFlag.NoRouteFound, details: 'route_not_found' });
      return;
    }
    if (route.maxStreamDurationMs !== undefined) this.refreshDuration(route.maxStreamDurationMs);
    if (route.vhost.requireTls && !this.connection.tls && (route.vhost.requireTls === 2 || !this.internal)) {
      // require_tls: ALL, or EXTERNAL_ONLY for a client outside loopback/private ranges.
      this.sendLocalReply({ status: 301, headers: { location: `https://${this.head.authority}${this.head.path}` }, details: 'direct_response' });
      return;
    }
    switch (route.action) {
      case ActionKind.Direct:
        hcm.stats.rqDirectResponse.value++;
        this.sendDirect(route);
        return;
      case ActionKind.Redirect:
        hcm.stats.rqRedirect.value++;
        this.sendLocalReply({ status: route.redirect!.status, headers: { location: redirectLocation(route, this.head) }, details: 'direct_response' });
        return;
      case ActionKind.NonForwarding:
        this.sendLocalReply({ status: 404, flags: ResponseFlag.NoRouteFound, details: 'route_not_found' });
        return;
    }
    let name = route.cluster;
    if (this.weighted) name = this.weighted.name;
    else if (route.action === ActionKind.ClusterHeader) name = firstHeaderValue(this.head.headers[route.clusterHeader]) ?? '';
    const cluster = this.conn.ctx.clusters.get(name);
    info.upstreamCluster = name;
    if (!cluster) {
      hcm.stats.noCluster.value++;
      this.sendLocalReply({ status: route.clusterNotFoundCode, flags: ResponseFlag.NoClusterFound, details: 'cluster_not_found' });
      return;
    }
    if (hcm.strictCheckHeaders.length) {
      const bad = invalidEnvoyHeader(this.head.headers, hcm.strictCheckHeaders);
      if (bad) {
        this.sendLocalReply({ status: 400, flags: ResponseFlag.InvalidEnvoyRequestHeaders, details: `request_headers_failed_strict_check{${bad.name}}`, body: `invalid header '${bad.name}' with value '${bad.value}'` });
        return;
      }
    }
    if (cluster.dropOverload.numerator > 0 && sample(cluster.dropOverload)) {
      // EDS policy.drop_overloads: Envoy charges the 503 to the cluster and answers locally.
      cluster.s.rqDropOverload.value++;
      chargeUpstreamCode(cluster, route, 503);
      this.sendLocalReply({ status: 503, flags: ResponseFlag.DropOverLoad, details: 'drop_overload', body: 'drop_overload' });
      return;
    }
    this.cluster = cluster;
    const head = this.head;
    let ops = route.requestOps;
    if (this.weighted && !this.weighted.requestOps.empty) ops = this.weighted.requestOps.then(ops);
    if (!ops.empty) ops.apply(head.headers, info, head);
    if (route.prefixRewrite !== undefined || route.regexRewrite) {
      head.headers['x-envoy-original-path'] = head.path;
      head.path = rewritePath(route, head.path);
    }
    const hostRewrite = this.weighted?.hostRewrite ?? route.hostRewrite;
    if (hostRewrite !== undefined) head.authority = hostRewrite;
    else if (route.hostRewriteHeader) {
      const v = firstHeaderValue(head.headers[route.hostRewriteHeader]);
      if (v) head.authority = v;
    }
    if (route.hashPolicy) {
      const qi = head.path.indexOf('?');
      // Envoy hashes the downstream remote address: an address taken from x-forwarded-for has port 0.
      const info = this.streamInfo;
      const fromXff = info.downstreamRemoteAddress !== this.conn.remoteAddr;
      const h = route.hashPolicy({ headers: head.headers, remoteAddress: info.downstreamRemoteIp, remotePort: fromXff ? 0 : this.connection.remotePort, query: qi >= 0 ? head.path.slice(qi + 1) : undefined });
      this.hash = h.hash;
      this.setCookie = h.setCookie?.header;
    }
    // The router's headers are all x-envoy-*: most requests have none, and skip six lookups.
    const steered = hasEnvoyHeader(head.headers);
    this.timeoutMs = steered ? takeTimeoutHeader(head.headers, route.timeoutMs, hcm.respectExpectedRqTimeout) : route.timeoutMs;
    if (route.idleTimeoutMs !== undefined) {
      // The route's idle_timeout replaces the HCM stream_idle_timeout (0: none for this route).
      this.idleTimer?.cancel();
      this.idleTimer = route.idleTimeoutMs > 0 ? requestDeadline(onIdleTimeout, route.idleTimeoutMs, this) : undefined;
    }
    if (route.grpcTimeoutMaxMs !== undefined && this.isGrpc) {
      const g = parseGrpcTimeout(firstHeaderValue(head.headers['grpc-timeout']));
      if (g !== undefined) {
        let t = Math.max(g - route.grpcTimeoutOffsetMs, 1);
        if (route.grpcTimeoutMaxMs > 0) t = Math.min(t, route.grpcTimeoutMaxMs);
        this.timeoutMs = t;
      }
    }
    this.retry = steered ? takeRetryHeaders(head.headers, route.retry, this.timeoutMs) : route.retry;
    this.retriesLeft = this.retry?.numRetries ?? 0;
    if (this.span) this.span.injectContext(head);
    if (!hcm.suppressEnvoyHeaders && this.timeoutMs > 0) head.headers['x-envoy-expected-rq-timeout-ms'] = String(Math.round(this.timeoutMs));
    if (route.mirrors.length) this.sendMirrors(route);
    this.upstreamStart = performance.now();
    if (this.timeoutMs > 0) this.timer = requestDeadline(onGlobalTimeout, this.timeoutMs, this);
    this.sendAttempt(false);
  }

  /** Shadow copies (fire and forget): host gets "-shadow"; a streamed body is teed (mirror-body.ts). */
  private sendMirrors(route: Route): void {
    let tee: MirrorBodies | undefined;
    for (const m of route.mirrors) {
      if (m.fraction < 1 && Math.random() >= m.fraction) continue;
      const cluster = this.conn.ctx.clusters.get(m.cluster);
      const host = cluster?.pick(undefined);
      if (!cluster || !host) continue;
      const headers: HeaderMap = { ...this.head.headers, host: m.shadowSuffix ? shadowHost(this.head.authority) : this.head.authority };
      cluster.s.rqTotal.value++;
      const timeout = this.timeoutMs || 15_000;
      let body: Buffer | PassThrough | null = this.body ?? null;
      if (this.hasBody && this.body === undefined) {
        const copy = (tee ??= new MirrorBodies(this.source, this.conn.hcm.maxRequestBodyBytes)).add();
        for (const c of this.chunks ?? []) copy.write(c);
        body = copy;
      }
      // Envoy's shadow is an async client: no istio.alpn override (the pool offers the cluster's ALPN).
      cluster.pool(host, cluster.config.http2).dispatch(
        { path: this.head.path, method: this.head.method as Dispatcher.HttpMethod, headers: headers as IncomingHttpHeaders, body, trailers: this.requestTrailersTo(cluster, cluster.config.http2), headersTimeout: timeout, bodyTimeout: timeout, servername: UPSTREAM_SERVERNAME },
        new MirrorHandler(cluster, host, this.isGrpc),
      );
    }
  }

  private sendDirect(route: Route): void {
    const parts = { status: route.directStatus, headers: {} as HeaderMap, body: route.directBody ?? '' };
    if (parts.body) parts.headers['content-type'] = 'text/plain';
    route.responseOps.apply(parts.headers, this.streamInfo, this.head);
    const lr = this.conn.hcm.localReply;
    if (lr) rewriteLocalReply(lr, this.streamInfo, this.head, parts);
    this.respondLocally(parts.status, parts.headers, parts.body, 0, 'direct_response');
  }

  private sendAttempt(isRetry: boolean): void {
    const cluster = this.cluster!;
    const info = this.streamInfo;
    for (const h of cluster.hooks) {
      if (!h.admit) continue;
      if (h.admit(this.route!.highPriority)) {
        // Refused on max_requests, the stream had a host (Envoy's pool refuses it as it attaches):
        // that host is charged the error.
        this.refuseOverflow(isRetry, this.pickHost(cluster));
        return;
      }
      this.admitted++;
    }
    const host = this.pickHost(cluster);
    if (!host) {
      cluster.s.cxNoneHealthy.value++;
      this.releaseAdmissions();
      this.failUpstream(503, ResponseFlag.NoHealthyUpstream, 'no_healthy_upstream', 'no healthy upstream', undefined);
      return;
    }
    const h2 = cluster.config.http2 || (cluster.config.useDownstreamProtocol && this.isH2);
    const alpn = info.filterState?.[APPLICATION_PROTOCOLS_STATE] as readonly string[] | undefined;
    const pool = cluster.pool(host, h2, alpn, this.conn.downstream);
    // max_pending_requests: Envoy's pool refuses a request that would wait, before any host is charged.
    if (pool.refusesPending?.(this.route!.highPriority)) {
      this.refuseOverflow(isRetry, undefined);
      return;
    }
    (this.attempted ??= new Set()).add(host);
    this.attempts++;
    if (this.route!.vhost.attemptCountToUpstream) this.head.headers['x-envoy-attempt-count'] = String(this.attempts);
    // auto_host_rewrite: Host becomes the chosen host's name (DNS clusters, EDS endpoint hostname).
    if (this.route!.autoHostRewrite && host.hostname) this.head.authority = this.head.headers.host = host.hostname;
    info.upstreamHost = host.key;
    host.activeRequests++;
    cluster.s.rqTotal.value++;
    cluster.s.rqActive.value++;
    const rs = this.route!.stats;
    if (rs) rs.rqTotal.value++;
    const a = new UpstreamRequest(this, cluster, host);
    this.attempt = a;
    a.start(pool, this.buildDispatch(h2), this.retry?.perTryTimeoutMs ?? 0, this.retry?.perTryIdleTimeoutMs ?? 0);
    if (cluster.config.maxStreamDurationMs > 0) this.maxDurationTimer = requestTimer(onMaxStreamDuration, cluster.config.maxStreamDurationMs, this);
  }

  /**
   * A circuit breaker refused the attempt (an overflow: 503 UO, never retried). upstream_rq_pending_overflow
   * is counted by the breaker that refused; `host`, the one the stream had, is charged the error.
   */
  private refuseOverflow(isRetry: boolean, host: UpstreamHost | undefined): void {
    this.releaseAdmissions();
    if (isRetry) {
      // Envoy: a retry refused by the circuit breaker ends with the last upstream response.
      this.failUpstream(503, ResponseFlag.UpstreamOverflow, 'upstream_reset_before_response_started{overflow}', 'upstream connect error or disconnect/reset before headers. reset reason: overflow', host);
    } else {
      // Envoy's pool fails the stream with an overflow reset, charged 503 (router.cc onUpstreamReset).
      this.chargeUpstreamAbort(503, host);
      this.sendLocalReply({ status: 503, flags: ResponseFlag.UpstreamOverflow, details: 'upstream_reset_before_response_started{overflow}', body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow', headers: { 'x-envoy-overloaded': 'true' } });
    }
  }

  private pickHost(cluster: Cluster): UpstreamHost | undefined {
    if (cluster.config.type !== DiscoveryType.OriginalDst) return cluster.pick(this.hash !== undefined || this.attempted ? { hash: this.hash, attempted: this.retry?.avoidPreviousHosts ? this.attempted : undefined, excludedPriorities: this.excludedPriorities() } : undefined);
    const dst = this.originalDestination();
    return dst && cluster.originalDstHost(dst.address, dst.port);
  }

  /** retry_priority previous_priorities: once update_frequency hosts were tried, avoid their priorities. */
  private excludedPriorities(): Set<number> | undefined {
    const freq = this.retry?.previousPrioritiesFrequency ?? 0;
    if (freq === 0 || !this.attempted || this.attempted.size < freq) return undefined;
    const out = new Set<number>();
    for (const h of this.attempted) out.add(h.priority);
    return out;
  }

  /**
   * ORIGINAL_DST: the header (only with use_http_header), else the redirected connection's original
   * destination, else, on an explicit forward-proxy connection, the request's authority.
   */
  private originalDestination(): { address: string; port: number } | undefined {
    const hname = this.cluster!.config.originalDstHeader;
    const target = (hname ? firstHeaderValue(this.head.headers[hname]) : undefined) ?? (this.conn.originalDst ? undefined : this.head.authority);
    if (target) {
      const i = target.lastIndexOf(':');
      if (i > 0 && !target.endsWith(']')) return { address: target.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(target.slice(i + 1)) };
      return { address: target.replace(/^\[|\]$/g, ''), port: this.head.scheme === 'https' ? 443 : 80 };
    }
    return this.conn.originalDst;
  }

  private buildDispatch(h2Upstream: boolean): UpstreamDispatchOptions {
    if (this.dispatchOpts && this.body !== undefined) return this.dispatchOpts;
    if (this.dispatchOpts && this.replayBody) return { ...this.dispatchOpts, body: this.replayBody.attempt() };
    const head = this.head;
    head.headers.host = head.authority;
    let body: Buffer | Readable | null = null;
    if (this.body !== undefined) body = this.body;
    else if (this.hasBody) {
      // undici destroys the body stream with the request's error; the downstream request may
      // abort too. Both are handled through the attempt's callbacks, never as uncaught errors.
      this.source.on('error', noop);
      if (this.idleTimer) this.source.on('data', () => this.idleTimer?.refresh());
      this.observeBody();
      const read = this.takeReadChunks();
      const r = this.retry;
      if (r && r.retryOn !== 0 && r.numRetries > 0) {
        // Not buffered before routing (length unknown or past the limit): streamed with a copy for retries.
        this.replayBody = new ReplayableBody(this.source, this.retryBufferLimit(), read);
        this.bodyStream = this.replayBody.attempt();
      } else if (this.isH2 && h2Upstream && !read && this.route!.mirrors.length === 0 && !this.source.readableEnded) {
        // HTTP/2 to HTTP/2: the upstream stream reads the downstream one itself (h2-stream-body.ts).
        this.bodyStream = lendBody(this.source);
      } else {
        const bs = (this.bodyStream = new PassThrough());
        bs.on('error', noop);
        if (read) for (const c of read) bs.write(c);
        this.source.pipe(bs);
      }
      body = this.bodyStream;
    }
    this.dispatchOpts = {
      path: head.path,
      method: head.method as Dispatcher.HttpMethod,
      headers: head.headers as IncomingHttpHeaders,
      body,
      trailers: this.requestTrailersTo(this.cluster!, h2Upstream),
      idempotent: false,
      blocking: false,
      headersTimeout: 0,
      bodyTimeout: 0,
      servername: UPSTREAM_SERVERNAME,
      highPriority: this.route!.highPriority,
    };
    return this.dispatchOpts;
  }

  /**
   * Where the request's trailers come from, for an upstream that takes them: HTTP/2 always, HTTP/1.1
   * with the cluster's enable_trailers, as Envoy's codecs (dropped otherwise). The pools read them
   * from the downstream request once the body has ended, so a retry's replayed body and a mirror's
   * copy end with the same trailers. A body read whole came with its trailers or has none: then
   * none to wait for (an HTTP/2 upstream stream waiting for them ends with an extra empty DATA frame).
   */
  private requestTrailersTo(cluster: Cluster, h2Upstream: boolean): TrailerSource | undefined {
    const t = this.trailerSource;
    if (t === undefined || !(h2Upstream || cluster.config.h1Trailers)) return undefined;
    return this.body !== undefined && t.trailers === undefined ? undefined : t;
  }

  private releaseAdmissions(): void {
    if (!this.admitted || !this.cluster) return;
    let n = 0;
    for (const h of this.cluster.hooks) {
      if (!h.admit) continue;
      if (n++ >= this.admitted) break;
      h.release?.(this.route?.highPriority ?? false);
    }
    this.admitted = 0;
  }

  private releaseRetryHolds(): void {
    if (!this.retryHolds || !this.cluster) return;
    let n = 0;
    for (const h of this.cluster.hooks) {
      if (!h.acquireRetry) continue;
      if (n++ >= this.retryHolds) break;
      h.releaseRetry?.(this.route?.highPriority ?? false);
    }
    this.retryHolds = 0;
  }

  private endAttempt(a: UpstreamRequest, outcome: number, status: number): void {
    if (this.maxDurationTimer) {
      clearTimeout(this.maxDurationTimer);
      this.maxDurationTimer = undefined;
    }
    a.host.activeRequests--;
    a.cluster.s.rqActive.value--;
    for (const h of a.cluster.hooks) h.onResult?.(a.host, outcome, status);
    this.releaseAdmissions();
    if (this.attempt === a) this.attempt = undefined;
  }

  /** Whether another attempt may be made now (retries left, body replayable). */
  private canRetry(): boolean {
    if (!this.retry || this.retriesLeft <= 0 || this.done || this.responseStarted) return false;
    if (this.hasBody && this.body === undefined) return this.replayBody ? this.replayBody.replayable : !(this.source.readableDidRead ?? true) && this.bodyStream === undefined;
    return true;
  }

  /**
   * The retry circuit breaker, asked when a retry is decided as Envoy does: it takes a retry unit
   * (held until the retried attempt answers), or refuses and the last upstream answer stands, flagged
   * UO. Taking the unit here, not when the retry is sent after its backoff, keeps retries decided in
   * the same backoff window from all passing the check.
   */
  private retryAdmitted(): boolean {
    this.releaseRetryHolds();
    for (const h of this.cluster!.hooks) {
      if (!h.acquireRetry) continue;
      if (!h.acquireRetry(this.route!.highPriority)) {
        this.releaseRetryHolds();
        this.streamInfo.responseFlags |= ResponseFlag.UpstreamOverflow;
        const rs = this.route!.stats;
        if (rs) rs.rqRetryOverflow.value++;
        return false;
      }
      this.retryHolds++;
    }
    return true;
  }

  private scheduleRetry(): void {
    this.retriesLeft--;
    this.cluster!.s.rqRetry.value++;
    const rs = this.route!.stats;
    if (rs) rs.rqRetry.value++;
    const n = this.retry!.numRetries - this.retriesLeft - 1;
    this.retryTimer = requestTimer(onRetryTimer, backoffMs(this.retry!, n), this);
  }

  retryNow(): void {
    this.retryTimer = undefined;
    if (this.done || this.responseStarted) return;
    this.sendAttempt(true);
  }

  private retriableStatus(status: number, headers: IncomingHttpHeaders): boolean {
    const p = this.retry;
    if (!p) return false;
    const on = p.retryOn;
    if (on & RetryOn.S5xx && status >= 500) return true;
    if (on & RetryOn.GatewayError && (status === 502 || status === 503 || status === 504)) return true;
    if (on & RetryOn.Retriable4xx && status === 409) return true;
    if (on & RetryOn.RetriableStatusCodes && p.retriableStatusCodes.has(status)) return true;
    if (on & RetryOn.EnvoyRateLimited && headers['x-envoy-ratelimited'] !== undefined) return true;
    if (on & RetryOn.RetriableHeaders && p.retriableHeaders.length) {
      const fake: RequestHead = { method: '', path: '', authority: '', scheme: '', headers: headers as HeaderMap };
      if (p.retriableHeaders.some((m) => m.match(fake))) return true;
    }
    if (this.isGrpc && on & (RetryOn.GrpcCancelled | RetryOn.GrpcDeadlineExceeded | RetryOn.GrpcResourceExhausted | RetryOn.GrpcUnavailable | RetryOn.GrpcInternal)) {
      const gs = Number(firstHeaderValue(headers['grpc-status']) ?? -1);
      if (gs === 1 && on & RetryOn.GrpcCancelled) return true;
      if (gs === 4 && on & RetryOn.GrpcDeadlineExceeded) return true;
      if (gs === 8 && on & RetryOn.GrpcResourceExhausted) return true;
      if (gs === 14 && on & RetryOn.GrpcUnavailable) return true;
      if (gs === 13 && on & RetryOn.GrpcInternal) return true;
    }
    return false;
  }

  onAttemptHeaders(a: UpstreamRequest, status: number, headers: IncomingHttpHeaders): void {
    this.idleTimer?.refresh();
    this.streamInfo.upstreamLocalAddress = a.upstreamLocalAddress;
    this.releaseRetryHolds();
    const route = this.route!;
    const rs = route.stats;
    if (this.retry && this.retriableStatus(status, headers)) {
      if (this.canRetry() && this.retryAdmitted()) {
        a.cancel();
        this.endAttempt(a, status >= 500 ? UpstreamOutcome.Http5xx : UpstreamOutcome.Success, status);
        this.upstreamRequestStarted = true;
        // Envoy charges a retried response under cluster.<name>.retry. only, and as the host's rq_error (router.cc onUpstreamHeaders).
        a.cluster.s.retryCodes.record(status);
        a.host.rqError++;
        this.scheduleRetry();
        return;
      }
      if (!(this.streamInfo.responseFlags & ResponseFlag.UpstreamOverflow)) {
        this.streamInfo.responseFlags |= ResponseFlag.UpstreamRetryLimitExceeded;
        this.cluster!.s.rqRetryLimitExceeded.value++;
        if (rs) rs.rqRetryLimitExceeded.value++;
      }
    } else if (this.retriesLeft < (this.retry?.numRetries ?? 0)) {
      this.cluster!.s.rqRetrySuccess.value++;
      if (rs) rs.rqRetrySuccess.value++;
    }
    const info = this.streamInfo;
    info.upstreamServiceTimeMs = performance.now() - this.upstreamStart;
    const peer = a.host.tlsPeer;
    if (peer) info.upstreamPeer = peer;
    info.responseCodeDetails = 'via_upstream';
    a.cluster.s.rqCompleted.value++;
    a.cluster.s.codes.record(status);
    if (rs) rs.response(status);
    if (chargeHostResponse(a.host, status, headers, this.isGrpc)) this.grpcSuccessDeferred = true;
    const hcm = this.conn.hcm;
    // The HTTP/1.1 pool's map is built for this stream, without this hop's headers: forwarded as it is.
    const out = a.controller instanceof H1Exchange ? (headers as HeaderMap) : withoutHeaders(headers as HeaderMap, RESPONSE_HOP_BY_HOP);
    if (this.weighted && !this.weighted.responseOps.empty) this.weighted.responseOps.apply(out, info, this.head);
    if (!route.responseOps.empty) route.responseOps.apply(out, info, this.head);
    if (!hcm.suppressEnvoyHeaders) out['x-envoy-upstream-service-time'] = String(Math.round(info.upstreamServiceTimeMs));
    if (route.vhost.attemptCountToDownstream) out['x-envoy-attempt-count'] = String(this.attempts);
    if (this.setCookie) out['set-cookie'] = out['set-cookie'] === undefined ? this.setCookie : [...[out['set-cookie']].flat(), this.setCookie];
    if (hcm.serverHeader === 0 || (hcm.serverHeader === 1 && out.server === undefined)) out.server = hcm.serverName;
    if (this.isGrpc) {
      const gs = out['grpc-status'];
      if (gs !== undefined) info.grpcStatus = Number(firstHeaderValue(gs));
      if (this.isH2) this.grpcTrailers = takeGrpcStatus(out);
    }
    // An HTTP/2 response waits for trailers only when some can follow: else its last DATA frame ends it.
    if (this.isH2 && (this.grpcTrailers || this.trailersCanFollow(a))) (this.res as H2Response).expectTrailers();
    this.writeResponseHead(status, out);
  }

  /** Whether upstream trailers can still follow the head: an HTTP/1.1 response has some only when chunked. */
  private trailersCanFollow(a: UpstreamRequest): boolean {
    const cfg = a.cluster.config;
    return cfg.http2 || (cfg.useDownstreamProtocol && this.isH2) || (cfg.h1Trailers && (a.controller as H1Exchange | undefined)?.chunked === true);
  }

  /**
   * Whether the upstream's trailers are kept: they cross an HTTP/1.1 hop only with that side's
   * enable_trailers, as Envoy's HTTP/1.1 codecs drop them otherwise (an upstream's on reading, a
   * client's on writing).
   */
  private trailersFrom(a: UpstreamRequest): boolean {
    const cfg = a.cluster.config;
    return cfg.http2 || (cfg.useDownstreamProtocol && this.isH2) || cfg.h1Trailers;
  }

  onAttemptData(a: UpstreamRequest, chunk: Buffer): void {
    if (this.done) return;
    this.idleTimer?.refresh();
    if (this.resCodecs) {
      if (!this.recodeWrite(chunk)) a.pause();
      return;
    }
    this.streamInfo.bytesSent += chunk.length;
    const fs = this.filters;
    if (fs) for (let i = fs.length - 1; i >= 0; i--) fs[i].encodeData?.(chunk, false);
    if (!this.res.write(chunk)) {
      a.pause();
      this.res.once('drain', (this.onDrain ??= () => this.attempt?.resume()));
    }
  }

  onAttemptEnd(a: UpstreamRequest, trailers: IncomingHttpHeaders): void {
    this.endAttempt(a, UpstreamOutcome.Success, this.resHead?.status ?? 0);
    if (this.grpcSuccessDeferred) {
      // router.cc onUpstreamTrailers (a grpc-status that maps to no 5xx is a success) / onUpstreamData (no trailers: an error).
      this.grpcSuccessDeferred = false;
      if (grpcStatusIsError(trailers['grpc-status'])) a.host.rqError++;
      else a.host.rqSuccess++;
    }
    if (this.done) return;
    const info = this.streamInfo;
    const fromUpstream = this.trailersFrom(a);
    if (this.resCodecs) {
      // The body's end comes out of the codecs later (recodedEnd); the upstream is done now.
      (this.recoded ??= new RecodedBody(this.resCodecs, this)).end(fromUpstream ? (trailers as HeaderMap) : undefined);
      if (this.conn.hcm.dynamicStats && !info.healthCheck) this.recordRqTime(a.cluster, performance.now() - this.upstreamStart);
      return;
    }
    const fs = this.filters;
    if (fs) for (let i = fs.length - 1; i >= 0; i--) fs[i].encodeData?.(EMPTY, true);
    this.endResponse(fromUpstream ? trailers : undefined);
    // upstream_rq_time (not for health checks, as Envoy), on finish()'s clock reading. Envoy times
    // it from the downstream request's end; here from routing (the same for a request without a body).
    if (this.conn.hcm.dynamicStats && !info.healthCheck) this.recordRqTime(a.cluster, info.startMonotonic + info.durationMs! - this.upstreamStart);
  }

  /** upstream_rq_time of the cluster, and of the route when it keeps stats. */
  private recordRqTime(cluster: Cluster, ms: number): void {
    cluster.s.rqTime.record(ms);
    const rs = this.route!.stats;
    if (rs) rs.rqTime.record(ms);
  }

  /** Sends the trailers (the upstream's when kept, as the codecs left them) and ends the response. */
  private endResponse(trailers: IncomingHttpHeaders | HeaderMap | undefined): void {
    const info = this.streamInfo;
    const toClient = this.isH2 || this.conn.hcm.enableTrailers;
    let hasTrailers = false;
    for (const _k in trailers) {
      hasTrailers = true;
      break;
    }
    if (hasTrailers) {
      if (trailers!['grpc-status'] !== undefined) info.grpcStatus = Number(firstHeaderValue(trailers!['grpc-status']));
      if (toClient) this.res.addTrailers(trailers as Record<string, string>);
    } else if (this.grpcTrailers && toClient) this.res.addTrailers(this.grpcTrailers);
    this.res.end();
    this.finish();
  }

  // === response body codecs (recodeResponseBody) ===

  /** A response body chunk into the codecs; false: wait for recodedDrain. */
  private recodeWrite(chunk: Buffer): boolean {
    return (this.recoded ??= new RecodedBody(this.resCodecs!, this)).write(chunk);
  }

  recodedData(chunk: Buffer): boolean {
    if (this.done) return true;
    this.idleTimer?.refresh();
    if (this.heldBody) {
      this.heldBody.push(chunk);
      return true;
    }
    return this.sendRecoded(chunk);
  }

  private sendRecoded(chunk: Buffer): boolean {
    this.streamInfo.bytesSent += chunk.length;
    const fs = this.filters;
    if (fs) for (let i = fs.length - 1; i >= 0; i--) fs[i].encodeData?.(chunk, false);
    return this.res.write(chunk);
  }

  onceWritable(fn: () => void): void {
    this.res.once('drain', fn);
  }

  recodedDrain(): void {
    this.attempt?.resume();
  }

  recodedEnd(trailers: HeaderMap | undefined): void {
    if (this.done) return;
    const held = this.heldBody;
    if (held) {
      if (!this.sendHeldHead()) return;
      for (const c of held) this.sendRecoded(c);
    }
    const fs = this.filters;
    if (fs) for (let i = fs.length - 1; i >= 0; i--) fs[i].encodeData?.(EMPTY, true);
    this.endResponse(trailers);
  }

  onAttemptError(a: UpstreamRequest, err: Error): void {
    const connectFailure = !a.headersReceived && isConnectFailure(err);
    this.endAttempt(a, connectFailure ? UpstreamOutcome.ConnectFailed : UpstreamOutcome.Reset, 0);
    if (this.done) return;
    const info = this.streamInfo;
    info.upstreamTransportFailureReason = transportFailureReason(err);
    const remoteReset = connectFailure ? undefined : remoteResetReason(err);
    // Envoy counts upstream_rq_rx_reset per reset stream, a retried one too; a refused stream is not counted.
    if (remoteReset === 'remote_reset') a.cluster.s.rqRxReset.value++;
    if (this.responseStarted) {
      // Mid-body: the downstream stream can only be reset (an HTTP/2 RST_STREAM is Envoy's remote reset;
      // a malformed response, e.g. an HTTP/2 END_STREAM short of content-length, its protocol error).
      const reason = remoteReset ?? (isProtocolError(err) ? 'protocol_error' : 'connection_termination');
      info.responseFlags |= reason === 'protocol_error' ? ResponseFlag.UpstreamProtocolError : reason === 'connection_termination' ? ResponseFlag.UpstreamConnectionTermination : ResponseFlag.UpstreamRemoteReset;
      info.responseCodeDetails = `upstream_reset_after_response_started{${reason}}`;
      if (!remoteReset) a.cluster.s.rqRxReset.value++;
      this.chargeUpstreamAbort(reason === 'protocol_error' ? 502 : 503, a.host);
      this.resetDownstream();
      return;
    }
    const reason = connectFailure ? ResetReason.ConnectFailure : remoteReset === 'remote_refused_stream_reset' ? ResetReason.RefusedStream : ResetReason.Other;
    // A reset on a connection may come after the request was written; a failed connection sent nothing.
    if (!connectFailure) this.upstreamRequestStarted = true;
    const retriable = wouldRetryFromReset(this.retry?.retryOn ?? 0, reason, this.upstreamRequestStarted);
    if (retriable && this.canRetry()) {
      if (this.retryAdmitted()) {
        a.host.rqError++; // router.cc maybeRetryReset
        this.scheduleRetry();
        return;
      }
    } else if (retriable && this.retry) info.responseFlags |= ResponseFlag.UpstreamRetryLimitExceeded;
    if (connectFailure) {
      this.failUpstream(503, ResponseFlag.UpstreamConnectionFailure, 'upstream_reset_before_response_started{connection_failure}', `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${info.upstreamTransportFailureReason}`, a.host);
    } else if (isProtocolError(err)) {
      a.cluster.s.rqRxReset.value++;
      this.failUpstream(502, ResponseFlag.UpstreamProtocolError, 'upstream_reset_before_response_started{protocol_error}', 'upstream connect error or disconnect/reset before headers. reset reason: protocol error', a.host);
    } else if (remoteReset) {
      this.failUpstream(503, ResponseFlag.UpstreamRemoteReset, `upstream_reset_before_response_started{${remoteReset}}`, `upstream connect error or disconnect/reset before headers. reset reason: ${remoteReset.replace(/_/g, ' ')}`, a.host);
    } else {
      a.cluster.s.rqRxReset.value++;
      this.failUpstream(503, ResponseFlag.UpstreamConnectionTermination, 'upstream_reset_before_response_started{connection_termination}', 'upstream connect error or disconnect/reset before headers. reset reason: connection termination', a.host);
    }
  }

  onAttemptPerTryTimeout(a: UpstreamRequest, idle: boolean): void {
    if (this.done || this.attempt !== a) return;
    // Envoy (upstream_request.cc UpstreamRequest::onPerTryTimeout) ignores a per-try timeout once
    // the response started, uncounted: the route timeout and the stream idle timeout still apply.
    // The per-try idle timeout is not ignored (onPerTryIdleTimeout): it resets the stream.
    if (!idle && a.headersReceived) return;
    (idle ? a.cluster.s.rqPerTryIdleTimeout : a.cluster.s.rqPerTryTimeout).value++;
    a.host.rqTimeout++;
    if (reachedConnection(a)) this.upstreamRequestStarted = true;
    if (a.headersReceived) {
      a.cancel();
      this.endAttempt(a, UpstreamOutcome.Timeout, 0);
      this.streamInfo.responseFlags |= ResponseFlag.UpstreamRequestTimeout;
      this.chargeUpstreamAbort(504, a.host);
      this.resetDownstream();
      return;
    }
    a.cancel();
    this.endAttempt(a, UpstreamOutcome.Timeout, 0);
    // Envoy retries a per-try timeout as a local reset (router.cc onPerTryTimeoutCommon → maybeRetryReset).
    const retriable = this.retry !== undefined && wouldRetryFromReset(this.retry.retryOn, ResetReason.Local, this.upstreamRequestStarted);
    if (retriable && this.canRetry()) {
      if (this.retryAdmitted()) {
        a.host.rqError++; // router.cc maybeRetryReset
        this.scheduleRetry();
        return;
      }
    } else if (retriable) this.streamInfo.responseFlags |= ResponseFlag.UpstreamRetryLimitExceeded;
    this.failUpstream(504, ResponseFlag.UpstreamRequestTimeout, idle ? 'upstream_per_try_idle_timeout' : 'upstream_per_try_timeout', 'upstream request timeout', a.host);
  }

  /** Envoy: the upstream request is reset; 408 if no response started, else the downstream is reset. */
  onMaxStreamDuration(): void {
    this.maxDurationTimer = undefined;
    const a = this.attempt;
    if (this.done || !a) return;
    this.streamInfo.responseFlags |= ResponseFlag.UpstreamMaxStreamDurationReached;
    a.cancel();
    this.endAttempt(a, UpstreamOutcome.Timeout, 0);
    if (this.responseStarted) this.resetDownstream();
    else this.sendLocalReply({ status: 408, flags: ResponseFlag.UpstreamMaxStreamDurationReached, details: 'upstream_max_stream_duration_reached', body: 'upstream max stream duration reached' });
  }

  /** Envoy's refreshDurationTimeout: the route's max_stream_duration replaces the HCM's (0: none). */
  private refreshDuration(ms: number): void {
    if (this.durationTimer) clearTimeout(this.durationTimer);
    this.durationTimer = ms > 0 ? requestTimer(onStreamDuration, Math.max(ms - (performance.now() - this.streamInfo.startMonotonic), 0), this) : undefined;
  }

  /**
   * Envoy's downstream duration timeout: the upstream request is reset; without a response yet the
   * client gets 504 (request received whole) or 408 (still receiving it), gRPC DEADLINE_EXCEEDED;
   * a started response is reset.
   */
  onStreamDuration(): void {
    this.durationTimer = undefined;
    if (this.done) return;
    this.conn.hcm.stats.rqMaxDurationReached.value++;
    const a = this.attempt;
    if (a) {
      a.cancel();
      this.endAttempt(a, UpstreamOutcome.Success, 0);
      a.cluster.s.rqTxReset.value++;
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.responseStarted) {
      this.streamInfo.responseCodeDetails = 'max_duration_timeout';
      this.resetDownstream();
      return;
    }
    const received = !this.hasBody || this.body !== undefined || this.req.complete;
    this.sendLocalReply({ status: received ? 504 : 408, grpcStatus: 4, details: 'max_duration_timeout', body: 'downstream duration timeout' });
  }

  onIdleTimeout(): void {
    this.idleTimer = undefined;
    if (this.done) return;
    this.conn.hcm.stats.rqIdleTimeout.value++;
    this.attempt?.cancel();
    if (this.responseStarted) {
      this.streamInfo.responseFlags |= ResponseFlag.StreamIdleTimeout;
      this.resetDownstream();
      return;
    }
    this.sendLocalReply({ status: 408, flags: ResponseFlag.StreamIdleTimeout, details: 'stream_idle_timeout', body: 'stream timeout' });
  }

  onGlobalTimeout(): void {
    this.timer = undefined;
    if (this.done) return;
    if (this.cluster) this.cluster.s.rqTimeout.value++;
    const rs = this.route?.stats;
    if (rs) rs.rqTimeout.value++;
    const a = this.attempt;
    if (a) {
      a.cancel();
      this.endAttempt(a, UpstreamOutcome.Timeout, 0);
      a.host.rqTimeout++;
      // Envoy's onResponseTimeout charges the attempt awaiting headers; none while a retry waits.
      if (!a.headersReceived) this.chargeUpstreamAbort(504, a.host);
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.responseStarted) {
      this.streamInfo.responseFlags |= ResponseFlag.UpstreamRequestTimeout;
      this.resetDownstream();
      return;
    }
    this.sendLocalReply({ status: 504, flags: ResponseFlag.UpstreamRequestTimeout, details: 'upstream_response_timeout', body: 'upstream request timeout' });
  }

  /** A request the router ends before any response: charged as Envoy's router does, then answered. */
  private failUpstream(status: number, flag: number, details: string, body: string, host: UpstreamHost | undefined): void {
    this.chargeUpstreamAbort(status, host);
    this.sendLocalReply({ status, flags: flag, details, body });
  }

  /**
   * Envoy's Filter::chargeUpstreamAbort (router.cc): a request the router gives up on (reset,
   * connection failure, overflow, per-try or route timeout, no healthy host) counts as an upstream
   * response of the code it answers, and as its host's rq_error, unless the downstream response
   * already started: then only a gRPC success still waiting for its grpc-status becomes an error.
   */
  private chargeUpstreamAbort(status: number, host: UpstreamHost | undefined): void {
    if (this.responseStarted) {
      if (this.grpcSuccessDeferred && host) host.rqError++;
      this.grpcSuccessDeferred = false;
      return;
    }
    chargeUpstreamCode(this.cluster!, this.route, status);
    if (host) host.rqError++;
  }

  // === responses ===

  recodeRequestBody(c: BodyCodec): void {
    if (!this.hasBody) return;
    if (this.body !== undefined) {
      this.body = c.whole(this.body);
      return;
    }
    const from = this.source;
    const to = c.stream();
    to.on('error', noop);
    if (this.chunks) {
      // Partly read (decodeDataEarlyBytes): what was read goes in first, then the rest as it comes.
      from.off('data', this.onChunk!);
      from.off('end', this.onChunksEnd!);
      const read = this.joinChunks();
      this.chunks = [];
      this.chunkBytes = 0;
      to.on('data', this.onChunk!);
      to.once('end', this.onChunksEnd!);
      if (read.length) to.write(read);
    }
    from.pipe(to);
    this.source = to;
  }

  bufferLimit(): number {
    return this.route?.bufferLimitBytes ?? this.conn.hcm.maxRequestBodyBytes;
  }

  requestTrailers(): HeaderMap | undefined {
    return this.trailerSource?.trailers as HeaderMap | undefined;
  }

  addRequestTrailers(): HeaderMap | undefined {
    // The trailer source is the request the pools read trailers from at the body's end.
    const t = this.trailerSource as H1Request | H2Request | undefined;
    return t && ((t.trailers ?? t.addTrailers()) as HeaderMap);
  }

  recodeResponseBody(c: BodyCodec): void {
    (this.resCodecs ??= []).push(c);
    if (c.holdHead) {
      this.heldBody ??= [];
      this.headHolds++;
    }
    if (c.addsTrailers && this.isH2) (this.res as H2Response).expectTrailers();
  }

  releaseResponseHead(): void {
    if (this.done || !this.responseStarted || this.heldBody === undefined || --this.headHolds > 0) return;
    const held = this.heldBody;
    if (!this.sendHeldHead()) return;
    for (const c of held) this.sendRecoded(c);
  }

  /** Sends the head a codec held until the body's end; false when it could not go (a 502 was answered instead). */
  private sendHeldHead(): boolean {
    this.heldBody = undefined;
    this.streamInfo.responseCode = this.resHead!.status;
    this.sendHead(this.resHead!);
    return !this.done;
  }

  private writeResponseHead(status: number, headers: HeaderMap): void {
    const resHead: ResponseHead = { status, headers };
    this.resHead = resHead;
    const fs = this.filters;
    if (fs) for (let i = fs.length - 1; i >= 0; i--) fs[i].encodeHeaders?.(resHead, false);
    this.responseStarted = true;
    this.streamInfo.responseCode = resHead.status;
    if (this.heldBody === undefined) this.sendHead(resHead);
  }

  private sendHead(resHead: ResponseHead): void {
    if (this.conn.ctx.draining || this.conn.ctx.overload?.disableKeepAlive()) {
      // HTTP/2: GOAWAY now, the session closes once its in-flight streams are done.
      if (this.isH2) (this.req as H2Request).stream.session?.close();
      else resHead.headers.connection = 'close';
    }
    try {
      this.res.writeHead(resHead.status, resHead.headers as Record<string, string | string[]>);
    } catch (e) {
      // Invalid header from upstream or a filter: Envoy answers 502 (UPE).
      this.streamInfo.responseFlags |= ResponseFlag.UpstreamProtocolError;
      this.conn.ctx.log.debug({ err: (e as Error).message }, 'invalid response head');
      this.dropResponse();
      // Headers already out (or the 502 itself failed): the stream can only be reset.
      if (this.res.headersSent || this.streamInfo.responseCodeDetails === 'upstream_protocol_error') this.resetDownstream();
      else this.respondLocally(502, { 'content-type': 'text/plain' }, 'upstream sent an invalid response', 0, 'upstream_protocol_error');
    }
  }

  /** The response (head held or invalid, not sent) is dropped with its codecs; the upstream attempt still sending it is cancelled. */
  private dropResponse(): void {
    this.responseStarted = false;
    this.heldBody = this.resCodecs = undefined;
    this.headHolds = 0;
    this.recoded?.destroy();
    this.recoded = undefined;
    this.attempt?.cancel();
  }

  sendLocalReply(reply: LocalReply): void {
    if (this.done) return;
    if (this.responseStarted && this.heldBody !== undefined && !this.res.headersSent) {
      // A codec still holds the head (nothing sent): the reply replaces the response, as Envoy's
      // sendDirectLocalReply; once the head went out the stream can only be reset.
      const a = this.attempt;
      if (a) this.endAttempt(a, UpstreamOutcome.Success, this.resHead?.status ?? 0);
      this.dropResponse();
    }
    if (this.responseStarted) {
      this.streamInfo.responseFlags |= reply.flags ?? 0;
      this.resetDownstream();
      return;
    }
    const headers: HeaderMap = { ...reply.headers };
    let status = reply.status;
    let body = reply.body ?? '';
    const lr = this.conn.hcm.localReply;
    if (lr) {
      this.streamInfo.responseFlags |= reply.flags ?? 0;
      const text = typeof body === 'string' ? body : body.toString('utf8');
      const parts = { status, headers, body: text };
      rewriteLocalReply(lr, this.streamInfo, this.head, parts);
      status = parts.status;
      // A byte body stays as it is unless a mapper or body format rewrote it.
      if (parts.body !== text) body = parts.body;
    }
    if (this.isGrpc) {
      headers['content-type'] = 'application/grpc';
      const gs = reply.grpcStatus ?? grpcStatusFor(status);
      headers['grpc-status'] = String(gs);
      if (body.length) headers['grpc-message'] = encodeURIComponent(typeof body === 'string' ? body : body.toString('utf8'));
      this.streamInfo.grpcStatus = gs;
      status = 200;
      body = '';
    } else if (body.length && headers['content-type'] === undefined) headers['content-type'] = 'text/plain';
    this.streamInfo.responseFlags |= reply.flags ?? 0;
    if (this.route && !this.route.responseOps.empty && reply.status >= 300) this.route.responseOps.apply(headers, this.streamInfo, this.head);
    this.respondLocally(status, headers, body, 0, reply.details ?? 'local_reply');
  }

  private respondLocally(status: number, headers: HeaderMap, body: string | Buffer, _flags: number, details: string): void {
    const info = this.streamInfo;
    info.responseCodeDetails = details;
    const hcm = this.conn.hcm;
    if (hcm.serverHeader !== 2 && headers.server === undefined) headers.server = hcm.serverName;
    const buf = typeof body !== 'string' ? body : body ? Buffer.from(body) : EMPTY;
    const trailers = this.isGrpc && this.isH2 ? takeGrpcStatus(headers) : undefined;
    if (!trailers) headers['content-length'] = String(buf.length);
    // HTTP/1 answered before its body was read (408 mid-body, 413, a filter's reply): the rest of
    // the body cannot be told from a next request, so the connection closes, as Envoy does.
    if (!this.isH2 && this.hasBody && !this.req.complete) headers.connection = 'close';
    if (trailers) (this.res as H2Response).expectTrailers();
    this.writeResponseHead(status, headers);
    if (trailers) this.res.addTrailers(trailers);
    if (this.done) return;
    let out: Buffer = buf;
    const codecs = this.resCodecs;
    if (codecs) for (const c of codecs) out = c.whole(out);
    if (this.heldBody && !this.sendHeldHead()) return;
    info.bytesSent += out.length;
    const fs = this.filters;
    if (fs) for (let i = fs.length - 1; i >= 0; i--) fs[i].encodeData?.(out, true);
    this.res.end(this.head.method === 'HEAD' ? undefined : out);
    this.attempt?.cancel();
    this.finish();
  }

  resetStream(): void {
    if (this.done) return;
    const a = this.attempt;
    if (a) {
      this.endAttempt(a, UpstreamOutcome.Success, 0);
      a.cluster.s.rqTxReset.value++;
    }
    this.resetDownstream();
  }

  private resetDownstream(): void {
    this.attempt?.cancel();
    if (this.isH2) (this.res as H2Response).reset();
    else this.res.destroy();
    this.finish();
  }

  private downstreamClosed(): void {
    if (this.done) return;
    // The client went away before the response completed.
    this.streamInfo.responseFlags |= ResponseFlag.DownstreamConnectionTermination;
    const a = this.attempt;
    if (a) {
      a.cancel();
      this.endAttempt(a, UpstreamOutcome.Success, 0);
      a.cluster.s.rqTxReset.value++;
    }
    this.bodyStream?.destroy();
    this.replayBody?.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.timer?.cancel();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.idleTimer?.cancel();
    if (this.maxDurationTimer) clearTimeout(this.maxDurationTimer);
    if (this.durationTimer) clearTimeout(this.durationTimer);
    this.recoded?.destroy();
    this.releaseAdmissions();
    this.releaseRetryHolds();
    const hcm = this.conn.hcm;
    hcm.stats.rqActive.value--;
    const info = this.streamInfo;
    info.durationMs = performance.now() - info.startMonotonic;
    hcm.stats.rqTime.record(info.durationMs);
    if (info.responseCode) hcm.stats.codes.record(info.responseCode);
    const fs = this.filters;
    if (fs) for (const f of fs) f.onDestroy?.();
    this.span?.finish(info, this.head, this.resHead);
    for (const l of hcm.accessLogs) l.log(info, this.head, this.resHead);
    const obs = this.conn.ctx.observers;
    for (let i = 0; i < obs.length; i++) obs[i](info, this.head, this.resHead);
  }
}

const EMPTY = Buffer.alloc(0);
const GRPC_STATUS_HEADERS = ['grpc-status', 'grpc-message', 'grpc-status-details-bin'];

/**
 * A gRPC Trailers-Only response (grpc-status among the headers) is re-sent over HTTP/2 as headers
 * followed by trailers: node's compat response cannot end a stream on its HEADERS frame.
 */
function takeGrpcStatus(headers: HeaderMap): Record<string, string> | undefined {
  if (headers['grpc-status'] === undefined) return undefined;
  const t: Record<string, string> = {};
  for (const k of GRPC_STATUS_HEADERS) {
    const v = headers[k];
    if (v !== undefined) {
      t[k] = Array.isArray(v) ? v[0] : v;
      delete headers[k];
    }
  }
  return t;
}

function noop(): void {}

/**
 * Whether an attempt got onto a connection, so its request may have been written (Envoy:
 * first_upstream_tx_byte_sent): the HTTP/1.1 pool starts an exchange at once and assigns it a
 * connection later; undici starts a request only as it writes it.
 */
function reachedConnection(a: UpstreamRequest): boolean {
  const c = a.controller;
  return c instanceof H1Exchange ? c.conn !== undefined : c !== undefined;
}

/**
 * Whether a grpc-status counts as an error: Envoy's Grpc::Utility::grpcToHttpStatus maps it to 5xx
 * (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, any unknown code), or
 * there is none.
 */
function grpcStatusIsError(v: string | string[] | undefined): boolean {
  const code = Number(firstHeaderValue(v) ?? NaN);
  return !(code >= 0 && code <= 16) || code === 2 || code === 4 || code === 12 || code === 13 || code === 14 || code === 15;
}

/**
 * Envoy's Filter::chargeUpstreamCode (router.cc) as CodeStatsImpl::chargeResponseStat counts it:
 * the cluster's upstream_rq_completed, _<code>, _<class>xx, and the route's when it keeps stats.
 * (An upstream response is charged inline in onAttemptHeaders, the same counters.)
 */
function chargeUpstreamCode(cluster: Cluster, route: Route | undefined, status: number): void {
  cluster.s.rqCompleted.value++;
  cluster.s.codes.record(status);
  route?.stats?.response(status);
}

/** "reviews:9080" → "reviews-shadow:9080", as Envoy names mirrored requests' hosts. */
function shadowHost(authority: string): string {
  const i = authority.lastIndexOf(':');
  return i > 0 && !authority.endsWith(']') ? `${authority.slice(0, i)}-shadow${authority.slice(i)}` : `${authority}-shadow`;
}

/**
 * The host's rq_error / rq_success for the response it gave (router.cc chargeUpstreamCode and
 * handleNon5xxResponseHeaders): 5xx is an error; a gRPC response waits for its grpc-status (true:
 * deferred) unless its head carries it (a trailers-only response).
 */
function chargeHostResponse(host: UpstreamHost, status: number, headers: IncomingHttpHeaders, grpc: boolean): boolean {
  if (status >= 500) host.rqError++;
  else if (!grpc) host.rqSuccess++;
  else if (headers['grpc-status'] === undefined) return true;
  else if (grpcStatusIsError(headers['grpc-status'])) host.rqError++;
  else host.rqSuccess++;
  return false;
}

/**
 * A shadow request (Envoy's async client runs a router of its own): its host's rq_active while in
 * flight, rq_success / rq_error by its response, rq_error (and rq_timeout) when it fails; the pool
 * counts rq_total.
 */
class MirrorHandler implements Dispatcher.DispatchHandler {
  private readonly cluster: Cluster;
  private readonly host: UpstreamHost;
  private readonly grpc: boolean;
  private grpcDeferred = false;
  constructor(cluster: Cluster, host: UpstreamHost, grpc: boolean) {
    this.cluster = cluster;
    this.host = host;
    this.grpc = grpc;
    host.activeRequests++;
  }
  onRequestStart(): void {}
  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    this.cluster.s.codes.record(status);
    this.grpcDeferred = chargeHostResponse(this.host, status, headers, this.grpc);
  }
  onResponseData(): void {}
  onResponseEnd(_c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.cluster.s.rqCompleted.value++;
    this.host.activeRequests--;
    if (!this.grpcDeferred) return;
    if (grpcStatusIsError(trailers['grpc-status'])) this.host.rqError++;
    else this.host.rqSuccess++;
  }
  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.cluster.s.rqRxReset.value++;
    this.host.activeRequests--;
    this.host.rqError++;
    if (isResponseTimeout(err)) this.host.rqTimeout++;
  }
}

function onMaxStreamDuration(s: HttpStream): void {
  s.onMaxStreamDuration();
}

function onStreamDuration(s: HttpStream): void {
  s.onStreamDuration();
}

function onIdleTimeout(s: HttpStream): void {
  s.onIdleTimeout();
}

const ESCAPED_SLASH = /%2f|%5c/gi;

/** The path with %2F and %5C (either case) decoded to / and \; the query is left as is. */
function unescapeSlashes(full: string): string {
  const qi = full.indexOf('?');
  const p = qi >= 0 ? full.slice(0, qi) : full;
  const u = p.replace(ESCAPED_SLASH, (m) => (m[1] === '2' ? '/' : '\\'));
  return u === p ? full : qi >= 0 ? u + full.slice(qi) : u;
}

/**
 * normalize_path (RFC 3986 dot segments, as Envoy's Chromium-based normalizer) and merge_slashes,
 * on the path part only; the query string is kept as sent.
 */
export function normalizePath(full: string, normalize: boolean, merge: boolean): string {
  const qi = full.indexOf('?');
  let p = qi >= 0 ? full.slice(0, qi) : full;
  if (normalize) p = new URL(p, 'http://h').pathname;
  if (merge) p = p.replace(/\/{2,}/g, '/');
  return qi >= 0 ? p + full.slice(qi) : p;
}

function onGlobalTimeout(s: HttpStream): void {
  s.onGlobalTimeout();
}

function onRetryTimer(s: HttpStream): void {
  s.retryNow();
}

function stripPort(authority: string, mode: number, listenerPort: number): string {
  const i = authority.lastIndexOf(':');
  if (i <= 0 || authority.endsWith(']')) return authority;
  if (mode === 2 || authority.slice(i + 1) === String(listenerPort)) return authority.slice(0, i);
  return authority;
}

