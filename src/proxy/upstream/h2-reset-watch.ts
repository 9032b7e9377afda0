// An HTTP/2 upstream that resets a stream before the response's END_STREAM truncated the response.
// Node reports RST_STREAM as a stream 'error' for most codes, but ends the stream's readable side
// without an error for CANCEL and NO_ERROR, and undici's 'end' handler then completes the response
// without looking further: the client would get a truncated body as complete. Envoy sees a remote
// reset (UR, upstream_reset_after_response_started{remote_reset}, upstream_rq_rx_reset).
//
// NO_ERROR is a reset only before END_STREAM: RFC 9113 §8.1 lets a server send RST_STREAM(NO_ERROR)
// after a complete response, to stop the request body, and that response stays a success. Node
// reports rstCode 0 in both cases; what tells them apart is when the readable side ended. END_STREAM
// (on DATA or HEADERS) pushes the end of the readable side as the frame arrives, before the stream
// closes; a reset closes the stream first and only then pushes the end. So at the
// http2.client.stream.close message (published while the stream closes, before that push) the
// readable side has already ended iff the response was complete. A local close (undici aborting a
// request) looks like a reset there too; undici ignores errors of the requests it aborted.
//
// The http2.client.stream.created channel fires inside session.request(), before undici adds its
// listeners: the 'end' listener added here runs first and hands undici the error it would have got
// for any other code (undici then aborts the request instead of completing it). Only streams of
// sockets our pools marked are watched (grpc-js clients in the same process use node:http2 too).
import dc from 'node:diagnostics_channel';
import http2 from 'node:http2';

const UPSTREAM = Symbol('rig.upstream-h2');
const CUT = Symbol('rig.upstream-h2-cut');
const { NGHTTP2_NO_ERROR } = http2.constants;

type WatchedStream = http2.ClientHttp2Stream & { [CUT]?: boolean; _readableState?: { ended?: boolean } };

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
  dc.subscribe('http2.client.stream.close', onStreamClose);
}

function isUpstream(stream: http2.ClientHttp2Stream): boolean {
  // session.socket is a proxy of the socket: it reads the mark through.
  const socket = stream.session?.socket as unknown as Record<symbol, boolean> | undefined;
  return socket?.[UPSTREAM] === true;
}

function onStreamCreated(message: unknown): void {
  const stream = (message as { stream: http2.ClientHttp2Stream }).stream;
  if (isUpstream(stream)) stream.on('end', onStreamEnd);
}

function onStreamClose(message: unknown): void {
  const stream = (message as { stream: WatchedStream }).stream;
  // _readableState.ended: the end was pushed (readableEnded only says it was read). Should a Node
  // release drop the field, nothing is marked (the old behaviour), rather than every stream.
  if (stream._readableState?.ended === false && isUpstream(stream)) stream[CUT] = true;
}

function onStreamEnd(this: WatchedStream): void {
  const code = this.rstCode;
  if (code === undefined || (code === NGHTTP2_NO_ERROR && !this[CUT]) || this.listenerCount('error') === 0) return;
  this.emit('error', Object.assign(new Error(`Stream reset with error code ${code} before the end of the response`), { code: 'ERR_HTTP2_STREAM_ERROR', http2ErrorCode: code }));
}
