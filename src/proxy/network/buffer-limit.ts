// Envoy's per_connection_buffer_limit_bytes (Listener and Cluster): a soft limit on a connection's
// read and write buffers. It becomes the socket's high watermark: a write that takes the socket's
// buffer past it returns false and the code relaying into it stops reading the peer that fills it
// until 'drain' (pipe.ts, h1-response.ts, the HTTP/1.1 pool's request body, the router's
// response). Node resumes once the buffer is empty, Envoy below half: both keep it bounded.
import type { Duplex } from 'node:stream';
import type { Reader } from '../config/reader.ts';

/** Envoy's default when the field is absent: 1 MiB. */
export const DEFAULT_BUFFER_LIMIT_BYTES = 1 << 20;

const FIELD = 'per_connection_buffer_limit_bytes';

/** Reads per_connection_buffer_limit_bytes (UInt32Value, > 0); absent: 1 MiB. */
export function readBufferLimit(r: Reader): number {
  if (!r.has(FIELD)) return DEFAULT_BUFFER_LIMIT_BYTES;
  const n = r.num(FIELD, DEFAULT_BUFFER_LIMIT_BYTES);
  if (Number.isInteger(n) && n > 0 && n <= 0xffffffff) return n;
  r.issues.error(r.at(FIELD), `must be a whole number of bytes from 1 to 4294967295 (got ${String(n)}); leave it out for the 1 MiB default`);
  return DEFAULT_BUFFER_LIMIT_BYTES;
}

/**
 * Sets the limit on a new socket (or HTTP/2 stream) before anything was read or written. Node takes
 * a socket's watermarks only at construction (net.createServer's highWaterMark option), but the
 * listener whose limit applies is known after accept (use_original_dst hands connections over; an
 * LDS update swaps a bound listener's config), upstream sockets come from net/tls.connect (whose
 * typings lack the option), and node's HTTP/2 server makes its streams itself: the streams' states
 * are set as their constructor does.
 */
export function setBufferLimit<S extends Duplex>(socket: S, bytes: number): S {
  if (socket.writableHighWaterMark === bytes && socket.readableHighWaterMark === bytes) return socket;
  const s = socket as unknown as { _writableState: { highWaterMark: number }; _readableState: { highWaterMark: number } };
  s._writableState.highWaterMark = bytes;
  s._readableState.highWaterMark = bytes;
  return socket;
}
