// An HTTP/2 upstream that resets a stream with CANCEL after some DATA (no END_STREAM) truncated
// the response: Node ends the stream's readable side without an error for that code (other codes
// but NO_ERROR are 'error's), and undici's 'end' handler completes the response without looking at
// rstCode, so the client would get a truncated body as complete. Envoy sees a remote reset (UR,
// upstream_reset_after_response_started{remote_reset}).
//
// The http2.client.stream.created channel fires inside session.request(), before undici adds its
// listeners: the 'end' listener added here runs first and hands undici the error it would have got
// for any other code (undici then aborts the request instead of completing it). Only streams of
// sockets our pools marked are watched (grpc-js clients in the same process use node:http2 too).
//
// Not covered: RST_STREAM NO_ERROR before END_STREAM. Node reports it exactly like a clean end
// (rstCode 0 either way), so neither undici nor this watch can tell it from a complete response.
import dc from 'node:diagnostics_channel';
import http2 from 'node:http2';

const UPSTREAM = Symbol('rig.upstream-h2');
const { NGHTTP2_NO_ERROR } = http2.constants;

/** Marks a socket an upstream HTTP/2 pool will run a session on. */
export function markUpstreamH2Socket(socket: object): void {
  (socket as Record<symbol, boolean>)[UPSTREAM] = true;
}

let watching = false;

/** Starts the watch (once per process). */
export function watchUpstreamH2Resets(): void {
  if (watching) return;
  watching = true;
  dc.subscribe('http2.client.stream.created', onStreamCreated);
}

function onStreamCreated(message: unknown): void {
  const stream = (message as { stream: http2.ClientHttp2Stream }).stream;
  // session.socket is a proxy of the socket: it reads the mark through.
  const socket = stream.session?.socket as unknown as Record<symbol, boolean> | undefined;
  if (socket?.[UPSTREAM]) stream.on('end', onStreamEnd);
}

function onStreamEnd(this: http2.ClientHttp2Stream): void {
  const code = this.rstCode;
  if (code === undefined || code === NGHTTP2_NO_ERROR || this.listenerCount('error') === 0) return;
  this.emit('error', Object.assign(new Error(`Stream closed with error code ${code} before the end of the response`), { code: 'ERR_HTTP2_STREAM_ERROR', http2ErrorCode: code }));
}
