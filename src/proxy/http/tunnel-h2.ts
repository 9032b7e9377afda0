// Tunnels and HTTP/2, with Envoy's semantics. Downstream: with the HCM's
// http2_protocol_options.allow_connect the proxy advertises SETTINGS_ENABLE_CONNECT_PROTOCOL and
// takes extended CONNECT (RFC 8441: WebSocket over HTTP/2), routed as the upgrade request it
// stands for (GET :path, upgrade_configs of its :protocol), and plain CONNECT, which tunnels TCP
// as its HTTP/1.1 form does (or, when its route names the destination it stands for, is answered
// here and its inside re-dispatched: connect-redispatch.ts). Upstream: an HTTP/1.1 cluster gets an
// Upgrade request (with a made-up Sec-WebSocket-Key when the client sent none, as RFC 8441
// clients do not); an HTTP/2 cluster gets an extended CONNECT as a stream of its pooled
// connections, and so does a CONNECT whose route has no connect_config (Envoy's router sends both
// through the cluster's connection pool; with connect_config it terminates the CONNECT).
import crypto from 'node:crypto';
import type { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type net from 'node:net';
import type { HeaderMap, RequestHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import { ResponseFlag } from '../response-flags.ts';
import { pipeSockets, type PipeResult } from '../tcp/pipe.ts';
import type { ConnState } from './http-stream.ts';
import { CONNECT_FAILED, connectFailureText, finish, limitTunnelDuration, openUpstream, pooledTunnel, startInfo, tunnelIdleMs, tunnelLocalReply, tunnelRoute, tunnelUpstream, type TunnelRefusal, type TunnelTarget } from './tunnel.ts';
import { dispatchConnect, PooledStreamSlot, type ConnectAnswer } from '../upstream/pooled-connect.ts';
import { isConnectFailure } from './upstream-request.ts';
import { isH2ConnectFailure } from '../upstream/cluster.ts';
import { redispatchH2Connect } from './connect-redispatch.ts';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_HEAD = 64 * 1024;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings', 'te', 'sec-websocket-accept']);

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2). */
export function websocketAccept(key: string): string {
  return crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
}

function noop(): void {}

/** Response headers of the upstream that may travel on: no pseudo, hop-by-hop or upgrade headers. */
function endToEnd(headers: Record<string, string | string[] | undefined>): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && k.charCodeAt(0) !== 58 && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/**
 * Sends an upgrade or a CONNECT to an HTTP/2 cluster as Envoy's router does: an extended CONNECT
 * (RFC 8441, :protocol the upgrade type), or the CONNECT itself (`type` "connect"), as a stream of
 * the host's pooled connections, under the cluster's circuit breakers (pooled-connect.ts). Calls
 * back once with the answer (the stream for a 2xx), the pooled connection's local address
 * recorded; a downstream that closes meanwhile gives the stream up. Returns the release of the
 * breaker slots, for when the established tunnel ends.
 */
export function pooledH2Tunnel(conn: ConnState, t: TunnelTarget, head: RequestHead, type: string, info: StreamInfo, downstream: EventEmitter, cb: (a: ConnectAnswer) => void): () => void {
  const slot = PooledStreamSlot.take(t.cluster.hooks, t.route.highPriority);
  if (!slot) {
    cb({ status: 0, headers: {}, stream: undefined, reason: 'overflow', overflow: true, localAddress: undefined });
    return noop;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(head.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && k !== 'sec-websocket-key' && k.charCodeAt(0) !== 58) headers[k] = v;
  // Registered first: an overflow calls back before dispatchConnect returns.
  const onClose = (): void => abort('downstream closed before the tunnel was answered');
  downstream.once('close', onClose);
  const pool = t.cluster.pool(t.host, true, undefined, conn.downstream);
  const abort = dispatchConnect(pool, slot, type === 'connect' ? { authority: head.authority, headers } : { authority: head.authority, protocol: type, path: head.path, headers }, (status) => status >= 200 && status <= 299, noop, (a) => {
    downstream.off('close', onClose);
    if (a.localAddress) info.upstreamLocalAddress = a.localAddress;
    // The pool's latest TLS connection to the host names its peer, as for the router's requests.
    if (a.stream && t.host.tlsPeer) info.upstreamPeer = t.host.tlsPeer;
    if (!a.stream && !a.overflow && a.reason) info.upstreamTransportFailureReason = a.reason;
    cb(a);
  });
  return () => slot.release();
}

/** How a tunnel that did not come is refused: overflow (UO), connect failure (UF), the upstream's status, or a protocol error. */
export function tunnelRefusal(a: ConnectAnswer): TunnelRefusal {
  if (a.overflow) return { status: 503, text: 'upstream connect error or disconnect/reset before headers. reset reason: overflow', flags: ResponseFlag.UpstreamOverflow, details: 'upstream_reset_before_response_started{overflow}' };
  if (a.error && (isConnectFailure(a.error) || isH2ConnectFailure(a.error))) return { status: 503, text: connectFailureText(a.error), flags: ResponseFlag.UpstreamConnectionFailure, details: CONNECT_FAILED };
  if (a.status) return { status: a.status, text: '', flags: 0, details: 'via_upstream' };
  return { status: 502, text: '', flags: ResponseFlag.UpstreamProtocolError, details: 'upstream_protocol_error' };
}

type H1Answer = (status: number, headers: Record<string, string>, rest: Buffer) => void;

/**
 * Writes the HTTP/1.1 Upgrade request that an extended CONNECT stands for and reads the
 * upstream's response head (status 0: the upstream closed or sent no valid head). The socket is
 * left paused after the head.
 */
function upgradeOverH1(upstream: net.Socket, head: RequestHead, type: string, cb: H1Answer): void {
  let out = `GET ${head.path} HTTP/1.1\r\nhost: ${head.authority}\r\nconnection: Upgrade\r\nupgrade: ${type}\r\n`;
  for (const [k, v] of Object.entries(head.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k)) continue;
    for (const x of Array.isArray(v) ? v : [v]) out += `${k}: ${x}\r\n`;
  }
  if (type === 'websocket' && head.headers['sec-websocket-key'] === undefined) out += `sec-websocket-key: ${crypto.randomBytes(16).toString('base64')}\r\n`;
  upstream.write(out + '\r\n');
  let buf: Buffer = Buffer.alloc(0);
  let answered = false;
  const answer: H1Answer = (status, headers, rest) => {
    if (answered) return;
    answered = true;
    upstream.off('data', onData);
    cb(status, headers, rest);
  };
  const onData = (c: Buffer): void => {
    buf = buf.length ? Buffer.concat([buf, c]) : c;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEAD) answer(0, {}, buf);
      return;
    }
    upstream.pause();
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    answer(m ? Number(m[1]) : 0, headers, buf.subarray(end + 4));
  };
  upstream.on('data', onData);
  upstream.once('close', () => answer(0, {}, buf));
}

function refuse(stream: http2.ServerHttp2Stream, status: number, text: string, info: StreamInfo, flags: number, details: string, conn: ConnState, head: RequestHead): void {
  info.responseFlags |= flags;
  info.responseCodeDetails = details;
  const parts = tunnelLocalReply(conn, info, head, status, text);
  info.responseCode = parts.status;
  if (!stream.destroyed && !stream.headersSent) {
    stream.respond({ ...endToEnd(parts.headers), ':status': parts.status, 'content-length': Buffer.byteLength(parts.body), server: conn.hcm.serverName }, { endStream: !parts.body });
    if (parts.body) stream.end(parts.body);
  } else stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
  finish(info, conn, head);
}

/** A CONNECT (extended or plain) stream on a downstream HTTP/2 connection. */
export function handleH2Tunnel(conn: ConnState, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  const protocol = headers[':protocol'] as string | undefined;
  const authority = String(headers[':authority'] ?? '');
  const plain: HeaderMap = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && k.charCodeAt(0) !== 58) plain[k] = v;
  const scheme = conn.info.tls ? 'https' : 'http';
  const head: RequestHead = protocol ? { method: 'GET', path: String(headers[':path'] ?? '/'), authority, scheme, headers: plain } : { method: 'CONNECT', path: authority, authority, scheme, headers: plain };
  const info = startInfo(conn, head, 'HTTP/2');
  stream.on('error', noop);
  const type = protocol ? protocol.toLowerCase() : 'connect';
  const route = tunnelRoute(conn, head, type, info);
  if ('status' in route) return refuse(stream, route.status, route.text, info, route.flags, route.details, conn, head);
  if (!protocol && redispatchH2Connect(conn, route, stream, head, info)) return;
  const t = tunnelUpstream(conn, head, route, info);
  if (!('host' in t)) return refuse(stream, t.status, t.text, info, t.flags, t.details, conn, head);
  const host = t.host;
  host.activeRequests++;
  let released = false;
  let releaseSlot = noop;
  const release = (): void => {
    if (released) return;
    released = true;
    host.activeRequests--;
    releaseSlot();
  };
  const relay = (upstream: net.Socket | http2.ClientHttp2Stream, early: Buffer): void => {
    info.responseCode = 200;
    info.responseCodeDetails = 'via_upstream';
    const duration: { timer?: NodeJS.Timeout } = {};
    const pipe = pipeSockets(stream as unknown as net.Socket, upstream as net.Socket, tunnelIdleMs(t, conn), (r: PipeResult) => {
      clearTimeout(duration.timer);
      release();
      info.bytesReceived = r.aToB;
      info.bytesSent = r.bToA + early.length;
      if (r.reason.startsWith('upstream')) info.responseFlags |= ResponseFlag.UpstreamConnectionTermination;
      finish(info, conn, head);
    });
    duration.timer = limitTunnelDuration(t, conn, info, pipe);
    if (early.length) stream.write(early);
  };
  if (pooledTunnel(conn, t, !protocol)) {
    releaseSlot = pooledH2Tunnel(conn, t, head, type, info, stream, (a) => {
      if (stream.destroyed) {
        a.stream?.close(http2.constants.NGHTTP2_CANCEL);
        release();
        info.responseFlags |= ResponseFlag.DownstreamConnectionTermination;
        return finish(info, conn, head);
      }
      if (!a.stream) {
        release();
        const r = tunnelRefusal(a);
        return refuse(stream, r.status, r.text, info, r.flags, r.details, conn, head);
      }
      stream.respond({ ...endToEnd(a.headers), ':status': 200 });
      relay(a.stream, Buffer.alloc(0));
    });
    return;
  }
  openUpstream(t, conn, info, (err, upstream) => {
    if (err) {
      release();
      return refuse(stream, 503, connectFailureText(err), info, ResponseFlag.UpstreamConnectionFailure, CONNECT_FAILED, conn, head);
    }
    if (stream.destroyed) {
      release();
      upstream.destroy();
      info.responseFlags |= ResponseFlag.DownstreamConnectionTermination;
      return finish(info, conn, head);
    }
    if (!protocol) {
      stream.respond({ ':status': 200 });
      return relay(upstream, Buffer.alloc(0));
    }
    upgradeOverH1(upstream, head, type, (status, h, rest) => {
      if (status !== 101) {
        release();
        upstream.destroy();
        return refuse(stream, status || 502, '', info, status ? 0 : ResponseFlag.UpstreamProtocolError, status ? 'via_upstream' : 'upstream_protocol_error', conn, head);
      }
      stream.respond({ ...endToEnd(h), ':status': 200 });
      relay(upstream, rest);
      upstream.resume();
    });
  });
}
