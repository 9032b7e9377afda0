// After every chunk a flowing Readable emits, node schedules a nextTick that calls read(0) to read
// more (maybeReadMore). A socket's handle goes on reading by itself while it flows, so for a socket
// read by 'data' listeners that tick does nothing, and costs ~10,000 instructions per proxied
// request in node 24 (its tick object is built in V8's runtime, then read(0) walks the stream
// state; callgrind). Marking the stream as already reading more skips it. Pausing, resuming and
// back-pressure do not use the flag: they start the handle's reads through _read as before.
import type { Readable } from 'node:stream';

type WithState = { _readableState: { readingMore: boolean } };

function markReadingMore(socket: Readable): void {
  (socket as unknown as WithState)._readableState.readingMore = true;
}

export function skipReadMore(socket: Readable): void {
  markReadingMore(socket);
  // A read-more tick already scheduled (by the codec sniffer's unshift) clears the flag when it runs.
  process.nextTick(markReadingMore, socket);
}
