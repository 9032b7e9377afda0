// Shared read buffers: the proxy's HTTP/1 sockets read into one 64 KB buffer per direction, so a
// read costs no allocation and no stream machinery. Sound because a read is handled whole before
// the next: a reader copies whatever outlives its call (body chunks, bytes a parser keeps), and a
// TCP handle reads only from the event loop, never inside another read's callback. Upstream and
// downstream have a buffer each, so that nothing depends on one never reaching into the other.
//
// Upstream sockets read into theirs through net.connect's `onread` option. node offers no such
// option for the sockets a server accepts, so `readShared` gives one the same state that option
// sets: the socket's three private onread fields (found by value on a socket made with the
// option) and its handle's useUserBuffer. Where this node lacks any of it, readShared says so
// and the caller keeps its 'data' listener.
import net from 'node:net';

export class ReadBuffer {
  readonly bytes = Buffer.allocUnsafe(64 * 1024);
  /**
   * The last read's view: a read of the same size (a client sending the same request again, an
   * upstream the same response) takes it again rather than a new Buffer (subarray: ~350
   * instructions a read). Its length is kept apart: a typed array's length is a getter, costly
   * until the caller is optimized.
   */
  private view = this.bytes.subarray(0, 0);
  private length = 0;

  /** The first `n` bytes, valid until the read's callback returns. */
  of(n: number): Buffer {
    if (n !== this.length) {
      this.view = this.bytes.subarray(0, n);
      this.length = n;
    }
    return this.view;
  }
}

/** What the HTTP/1 pool's upstream sockets read into (their connect's onread option). */
export const UPSTREAM_READS = new ReadBuffer();
const DOWNSTREAM_READS = new ReadBuffer();
const SHARED = DOWNSTREAM_READS.bytes;

/** Reads of a socket in shared mode: a view valid during the call only; false stops reading (resume() starts it again). */
export type SharedReader = (view: Buffer) => boolean;

type OnreadFields = { buffer: symbol; callback: symbol; generator: symbol };
type SocketFields = Record<symbol, unknown> & { _handle?: { useUserBuffer?: (b: Uint8Array) => void } | null };

/** Where node's net.Socket keeps its onread option (lib/net.js kBuffer, kBufferCb, kBufferGen). */
const fields = ((): OnreadFields | undefined => {
  const callback = (): boolean => true;
  const generator = (): Buffer => SHARED;
  const named = new net.Socket({ onread: { buffer: SHARED, callback } }) as unknown as SocketFields;
  const generated = new net.Socket({ onread: { buffer: generator, callback } }) as unknown as SocketFields;
  const find = (s: SocketFields, value: unknown) => Object.getOwnPropertySymbols(s).find((k) => s[k] === value);
  const buffer = find(named, SHARED);
  const cb = find(named, callback);
  const gen = find(generated, generator);
  return buffer && cb && gen ? { buffer, callback: cb, generator: gen } : undefined;
})();

/** Whether readShared can ever take this socket: this node has what it needs, and the socket is a plain TCP or pipe socket. */
export function canReadShared(socket: net.Socket): boolean {
  const s = socket as unknown as SocketFields;
  return fields !== undefined && typeof s._handle?.useUserBuffer === 'function' && s[fields.buffer] == null && !(socket as { encrypted?: boolean }).encrypted;
}

/**
 * From now on the socket's reads go to `reader` as views of the shared buffer, and no longer to
 * 'data' listeners. False (and nothing changed) when it cannot (canReadShared), or when the socket
 * still holds bytes or an end in its stream buffer: the caller then goes on with 'data'.
 */
export function readShared(socket: net.Socket, reader: SharedReader): boolean {
  if (!canReadShared(socket) || socket.destroyed || socket.readableLength > 0 || socket.readableEnded || !socket.readable) return false;
  const s = socket as unknown as SocketFields;
  s[fields!.buffer] = SHARED;
  s[fields!.generator] = null;
  s[fields!.callback] = (n: number) => reader(DOWNSTREAM_READS.of(n));
  s._handle!.useUserBuffer!(SHARED);
  return true;
}

/**
 * Back from shared mode (the socket goes to a tunnel): each later read is pushed into the
 * socket's stream as a copy of its own, for 'data' listeners and pause/resume as usual. The
 * handle keeps reading into the shared buffer; node has no way to undo useUserBuffer.
 */
export function stopReadingShared(socket: net.Socket): void {
  if (!fields) return;
  const s = socket as unknown as SocketFields;
  if (s[fields.buffer] !== SHARED) return;
  s[fields.callback] = (n: number) => socket.push(Buffer.from(SHARED.subarray(0, n)));
}
