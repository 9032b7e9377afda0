// A downstream HTTP/2 request and its response over node:http2's core stream API, in place of its
// compatibility layer (Http2ServerRequest/Response). The compat request is a second Readable fed
// from the Http2Stream, and both wrappers hang ~10 listeners on every stream: at saturation they
// were a tenth of the proxy's CPU and much of its garbage. Here the request body is read from the
// Http2Stream itself (H2Request.stream) and the response writes to it; what the compat response
// did that the proxy relies on is kept: header names lower-cased and checked, the connection header
// dropped, trailers sent after the body, writes on a closed stream ignored. Unlike the compat
// response, a stream waits for trailers only when its owner said they may follow (expectTrailers)
// before the head: node ends a waiting stream that gets none with an extra empty DATA frame, where
// Envoy sets END_STREAM on the last DATA frame.
//
// A request's trailers (TrailerSource, forwarded by the upstream pools at the body's end): node:http2
// emits a trailing HEADERS frame as the stream's 'trailers' event, on the next tick, and keeps
// nothing of it; with no listener it is lost. The listener is armed in the constructor, which runs
// in the 'stream' event, before node reads any later frame of the stream; and only on a request
// whose HEADERS frame did not end the stream (one with a body: a trailer section needs one), so a
// bodyless request pays nothing. 'trailers' comes before 'end', so the body's end finds them.
// Nor a gRPC request: gRPC has no request trailers (a call's request ends with END_STREAM on a
// DATA frame), and an HTTP/2 upstream stream opened to wait for them ends with one more frame on a
// later turn of the event loop: 10-20 % more proxy CPU per call in the gRPC bench. Envoy would
// forward a gRPC request's trailers; no conforming client sends any.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { isGrpcContentType } from './local-reply.ts';

const kTrailers = Symbol('rig.h2Trailers');
const kRequestTrailers = Symbol('rig.h2RequestTrailers');
const HTTP_TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const WAIT_FOR_TRAILERS = { waitForTrailers: true } as const;
const NO_TRAILERS = {} as const;
const END_STREAM = { endStream: true } as const;

/** The fields node:http2 refuses more than one value of (its kSingleValueFields, pseudo-headers aside). */
const SINGLE_VALUE_FIELDS = new Set(['access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'dnt', 'etag', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after', 'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options']);
/** HTTP/1 connection-specific fields node:http2 refuses in a head (te unless "trailers"; connection is dropped before). */
const CONNECTION_SPECIFIC = new Set(['connection', 'upgrade', 'http2-settings', 'keep-alive', 'proxy-connection', 'transfer-encoding']);

type TrailerStream = ServerHttp2Stream & { [kTrailers]?: Record<string, string | string[]>; [kRequestTrailers]?: IncomingHttpHeaders };

function codeError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The request head; the body is the readable side of `stream`. */
export class H2Request {
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly httpVersion = '2.0';
  /** Trailers may follow and are kept (see above): a request with a body, not gRPC. */
  readonly keepsTrailers: boolean;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders) {
    this.stream = stream;
    this.headers = headers;
    this.method = headers[':method'];
    this.url = headers[':path'];
    this.keepsTrailers = !stream.endAfterHeaders && !isGrpcContentType(headers['content-type']);
    if (this.keepsTrailers) stream.on('trailers', keepRequestTrailers);
  }

  /** The request's trailer section once its body has ended (undefined: none came). */
  get trailers(): IncomingHttpHeaders | undefined {
    return (this.stream as TrailerStream)[kRequestTrailers];
  }

  /** Trailers a filter adds to a request that came without (StreamCallbacks.addRequestTrailers). */
  addTrailers(): IncomingHttpHeaders {
    return ((this.stream as TrailerStream)[kRequestTrailers] = {});
  }

  /** The whole request arrived, or never will (reset, closed). */
  get complete(): boolean {
    const s = this.stream;
    return s.readableEnded || s.aborted || s.closed || s.destroyed;
  }
}

function keepRequestTrailers(this: TrailerStream, trailers: IncomingHttpHeaders): void {
  this[kRequestTrailers] = trailers;
}

/** The checks of every header and trailer: what the compat response threw for. */
function assertValidHeader(name: string, value: unknown): void {
  if (name === '' || name.includes(' ')) throw codeError('ERR_INVALID_HTTP_TOKEN', `Header name must be a valid HTTP token ["${name}"]`);
  if (name.charCodeAt(0) === 58) throw codeError('ERR_HTTP2_PSEUDOHEADER_NOT_ALLOWED', `Cannot set HTTP/2 pseudo-header "${name}"`);
  if (value === undefined || value === null) throw codeError('ERR_HTTP2_INVALID_HEADER_VALUE', `Invalid value "${String(value)}" for header "${name}"`);
}

/** Where `name` is in a raw header list, or -1. */
function listed(list: unknown[], name: string): number {
  for (let i = 2; i < list.length; i += 2) if (list[i] === name) return i;
  return -1;
}

function sendTrailers(this: TrailerStream): void {
  this.sendTrailers(this[kTrailers] ?? {});
}

/** respond()'s own checks of a response head (node:http2's, with its default strictSingleValueFields), for a head it gets later. */
function assertRespondable(status: number, list: unknown[]): void {
  const code = status | 0;
  if (code !== 0 && (code < 200 || code > 599)) throw codeError('ERR_HTTP2_STATUS_INVALID', `Invalid status code: ${code}`);
  for (let i = 2; i < list.length; i += 2) {
    const name = list[i] as string;
    const value = list[i + 1];
    if (Array.isArray(value) && value.length > 1 && SINGLE_VALUE_FIELDS.has(name)) throw codeError('ERR_HTTP2_HEADER_SINGLE_VALUE', `Header field "${name}" must only have a single value`);
    if (CONNECTION_SPECIFIC.has(name) || (name === 'te' && value !== 'trailers')) throw codeError('ERR_HTTP2_INVALID_CONNECTION_HEADERS', `HTTP/1 Connection specific headers are forbidden: "${name}"`);
  }
}

function releaseHead(res: H2Response): void {
  res.release();
}

export class H2Response {
  readonly stream: ServerHttp2Stream;
  private ending = false;
  private trailersExpected = false;
  /** A head that waits for trailers, held back from respond() (see "Held heads" above), and the body written after it. */
  private held: unknown[] | undefined;
  private heldBody: Buffer[] | undefined;
  private heldBytes = 0;
  private heldTimer: NodeJS.Immediate | undefined;

  constructor(stream: ServerHttp2Stream) {
    this.stream = stream;
  }

  get headersSent(): boolean {
    return this.held !== undefined || this.stream.headersSent;
  }

  writeHead(status: number, headers?: Record<string, string | string[]>): this {
    const s = this.stream;
    if (s.destroyed || s.closed) return this;
    if (this.headersSent) throw codeError('ERR_HTTP2_HEADERS_SENT', 'Response has already been initiated.');
    // A raw header list (name, value, …): respond() copies a headers object into a null-prototype
    // one before it builds nghttp2's list, and a list has no copy to make. Names the trim and
    // lower-casing changed may meet a name already listed: as with an object, the later value
    // replaces the earlier one in place.
    const out: unknown[] = [':status', status];
    let renamed = false;
    if (headers) {
      for (const key in headers) {
        const name = key.trim().toLowerCase();
        const value = headers[key];
        assertValidHeader(name, value);
        if (name === 'connection' && value !== 'trailers') continue;
        if (!HTTP_TOKEN.test(name)) {
          s.destroy();
          throw codeError('ERR_INVALID_HTTP_TOKEN', `Header name must be a valid HTTP token ["${name}"]`);
        }
        if (name !== key) renamed = true;
        const at = renamed ? listed(out, name) : -1;
        if (at < 0) out.push(name, value);
        else out[at + 1] = value;
      }
    }
    if (this.trailersExpected && !this.ending && (s as TrailerStream)[kTrailers] === undefined) {
      // What respond() would throw for, thrown now, as it would have been.
      assertRespondable(status, out);
      this.held = out;
      this.heldTimer = setImmediate(releaseHead, this);
      return this;
    }
    this.respond(out, false);
    return this;
  }

  /** respond(): once the response has ended, it waits only for trailers that were added. */
  private respond(out: unknown[], bodyFollows: boolean): void {
    const s = this.stream;
    const wait = (this.trailersExpected && !this.ending) || (s as TrailerStream)[kTrailers] !== undefined;
    // @types/node lists only the object form; node:http2 takes both.
    // Not endStream with waitForTrailers: node then ends the stream with the head and drops the trailers.
    s.respond(out as unknown as OutgoingHttpHeaders, wait ? WAIT_FOR_TRAILERS : this.ending && !bodyFollows ? END_STREAM : NO_TRAILERS);
  }

  /** Gives a held head to respond(), then the body written since; returns what the last write returned. */
  release(): boolean {
    const head = this.held;
    if (head === undefined) return true;
    const body = this.heldBody;
    this.held = this.heldBody = undefined;
    this.heldBytes = 0;
    clearImmediate(this.heldTimer);
    this.heldTimer = undefined;
    const s = this.stream;
    if (s.destroyed || s.closed) return false;
    this.respond(head, body !== undefined);
    if (body === undefined) return true;
    // One write: a later one would wait for this one to reach the socket, and so would the end.
    s.cork();
    let ok = true;
    for (const chunk of body) ok = s.write(chunk);
    s.uncork();
    return ok;
  }

  /** Trailers may be added to this response: called before writeHead, or they cannot be sent. */
  expectTrailers(): void {
    this.trailersExpected = true;
  }

  write(chunk: Buffer): boolean {
    const s = this.stream;
    if (s.destroyed || s.closed) return false;
    if (this.ending) {
      s.destroy(codeError('ERR_STREAM_WRITE_AFTER_END', 'write after end'));
      return false;
    }
    if (!this.headersSent) this.writeHead(200);
    if (this.held === undefined) return s.write(chunk);
    (this.heldBody ??= []).push(chunk);
    this.heldBytes += chunk.length;
    return this.heldBytes < s.writableHighWaterMark || this.release();
  }

  end(chunk?: Buffer): void {
    const s = this.stream;
    if (this.ending || s.closed || s.destroyed) return;
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    this.ending = true;
    if (!this.headersSent) this.writeHead(200);
    else this.release();
    s.end();
  }

  addTrailers(trailers: Record<string, string | string[]>): void {
    const s = this.stream as TrailerStream;
    if (this.headersSent && !this.trailersExpected && s[kTrailers] === undefined) {
      // The stream ends without waiting: a reset, rather than a response silently short of them.
      if (Object.keys(trailers).length > 0) this.reset();
      return;
    }
    for (const key in trailers) {
      const name = key.trim().toLowerCase();
      const value = trailers[key];
      assertValidHeader(name, value);
      if (!s[kTrailers]) {
        s[kTrailers] = {};
        s.once('wantTrailers', sendTrailers);
      }
      s[kTrailers][name] = value;
    }
  }

  /**
   * Ends the stream with RST_STREAM INTERNAL_ERROR. Not close(code): on a stream not waiting for
   * trailers, close() first ends the response (END_STREAM), which a client takes as complete.
   */
  reset(): void {
    this.release();
    this.stream.destroy(codeError('ERR_HTTP2_STREAM_RESET', 'response reset by the proxy'));
  }

  destroy(): void {
    this.release();
    this.stream.destroy();
  }

  once(event: 'close' | 'drain', listener: () => void): this {
    this.stream.once(event, listener);
    return this;
  }
}
