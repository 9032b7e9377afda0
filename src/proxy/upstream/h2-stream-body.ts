// A streamed request body for undici's HTTP/2 client, handed over as an async iterable instead of
// the Readable itself. undici writes a Readable body with stream.pipeline(), which per request
// creates an AbortController and aborts it when done (a DOMException, stack trace included) and
// two end-of-stream watchers: with gRPC, where every request has a streamed body, that was a tenth
// of the proxy's CPU and much of its garbage. undici writes an iterable chunk by chunk, waiting
// for 'drain'. What pipeline() also did is kept here: a body error fails the request, and the body
// of a request that failed is destroyed, so that its source (the downstream request, retry-body.ts)
// stops feeding it.
//
// One object is both the iterable and the request's dispatch handler (forwarding to the real one),
// to see the request end without another allocation.
//
// A body may also be the downstream HTTP/2 request itself, lent (lendBody) instead of piped
// through a PassThrough: it is read here directly and never destroyed (the proxy still answers or
// resets the downstream stream itself); a failed request only stops reading it, and its errors and
// resets are the downstream stream's own (http-stream.ts sees them first).
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { TrailerSource } from './upstream-pool.ts';

const kBody = Symbol('rig.h2StreamBody');
const kLent = Symbol('rig.h2LentBody');
const DONE: IteratorResult<Buffer> = { value: undefined, done: true };

type Source = Readable & { [kBody]?: H2StreamBody; [kLent]?: true };

/** Marks a downstream request as a body to read without destroying it (see above). */
export function lendBody(source: Readable): Readable {
  (source as Source)[kLent] = true;
  return source;
}

/** Whether `body` was lent: H2StreamBody reads it even when it has already ended. */
export function isLentBody(body: Readable): boolean {
  return (body as Source)[kLent] === true;
}

function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

export class H2StreamBody implements AsyncIterableIterator<Buffer>, Dispatcher.DispatchHandler {
  private readonly source: Source;
  private readonly handler: Dispatcher.DispatchHandler;
  private readonly lent: boolean;
  /** The request's trailers, sent after the body (undici-pool.ts opens the stream for them). */
  readonly trailerSource: TrailerSource | undefined;
  private ended = false;
  private error: Error | undefined;
  private resolve: ((r: IteratorResult<Buffer>) => void) | undefined;
  private reject: ((e: Error) => void) | undefined;

  constructor(source: Readable, handler: Dispatcher.DispatchHandler, trailerSource?: TrailerSource) {
    this.source = source;
    this.handler = handler;
    this.trailerSource = trailerSource;
    this.source[kBody] = this;
    this.lent = isLentBody(source);
    source.on('readable', onReadable);
    source.on('end', onEnd);
    if (!this.lent) source.on('error', onError);
    source.on('close', onClose);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.error) return Promise.reject(this.error);
    const chunk = this.source.read() as Buffer | null;
    if (chunk !== null) return Promise.resolve({ value: chunk, done: false });
    if (this.ended) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** undici left the loop early (its connection failed while writing): the body is not needed any more. */
  return(): Promise<IteratorResult<Buffer>> {
    this.fail();
    return Promise.resolve(DONE);
  }

  wake(): void {
    const resolve = this.resolve;
    if (!resolve) return;
    const chunk = this.source.read() as Buffer | null;
    if (chunk === null && !this.ended) return;
    this.resolve = this.reject = undefined;
    resolve(chunk === null ? DONE : { value: chunk, done: false });
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** The body failed (an error, or closed before its end), or is no longer wanted: a waiting read fails, the source is destroyed. */
  fail(err?: Error): void {
    if (this.error || this.ended) return;
    // Created only here: an Error captures a stack trace, and every body closes (after its end).
    err ??= prematureClose();
    this.error = err;
    const reject = this.reject;
    this.resolve = this.reject = undefined;
    reject?.(err);
    const source = this.source;
    if (!this.lent) {
      if (!source.destroyed) source.destroy();
    } else if (!source.destroyed) {
      source.off('readable', onReadable);
      source.off('end', onEnd);
      source.off('close', onClose);
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.handler.onRequestStart?.(controller, context);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders, message: string): void {
    this.handler.onResponseStart?.(controller, status, headers, message);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.handler.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    // A body still streaming goes on to the upstream stream for as long as it takes it, as with pipeline().
    this.handler.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
    this.handler.onResponseError?.(controller, err);
  }
}

function onReadable(this: Source): void {
  this[kBody]!.wake();
}

function onEnd(this: Source): void {
  this[kBody]!.end();
}

function onError(this: Source, err: Error): void {
  this[kBody]!.fail(err);
}

function onClose(this: Source): void {
  this[kBody]!.fail();
}
