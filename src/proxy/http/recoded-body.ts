// A response body through the filters' codecs (StreamCallbacks.recodeResponseBody) on its way to
// the client: the codecs' streams piped in order, the last one's output handed to the stream's
// owner chunk by chunk. Backpressure both ways: write() says when the source should wait for
// 'drain' (the owner pauses the upstream), and a client that stops reading pauses the last codec.
// At the body's end each codec's end() runs once its stream has ended, in order: its bytes go
// into the next codec, and the trailers it leaves go on. Made only for responses a codec recodes.
import type { Readable, Transform, Writable } from 'node:stream';
import type { BodyCodec, BodyEnd, HeaderMap } from '../filters/filter.ts';

export interface RecodedBodyOwner {
  /** A recoded chunk for the client; false when the client's side is full. */
  recodedData(chunk: Buffer): boolean;
  /** Calls `fn` once the client's side has room again. */
  onceWritable(fn: () => void): void;
  /** The first codec has room again (resume the source). */
  recodedDrain(): void;
  /** The recoded body has ended, with these trailers (undefined: none). */
  recodedEnd(trailers: HeaderMap | undefined): void;
}

export class RecodedBody {
  private readonly streams: Transform[];
  private readonly first: Writable;
  private readonly last: Readable;
  private readonly owner: RecodedBodyOwner;
  private readonly resume = (): void => void this.last.resume();
  private readonly ending: BodyEnd = { trailers: undefined };

  constructor(codecs: readonly BodyCodec[], owner: RecodedBodyOwner) {
    this.owner = owner;
    const streams = (this.streams = codecs.map((c) => c.stream(this.ending)));
    for (let i = 0; i + 1 < streams.length; i++) {
      const s = streams[i];
      const next = streams[i + 1];
      const c = codecs[i];
      s.pipe(next, { end: false });
      s.once('end', () => {
        const tail = c.end?.(this.ending);
        if (tail?.length) next.write(tail);
        next.end();
      });
    }
    this.first = streams[0];
    const last = (this.last = streams[streams.length - 1]);
    const lastCodec = codecs[codecs.length - 1];
    // A codec's stream never fails (it cuts a body it cannot decode); destroy() comes without an error.
    for (const s of streams) s.on('error', noop);
    this.first.on('drain', () => owner.recodedDrain());
    last.on('data', (c: Buffer) => {
      if (!owner.recodedData(c)) {
        last.pause();
        owner.onceWritable(this.resume);
      }
    });
    last.once('end', () => {
      const tail = lastCodec.end?.(this.ending);
      if (tail?.length) owner.recodedData(tail);
      owner.recodedEnd(this.ending.trailers);
    });
  }

  /** False: wait for the owner's recodedDrain before writing more. */
  write(chunk: Buffer): boolean {
    return this.first.write(chunk);
  }

  /** The body ended, with these trailers (undefined: none) for the codecs' end(). */
  end(trailers: HeaderMap | undefined): void {
    this.ending.trailers = trailers;
    this.first.end();
  }

  destroy(): void {
    for (const s of this.streams) s.destroy();
  }
}

function noop(): void {}
