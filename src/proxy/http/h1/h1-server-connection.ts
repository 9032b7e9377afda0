// The HTTP/1.1 server side of one downstream connection, on the raw net.Socket / tls.TLSSocket
// (a plain socket's reads land in the shared read buffer, network/shared-read-buffer.ts):
// requests parsed by H1Parser, one exchange at a time (pipelined requests wait in the parser until
// the response before them is done, so responses leave in order), 100-continue answered here,
// keep-alive / Connection: close / HTTP/1.0, Upgrade and CONNECT handed off with the bytes that
// followed the head, codec errors answered (400, 431, 408) and the connection closed.
// Timeouts (request headers, whole request, idle) are checked by one sweep per connection set
// instead of timers per request, as node's HTTP server does.
import type net from 'node:net';
import { H1Parser, H1ParseError, type H1Head } from './h1-parser.ts';
import { H1Request } from './h1-request.ts';
import { H1Response, type H1ResponseOwner } from './h1-response.ts';
import { recordCase, type HeaderKeyFormat } from './header-case.ts';
import { canReadShared, readShared, stopReadingShared } from '../../network/shared-read-buffer.ts';

export interface H1ServerHandler {
  onRequest(conn: H1ServerConnection, req: H1Request, res: H1Response): void;
  /** Upgrade or CONNECT: the socket is the handler's from here on; `early`: bytes after the head. */
  onUpgrade(conn: H1ServerConnection, req: H1Request, early: Buffer): void;
  /** A request the codec refused (answered with `status` and a close). */
  onCodecError(conn: H1ServerConnection, status: number, code: string): void;
}

export interface H1ServerOptions {
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
  /** A request head must be complete this long after its first byte (0: no limit). */
  readonly headersTimeoutMs: number;
  /** A whole request must be received this long after its head (0: no limit). */
  readonly requestTimeoutMs: number;
  /** A connection without a request in progress is closed after this long (0: never). */
  readonly idleTimeoutMs: number;
  /** http_protocol_options.header_key_format: request names' case recorded (preserve_case), response names proper-cased (proper_case_words). */
  readonly headerKeyFormat?: HeaderKeyFormat;
}

const EMPTY = Buffer.alloc(0);
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const CONTINUE_EXPECTATION = /(?:^|\W)100-continue(?:$|\W)/i;
/** Pipelined bytes held while a response is pending beyond this: the socket stops being read. */
const MAX_HELD_BYTES = 65536;

function resumeAfterResponse(c: H1ServerConnection): void {
  c.resumeParsing();
}

export class H1ServerConnection implements H1ResponseOwner {
  readonly socket: net.Socket;
  readonly headerKeyFormat: HeaderKeyFormat | undefined;
  /** Requests seen on this connection. */
  requests = 0;
  private readonly parser: H1Parser;
  private readonly handler: H1ServerHandler;
  private readonly set: H1ConnectionSet;
  private req: H1Request | undefined;
  private res: H1Response | undefined;
  private upgradeHead: H1Head | undefined;
  private headStartedAt = 0;
  private requestStartedAt = 0;
  private idleSince: number;
  private draining = false;
  private done = false;
  private pausedForBody = false;
  private pausedForPipeline = false;
  /** Reads come as views of the shared read buffer (network/shared-read-buffer.ts), valid during data() only. */
  private shared = false;
  private readonly mayShare: boolean;
  /** Request bodies buffer up to the socket's read limit (the listener's per_connection_buffer_limit_bytes). */
  private readonly bodyOptions: { readonly highWaterMark: number };
  /** Bytes that came through the socket's stream (a fresh socket's first bytes, those an inspector put back): then shared reads when the stream is empty. */
  private readonly onData = (chunk: Buffer): void => {
    this.data(chunk);
    if (this.mayShare && !this.done && readShared(this.socket, this.onSharedRead)) {
      this.shared = true;
      this.socket.removeListener('data', this.onData);
    }
  };
  private readonly onSharedRead = (view: Buffer): boolean => {
    this.data(view);
    if (!this.done) this.parser.ownBufferedInput();
    return true;
  };
  private readonly onSocketEnd = (): void => this.peerEnded();
  private readonly wantMore = (): void => this.bodyWanted();

  constructor(socket: net.Socket, set: H1ConnectionSet, handler: H1ServerHandler) {
    this.socket = socket;
    this.set = set;
    this.handler = handler;
    const o = set.options;
    this.headerKeyFormat = o.headerKeyFormat;
    this.parser = new H1Parser('request', { maxHeaderBytes: o.maxHeaderBytes, maxHeaders: o.maxHeaders }, this);
    this.idleSince = Date.now();
    this.bodyOptions = { highWaterMark: socket.readableHighWaterMark };
    socket.setNoDelay(true);
    this.mayShare = canReadShared(socket);
    this.shared = this.mayShare && readShared(socket, this.onSharedRead);
    if (!this.shared) socket.on('data', this.onData);
    socket.on('end', this.onSocketEnd);
    socket.on('error', noop);
    socket.once('close', () => this.closed());
    set.add(this);
  }

  // === parser callbacks ===

  onHead(head: H1Head): void {
    this.headStartedAt = 0;
    if (head.upgrade) {
      this.upgradeHead = head;
      return;
    }
    this.requests++;
    const req = new H1Request(head, this.socket, this.wantMore, this.bodyOptions);
    const preserve = this.headerKeyFormat?.preserve;
    if (preserve !== undefined) recordCase(req.headers, head.rawHeaders, preserve);
    const res = new H1Response(this, head.method === 'HEAD', head.versionMinor === 0, head.keepAlive && !this.draining);
    this.req = req;
    this.res = res;
    if (head.bodyKind !== 'none') this.requestStartedAt = this.set.options.requestTimeoutMs > 0 ? Date.now() : 0;
    const expect = head.versionMinor === 1 ? req.headers.expect : undefined;
    if (expect !== undefined) {
      // As node's server did: 100-continue is answered here, any other expectation with 417.
      if (!CONTINUE_EXPECTATION.test(expect)) return void res.writeHead(417, { 'content-length': '0' }).end();
      this.socket.write(CONTINUE, 'latin1');
    }
    this.handler.onRequest(this, req, res);
  }

  onBody(chunk: Buffer): void {
    const req = this.req;
    if (req === undefined || this.res === undefined) return;
    if (!req.push(this.shared ? Buffer.from(chunk) : chunk) && !this.pausedForBody) {
      this.pausedForBody = true;
      this.socket.pause();
    }
  }

  onEnd(trailers: string[] | undefined): void {
    this.requestStartedAt = 0;
    const req = this.req;
    if (req === undefined) return;
    req.endBody(trailers);
    if (this.res === undefined) {
      // Answered before the body was in (and kept alive): the exchange ends with the body.
      this.req = undefined;
      this.idleSince = Date.now();
    } else this.parser.pause();
  }

  // === socket ===

  private data(chunk: Buffer): void {
    if (this.headStartedAt === 0 && this.res === undefined && !this.parser.inMessage) this.headStartedAt = Date.now();
    try {
      this.parser.execute(chunk);
    } catch (e) {
      if (!(e instanceof H1ParseError)) throw e;
      this.refuse(e.code === 'HEADERS_TOO_LARGE' || e.code === 'TOO_MANY_HEADERS' ? 431 : 400, e.code);
      return;
    }
    if (this.upgradeHead) return this.upgrade(this.upgradeHead);
    if (this.parser.paused && !this.pausedForPipeline && this.parser.bufferedBytes > MAX_HELD_BYTES) {
      this.pausedForPipeline = true;
      this.socket.pause();
    }
  }

  private bodyWanted(): void {
    if (!this.pausedForBody) return;
    this.pausedForBody = false;
    if (!this.pausedForPipeline && !this.done) this.socket.resume();
  }

  /** FIN from the client: as node's server and Envoy, a request in progress is aborted. */
  private peerEnded(): void {
    if (this.res !== undefined || this.req !== undefined || this.parser.inMessage || this.parser.hasBufferedInput) {
      this.socket.destroy();
      return;
    }
    this.detach();
    this.socket.end();
  }

  private closed(): void {
    this.done = true;
    this.set.delete(this);
    const req = this.req;
    const res = this.res;
    this.req = undefined;
    this.res = undefined;
    if (res !== undefined && !res.writableEnded) res.connectionClosed();
    if (req !== undefined && !req.complete) req.destroy();
  }

  private upgrade(head: H1Head): void {
    this.upgradeHead = undefined;
    this.detach();
    const req = new H1Request(head, this.socket, noop);
    const preserve = this.headerKeyFormat?.preserve;
    if (preserve !== undefined) recordCase(req.headers, head.rawHeaders, preserve);
    req.endBody();
    const early = this.parser.takeRemainder();
    this.handler.onUpgrade(this, req, early === undefined ? EMPTY : this.shared ? Buffer.from(early) : early);
  }

  /** Stops reading requests (the socket goes to a tunnel, or is being closed). */
  private detach(): void {
    this.done = true;
    this.set.delete(this);
    if (this.shared) stopReadingShared(this.socket);
    else this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onSocketEnd);
  }

  /** Answers a request the codec refused and closes the connection. */
  private refuse(status: number, code: string): void {
    this.detach();
    const res = this.res;
    this.handler.onCodecError(this, status, code);
    if (!this.socket.writable || (res !== undefined && res.headersSent)) {
      this.socket.destroy();
      return;
    }
    this.socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`, 'latin1');
    this.socket.destroySoon();
  }

  // === responses ===

  responseDone(res: H1Response): void {
    if (res !== this.res) return;
    this.res = undefined;
    if (!res.keepsAlive || this.draining) {
      this.detach();
      this.req?.destroy();
      this.req = undefined;
      this.socket.destroySoon();
      return;
    }
    if (this.req !== undefined && !this.req.complete) {
      // The body is still coming: it is read and dropped, then the next request is parsed.
      this.bodyWanted();
      return;
    }
    this.req = undefined;
    this.idleSince = Date.now();
    // A pipelined request is already buffered: parse it on the next tick, not inside this end().
    if (this.parser.hasBufferedInput) process.nextTick(resumeAfterResponse, this);
    else this.parser.resume();
  }

  resumeParsing(): void {
    if (this.done) return;
    try {
      this.parser.resume();
    } catch (e) {
      if (!(e instanceof H1ParseError)) throw e;
      this.refuse(e.code === 'HEADERS_TOO_LARGE' || e.code === 'TOO_MANY_HEADERS' ? 431 : 400, e.code);
      return;
    }
    if (this.upgradeHead) return this.upgrade(this.upgradeHead);
    if (this.pausedForPipeline && !this.parser.paused) {
      this.pausedForPipeline = false;
      if (!this.pausedForBody) this.socket.resume();
    }
  }

  /**
   * Drain (listener drain, max_connection_duration): an idle connection closes now (closeIdle), a
   * busy one after its response (with Connection: close when its head is not out yet).
   */
  drain(closeIdle = true): void {
    if (this.done) return;
    this.draining = true;
    if (closeIdle && this.res === undefined && this.req === undefined && !this.parser.inMessage) {
      this.detach();
      this.socket.destroy();
      return;
    }
    if (this.res !== undefined) this.res.shouldKeepAlive = false;
  }

  /** Called by the sweep: enforces the head, request and idle timeouts. */
  checkTimeouts(now: number): void {
    const o = this.set.options;
    if (this.headStartedAt !== 0 && o.headersTimeoutMs > 0 && now - this.headStartedAt >= o.headersTimeoutMs) return this.refuse(408, 'REQUEST_HEADER_TIMEOUT');
    if (this.requestStartedAt !== 0 && now - this.requestStartedAt >= o.requestTimeoutMs) {
      this.requestStartedAt = 0;
      return this.refuse(408, 'REQUEST_TIMEOUT');
    }
    if (o.idleTimeoutMs > 0 && this.res === undefined && this.req === undefined && this.headStartedAt === 0 && !this.parser.inMessage && now - this.idleSince >= o.idleTimeoutMs) {
      this.detach();
      this.socket.destroy();
    }
  }
}

/** The HTTP/1 connections of one connection manager, and the sweep enforcing their timeouts. */
export class H1ConnectionSet {
  readonly options: H1ServerOptions;
  private readonly conns = new Set<H1ServerConnection>();
  private readonly periodMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: H1ServerOptions) {
    this.options = options;
    const enabled = [options.headersTimeoutMs, options.requestTimeoutMs, options.idleTimeoutMs].filter((t) => t > 0);
    this.periodMs = enabled.length ? Math.min(1000, Math.max(10, Math.floor(Math.min(...enabled) / 4))) : 0;
  }

  add(c: H1ServerConnection): void {
    this.conns.add(c);
    if (this.timer === undefined && this.periodMs > 0) {
      this.timer = setInterval(sweep, this.periodMs, this);
      this.timer.unref();
    }
  }

  delete(c: H1ServerConnection): void {
    this.conns.delete(c);
    if (this.conns.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  sweep(): void {
    const now = Date.now();
    for (const c of this.conns) c.checkTimeouts(now);
  }

  drainAll(): void {
    for (const c of [...this.conns]) c.drain();
  }
}

function sweep(s: H1ConnectionSet): void {
  s.sweep();
}


function noop(): void {}
