// envoy.filters.network.http_connection_manager: a terminal network filter. HTTP/1.1 runs on our
// own codec over the accepted socket (h1/h1-server-connection.ts); each compiled HCM owns one
// node:http2 server (h2c prior knowledge, h2 via ALPN) that never listens itself: the listener's
// sockets are handed to it with emit('connection').
// Connections keep the HCM they were accepted with; an LDS update only affects new connections.
import http2 from 'node:http2';
import type net from 'node:net';
import { HCM_TYPE } from '../../envoy/index.ts';
import type { DownstreamConnection, NetworkCompileContext, NetworkFilter, NetworkFilterFactory } from '../network/network-filter.ts';
import type { Reader } from '../config/reader.ts';
import { compileHcm, type HcmConfig } from './hcm-config.ts';
import { HttpStream, type ConnState } from './http-stream.ts';
import { handleTunnel } from './tunnel.ts';
import { skipReadMore } from '../network/skip-read-more.ts';
import { handleH2Tunnel } from './tunnel-h2.ts';
import { H2Request, H2Response } from './h2-server-stream.ts';
import { closeWhenIdle } from './h2-idle.ts';
import { recordCodecError } from './codec-error.ts';
import type { ProxyContext } from '../context.ts';
import { admitH1, admitH2, watchH1Connection, watchH2Session } from './connection-limits.ts';
import { FilteredSocket } from '../network/filtered-socket.ts';
import { H1ConnectionSet, H1ServerConnection, type H1ServerHandler } from './h1/h1-server-connection.ts';
import { setBufferLimit } from '../network/buffer-limit.ts';
import type { TLSSocket } from 'node:tls';
import { XfccMode, clientCertElement } from './xfcc.ts';

const kState = Symbol('rig.connState');
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

type StatefulSocket = net.Socket & { [kState]?: ConnState };

function stateOf(socket: unknown): ConnState {
  return (socket as StatefulSocket)[kState]!;
}

const h1Handler: H1ServerHandler = {
  onRequest(conn, req, res) {
    const state = stateOf(conn.socket);
    if (state.hcm.limits.active && !admitH1(conn, req, res, state.hcm.limits)) return;
    new HttpStream(state, req, res, false).start();
  },
  onUpgrade(conn, req, early) {
    handleTunnel(stateOf(conn.socket), req, conn.socket, early);
  },
  onCodecError(conn, status, code) {
    recordCodecError(stateOf(conn.socket), status, code);
  },
};

type StatefulSession = http2.ServerHttp2Session & { [kState]?: ConnState };

/** A request stream, from node:http2's core API (h2-server-stream.ts says why not its compat layer). */
function onH2Stream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  // Errors reach the stream's owner as 'close' and rstCode, as in node's compat layer; first: a
  // stream destroyed with an error before this event has that error's emit still to come.
  stream.on('error', noop);
  // A stream reset before its 'stream' event (rapid reset) has no session left to read the state from.
  const state = stream.destroyed ? undefined : (stream.session as StatefulSession | undefined)?.[kState];
  if (!state) return void stream.destroy();
  // Each stream buffers up to the listener's per_connection_buffer_limit_bytes (Envoy's stream buffer limit).
  setBufferLimit(stream, state.hcm.maxRequestBodyBytes);
  // CONNECT streams (RFC 8441 extended CONNECT included).
  if (headers[':method'] === 'CONNECT') return handleH2Tunnel(state, stream, headers);
  const expect = headers.expect;
  if (expect !== undefined) {
    if (expect !== '100-continue') return void stream.respond({ ':status': 417 }, { endStream: true });
    stream.additionalHeaders({ ':status': 100 });
  }
  const req = new H2Request(stream, headers);
  if (state.hcm.limits.underscores && !admitH2(req, state.hcm.limits)) return;
  new HttpStream(state, req, new H2Response(stream), true).start();
}

function noop(): void {}

export class ConnectionManager implements NetworkFilter {
  readonly config: HcmConfig;
  private readonly ctx: ProxyContext;
  private h1: H1ConnectionSet | undefined;
  private h2: http2.Http2Server | undefined;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private draining = false;
  /**
   * The socket toH2 hands to the HTTP/2 server, whose 'session' comes synchronously: a socket that
   * is a plain Duplex (an HTTP/2 CONNECT tunnel's inside) is not the session's socket, which is
   * then node's wrapper of it.
   */
  private handingOver: net.Socket | undefined;

  constructor(config: HcmConfig, ctx: ProxyContext) {
    this.config = config;
    this.ctx = ctx;
  }

  private h1Connections(): H1ConnectionSet {
    if (this.h1) return this.h1;
    const c = this.config;
    this.h1 = new H1ConnectionSet({
      maxHeaderBytes: c.maxRequestHeadersKb * 1024,
      maxHeaders: c.maxHeadersCount,
      // node's HTTP server default when request_headers_timeout is unset, as before the own codec.
      headersTimeoutMs: c.requestHeadersTimeoutMs || 60_000,
      requestTimeoutMs: c.requestTimeoutMs,
      idleTimeoutMs: c.idleTimeoutMs,
      headerKeyFormat: c.headerKeyFormat,
    });
    return this.h1;
  }

  private h2Server(): http2.Http2Server {
    if (this.h2) return this.h2;
    const c = this.config;
    const settings: http2.Settings = { enableConnectProtocol: c.h2.allowConnect === true, maxHeaderListSize: c.maxRequestHeadersKb * 1024 };
    if (c.h2.maxConcurrentStreams !== undefined) settings.maxConcurrentStreams = c.h2.maxConcurrentStreams;
    if (c.h2.initialWindowSize !== undefined) settings.initialWindowSize = c.h2.initialWindowSize;
    if (c.h2.headerTableSize !== undefined) settings.headerTableSize = c.h2.headerTableSize;
    // Pseudo-headers count as entries for node; Envoy's max_headers_count counts regular headers.
    const s = http2.createServer({ maxSessionMemory: 64, settings, maxHeaderListPairs: c.maxHeadersCount + 4, maxSendHeaderBlockLength: c.maxRequestHeadersKb * 1024 });
    s.on('stream', onH2Stream);
    s.on('session', (session: StatefulSession) => {
      session[kState] = stateOf(this.handingOver ?? session.socket);
      if (c.h2.connectionWindowSize !== undefined) session.setLocalWindowSize(c.h2.connectionWindowSize);
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      if (this.ctx.draining || this.draining) session.goaway();
      if (c.limits.active) watchH2Session(session, c.limits);
      closeWhenIdle(session, c.idleTimeoutMs);
    });
    this.h2 = s;
    return s;
  }

  onConnection(conn: DownstreamConnection): boolean {
    // Data filters before the HCM (a network Wasm plugin) see the bytes it reads and writes.
    const socket = (conn.dataFilters ? new FilteredSocket(conn.socket, conn.dataFilters).asSocket() : conn.socket) as StatefulSocket;
    const stats = this.config.stats;
    const info = conn.info;
    const tlsSocket = info.tls ? (conn.socket as TLSSocket) : undefined;
    const clientCert = info.peerCertificate !== undefined;
    const mode = this.config.xfcc.mode;
    socket[kState] = {
      hcm: this.config,
      ctx: this.ctx,
      info,
      originalDst: conn.originalDst,
      remoteAddr: `${info.remoteAddress}:${info.remotePort}`,
      directRemoteAddr: info.directRemoteAddress === undefined ? `${info.remoteAddress}:${info.remotePort}` : `${info.directRemoteAddress}:${info.directRemotePort}`,
      localAddr: `${info.localAddress}:${info.localPort}`,
      downstream: { info, onClose: (fn) => socket.once('close', fn) },
      clientCert,
      xfccElement: clientCert && (mode === XfccMode.AppendForward || mode === XfccMode.SanitizeSet) ? clientCertElement(tlsSocket!, this.config.xfcc) : undefined,
    };
    stats.cxTotal.value++;
    stats.cxActive.value++;
    const openedAt = performance.now();
    socket.once('close', () => {
      stats.cxActive.value--;
      stats.cxLengthMs.recordSince(openedAt);
    });
    const codec = this.config.codec;
    if (codec === 'HTTP2' || (codec === 'AUTO' && conn.alpn === 'h2')) return this.toH2(socket);
    if (codec === 'HTTP1' || conn.alpn === 'http/1.1') return this.toH1(socket);
    // AUTO without h2/http/1.1 negotiated (plaintext, or TLS with istio-h2 or no ALPN): HTTP/2
    // when the client starts with its preface, as Envoy's codec detection.
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      const n = Math.min(chunk.length, H2_PREFACE.length);
      // http2 reads the unshifted bytes itself (socket.read() on the next tick): no resume.
      if (n >= 3 && chunk.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) this.toH2(socket);
      else {
        this.toH1(socket);
        socket.resume();
      }
    });
    return false;
  }

  private toH1(socket: net.Socket): boolean {
    this.config.stats.cxHttp1Total.value++;
    skipReadMore(socket);
    const conn = new H1ServerConnection(socket, this.h1Connections(), h1Handler);
    if (this.draining) conn.drain(false);
    if (this.config.limits.maxDurationMs > 0) watchH1Connection(conn, this.config.limits);
    return false;
  }

  private toH2(socket: net.Socket): boolean {
    this.config.stats.cxHttp2Total.value++;
    // node's http2 server hands TLS sockets without h2 negotiated (istio-h2, none) to HTTP/1; the
    // codec was chosen here (configured or by the preface), as in Envoy.
    const ts = socket as net.Socket & { alpnProtocol?: string | false | null };
    if (ts.alpnProtocol !== undefined && ts.alpnProtocol !== 'h2') ts.alpnProtocol = 'h2';
    this.handingOver = socket;
    try {
      this.h2Server().emit('connection', socket);
    } finally {
      this.handingOver = undefined;
    }
    return false;
  }

  /**
   * Draining: idle HTTP/1.1 keep-alives are closed, busy ones get `Connection: close` on their
   * response, HTTP/2 sessions get GOAWAY (new ones too).
   */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.h1?.drainAll();
    for (const s of this.sessions) if (!s.closed && !s.destroyed) s.goaway();
  }
}

export const httpConnectionManagerFactory: NetworkFilterFactory = {
  name: 'envoy.filters.network.http_connection_manager',
  typeUrls: [HCM_TYPE],
  terminal: true,
  compile(config: Reader, ctx: NetworkCompileContext): NetworkFilter {
    return new ConnectionManager(compileHcm(config, ctx), ctx.proxy);
  },
};
