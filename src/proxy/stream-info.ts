// Envoy's StreamInfo: what happened to one HTTP request or one TCP connection. The proxy fills
// it along the request path; telemetry (metrics, access logs, spans) reads it when the stream ends.
import type tls from 'node:tls';
// The module's performance, not the global: globalThis.performance is an accessor, ~170 instructions a read (callgrind).
import { performance } from 'node:perf_hooks';
import { spiffeId, upstreamPeerCertificate } from './tls/tls-context.ts';
import type { RouteDecorator } from './routing/route-config.ts';

export interface PeerInfo {
  /** SPIFFE id from the peer's certificate, e.g. spiffe://cluster.local/ns/default/sa/bookinfo-productpage. */
  principal?: string;
  /** The peer certificate's subject (%UPSTREAM_PEER_SUBJECT%), RFC 2253-like "CN=...,O=...". */
  subject?: string;
  /** Istio peer metadata from the metadata exchange: WORKLOAD_NAME, NAMESPACE, LABELS, CLUSTER_ID, … */
  metadata?: Record<string, unknown>;
}

export interface StreamInfo {
  /** Wall-clock start, ms since the epoch. */
  startTime: number;
  /** performance.now() at start, for durations. */
  startMonotonic: number;
  direction: 'inbound' | 'outbound' | 'gateway';
  /**
   * 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2' (grpc is HTTP/2 with content-type application/grpc); '' on a
   * connection (tcp_proxy, a network filter, the listener), where Envoy has none: %PROTOCOL% is '-'.
   */
  protocol: string;
  isGrpc?: boolean;
  /** A health check of this proxy, as marked by the health_check HTTP filter (not_health_check_filter). */
  healthCheck?: boolean;

  method?: string;
  path?: string;
  authority?: string;
  scheme?: string;
  userAgent?: string;
  requestId?: string;
  forwardedFor?: string;

  /** 0 until a response was started or decided. */
  responseCode: number;
  grpcStatus?: number;
  /** Bit set of ResponseFlag. */
  responseFlags: number;
  /** %RESPONSE_CODE_DETAILS%, e.g. "via_upstream", "route_not_found", "rbac_access_denied". */
  responseCodeDetails?: string;

  bytesReceived: number;
  bytesSent: number;
  /** Set when the stream ends: total duration in ms. */
  durationMs?: number;
  /** Time from the first upstream byte sent to the first byte of response headers, ms. */
  upstreamServiceTimeMs?: number;

  routeName?: string;
  /** The matched route's decorator (span name, propagation). */
  routeDecorator?: RouteDecorator;
  upstreamCluster?: string;
  upstreamHost?: string;
  upstreamLocalAddress?: string;
  upstreamTransportFailureReason?: string;
  /** Why the downstream connection's TLS failed (tls-failure-reason.ts); set on a listener's connection only. */
  downstreamTransportFailureReason?: string;
  /**
   * Envoy's downstream remote address: after x-forwarded-for processing (HCM use_remote_address,
   * xff_num_trusted_hops) the trusted client address, else the peer. "ip:port", an IPv6 address in
   * brackets; an address taken from x-forwarded-for has port 0, as in Envoy.
   */
  downstreamRemoteAddress?: string;
  /** The IP of downstreamRemoteAddress (RBAC remote_ip, hash policy source_ip). */
  downstreamRemoteIp?: string;
  /** The connection's peer, "ip:port" (%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%, RBAC direct_remote_ip, span peer.address). */
  downstreamDirectRemoteAddress?: string;
  downstreamLocalAddress?: string;
  requestedServerName?: string;

  /** The other side of the connection seen by this proxy: for inbound the caller, for outbound the callee. */
  downstreamPeer?: PeerInfo;
  upstreamPeer?: PeerInfo;
  /** mTLS on the connection this proxy accepted (inbound) or made (outbound). */
  mtls: boolean;

  /** Trace context of the span this proxy created, if sampled. */
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  sampled?: boolean;

  /** Free-form per-filter state (Envoy's filter state / dynamic metadata). */
  filterState?: Record<string, unknown>;
}

/**
 * Every field is present from the start (undefined until known): one allocation and one hidden
 * class for all records, instead of a map transition and a property-store growth per field set
 * along the request path (bench/micro/proxy-stream-info.ts).
 */
export function newStreamInfo(direction: StreamInfo['direction'], protocol: string): StreamInfo {
  return {
    startTime: Date.now(),
    startMonotonic: performance.now(),
    direction,
    protocol,
    isGrpc: undefined,
    method: undefined,
    path: undefined,
    authority: undefined,
    scheme: undefined,
    userAgent: undefined,
    requestId: undefined,
    forwardedFor: undefined,
    responseCode: 0,
    grpcStatus: undefined,
    responseFlags: 0,
    responseCodeDetails: undefined,
    bytesReceived: 0,
    bytesSent: 0,
    durationMs: undefined,
    upstreamServiceTimeMs: undefined,
    routeName: undefined,
    routeDecorator: undefined,
    upstreamCluster: undefined,
    upstreamHost: undefined,
    upstreamLocalAddress: undefined,
    upstreamTransportFailureReason: undefined,
    downstreamTransportFailureReason: undefined,
    downstreamRemoteAddress: undefined,
    downstreamRemoteIp: undefined,
    downstreamDirectRemoteAddress: undefined,
    downstreamLocalAddress: undefined,
    requestedServerName: undefined,
    downstreamPeer: undefined,
    upstreamPeer: undefined,
    mtls: false,
    traceId: undefined,
    spanId: undefined,
    parentSpanId: undefined,
    sampled: undefined,
    filterState: undefined,
  };
}

/**
 * The peer of a TLS connection this proxy made, from the certificate the upstream presented
 * (undefined for plaintext or no certificate). Computed once per connection and shared, read-only,
 * by the streams that use it.
 */
export function tlsPeer(socket: tls.TLSSocket): PeerInfo | undefined {
  const cert = upstreamPeerCertificate(socket);
  if (!cert) return undefined;
  const subject = cert.subject ? Object.entries(cert.subject).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`).reverse().join(',') : undefined;
  return Object.freeze({ principal: spiffeId(cert), subject: subject || undefined });
}
