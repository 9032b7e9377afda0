/**
 * The HTTP filter contract (Envoy's StreamDecoderFilter/StreamEncoderFilter, grpc-js-xds' http filter
 * registry). How to add a filter, e.g. `envoy.filters.http.fault`:
 *
 * 1. Write `src/proxy/filters/<name>/filter.ts` exporting an `HttpFilterFactory` and a `setup()` that
 *    calls `registerHttpFilter(factory)` (from `../registry.ts`), then add your `setup` to the list
 *    in `src/proxy/extensions.ts` (one line, no import side effects).
 * 2. `compile(r, ctx)` runs once per LDS/RDS update, never per request: read `typed_config` through
 *    the Reader (`r.str/num/bool/durationMs/obj/objs`, `r.raw` for the plain JSON), report problems
 *    with `ctx.issues.error(r.at('field'), msg)` (→ NACK, previous config kept) and call `r.done()`
 *    so that fields you do not read are reported as unsupported. Return an immutable compiled config.
 *    `compilePerRoute` does the same for `typed_per_filter_config` entries (route, virtual host,
 *    weighted cluster) whose `@type` is in `perRouteTypeUrls`.
 * 3. `create(config, cb)` runs per stream and must be cheap (a small object, no parsing). Return a
 *    filter whose hooks run in chain order:
 *    - `decodeHeaders(head, endStream)`: mutate `head` (method, path, authority, headers) freely.
 *      Return `Continue`, or `StopIteration` and later call `cb.continueDecoding()` (e.g. after a
 *      fault delay or a JWKS fetch), or call `cb.sendLocalReply({...})` and return `StopIteration`
 *      (e.g. RBAC 403, rate limit 429 with `flags: ResponseFlag.RateLimited`).
 *      Return `StopIterationAndBuffer` to see the request body first (e.g. ext_authz with_request_body):
 *      the connection manager buffers it (up to its limit, or `decodeDataEarlyBytes` when larger,
 *      else 413) and no later filter runs until this one continues.
 *    - `decodeData(body, endStream)`: after this filter's `StopIterationAndBuffer`, the buffered body,
 *      once: whole (endStream true), or as soon as `decodeDataEarlyBytes` bytes arrived (endStream
 *      false; the rest is held back, reading paused past the limit, until the filter continues, then
 *      the whole body goes on). Return `Continue`, or `StopIteration` and later `continueDecoding()`.
 *    - `encodeHeaders(head, endStream)` / `encodeData(chunk, endStream)`: see and mutate the response
 *      (also local replies) in reverse chain order. Encoding never stops.
 *    - To rewrite a body as it streams (gRPC-Web framing, compression, a Lua script's body), give the
 *      stream a BodyCodec: `cb.recodeRequestBody(c)` from decodeHeaders, `cb.recodeResponseBody(c)`
 *      from encodeHeaders. Only streams that install one pay for it. Its `stream()` is a Transform:
 *      asynchronous (node:zlib) or answering each chunk at once (`RewriteStream`, rewrite-stream.ts).
 *      Codecs chain in the order they were installed (a decompressor's output into a compressor). A
 *      response codec may hold the head until the body's end (its last chance to change the head),
 *      and at the body's end add bytes and change the trailers, or move them into the body.
 *    - `onDestroy()`: the stream ended (completed or reset); clear timers here.
 *    Per-route config: `cb.perRouteConfig(ctx.name)` gives what `compilePerRoute` returned for the
 *    matched route (route, else virtual host), undefined when none.
 * Local replies are gRPC-aware (HTTP 200 + grpc-status for gRPC requests) and fill the StreamInfo
 * (response code, flags, details). The router (`envoy.filters.http.router`) is always last.
 */
import type { X509Certificate } from 'node:crypto';
import type { Transform } from 'node:stream';
import type { StreamInfo } from '../stream-info.ts';
import type { Issues, Reader } from '../config/reader.ts';
import type { Stats } from '../stats/stats.ts';
import type { Route } from '../routing/route-config.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { EnvoyRuntime } from '../envoy-runtime/index.ts';
import type { ProxyTlv } from '../network/proxy-protocol-header.ts';
import type { Logger } from '../../core/log.ts';
import type { NodeInfo } from '../context.ts';

export const FilterStatus = { Continue: 0, StopIteration: 1, StopIterationAndBuffer: 2 } as const;
export type FilterStatus = (typeof FilterStatus)[keyof typeof FilterStatus];

/** Header names are lower case; repeated headers are arrays (node's IncomingHttpHeaders shape). */
export type HeaderMap = Record<string, string | string[] | undefined>;

export interface RequestHead {
  method: string;
  /** Path with query string, as on the request line (origin form). */
  path: string;
  /** :authority / Host. */
  authority: string;
  /** 'http' or 'https' (x-forwarded-proto for the upstream). */
  scheme: string;
  /** Request headers without pseudo headers and without hop-by-hop headers. */
  headers: HeaderMap;
}

export interface ResponseHead {
  status: number;
  headers: HeaderMap;
}

export interface LocalReply {
  status: number;
  /** Text (sent as UTF-8) or bytes sent as they are (a Wasm plugin's proxy_send_local_response). */
  body?: string | Buffer;
  headers?: HeaderMap;
  /** Bits of ResponseFlag (src/proxy/response-flags.ts). */
  flags?: number;
  /** %RESPONSE_CODE_DETAILS%, e.g. "rbac_access_denied_matched_policy[none]". */
  details?: string;
  /** For gRPC requests: the grpc-status to send (default: mapped from the HTTP status). */
  grpcStatus?: number;
}

/** The downstream connection a stream arrived on. */
export interface ConnectionInfo {
  /** The downstream remote address: the PROXY header's source when the proxy_protocol listener filter read one. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The socket's peer (Envoy's direct remote address), set only when it differs from remoteAddress/remotePort. */
  readonly directRemoteAddress?: string;
  readonly directRemotePort?: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Server name the client asked for (SNI), when TLS. */
  readonly sni?: string;
  readonly tls: boolean;
  /** URI SAN (SPIFFE id) of the client certificate, when mTLS. */
  readonly peerPrincipal?: string;
  /** All URI/DNS SANs of the client certificate. */
  readonly peerSans?: readonly string[];
  /** The client certificate, parsed on the first call; absent when the client presented none. */
  readonly peerCertificate?: () => X509Certificate | undefined;
  /** This proxy's certificate on the connection, parsed on the first call; absent without TLS. */
  readonly localCertificate?: () => X509Certificate | undefined;
  /** PROXY v2 TLVs the proxy_protocol listener filter kept (pass_through_tlvs), for upstream_proxy_protocol. */
  readonly proxyProtocolTlvs?: readonly ProxyTlv[];
}

export interface StreamCallbacks {
  readonly streamInfo: StreamInfo;
  readonly connection: ConnectionInfo;
  /** Compiled per-route config of the named filter for the matched route (route, else virtual host). */
  perRouteConfig<T>(filterName: string): T | undefined;
  /** The route the request matches now (cluster, rate_limits, raw config), undefined when none. */
  matchedRoute(): Route | undefined;
  /** Re-run route matching after the filter changed headers the routes match on. */
  clearRouteCache(): void;
  /** Resumes the decoder chain after a StopIteration. */
  continueDecoding(): void;
  /** Ends the stream with a locally generated response (no upstream request is made). */
  sendLocalReply(reply: LocalReply): void;
  /** From decodeHeaders: the request body (what is left of it) goes through `c`, after the codecs installed before. */
  recodeRequestBody(c: BodyCodec): void;
  /** From encodeHeaders: the response body goes through `c`, after the codecs installed before. */
  recodeResponseBody(c: BodyCodec): void;
  /** A codec that holds the head (holdHead) lets it go before the body's end (Envoy's continueEncoding): once no codec holds it, the head and the body so far go out. */
  releaseResponseHead(): void;
  /** The most a filter may buffer of a body (the route's per_request_buffer_limit_bytes, else the listener's buffer limit), as Envoy's buffer limit. */
  bufferLimit(): number;
  /** Resets the stream, as Envoy's resetStream(): the upstream request is cancelled, the client's stream reset (HTTP/1: its connection closed). */
  resetStream(): void;
  /** The request's trailers once its body has ended (an HTTP/2 request with a body, a chunked HTTP/1.1 one with enable_trailers); undefined when none. Changes to them go upstream. */
  requestTrailers(): HeaderMap | undefined;
  /**
   * Envoy's addDecodedTrailers, from the request body's last call (end of stream): trailers for a
   * request that came without (its own when it has some), whose entries go upstream as
   * requestTrailers' do. undefined when the request cannot carry trailers upstream: one that could
   * have none (a chunked HTTP/1.1 request without enable_trailers, an HTTP/1.1 one of fixed length,
   * a gRPC one).
   */
  addRequestTrailers(): HeaderMap | undefined;
}

/** Recodes a body as it streams (cb.recodeRequestBody / recodeResponseBody). */
export interface BodyCodec {
  /**
   * The stream a streamed body goes through; made once per body, its output in order, never an
   * error. A synchronous rewrite is a RewriteStream (rewrite-stream.ts). A response codec's stream
   * gets the body's BodyEnd: its trailers are set there before the stream's input ends.
   */
  stream(end?: BodyEnd): Transform;
  /** The same recoding of a body known whole (a request body read already, a local reply: end() is not called, no trailers); never throws. */
  whole(body: Buffer): Buffer;
  /** Response: the head is sent once the whole body went through the codecs (end() may still change it). */
  readonly holdHead?: boolean;
  /** Response: end() adds trailers (an HTTP/2 response then waits for them). */
  readonly addsTrailers?: boolean;
  /**
   * Response: this codec's stream has ended; returns the last bytes to add after its output. It may
   * change `e.trailers`, replace them, or move them into the body (deleting their keys).
   */
  end?(e: BodyEnd): Buffer;
}

/** The end of a response body, handed to each codec's end() in turn. */
export interface BodyEnd {
  /** The trailers the response ends with; undefined when none. */
  trailers: HeaderMap | undefined;
}

export interface HttpFilter {
  decodeHeaders?(head: RequestHead, endStream: boolean): FilterStatus;
  decodeData?(body: Buffer, endStream: boolean): FilterStatus;
  /** With StopIterationAndBuffer: decodeData gets the body before its end once this many bytes arrived. */
  readonly decodeDataEarlyBytes?: number;
  decodeTrailers?(trailers: HeaderMap): FilterStatus;
  /** Sees each request body chunk as it arrives (streamed or buffered), without holding or changing it. */
  observeRequestData?(chunk: Buffer): void;
  encodeHeaders?(head: ResponseHead, endStream: boolean): void;
  encodeData?(chunk: Buffer, endStream: boolean): void;
  onDestroy?(): void;
}

/**
 * Envoy's init manager of the listener version being built: a filter config that must fetch
 * something before it can serve (remote Wasm code) adds a target here, which the listener manager
 * starts when the version goes in (after the clusters of the same config are in place, not for a
 * refused config); the version serves once every target's promise settled (a new listener is not
 * bound; an updated one keeps serving its previous version). It should settle when the fetch gave up too.
 * `signal` aborts when the version is dropped before it served (replaced or removed while warming,
 * or the proxy stops): the target then stops its work (no further try, no timer left).
 */
export interface InitManager {
  add(what: string, start: (signal: AbortSignal) => Promise<unknown>): void;
}

export interface FilterCompileContext {
  /** The filter's name in the HCM's http_filters (the key of typed_per_filter_config). */
  readonly name: string;
  /** The HCM's stat_prefix, e.g. "outbound_0.0.0.0_9080". */
  readonly statPrefix: string;
  readonly stats: Stats;
  readonly issues: Issues;
  /** The proxy's clusters, for filters that call out through one (jwt_authn remote_jwks.http_uri.cluster). */
  readonly clusters: ClusterManager;
  /** The server's state, read per request (health_check: failing after admin POST /healthcheck/fail). */
  readonly server: ServerState;
  /** Envoy's runtime: take handles for runtime keys here (runtime.fraction(key, default)...). */
  readonly runtime: EnvoyRuntime;
  /** The proxy's log, for filters that write to it (the Lua filter's logInfo...). */
  readonly log?: Logger;
  /** The proxy's node (id, cluster, metadata), for filters that read it (the Wasm filter's node.* properties). */
  readonly node?: NodeInfo;
  readonly initManager: InitManager;
}

export interface PerRouteCompileContext {
  readonly issues: Issues;
  readonly runtime: EnvoyRuntime;
}

export interface ServerState {
  readonly healthCheckFailed: boolean;
}

export interface HttpFilterFactory<C = unknown, R = unknown> {
  /** Canonical extension name, e.g. "envoy.filters.http.fault". */
  readonly name: string;
  /** typed_config @type URLs this factory accepts. */
  readonly typeUrls: readonly string[];
  /** typed_per_filter_config @type URLs this factory accepts. */
  readonly perRouteTypeUrls?: readonly string[];
  compile(config: Reader, ctx: FilterCompileContext): C;
  compilePerRoute?(config: Reader, ctx: PerRouteCompileContext): R;
  create(config: C, cb: StreamCallbacks): HttpFilter;
  /**
   * For a filter whose engine loads asynchronously, only in proxies whose config uses it (the Lua
   * VM): starts loading it, undefined once loaded. Config that names one of the filter's type URLs
   * is applied after it (prepareHttpFilters); compile() may then count on it.
   */
  prepare?(): Promise<void> | undefined;
}
