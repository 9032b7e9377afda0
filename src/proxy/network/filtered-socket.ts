// Envoy's read and write filters in front of http_connection_manager: a connection with data
// filters (a network Wasm plugin) is handed to the HCM as this Duplex over its socket. What the
// client sends goes through the filters in chain order before the HCM's codec reads it; what the
// HCM writes goes through them in reverse order before the socket. Connections without data
// filters get the socket itself (one check per connection, none per request). Like
// tunnel-stream-socket.ts, it has the members of net.Socket the HCM uses.
import type net from 'node:net';
import { Duplex } from 'node:stream';
import type { ConnectionDataFilter, DataRelay } from './network-filter.ts';

const EMPTY = Buffer.alloc(0);

export class FilteredSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  bytesRead = 0;
  bytesWritten = 0;
  private readonly socket: net.Socket;
  private readonly filters: readonly ConnectionDataFilter[];

  constructor(socket: net.Socket, filters: readonly ConnectionDataFilter[]) {
    super({ allowHalfOpen: true, readableHighWaterMark: socket.readableHighWaterMark, writableHighWaterMark: socket.writableHighWaterMark });
    this.socket = socket;
    this.filters = filters;
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    this.localAddress = socket.localAddress;
    this.localPort = socket.localPort;
    socket.on('data', (chunk: Buffer) => {
      this.bytesRead += chunk.length;
      this.deliver(this.received(0, chunk, false));
    });
    socket.once('end', () => {
      this.deliver(this.received(0, EMPTY, true));
      this.push(null);
    });
    // The listener handles the socket's errors; this stream just closes (an 'error' here could find no listener yet).
    socket.on('error', () => this.destroy());
    socket.once('close', () => this.destroy());
    filters.forEach((f, i) => f.relayStarted(this.relayOf(i)));
  }

  /** This object as the socket type of the HCM (the members it uses are here). */
  asSocket(): net.Socket {
    return this as unknown as net.Socket;
  }

  /** Client bytes through filters `from`.. in chain order: what the HCM reads. */
  private received(from: number, chunk: Buffer, end: boolean): Buffer {
    const fs = this.filters;
    for (let i = from; i < fs.length && (chunk.length || end); i++) chunk = fs[i].onData(true, chunk, end);
    return chunk;
  }

  /** What the HCM writes through filters `from`.. in reverse chain order: what goes to the client. */
  private written(from: number, chunk: Buffer, end: boolean): Buffer {
    const fs = this.filters;
    for (let i = fs.length - 1 - from; i >= 0 && (chunk.length || end); i--) chunk = fs[i].onData(false, chunk, end);
    return chunk;
  }

  private deliver(chunk: Buffer): void {
    if (chunk.length && !this.push(chunk)) this.socket.pause();
  }

  private relayOf(i: number): DataRelay {
    return {
      http: true,
      forward: (fromDownstream, data) => {
        if (fromDownstream) this.deliver(this.received(i + 1, data, false));
        else {
          const out = this.written(this.filters.length - i, data, false);
          if (out.length) this.socket.write(out);
        }
      },
      // As Envoy: both sides are this one connection (the HCM has no upstream connection of its own).
      close: () => this.socket.end(),
    };
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    const out = this.written(0, chunk, false);
    if (out.length) this.socket.write(out, cb);
    else cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const out = this.written(0, EMPTY, true);
    if (out.length) this.socket.write(out);
    this.socket.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.socket.destroyed) this.socket.destroy();
    cb(err);
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }

  /** net.Socket's: destroyed once what was written has gone out. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }
}
