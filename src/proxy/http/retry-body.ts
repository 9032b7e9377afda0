// A streamed request body that stays replayable for retries, as Envoy's router buffers a request it
// may retry while streaming it (up to its retry/shadow buffer limit): the body goes upstream as it
// arrives and a copy is kept; a retry gets a stream that replays the copy, then carries the rest.
// Past the limit the copy is dropped and the request can no longer be retried. Back-pressure
// follows the current attempt's stream, as a pipe would. Request trailers are not copied: each
// attempt's pool reads them from the downstream request at the body's end (UpstreamDispatchOptions.trailers).
import { PassThrough, type Readable } from 'node:stream';

export class ReplayableBody {
  private readonly source: Readable;
  private readonly limit: number;
  private copy: Buffer[] | undefined = [];
  private bytes = 0;
  private ended = false;
  private current: PassThrough | undefined;

  /** `read`: the chunks read before the body started streaming. */
  constructor(source: Readable, limit: number, read: readonly Buffer[] | undefined) {
    this.source = source;
    this.limit = limit;
    for (const c of read ?? []) this.keep(c);
    source.on('data', (c: Buffer) => this.onData(c));
    source.once('end', () => {
      this.ended = true;
      this.current?.end();
    });
  }

  /** Whether a new attempt can get the whole body (the copy is within the limit). */
  get replayable(): boolean {
    return this.copy !== undefined;
  }

  /** The body of the next attempt: what arrived so far, then the rest. Ends the previous attempt's stream. */
  attempt(): PassThrough {
    const prev = this.current;
    const s = new PassThrough();
    // The pool destroys the stream with the attempt's error; that is reported by the attempt.
    s.on('error', noop);
    s.on('drain', () => this.source.resume());
    s.once('close', () => {
      if (this.current === s) this.source.resume();
    });
    for (const c of this.copy ?? []) s.write(c);
    if (this.ended) s.end();
    this.current = s;
    prev?.destroy();
    this.source.resume();
    return s;
  }

  destroy(): void {
    this.copy = undefined;
    this.current?.destroy();
  }

  private keep(c: Buffer): void {
    if (!this.copy) return;
    this.bytes += c.length;
    if (this.bytes > this.limit) this.copy = undefined;
    else this.copy.push(c);
  }

  private onData(c: Buffer): void {
    this.keep(c);
    const s = this.current;
    if (s && !s.destroyed && !s.write(c)) this.source.pause();
  }
}

function noop(): void {}
