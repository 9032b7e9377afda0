// One request through the HTTP/1.1 pool, from dispatch to its last callback. It is the handler's
// DispatchController (pause/resume/abort), waits in the pool's queue, then lives on one connection
// (h1-connection.ts) that writes it and feeds it the response.
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { H1ErrorCode, H1PoolError } from './h1-errors.ts';
import type { H1Connection } from './h1-connection.ts';
import type { UpstreamDispatchOptions } from '../upstream-pool.ts';

/** The pool side of an exchange: where an aborted or queued request goes. */
export interface ExchangeOwner {
  unqueue(ex: H1Exchange): void;
}

/** GET/HEAD/OPTIONS without a body: replayed once when a reused connection closed under it. */
const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

export class H1Exchange implements Dispatcher.DispatchController {
  readonly opts: UpstreamDispatchOptions;
  readonly handler: Dispatcher.DispatchHandler;
  private readonly owner: ExchangeOwner;
  /** The body as one buffer (undefined: none or streamed). */
  readonly buffer: Buffer | undefined;
  readonly stream: Readable | undefined;
  conn: H1Connection | undefined;
  /** The handler has had its last callback (end or error). */
  finished = false;
  /** May be sent again on a fresh connection if its reused one closes before answering. */
  replayable: boolean;
  /** The response body is chunked: the only HTTP/1.1 framing trailers can follow. */
  chunked = false;
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;

  constructor(opts: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler, owner: ExchangeOwner) {
    this.opts = opts;
    this.handler = handler;
    this.owner = owner;
    const b = opts.body;
    if (b == null) this.buffer = undefined;
    else if (typeof b === 'string') this.buffer = Buffer.from(b);
    else if (b instanceof Uint8Array) this.buffer = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    else this.stream = b;
    this.replayable = this.stream === undefined && (this.buffer === undefined || this.buffer.length === 0) && REPLAYABLE.has(opts.method);
  }

  /** The local address of the connection this exchange is on (%UPSTREAM_LOCAL_ADDRESS%). */
  get upstreamLocalAddress(): string | undefined {
    return this.conn?.localAddress;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): Error | null {
    return this.#reason;
  }

  /** Body bytes known up front: the buffer's size, -1 for a stream, 0 for none. */
  get bodyLength(): number {
    return this.stream ? -1 : (this.buffer?.length ?? 0);
  }

  abort(reason: Error): void {
    if (this.finished || this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason ?? new H1PoolError(H1ErrorCode.Aborted, 'request aborted');
    // On a connection, the response (or the request body) is cut: that connection cannot be reused.
    if (this.conn) this.conn.destroy(this.#reason);
    else {
      this.owner.unqueue(this);
      this.fail(this.#reason);
    }
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.conn?.pauseReading();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.conn?.resumeReading();
  }

  /** The last callback: the error. The request body stream stops flowing into a dead request. */
  fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.conn = undefined;
    if (this.stream && !this.stream.destroyed) this.stream.destroy();
    this.handler.onResponseError?.(this, err);
  }
}
