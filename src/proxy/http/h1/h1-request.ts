// A downstream HTTP/1 request as the connection manager sees it: the members of node's
// IncomingMessage that HttpStream and the tunnel code use, and the body as a Readable whose
// back-pressure pauses the socket.
import { Readable, type ReadableOptions } from 'node:stream';
import type net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { H1Head } from './h1-parser.ts';
import { lowerAscii } from './h1-syntax.ts';

// node's IncomingMessage keeps the first of these when repeated (and joins the others).
const FIRST_WINS = new Set(['content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization', 'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires']);

/** Header map with lower-case names, duplicates merged as node's IncomingMessage merges them. */
export function headersOf(raw: string[]): IncomingHttpHeaders {
  const h: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = lowerAscii(raw[i]);
    const v = raw[i + 1];
    const prev = h[k];
    if (prev === undefined) h[k] = k === 'set-cookie' ? [v] : v;
    else if (k === 'set-cookie') (prev as string[]).push(v);
    else if (k === 'cookie') h[k] = `${prev as string}; ${v}`;
    else if (!FIRST_WINS.has(k)) h[k] = `${prev as string}, ${v}`;
  }
  return h as IncomingHttpHeaders;
}

export class H1Request extends Readable {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: '1.0' | '1.1';
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly socket: net.Socket;
  /** The whole body was received. */
  complete = false;
  /** The chunked body's trailer section, set before the body ends (as node's IncomingMessage.trailers). */
  trailers: IncomingHttpHeaders | undefined = undefined;
  private readonly wantMore: () => void;
  private endOnRead = false;

  /**
   * wantMore: the consumer wants more body (after push() returned false). `options`: the connection's
   * (its highWaterMark is the listener's buffer limit: past it the socket stops being read).
   */
  constructor(head: H1Head, socket: net.Socket, wantMore: () => void, options?: ReadableOptions) {
    super(options);
    this.wantMore = wantMore;
    this.method = head.method;
    this.url = head.target;
    this.httpVersion = head.versionMinor === 1 ? '1.1' : '1.0';
    this.rawHeaders = head.rawHeaders;
    this.headers = headersOf(head.rawHeaders);
    this.socket = socket;
  }

  /** Trailers a filter adds to a request that came without (StreamCallbacks.addRequestTrailers). */
  addTrailers(): IncomingHttpHeaders {
    return (this.trailers = {});
  }

  /**
   * The whole body is in (`trailers`: the raw trailer fields of a chunked one). A stream nobody reads yet (a request without body, mostly) ends on its
   * first read instead: push(null) costs a nextTick (~1 µs) per request otherwise.
   */
  endBody(trailers?: string[]): void {
    this.complete = true;
    if (trailers !== undefined) this.trailers = headersOf(trailers);
    if (this.readableFlowing !== null || this.readableLength > 0 || this.readableDidRead) this.push(null);
    else this.endOnRead = true;
  }

  override _read(): void {
    if (this.endOnRead) {
      this.endOnRead = false;
      this.push(null);
    } else this.wantMore();
  }
}
