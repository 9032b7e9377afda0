// A response body through the filters' codecs (StreamCallbacks.recodeResponseBody) on its way to
// the client: the codecs' streams piped in order, the last one's output handed to the stream's
// owner chunk by chunk. Backpressure both ways: write() says when the source should wait for
// 'drain' (the owner pauses the upstream), and a client that stops reading pauses the last codec.
// Made only for responses a codec recodes.
import type { Readable, Transform, Writable } from 'node:stream';
import type { BodyCodec } from '../filters/filter.ts';

export interface RecodedBodyOwner {
  /** A recoded chunk for the client; false when the client's side is full. */
  recodedData(chunk: Buffer): boolean;
  /** Calls `fn` once the client's side has room again. */
  onceWritable(fn: () => void): void;
  /** The first codec has room again (resume the source). */
  recodedDrain(): void;
  /** The recoded body has ended. */
  recodedEnd(): void;
}

export class RecodedBody {
  private readonly streams: Transform[];
  private readonly first: Writable;
  private readonly last: Readable;
  private readonly owner: RecodedBodyOwner;
  private readonly resume = (): void => void this.last.resume();

  constructor(codecs: readonly BodyCodec[], owner: RecodedBodyOwner) {
    this.owner = owner;
    const streams = (this.streams = codecs.map((c) => c.stream()));
    for (let i = 0; i + 1 < streams.length; i++) streams[i].pipe(streams[i + 1]);
    this.first = streams[0];
    this.last = streams[streams.length - 1];
    // A codec's stream never fails (it cuts a body it cannot decode); destroy() comes without an error.
    for (const s of streams) s.on('error', noop);
    this.first.on('drain', () => owner.recodedDrain());
    this.last.on('data', (c: Buffer) => {
      if (!owner.recodedData(c)) {
        this.last.pause();
        owner.onceWritable(this.resume);
      }
    });
    this.last.once('end', () => owner.recodedEnd());
  }

  /** False: wait for the owner's recodedDrain before writing more. */
  write(chunk: Buffer): boolean {
    return this.first.write(chunk);
  }

  end(): void {
    this.first.end();
  }

  destroy(): void {
    for (const s of this.streams) s.destroy();
  }
}

function noop(): void {}
