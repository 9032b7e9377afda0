// A body through one node:zlib engine (gzip, brotli or zstd, either way), as a stream the
// connection manager pipes a body through (StreamCallbacks.recodeRequestBody/recodeResponseBody).
// The engine works off the event loop thread; one chunk at a time is in it, so backpressure from
// the reader reaches the writer. Compressors are made with a per-write flush (Envoy's compressor
// flushes each data frame: a streamed response is never held back in the compressor). As Envoy's
// decompressors, an engine error (corrupt input, or an inflate ratio past the limit) is counted and
// ends the transformation: what came out so far is kept and the rest of the input is dropped.
import { Transform, type TransformCallback } from 'node:stream';
import type { Stat } from '../../stats/stats.ts';

export interface CodecCounters {
  /** Counts bytes into the engine (total_uncompressed_bytes of a compressor). */
  readonly bytesIn: Stat;
  /** Counts bytes out of the engine. */
  readonly bytesOut: Stat;
  /** An engine error, by its node:zlib code (Z_DATA_ERROR, ERR_BROTLI_DECOMPRESSION_FAILED, ...). */
  readonly onError?: (code: string) => void;
  /** Decompression stops once its output passes this many times its input (0: no limit). */
  readonly maxRatio?: number;
}

/** What CodecStream needs of a node:zlib engine. */
interface Engine extends Transform {
  close(): void;
}

export class CodecStream extends Transform {
  /** This body's bytes in and out so far. */
  bytesIn = 0;
  bytesOut = 0;
  /** The engine failed; the rest of the input is dropped. */
  failed = false;
  private readonly engine: Engine;
  private readonly counters: CodecCounters;
  /** The callback of the write (or end) the engine is working on. */
  private pending: TransformCallback | undefined;

  constructor(engine: Engine, counters: CodecCounters) {
    super();
    this.engine = engine;
    this.counters = counters;
    engine.on('data', (d: Buffer) => this.output(d));
    engine.on('error', (e: NodeJS.ErrnoException) => this.fail(e.code ?? 'error'));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.failed) return done();
    this.bytesIn += chunk.length;
    this.counters.bytesIn.value += chunk.length;
    this.pending = done;
    this.engine.write(chunk, () => this.settle());
  }

  override _flush(done: TransformCallback): void {
    if (this.failed) return done();
    this.pending = done;
    this.engine.once('end', () => this.settle());
    this.engine.end();
  }

  override _destroy(err: Error | null, done: (e: Error | null) => void): void {
    this.engine.destroy();
    done(err);
  }

  private output(d: Buffer): void {
    if (this.failed) return;
    this.bytesOut += d.length;
    const max = this.counters.maxRatio ?? 0;
    if (max > 0 && this.bytesOut > max * this.bytesIn) {
      this.fail('Z_DATA_ERROR');
      return;
    }
    this.counters.bytesOut.value += d.length;
    this.push(d);
  }

  private settle(): void {
    const p = this.pending;
    this.pending = undefined;
    p?.();
  }

  private fail(code: string): void {
    if (this.failed) return;
    this.failed = true;
    this.counters.onError?.(code);
    this.engine.destroy();
    this.settle();
  }
}
