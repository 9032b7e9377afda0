// Copies of a streamed request body for request mirrors (shadows). The primary request keeps its
// own back-pressure (it pipes from the downstream request); the copies never pause the downstream:
// a mirror that falls more than `maxLagBytes` behind loses its copy (its request is reset, so it
// never sees a truncated body as complete), as a shadow must never hold the primary back. A
// downstream that aborts mid-body resets the mirrors too. Request trailers are not copied: the
// mirror's pool reads them from the downstream request at the body's end (UpstreamDispatchOptions.trailers).
import { PassThrough, type Readable } from 'node:stream';

export class MirrorBodies {
  private readonly copies: PassThrough[] = [];
  private readonly maxLagBytes: number;

  constructor(source: Readable, maxLagBytes: number) {
    this.maxLagBytes = maxLagBytes;
    source.on('data', (chunk: Buffer) => this.write(chunk));
    source.once('end', () => {
      for (const c of this.copies) if (!c.destroyed) c.end();
    });
    source.once('close', () => {
      if (!source.readableEnded) this.destroy();
    });
  }

  /** A new copy of the body from here on (call before the body starts flowing). */
  add(): PassThrough {
    const c = new PassThrough();
    c.on('error', noop);
    this.copies.push(c);
    return c;
  }

  private write(chunk: Buffer): void {
    for (const c of this.copies) {
      if (c.destroyed) continue;
      if (c.writableLength > this.maxLagBytes) c.destroy(new Error('mirror fell behind the request body'));
      else c.write(chunk);
    }
  }

  destroy(): void {
    for (const c of this.copies) if (!c.destroyed) c.destroy(new Error('downstream request aborted'));
  }
}

function noop(): void {}
