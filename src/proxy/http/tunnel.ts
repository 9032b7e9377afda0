// HTTP/1.1 Upgrade (WebSocket and other upgrade_types) and CONNECT through the connection manager.
// The route decides (upgrade_configs on the HCM or the route, Envoy's semantics: an upgrade or
// CONNECT that is not enabled is refused with 403); the bytes then flow both ways untouched.
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { ConnState } from './http-stream.ts';
import { matchRoute, ActionKind, pickWeighted, type Route } from '../routing/route-config.ts';
import type { HeaderMap, RequestHead } from '../filters/filter.ts';
import { newStreamInfo, tlsPeer, type StreamInfo } from '../stream-info.ts';
import { ResponseFlag } from '../response-flags.ts';
import { DiscoveryType } from '../upstream/cluster-config.ts';
import type { UpstreamHost, Cluster } from '../upstream/cluster.ts';
import { pipeSockets } from '../tcp/pipe.ts';
import { isGrpcContentType } from './local-reply.ts';

function reply(socket: net.Socket, status: number, text: string, info: StreamInfo, flags: number, details: string, conn: ConnState, head: RequestHead): void {
  info.responseCode = status;
  info.responseFlags |= flags;
  info.responseCodeDetails = details;
  const body = text ? text : '';
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncontent-type: text/plain\r\nserver: ${conn.hcm.serverName}\r\nconnection: close\r\n\r\n${body}`);
  finish(info, conn, head);
}

const STATUS_TEXT: Record<number, string> = { 200: 'OK', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable', 400: 'Bad Request' };

function finish(info: StreamInfo, conn: ConnState, head: RequestHead): void {
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

function connectUpstream(cluster: Cluster, host: UpstreamHost, conn: ConnState): net.Socket {
  const tlsCtx = cluster.config.tls;
  const opts = { host: host.address, port: host.port, localAddress: cluster.config.sourceAddress, allowHalfOpen: true };
  if (tlsCtx) return tlsCtx.connect(conn.ctx.secrets, host, cluster.config.sourceAddress);
  return net.connect(opts);
}

function requestHead(req: IncomingMessage, conn: ConnState): RequestHead {
  const headers = { ...req.headers } as HeaderMap;
  const authority = req.method === 'CONNECT' ? (req.url ?? '') : ((headers.host as string | undefined) ?? '');
  return { method: req.method ?? 'GET', path: req.url ?? '/', authority, scheme: conn.info.tls ? 'https' : 'http', headers };
}

function upgradeAllowed(route: Route, conn: ConnState, type: string): boolean {
  return route.upgrades.get(type) ?? conn.hcm.upgrades.get(type) ?? false;
}

function startInfo(conn: ConnState, head: RequestHead): StreamInfo {
  const info = newStreamInfo(conn.hcm.direction, 'HTTP/1.1');
  info.downstreamRemoteAddress = conn.remoteAddr;
  info.downstreamLocalAddress = conn.localAddr;
  info.method = head.method;
  info.path = head.path;
  info.authority = head.authority;
  info.requestId = head.headers['x-request-id'] as string | undefined;
  conn.hcm.stats.rqTotal.value++;
  return info;
}

/** Handles a request the HTTP server handed over as an upgrade (WebSocket...) or CONNECT. */
export function handleTunnel(conn: ConnState, req: IncomingMessage, socket: net.Socket, early: Buffer): void {
  const head = requestHead(req, conn);
  const info = startInfo(conn, head);
  const isConnect = head.method === 'CONNECT';
  const type = isConnect ? 'connect' : String(req.headers.upgrade ?? '').toLowerCase();
  socket.on('error', () => undefined);
  const vh = conn.hcm.routes.table?.findVirtualHost(head.authority);
  const route = vh ? matchRoute(vh, head, isGrpcContentType(head.headers['content-type'])) : undefined;
  if (!route) return reply(socket, 404, '', info, ResponseFlag.NoRouteFound, 'route_not_found', conn, head);
  info.routeName = route.name;
  if (!upgradeAllowed(route, conn, type)) return reply(socket, 403, '', info, 0, 'upgrade_failed', conn, head);
  if (route.action !== ActionKind.Cluster && route.action !== ActionKind.Weighted) return reply(socket, 403, '', info, 0, 'upgrade_failed', conn, head);
  const name = route.action === ActionKind.Weighted ? pickWeighted(route).name : route.cluster;
  info.upstreamCluster = name;
  const cluster = conn.ctx.clusters.get(name);
  if (!cluster) return reply(socket, 503, '', info, ResponseFlag.NoClusterFound, 'cluster_not_found', conn, head);
  const host = pickHost(cluster, head.authority, conn);
  if (!host) return reply(socket, 503, 'no healthy upstream', info, ResponseFlag.NoHealthyUpstream, 'no_healthy_upstream', conn, head);
  info.upstreamHost = host.key;
  cluster.s.rqTotal.value++;
  host.activeRequests++;
  let upstream: net.Socket;
  try {
    upstream = connectUpstream(cluster, host, conn);
  } catch (e) {
    host.activeRequests--;
    return reply(socket, 503, (e as Error).message, info, ResponseFlag.UpstreamConnectionFailure, 'upstream_reset_before_response_started{connection_failure}', conn, head);
  }
  let connected = false;
  const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), cluster.config.connectTimeoutMs);
  upstream.once('error', (e) => {
    if (connected) return;
    clearTimeout(timer);
    host.activeRequests--;
    cluster.s.cxConnectFail.value++;
    reply(socket, 503, `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${e.message}`, info, ResponseFlag.UpstreamConnectionFailure, 'upstream_reset_before_response_started{connection_failure}', conn, head);
  });
  upstream.once(cluster.config.tls ? 'secureConnect' : 'connect', () => {
    connected = true;
    clearTimeout(timer);
    if (upstream instanceof tls.TLSSocket) info.upstreamPeer = tlsPeer(upstream);
    if (isConnect) {
      info.responseCode = 200;
      info.responseCodeDetails = 'via_upstream';
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
    } else {
      // Forward the upgrade request; the upstream's 101 (or refusal) flows back as raw bytes.
      let out = `${head.method} ${head.path} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) out += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      upstream.write(out + '\r\n');
      upstream.once('data', (c: Buffer) => {
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(c.subarray(0, 16).toString('latin1'));
        info.responseCode = m ? Number(m[1]) : 0;
        info.responseCodeDetails = 'via_upstream';
      });
    }
    if (early.length) upstream.write(early);
    pipeSockets(socket, upstream, route.idleTimeoutMs, (r) => {
      host.activeRequests--;
      info.bytesReceived = r.aToB;
      info.bytesSent = r.bToA;
      if (r.reason.startsWith('upstream')) info.responseFlags |= ResponseFlag.UpstreamConnectionTermination;
      finish(info, conn, head);
    });
  });
}
