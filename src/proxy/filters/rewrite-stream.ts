// The stream of a BodyCodec whose rewrite is synchronous (gRPC-Web framing, a Lua script's body):
// each chunk replaced at once by what the rewrite returns, held back when that is empty.
import { Transform, type TransformCallback } from 'node:stream';

export interface ChunkRewrite {
  /** A body chunk: what to send in its place (empty to send nothing for it). */
  rewrite(chunk: Buffer): Buffer;
  /** The input ended: the last bytes to send (a request body's end; a response codec has end()). */
  finish?(): Buffer;
}

export class RewriteStream extends Transform {
  private readonly r: ChunkRewrite;

  constructor(r: ChunkRewrite) {
    super();
    this.r = r;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = this.r.rewrite(chunk);
    done(null, out.length ? out : undefined);
  }

  override _flush(done: TransformCallback): void {
    const out = this.r.finish?.();
    done(null, out?.length ? out : undefined);
  }
}
