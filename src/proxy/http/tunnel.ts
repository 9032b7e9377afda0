// HTTP/1.1 Upgrade (WebSocket and other upgrade_types) and CONNECT through the connection manager.
// The route decides (upgrade_configs on the HCM or the route, Envoy's semantics: an upgrade or
// CONNECT that is not enabled is refused with 403); the bytes then flow both ways untouched, but
// for a CONNECT whose route names the original destination it stands for (connect-redispatch.ts):
// its inside goes through that destination's listener instead. An HTTP/2 cluster takes the tunnel
// as a stream of its pooled connections (tunnel-h2.ts); otherwise it has a connection of its own.
import type net from 'node:net';
import tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import type { ConnState } from './http-stream.ts';
import { matchRoute, ActionKind, pickWeighted, type Route } from '../routing/route-config.ts';
import type { HeaderMap, RequestHead } from '../filters/filter.ts';
import { newStreamInfo, tlsPeer, type StreamInfo } from '../stream-info.ts';
import { ResponseFlag } from '../response-flags.ts';
import { DiscoveryType } from '../upstream/cluster-config.ts';
import { connectHostStream } from '../upstream/stream-connect.ts';
import { countConnection, type UpstreamHost, type Cluster } from '../upstream/cluster.ts';
import { pipeSockets, type PipeResult } from '../tcp/pipe.ts';
import { pooledH2Tunnel, tunnelRefusal, websocketAccept } from './tunnel-h2.ts';
import { isGrpcContentType, rewriteLocalReply, type LocalReplyParts } from './local-reply.ts';
import { http } from '../node-http.ts';
import { mutateRequestHeaders } from './mutate-request-headers.ts';
import { formatterFor, respellHead } from './h1/header-case.ts';
import { redispatchConnect } from './connect-redispatch.ts';
import { transportFailureReason } from '../upstream/transport-failure-reason.ts';

export function reply(socket: net.Socket, status: number, text: string, info: StreamInfo, flags: number, details: string, conn: ConnState, head: RequestHead): void {
  info.responseFlags |= flags;
  info.responseCodeDetails = details;
  const parts = tunnelLocalReply(conn, info, head, status, text);
  info.responseCode = parts.status;
  let out = `HTTP/1.1 ${parts.status} ${http.STATUS_CODES[parts.status] ?? 'Error'}\r\ncontent-length: ${Buffer.byteLength(parts.body)}\r\nserver: ${conn.hcm.serverName}\r\nconnection: close\r\n`;
  for (const [k, v] of Object.entries(parts.headers)) if (v !== undefined && k !== 'content-length' && k !== 'connection') for (const x of Array.isArray(v) ? v : [v]) out += `${k}: ${x}\r\n`;
  socket.end(`${out}\r\n${parts.body}`);
  finish(info, conn, head);
}

/** A tunnel refusal as a local reply: text/plain, rewritten by the HCM's local_reply_config. */
export function tunnelLocalReply(conn: ConnState, info: StreamInfo, head: RequestHead, status: number, body: string): LocalReplyParts {
  const parts: LocalReplyParts = { status, headers: body ? { 'content-type': 'text/plain' } : {}, body };
  if (conn.hcm.localReply) rewriteLocalReply(conn.hcm.localReply, info, head, parts);
  return parts;
}

function noop(): void {}

export function finish(info: StreamInfo, conn: ConnState, head: RequestHead): void {
  info.durationMs = performance.now() - info.startMonotonic;
  if (info.responseCode) conn.hcm.stats.codes.record(info.responseCode);
  for (const l of conn.hcm.accessLogs) l.log(info, head, undefined);
  for (const o of conn.ctx.observers) o(info, head, undefined);
}

function pickHost(cluster: Cluster, authority: string, conn: ConnState): UpstreamHost | undefined {
  if (cluster.config.type === DiscoveryType.OriginalDst) {
    const i = authority.lastIndexOf(':');
    if (i > 0) return cluster.originalDstHost(authority.slice(0, i).replace(/^\[|\]$/g, ''), Number(authority.slice(i + 1)));
    if (conn.originalDst) return cluster.originalDstHost(conn.originalDst.address, conn.originalDst.port);
    return undefined;
  }
  return cluster.pick(undefined);
}

/** The request head of an upgrade or CONNECT, as the HTTP/1 codec hands it over. */
export interface TunnelRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

function requestHead(req: TunnelRequest, conn: ConnState): RequestHead {
  const headers = { ...req.headers } as HeaderMap;
  const authority = req.method === 'CONNECT' ? (req.url ?? '') : ((headers.host as string | undefined) ?? '');
  return { method: req.method ?? 'GET', path: req.url ?? '/', authority, scheme: conn.info.tls ? 'https' : 'http', headers };
}

function upgradeAllowed(route: Route, conn: ConnState, type: string): boolean {
  return route.upgrades.get(type) ?? conn.hcm.upgrades.get(type) ?? false;
}

/** The StreamInfo of a tunnel, after the connection manager's request header mutation (as every request's). */
export function startInfo(conn: ConnState, head: RequestHead, protocol: string): StreamInfo {
  const info = newStreamInfo(conn.hcm.direction, protocol);
  info.downstreamRemoteAddress = conn.remoteAddr;
  info.downstreamDirectRemoteAddress = conn.directRemoteAddr;
  info.downstreamRemoteIp = conn.info.remoteAddress;
  info.downstreamLocalAddress = conn.localAddr;
  info.method = head.method;
  info.path = head.path;
  info.authority = head.authority;
  mutateRequestHeaders(conn, head, info);
  conn.hcm.stats.rqTotal.value++;
  return info;
}


export interface TunnelTarget {
  readonly route: Route;
  readonly cluster: Cluster;
  readonly host: UpstreamHost;
}

export interface TunnelRefusal {
  readonly status: number;
  readonly text: string;
  readonly flags: number;
  readonly details: string;
}

/** The route of a tunnel, once the upgrade check passed (recorded in the StreamInfo); else how to refuse it. */
export function tunnelRoute(conn: ConnState, head: RequestHead, type: string, info: StreamInfo): Route | TunnelRefusal {
  const vh = conn.hcm.routes.table?.findVirtualHost(head.authority);
  const route = vh ? matchRoute(vh, head, isGrpcContentType(head.headers['content-type'])) : undefined;
  if (!route) return { status: 404, text: '', flags: ResponseFlag.NoRouteFound, details: 'route_not_found' };
  info.routeName = route.name;
  info.routeDecorator = route.decorator;
  if (!upgradeAllowed(route, conn, type) || (route.action !== ActionKind.Cluster && route.action !== ActionKind.Weighted)) return { status: 403, text: '', flags: 0, details: 'upgrade_failed' };
  return route;
}

/** The cluster and host of a routed tunnel. */
export function tunnelUpstream(conn: ConnState, head: RequestHead, route: Route, info: StreamInfo): TunnelTarget | TunnelRefusal {
  const name = route.action === ActionKind.Weighted ? pickWeighted(route).name : route.cluster;
  info.upstreamCluster = name;
  const cluster = conn.ctx.clusters.get(name);
  if (!cluster) return { status: 503, text: '', flags: ResponseFlag.NoClusterFound, details: 'cluster_not_found' };
  const host = pickHost(cluster, head.authority, conn);
  if (!host) return { status: 503, text: 'no healthy upstream', flags: ResponseFlag.NoHealthyUpstream, details: 'no_healthy_upstream' };
  info.upstreamHost = host.key;
  cluster.s.rqTotal.value++;
  return { route, cluster, host };
}

/** Routes already told that their CONNECTs to an HTTP/1.1 cluster are terminated. */
const terminatedConnects = new WeakSet<Route>();

/**
 * Whether the tunnel goes to its HTTP/2 cluster as a stream of the pool: an upgrade does, and a
 * CONNECT whose route has no connect_config (Envoy forwards it; with connect_config it terminates
 * it and sends the bytes over TCP). Such a CONNECT to an HTTP/1.1 cluster, which Envoy forwards
 * over HTTP/1.1, is still terminated here: said once per route.
 */
export function pooledTunnel(conn: ConnState, t: TunnelTarget, isConnect: boolean): boolean {
  if (!isConnect) return t.cluster.config.http2;
  if (t.route.connectConfig) return false;
  if (t.cluster.config.http2) return true;
  if (!terminatedConnects.has(t.route)) {
    terminatedConnects.add(t.route);
    conn.ctx.log.warn({ route: t.route.name, cluster: t.cluster.config.name }, 'a CONNECT whose route has no connect_config is forwarded by Envoy to an HTTP/1.1 cluster; rig proxy terminates it and sends its bytes over TCP, as with connect_config (set connect_config on the CONNECT upgrade_config to say so)');
  }
  return false;
}

/** A tunnel's idle timeout: the route's idle_timeout, else the HCM stream_idle_timeout (Envoy). */
export function tunnelIdleMs(t: TunnelTarget, conn: ConnState): number {
  return t.route.idleTimeoutMs ?? conn.hcm.streamIdleTimeoutMs;
}

/**
 * Envoy's downstream duration timeout on an established tunnel (the route's max_stream_duration,
 * else the HCM's; counted from the stream start): the tunnel is closed, details max_duration_timeout.
 * Returns the timer, to clear when the tunnel ends first.
 */
export function limitTunnelDuration(t: TunnelTarget, conn: ConnState, info: StreamInfo, pipe: { close(): void }): NodeJS.Timeout | undefined {
  const ms = t.route.maxStreamDurationMs ?? conn.hcm.maxStreamDurationMs;
  if (!ms) return undefined;
  const left = Math.max(ms - (performance.now() - info.startMonotonic), 0);
  return setTimeout(() => {
    conn.hcm.stats.rqMaxDurationReached.value++;
    info.responseCodeDetails = 'max_duration_timeout';
    pipe.close();
  }, left);
}

export const CONNECT_FAILED = 'upstream_reset_before_response_started{connection_failure}';

export function connectFailureText(e: Error): string {
  return `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${transportFailureReason(e)}`;
}

/**
 * Connects to the tunnel's upstream host (TLS when the host's transport socket says so: the cluster's,
 * or the transport_socket_matches entry its metadata matches, as Istio's mTLS) and calls back once the
 * connection is up (or failed, after connect_timeout); records the upstream peer.
 */
export function openUpstream(t: TunnelTarget, conn: ConnState, info: StreamInfo, cb: (err: Error | undefined, socket: net.Socket) => void): void {
  const { cluster, host } = t;
  let upstream: net.Socket;
  try {
    upstream = connectHostStream(cluster, host, conn.ctx.secrets, conn.info);
  } catch (e) {
    cb(e as Error, undefined as unknown as net.Socket);
    return;
  }
  const s = cluster.s;
  s.cxTotal.value++;
  const openedAt = performance.now();
  let settled = false;
  const timer = setTimeout(() => {
    s.cxConnectTimeout.value++;
    upstream.destroy(new Error('connect timeout'));
  }, cluster.config.connectTimeoutMs);
  upstream.once('error', (e) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    s.cxConnectFail.value++;
    cb(e, upstream);
  });
  upstream.once(upstream instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => {
    settled = true;
    clearTimeout(timer);
    // The upgrade (or CONNECT) is the connection's stream from now on (Envoy's pool attach).
    host.rqTotal++;
    s.cxActive.value++;
    upstream.once('close', () => {
      s.cxActive.value--;
      s.cxDestroy.value++;
    });
    countConnection(upstream, s, openedAt);
    info.upstreamLocalAddress = `${upstream.localAddress}:${upstream.localPort}`;
    if (upstream instanceof tls.TLSSocket) info.upstreamPeer = tlsPeer(upstream);
    cb(undefined, upstream);
  });
}

/** Handles a request the HTTP server handed over as an upgrade (WebSocket...) or CONNECT. */
export function handleTunnel(conn: ConnState, req: TunnelRequest, socket: net.Socket, early: Buffer): void {
  const head = requestHead(req, conn);
  const info = startInfo(conn, head, 'HTTP/1.1');
  const isConnect = head.method === 'CONNECT';
  const type = isConnect ? 'connect' : String(req.headers.upgrade ?? '').toLowerCase();
  socket.on('error', () => undefined);
  const route = tunnelRoute(conn, head, type, info);
  if ('status' in route) return reply(socket, route.status, route.text, info, route.flags, route.details, conn, head);
  if (isConnect && redispatchConnect(conn, route, socket, early, head, info)) return;
  const t = tunnelUpstream(conn, head, route, info);
  if (!('host' in t)) return reply(socket, t.status, t.text, info, t.flags, t.details, conn, head);
  const { cluster, host } = t;
  host.activeRequests++;
  let durationTimer: NodeJS.Timeout | undefined;
  let releaseSlot = noop;
  const done = (r: PipeResult): void => {
    clearTimeout(durationTimer);
    host.activeRequests--;
    releaseSlot();
    info.bytesReceived = r.aToB;
    info.bytesSent = r.bToA;
    if (r.reason.startsWith('upstream')) info.responseFlags |= ResponseFlag.UpstreamConnectionTermination;
    finish(info, conn, head);
  };
  if (pooledTunnel(conn, t, isConnect)) {
    // An HTTP/2 upstream takes the upgrade as an extended CONNECT (RFC 8441), and a CONNECT its
    // route does not terminate as itself, on its pooled connections, as Envoy does.
    releaseSlot = pooledH2Tunnel(conn, t, head, type, info, socket, (a) => {
      if (a.stream && socket.destroyed) a.stream.close(http2.constants.NGHTTP2_CANCEL);
      if (!a.stream || socket.destroyed) {
        host.activeRequests--;
        releaseSlot();
        if (socket.destroyed) {
          info.responseFlags |= ResponseFlag.DownstreamConnectionTermination;
          return finish(info, conn, head);
        }
        const r = tunnelRefusal(a);
        if (a.status) info.responseCode = a.status;
        return reply(socket, r.status, r.text, info, r.flags, r.details, conn, head);
      }
      info.responseCode = a.status;
      info.responseCodeDetails = 'via_upstream';
      socket.write(upgradeResponse(type, a.headers, req.headers['sec-websocket-key']));
      if (early.length) a.stream.write(early);
      durationTimer = limitTunnelDuration(t, conn, info, pipeSockets(socket, a.stream as unknown as net.Socket, tunnelIdleMs(t, conn), done));
    });
    return;
  }
  openUpstream(t, conn, info, (err, upstream) => {
    if (err) {
      host.activeRequests--;
      return reply(socket, 503, connectFailureText(err), info, ResponseFlag.UpstreamConnectionFailure, CONNECT_FAILED, conn, head);
    }
    if (isConnect) {
      info.responseCode = 200;
      info.responseCodeDetails = 'via_upstream';
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
    } else {
      // Forward the upgrade request (its headers as mutated, Connection and Upgrade kept, the proxy
      // headers cleaned, as Envoy); the upstream's 101 (or refusal) flows back as raw bytes.
      let out = `${head.method} ${head.path} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(head.headers)) if (v !== undefined && k !== 'keep-alive' && k !== 'proxy-connection') for (const x of Array.isArray(v) ? v : [v]) out += `${k}: ${x}\r\n`;
      // header_key_format: the request's recorded case (preserve_case) or the cluster's proper_case_words.
      const names = formatterFor(req.headers, cluster.config.h1HeaderKeyFormat);
      upstream.write((names === undefined ? out : respellHead(out, names)) + '\r\n');
      upstream.once('data', (c: Buffer) => {
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(c.subarray(0, 16).toString('latin1'));
        info.responseCode = m ? Number(m[1]) : 0;
        info.responseCodeDetails = 'via_upstream';
      });
    }
    if (early.length) upstream.write(early);
    durationTimer = limitTunnelDuration(t, conn, info, pipeSockets(socket, upstream, tunnelIdleMs(t, conn), done));
  });
}

/** The HTTP/1.1 101 for an upgrade the upstream accepted over HTTP/2 (WebSocket: with Sec-WebSocket-Accept), or 200 for a CONNECT. */
function upgradeResponse(type: string, headers: http2.IncomingHttpHeaders, key: string | undefined): string {
  let out = type === 'connect' ? 'HTTP/1.1 200 OK\r\n' : `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${type}\r\n`;
  if (type === 'websocket' && key) out += `sec-websocket-accept: ${websocketAccept(key)}\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    if (k.charCodeAt(0) === 58 || v === undefined || k === 'sec-websocket-accept') continue;
    for (const x of Array.isArray(v) ? v : [v]) out += `${k}: ${x}\r\n`;
  }
  return out + '\r\n';
}
