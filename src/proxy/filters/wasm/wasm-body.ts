// A request or response body through a plugin's body and trailers callbacks, as Envoy's filter
// manager runs them for a filter that may stop: a chunk the plugin pauses on (StopIterationAndBuffer)
// is buffered and handed to it again with the next one, until a body callback continues (which
// continues paused headers too, as in Envoy) or the plugin calls proxy_continue_stream, e.g. from an
// HTTP call's answer; a paused response head then goes out with what the body let through. The
// body's end waits as long as the plugin does (a paused last chunk, paused trailers, or paused
// response headers); its trailers (a response's in the BodyEnd, a request's from
// the stream) go to proxy_on_*_trailers first. A stream answered locally drops the rest of the body.
import { Transform, type TransformCallback } from 'node:stream';
import type { BodyCodec, BodyEnd, HeaderMap } from '../filter.ts';

const EMPTY = Buffer.alloc(0);

/** What the body needs of its stream's plugin (WasmStream). */
export interface BodyOwner {
  /** A body callback: what to send on, undefined when the plugin paused (buffer it). */
  body(request: boolean, buf: Buffer, end: boolean): Buffer | undefined;
  /** The trailers callback: false when the plugin paused. */
  trailers(request: boolean, trailers: HeaderMap): boolean;
  /** The request's trailers at its body's end. */
  requestTrailers(): HeaderMap | undefined;
  /** The plugin continued the response head it paused: it goes out now. */
  releaseHead(): void;
  /** The most a paused body may hold. */
  bufferLimit(): number;
  /** A paused body grew past bufferLimit(): the stream is answered (413 / 500) or reset, as Envoy. */
  overflow(request: boolean): void;
}

/** The body's stream: each chunk and its end handed to the PluginBody. */
class PluginBodyStream extends Transform {
  private readonly b: PluginBody;
  constructor(b: PluginBody) {
    super();
    this.b = b;
    this.on('error', noop);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.b.chunk(chunk);
    done();
  }
  override _flush(done: TransformCallback): void {
    this.b.last(done);
  }
}

export class PluginBody implements BodyCodec {
  private readonly s: BodyOwner;
  private readonly t = new PluginBodyStream(this);
  private readonly request: boolean;
  readonly holdHead: boolean;
  private ending: BodyEnd | undefined;
  /** Chunks the plugin paused on, handed to it again with the next one (or let go on continue). */
  private pending: Buffer | undefined;
  /** The response head is paused: the body's end waits for the plugin to continue. */
  private waiting: boolean;
  /** The body's end, waiting for the plugin to continue. */
  private endWaits: TransformCallback | undefined;
  /** The stream was answered locally: the rest is dropped and the body never ends. */
  private dropped = false;

  constructor(s: BodyOwner, request: boolean, waitForContinue: boolean) {
    this.s = s;
    this.request = request;
    this.holdHead = !request && waitForContinue;
    this.waiting = waitForContinue;
  }

  stream(end?: BodyEnd): Transform {
    this.ending = end;
    return this.t;
  }

  /** The whole body at once (a request body read already, a local reply): it cannot wait, so it goes on at its end. */
  whole(body: Buffer): Buffer {
    this.waiting = false;
    return this.s.body(this.request, body, true) ?? body;
  }

  /** The plugin holds something back: paused headers, a paused chunk or the body's end. */
  get waits(): boolean {
    return this.waiting || this.pending !== undefined || this.endWaits !== undefined;
  }

  chunk(chunk: Buffer): void {
    if (this.dropped) return;
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const out = this.s.body(this.request, buf, false);
    if (out === undefined) {
      this.pending = buf;
      if (buf.length > this.s.bufferLimit()) {
        this.drop();
        this.s.overflow(this.request);
      }
    } else {
      this.pending = undefined;
      this.send(out);
    }
  }

  /** The body's input ended: its last callbacks; `done` ends the output once the plugin lets it. */
  last(done: TransformCallback): void {
    if (this.dropped) return;
    const trailers = this.request ? this.s.requestTrailers() : this.ending?.trailers;
    const follow = trailers !== undefined && hasKeys(trailers);
    const buf = this.pending ?? EMPTY;
    this.pending = undefined;
    let paused = false;
    // The last body call has end_of_stream; with trailers it is skipped when nothing is left, as Envoy.
    if (!follow || buf.length) {
      const out = this.s.body(this.request, buf, !follow);
      if (out === undefined) {
        this.pending = buf;
        paused = true;
      } else this.send(out);
    }
    if (follow && !this.dropped) {
      // Trailers that continue let the body buffered before them go too, as Envoy's filter manager.
      paused = !this.s.trailers(this.request, trailers);
      if (!paused) {
        this.send(this.pending ?? EMPTY);
        this.pending = undefined;
      }
    }
    if (this.dropped) return;
    if (paused || this.waiting) {
      this.endWaits = done;
      return;
    }
    done();
  }

  /** The plugin continued (proxy_continue_stream, or a callback returned Continue): what waited goes on. */
  goOn(): void {
    if (this.dropped) return;
    const p = this.pending;
    this.pending = undefined;
    this.send(p ?? EMPTY);
    const end = this.endWaits;
    this.endWaits = undefined;
    end?.();
  }

  /** Sends `out` on; the stream no longer waits (a response head it held goes out first). */
  private send(out: Buffer): void {
    if (this.waiting) {
      this.waiting = false;
      if (this.holdHead) this.s.releaseHead();
    }
    if (out.length) this.t.push(out);
  }

  /** The stream is answered locally (or fails closed): nothing more goes through. */
  drop(): void {
    this.dropped = true;
    this.pending = this.endWaits = undefined;
  }
}

function hasKeys(m: HeaderMap): boolean {
  for (const _k in m) return true;
  return false;
}

function noop(): void {}
