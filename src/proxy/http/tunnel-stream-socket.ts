// The inside of an HTTP/2 CONNECT tunnel (one stream of a downstream HTTP/2 session) as the
// socket of a new downstream connection, for connect-redispatch.ts: the accept path of a listener
// (listener filters, TLS, network filters, the HTTP/1.1 and HTTP/2 codecs) reads and writes it as
// it does an accepted TCP socket. It is a Duplex over the stream (node:tls and node:http2 take any
// Duplex) with the members of net.Socket that path uses: the addresses (those of the HTTP/2
// connection's socket, as an HTTP/1.1 CONNECT's inside has), byte counts, and setNoDelay,
// setKeepAlive and destroySoon, which concern the connection underneath and do nothing here.
// Ending it ends the stream (END_STREAM, a half-close); destroying it before both sides ended
// resets the stream (RST_STREAM CONNECT_ERROR on an error, CANCEL otherwise).
import http2 from 'node:http2';
import type net from 'node:net';
import { Duplex } from 'node:stream';

const { NGHTTP2_CANCEL, NGHTTP2_CONNECT_ERROR } = http2.constants;

export class TunnelStreamSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  bytesRead = 0;
  bytesWritten = 0;
  private readonly stream: http2.ServerHttp2Stream;

  constructor(stream: http2.ServerHttp2Stream) {
    super({ allowHalfOpen: true, readableHighWaterMark: stream.readableHighWaterMark, writableHighWaterMark: stream.writableHighWaterMark });
    this.stream = stream;
    const under = stream.session?.socket;
    this.remoteAddress = under?.remoteAddress;
    this.remotePort = under?.remotePort;
    this.localAddress = under?.localAddress;
    this.localPort = under?.localPort;
    stream.on('data', (chunk: Buffer) => {
      this.bytesRead += chunk.length;
      if (!this.push(chunk)) stream.pause();
    });
    stream.once('end', () => this.push(null));
    stream.on('error', (err) => this.destroy(err));
    stream.once('close', () => this.destroy());
  }

  /** This object as the socket type of the accept path (the members it uses are here). */
  asSocket(): net.Socket {
    return this as unknown as net.Socket;
  }

  override _read(): void {
    this.stream.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    this.stream.write(chunk, encoding, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.stream.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const s = this.stream;
    if (!s.destroyed && !(s.writableFinished && s.readableEnded)) s.close(err ? NGHTTP2_CONNECT_ERROR : NGHTTP2_CANCEL);
    cb(err);
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  /** net.Socket's: destroyed once what was written has gone out. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }
}
