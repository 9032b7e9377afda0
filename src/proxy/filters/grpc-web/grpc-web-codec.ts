// The gRPC-Web wire format (grpc/grpc doc/PROTOCOL-WEB.md) as Envoy's grpc_web filter handles it:
// base64 text bodies decoded in 4-character groups across chunk boundaries, response frames
// re-encoded one by one for text clients, trailers sent as a last frame flagged 0x80.
import type { HeaderMap } from '../filter.ts';

const EMPTY = Buffer.alloc(0);
/** The flag of a gRPC-Web trailers frame. */
export const TRAILERS_FLAG = 0x80;
const FRAME_HEADER = 5;
/** Standard base64 with mandatory padding, '=' only at the end (Envoy's Base64::decode refuses others). */
const BASE64 = /^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes a base64 request body that may be cut anywhere; `undefined` on invalid data. */
export class Base64Decoder {
  private rest: Buffer = EMPTY;

  /** The bytes of every whole 4-character group so far (the remainder waits for the next chunk). */
  decode(chunk: Buffer): Buffer | undefined {
    const all = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const n = all.length - (all.length % 4);
    this.rest = n === all.length ? EMPTY : Buffer.from(all.subarray(n));
    if (n === 0) return EMPTY;
    const text = all.toString('latin1', 0, n);
    if (!BASE64.test(text)) return undefined;
    return Buffer.from(text, 'base64');
  }

  /** Characters left over at the body's end (not a multiple of 4: invalid, padding is mandatory). */
  get pending(): number {
    return this.rest.length;
  }
}

/** Splits a gRPC response body into whole frames (header and message), holding a partial one back. */
export class FrameSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  /** Bytes needed before the next frame (or its header) is whole: chunks are joined only then. */
  private need = FRAME_HEADER;

  push(chunk: Buffer): Buffer[] {
    this.parts.push(chunk);
    this.size += chunk.length;
    if (this.size < this.need) return [];
    let buf = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size);
    const frames: Buffer[] = [];
    while (buf.length >= FRAME_HEADER) {
      const end = FRAME_HEADER + buf.readUInt32BE(1);
      if (buf.length < end) break;
      frames.push(buf.subarray(0, end));
      buf = buf.subarray(end);
    }
    this.parts = buf.length ? [buf] : [];
    this.size = buf.length;
    this.need = buf.length >= FRAME_HEADER ? FRAME_HEADER + buf.readUInt32BE(1) : FRAME_HEADER;
    return frames;
  }
}

/** Each frame base64-encoded on its own, as Envoy sends them to grpc-web-text clients. */
export function base64Frames(frames: readonly Buffer[]): Buffer {
  if (frames.length === 0) return EMPTY;
  let s = '';
  for (const f of frames) s += f.toString('base64');
  return Buffer.from(s, 'latin1');
}

/** The trailers as a gRPC-Web trailers frame: "name:value\r\n" lines after a 0x80 frame header. */
export function trailersFrame(trailers: HeaderMap): Buffer {
  let text = '';
  for (const k in trailers) {
    const v = trailers[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const e of v) text += `${k}:${e}\r\n`;
    else text += `${k}:${v}\r\n`;
  }
  const body = Buffer.from(text, 'latin1');
  const frame = Buffer.allocUnsafe(FRAME_HEADER + body.length);
  frame[0] = TRAILERS_FLAG;
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, FRAME_HEADER);
  return frame;
}

/** Envoy's PercentEncoding::encode for grpc-message: bytes outside 0x20..0x7e, and '%', as %XX. */
export function percentEncode(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += b < 0x20 || b > 0x7e || b === 0x25 ? '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase() : String.fromCharCode(b);
  return out;
}
