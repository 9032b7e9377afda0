// One upstream HTTP/1.1 connection: writes one request at a time (head and a buffered body in one
// write, a streamed body with back-pressure, chunked when its length is unknown), parses the
// response with the shared parser and hands it to the exchange's handler, then goes back to its
// pool if it may be reused: keep-alive on both sides, the response read to its end, the request
// body sent whole, nothing unsolicited after the response, requests left on the connection.
import type { Socket } from 'node:net';
import { H1Parser, H1ParseError, type H1Head } from '../../http/h1/h1-parser.ts';
import { H1ErrorCode, H1PoolError } from './h1-errors.ts';
import type { H1Exchange } from './h1-exchange.ts';
import { lastChunk, requestHead } from './h1-request-head.ts';
import type { H1PoolStats } from './h1-pool.ts';
import { formatterFor, recordCase, type HeaderKeyFormat } from '../../http/h1/header-case.ts';
import { detachedString } from '../../../core/detached-string.ts';

/** What a connection needs from its pool. */
export interface ConnectionPool {
  readonly authority: string;
  /** Requests per connection (0: unlimited). */
  readonly maxRequestsPerConnection: number;
  /** ms an idle connection stays open unless the upstream's Keep-Alive says less (0: no limit). */
  readonly idleTimeoutMs: number;
  /** max_connection_duration: ms from connect after which a connection takes no new request (0: none). */
  readonly maxConnectionDurationMs: number;
  readonly closing: boolean;
  readonly stats: H1PoolStats;
  /** The cluster's header_key_format: request names proper-cased, response names' case recorded. */
  readonly headerKeyFormat?: HeaderKeyFormat;
  /** An exchange is put on a connection (Envoy's pool attach, where it charges the host's rq_total). */
  readonly onStream: (() => void) | undefined;
  /** The connection finished an exchange and may carry another. */
  onReusable(conn: H1Connection): void;
  onClosed(conn: H1Connection): void;
  /** Sends an exchange again on another connection (the stale keep-alive race). */
  replay(ex: H1Exchange): void;
}

/** Envoy's defaults for upstream response heads (max_response_headers_kb, max_headers_count). */
const LIMITS = { maxHeaderBytes: 60 * 1024, maxHeaders: 100 };
/** An upstream's Keep-Alive timeout is cut by this much, so that we never send as it closes. */
const KEEP_ALIVE_MARGIN_MS = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const NO_TRAILERS = Object.freeze({}) as Record<string, string>;
const CHUNK_END = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

export class H1Connection {
  readonly socket: Socket;
  /** The socket's own address (Envoy's upstream local address), formatted once for the access log. */
  readonly localAddress: string;
  private readonly pool: ConnectionPool;
  private readonly parser: H1Parser;
  current: H1Exchange | undefined;
  idle = false;
  destroyed = false;
  /** Past max_connection_duration: closed when idle, never given another request. */
  expired = false;
  private durationTimer: NodeJS.Timeout | undefined;
  /** Requests written on this connection. */
  private requests = 0;
  /** 0: no idle limit. */
  private keepAliveMs: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private ioTimer: NodeJS.Timeout | undefined;
  private error: Error | undefined;
  /** The upstream closed (end, error, close): the destroy is remote, not ours. */
  private remote = false;
  /** The request replayed elsewhere was on this connection when the upstream closed it. */
  private replayed = false;
  // Per exchange:
  private received = false;
  private responseKeepAlive = true;
  private ended = false;
  private trailers: string[] | undefined;
  /** The names of the last response, in order: an upstream sends the same ones response after response. */
  private readonly lastNames: HeaderName[] = [];
  /** Whether each of lastNames was the first of its name in that response. */
  private readonly firstOfName: boolean[] = [];
  private bodySent = false;
  /** Bytes of a content-length request body still to send (-1: chunked). */
  private bodyLeft = 0;
  private readingPaused = false;
  private eof = false;
  /** performance.now() when the pool began to connect (upstream_cx_length_ms). */
  openedAt = 0;

  constructor(socket: Socket, pool: ConnectionPool) {
    this.socket = socket;
    this.localAddress = `${socket.localAddress}:${socket.localPort}`;
    this.pool = pool;
    this.keepAliveMs = Math.min(Math.max(pool.idleTimeoutMs, 0), MAX_TIMER_MS);
    this.parser = new H1Parser('response', LIMITS, this);
    if (pool.maxConnectionDurationMs > 0) this.durationTimer = setTimeout(onDurationReached, Math.min(pool.maxConnectionDurationMs, MAX_TIMER_MS), this);
    socket.on('end', this.onEof);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
  }

  assign(ex: H1Exchange): void {
    this.idle = false;
    this.current = ex;
    ex.conn = this;
    this.requests++;
    this.pool.onStream?.();
    this.received = false;
    this.responseKeepAlive = true;
    this.ended = false;
    this.trailers = undefined;
    this.bodySent = false;
    const o = ex.opts;
    const max = this.pool.maxRequestsPerConnection;
    const atMax = max > 0 && this.requests >= max;
    if (atMax) this.pool.stats.cxMaxRequests.value++;
    const last = atMax || this.pool.closing || this.expired;
    const buf = ex.buffer;
    // A buffered body with trailers goes chunked: the only HTTP/1.1 framing they can follow.
    const withTrailers = buf !== undefined && o.trailers?.trailers !== undefined;
    const framing = requestHead(o.method, o.path, o.headers, this.pool.authority, withTrailers ? -1 : ex.bodyLength, last, formatterFor(o.headers, this.pool.headerKeyFormat));
    if (framing instanceof H1PoolError) {
      // Nothing was written: the connection stays good for the next request.
      this.current = undefined;
      this.requests--;
      ex.conn = undefined;
      this.pool.onReusable(this);
      ex.fail(framing);
      return;
    }
    if (last) this.responseKeepAlive = false;
    if (o.method === 'HEAD') this.parser.expectNoBody();
    const head = framing.head;
    if (withTrailers && framing.length < 0) {
      const sock = this.socket;
      sock.cork();
      if (buf.length > 0) {
        sock.write(head + buf.length.toString(16) + CHUNK_END, 'latin1');
        sock.write(buf);
        sock.write(CHUNK_END + lastChunk(o.trailers), 'latin1');
      } else sock.write(head + lastChunk(o.trailers), 'latin1');
      sock.uncork();
      this.bodySent = true;
    } else if (buf && buf.length > 0) {
      const out = Buffer.allocUnsafe(head.length + buf.length);
      out.write(head, 0, 'latin1');
      buf.copy(out, head.length);
      this.socket.write(out);
      this.bodySent = true;
    } else {
      this.socket.write(head, 'latin1');
      if (ex.stream && framing.length !== 0) this.sendStream(ex, framing.length);
      else this.bodySent = true;
    }
    const t = o.headersTimeout;
    if (t && t > 0) this.ioTimer = setTimeout(onHeadersTimeout, t, this);
    if (ex.paused) this.pauseReading();
  }

  /** Back to the pool's idle list for `keepAliveMs` at most. */
  setIdle(): void {
    this.idle = true;
    if (this.keepAliveMs === 0) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else this.idleTimer = setTimeout(onIdleTimeout, this.keepAliveMs, this);
  }

  pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    this.parser.pause();
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readingPaused || this.destroyed) return;
    this.readingPaused = false;
    try {
      this.parser.resume();
    } catch (e) {
      this.protocolError(e as Error);
      return;
    }
    if (this.ended) this.complete();
    else if (this.eof) this.finishParser();
    if (!this.destroyed && !this.readingPaused) this.socket.resume();
  }

  /** Closes the connection; the exchange on it (if any) fails with `err`. */
  destroy(err?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.idle = false;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.durationTimer) clearTimeout(this.durationTimer);
    this.clearIoTimer();
    // A callback inside the parser may destroy the connection: nothing more is parsed.
    this.parser.pause();
    const ex = this.current;
    this.current = undefined;
    const s = this.pool.stats;
    const active = ex !== undefined || this.replayed;
    if (this.remote) {
      s.cxDestroyRemote.value++;
      if (active) s.cxDestroyRemoteWithActiveRq.value++;
    } else {
      s.cxDestroyLocal.value++;
      if (active) s.cxDestroyLocalWithActiveRq.value++;
    }
    if (active) s.cxDestroyWithActiveRq.value++;
    if (ex) this.stopStream(ex);
    this.socket.destroy();
    this.pool.onClosed(this);
    if (ex) ex.fail(err ?? new H1PoolError(H1ErrorCode.Closed, 'upstream connection closed'));
  }

  // === request body ===

  private sendStream(ex: H1Exchange, length: number): void {
    this.bodyLeft = length;
    const s = ex.stream!;
    s.on('data', this.onBodyData);
    s.on('end', this.onBodyEnd);
    s.on('close', this.onBodyClose);
    s.resume();
  }

  private stopStream(ex: H1Exchange): void {
    const s = ex.stream;
    if (!s) return;
    s.off('data', this.onBodyData);
    s.off('end', this.onBodyEnd);
    s.off('close', this.onBodyClose);
  }

  private readonly onBodyData = (chunk: Buffer | string): void => {
    const ex = this.current;
    if (!ex) return;
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (b.length === 0) return;
    const sock = this.socket;
    let ok: boolean;
    if (this.bodyLeft < 0) {
      sock.cork();
      sock.write(b.length.toString(16) + CHUNK_END, 'latin1');
      sock.write(b);
      ok = sock.write(CHUNK_END, 'latin1');
      sock.uncork();
    } else {
      this.bodyLeft -= b.length;
      if (this.bodyLeft < 0) {
        this.destroy(new H1PoolError(H1ErrorCode.InvalidRequest, 'request body longer than its content-length'));
        return;
      }
      ok = sock.write(b);
    }
    if (!ok) ex.stream!.pause();
  };

  private readonly onDrain = (): void => {
    const ex = this.current;
    if (ex?.stream && !this.bodySent) ex.stream.resume();
  };

  private readonly onBodyEnd = (): void => {
    const ex = this.current;
    if (!ex) return;
    if (this.bodyLeft > 0) {
      this.destroy(new H1PoolError(H1ErrorCode.InvalidRequest, 'request body shorter than its content-length'));
      return;
    }
    if (this.bodyLeft < 0) this.socket.write(ex.opts.trailers ? lastChunk(ex.opts.trailers) : LAST_CHUNK, 'latin1');
    this.bodySent = true;
    this.stopStream(ex);
  };

  private readonly onBodyClose = (): void => {
    if (this.current && !this.bodySent) this.destroy(new H1PoolError(H1ErrorCode.Aborted, 'request body stream closed before its end'));
  };

  // === response ===

  /** Bytes read: a view of the shared read buffer (network/shared-read-buffer.ts), valid only during this call. */
  onRead(data: Buffer): void {
    if (!this.current || this.destroyed) {
      // Bytes no request asked for: the connection's framing can no longer be trusted.
      if (!this.destroyed) this.pool.stats.cxProtocolError.value++;
      this.destroy();
      return;
    }
    this.received = true;
    const parser = this.parser;
    try {
      parser.execute(data);
      // What the parser keeps for later (an incomplete line, input while paused) gets its own copy.
      parser.ownBufferedInput();
    } catch (e) {
      this.protocolError(e as Error);
      return;
    }
    if (this.ended) this.complete();
  }

  /** H1ParserCallbacks. */
  onHead(head: H1Head): void {
    const ex = this.current;
    if (!ex) return;
    if (head.upgrade) {
      this.protocolError(new H1PoolError(H1ErrorCode.Protocol, 'upstream switched protocols without being asked'));
      return;
    }
    this.clearIoTimer();
    const t = ex.opts.bodyTimeout;
    if (t && t > 0) this.ioTimer = setTimeout(onBodyTimeout, t, this);
    if (!head.keepAlive) this.responseKeepAlive = false;
    ex.chunked = head.bodyKind === 'chunked';
    const headers = this.responseHeaders(head.rawHeaders);
    const preserve = this.pool.headerKeyFormat?.preserve;
    if (preserve !== undefined) recordCase(headers, head.rawHeaders, preserve, head.reason);
    ex.handler.onResponseStart?.(ex, head.status, headers, head.reason);
  }

  /** H1ParserCallbacks: 1xx before the response. We never send Expect, so a 100 is unsolicited. */
  onInformational(head: H1Head): void {
    if (head.status === 100) this.protocolError(new H1PoolError(H1ErrorCode.Protocol, 'unsolicited 100 Continue'));
  }

  /** H1ParserCallbacks. */
  onBody(chunk: Buffer): void {
    const ex = this.current;
    if (!ex) return;
    this.ioTimer?.refresh();
    // Chunks read from the socket are views of the shared read buffer: the handler keeps a copy.
    ex.handler.onResponseData?.(ex, Buffer.from(chunk));
  }

  /** H1ParserCallbacks: handled once the parser returns (complete()), so no byte after it is misread. */
  onEnd(trailers: string[] | undefined): void {
    this.ended = true;
    this.trailers = trailers;
    this.parser.pause();
  }

  private complete(): void {
    const ex = this.current;
    if (!ex || this.destroyed) return;
    this.ended = false;
    // Bytes after the response, before any other request: unsolicited, the connection is done.
    const unsolicited = this.parser.takeRemainder() !== undefined;
    this.parser.resume();
    this.clearIoTimer();
    this.current = undefined;
    ex.conn = undefined;
    ex.finished = true;
    const bodySent = this.bodySent;
    if (!bodySent) this.stopStream(ex);
    if (this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
    }
    if (unsolicited) this.pool.stats.cxProtocolError.value++;
    if (this.responseKeepAlive && bodySent && !unsolicited && !this.eof) this.pool.onReusable(this);
    else this.destroy();
    const t = this.trailers;
    ex.handler.onResponseEnd?.(ex, t ? (toHeaderObject(t) as Record<string, string>) : NO_TRAILERS);
  }

  /**
   * The handler's header object. The connection-level headers (connection, keep-alive,
   * proxy-connection, transfer-encoding) describe this hop only and are left out: the router
   * would delete them, and deleting keys makes V8 slow down every later access to the object.
   */
  private responseHeaders(raw: readonly string[]): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    const last = this.lastNames;
    const first = this.firstOfName;
    // While the names are those of the last response, so is whether each is the first of its name.
    let sameSoFar = true;
    for (let i = 0; i < raw.length; i += 2) {
      const j = i >> 1;
      const spelling = raw[i];
      let name = last[j];
      if (name === undefined || name.spelling !== spelling) {
        last[j] = name = headerName(spelling);
        sameSoFar = false;
      }
      const k = name.key;
      const v = raw[i + 1];
      if (name.hopByHop) {
        if (k === 'keep-alive') this.applyKeepAlive(v);
        continue;
      }
      // Known first: no lookup (a megamorphic keyed load, ~140 instructions a header).
      if (sameSoFar && first[j]) {
        out[k] = v;
        continue;
      }
      const have = out[k];
      first[j] = have === undefined;
      if (have === undefined) out[k] = v;
      else if (typeof have === 'string') out[k] = [have, v];
      else have.push(v);
    }
    // Names past this response's are no longer the last response's.
    if (last.length > raw.length >> 1) last.length = raw.length >> 1;
    return out;
  }

  /** Keep-Alive: timeout=N (seconds) shortens this connection's idle time. */
  private applyKeepAlive(v: string): void {
    const m = /timeout\s*=\s*(\d+)/i.exec(v);
    if (!m) return;
    const ms = Number(m[1]) * 1000 - KEEP_ALIVE_MARGIN_MS;
    if (ms <= 0) this.responseKeepAlive = false;
    else if (this.keepAliveMs === 0 || ms < this.keepAliveMs) {
      this.keepAliveMs = Math.min(ms, MAX_TIMER_MS);
      if (this.idleTimer) {
        clearTimeout(this.idleTimer);
        this.idleTimer = undefined;
      }
    }
  }

  private protocolError(e: Error): void {
    this.pool.stats.cxProtocolError.value++;
    const err = e instanceof H1ParseError ? Object.assign(new H1PoolError(H1ErrorCode.Protocol, `upstream sent an invalid response: ${e.message}`), { parserCode: e.code }) : e;
    this.destroy(err);
  }

  private finishParser(): void {
    try {
      this.parser.finish();
    } catch {
      this.destroy(new H1PoolError(H1ErrorCode.Closed, 'upstream closed the connection in the middle of the response'));
      return;
    }
    if (this.ended) this.complete();
    else this.lost(new H1PoolError(H1ErrorCode.Closed, 'upstream closed the connection before responding'));
  }

  /**
   * The socket went away under a request. Nothing of a response came yet and the connection had
   * served before: the upstream closed an idle keep-alive connection as we sent on it, so a
   * request that is safe to repeat goes again on another connection (once), as browsers do.
   */
  private lost(err: Error): void {
    const ex = this.current;
    if (ex && !this.received && this.requests > 1 && ex.replayable && !ex.aborted) {
      ex.replayable = false;
      this.current = undefined;
      ex.conn = undefined;
      this.replayed = true;
      this.destroy();
      this.pool.replay(ex);
      return;
    }
    this.destroy(err);
  }

  private readonly onEof = (): void => {
    this.eof = true;
    this.remote = true;
    if (!this.current) this.destroy();
    else if (!this.readingPaused) this.finishParser();
  };

  private readonly onError = (err: Error): void => {
    this.error ??= err;
    this.remote = true;
    this.lost(err);
  };

  private readonly onClose = (): void => {
    this.remote = true;
    this.lost(this.error ?? new H1PoolError(H1ErrorCode.Closed, 'upstream connection closed'));
  };

  private clearIoTimer(): void {
    if (this.ioTimer) {
      clearTimeout(this.ioTimer);
      this.ioTimer = undefined;
    }
  }

  onIoTimeout(code: typeof H1ErrorCode.HeadersTimeout | typeof H1ErrorCode.BodyTimeout): void {
    this.ioTimer = undefined;
    this.destroy(new H1PoolError(code, code === H1ErrorCode.HeadersTimeout ? 'upstream response headers timeout' : 'upstream response body timeout'));
  }

  onIdleTimeout(): void {
    if (!this.idle) return;
    this.pool.stats.cxIdleTimeout.value++;
    this.destroy();
  }

  /** As Envoy drains a connection at max_connection_duration: an idle one closes now, a busy one after its exchange. */
  onDurationReached(): void {
    this.durationTimer = undefined;
    this.expired = true;
    this.pool.stats.cxMaxDurationReached.value++;
    if (this.idle) this.destroy();
  }
}

function onDurationReached(c: H1Connection): void {
  c.onDurationReached();
}

function onHeadersTimeout(c: H1Connection): void {
  c.onIoTimeout(H1ErrorCode.HeadersTimeout);
}

function onBodyTimeout(c: H1Connection): void {
  c.onIoTimeout(H1ErrorCode.BodyTimeout);
}

function onIdleTimeout(c: H1Connection): void {
  c.onIdleTimeout();
}

/** Raw [name, value, ...] → lower-case names; a repeated header becomes an array, as undici gives it. */
function toHeaderObject(raw: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = headerName(raw[i]).key;
    const v = raw[i + 1];
    const have = out[k];
    if (have === undefined) out[k] = v;
    else if (typeof have === 'string') out[k] = [have, v];
    else have.push(v);
  }
  return out;
}

/** A response header name as an upstream spells it, and the lower-case key it goes by. */
interface HeaderName {
  readonly spelling: string;
  readonly key: string;
  /** connection, keep-alive, proxy-connection, transfer-encoding, upgrade: this hop's, left out of the handler's headers. */
  readonly hopByHop: boolean;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/**
 * Upstreams repeat the same few names: each is lower-cased once, and its key is then the same
 * string every time, which V8 has internalized since its first use as a property name. A fresh
 * lower-cased key per header cost ~1,100 instructions (toLowerCase, then a megamorphic load and
 * store that look the key up in the string table); a lookup here ~440 (hashing the parser's fresh
 * string), and the connection's comparison with the previous response's names ~60.
 */
const headerNames = new Map<string, HeaderName>();
const MAX_HEADER_NAMES = 1024;

function headerName(spelling: string): HeaderName {
  let n = headerNames.get(spelling);
  if (n === undefined) {
    // A copy of its own: the parser's name may be a slice of the whole head, which the map would keep alive.
    const own = detachedString(spelling);
    const key = own.toLowerCase();
    n = { spelling: own, key, hopByHop: HOP_BY_HOP.has(key) };
    if (headerNames.size < MAX_HEADER_NAMES) headerNames.set(own, n);
  }
  return n;
}
