// A TCP server that reads the PROXY header each connection starts with (as an upstream behind
// Envoy's upstream_proxy_protocol transport socket does), records it, and hands the rest of the
// connection to a server of the test's choice (HTTP, h2, TLS).
import net from 'node:net';
import { Duplex } from 'node:stream';

export interface HeaderServer {
  port: number;
  /** The PROXY header of each accepted connection, in order. */
  headers: Buffer[];
  close(): Promise<void>;
}

/**
 * Reads a PROXY header (v1: up to CRLF; v2: 16 bytes + length), then hands the rest of the
 * connection to `serve`, as a JS stream: node's HTTP and TLS servers read a socket's handle
 * directly, past the bytes put back after the header.
 */
export async function startHeaderServer(t: { after(fn: () => unknown): void }, serve: (stream: Duplex) => void): Promise<HeaderServer> {
  const headers: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const v2 = buf[0] === 0x0d;
      const length = v2 ? (buf.length >= 16 ? 16 + buf.readUInt16BE(14) : -1) : buf.indexOf('\r\n') < 0 ? -1 : buf.indexOf('\r\n') + 2;
      if (length < 0 || buf.length < length) return;
      socket.off('data', onData);
      socket.pause();
      headers.push(buf.subarray(0, length));
      if (buf.length > length) socket.unshift(buf.subarray(length));
      const stream = Duplex.from({ readable: socket, writable: socket });
      // Torn down at the test's end, mid-stream: not the test's concern.
      stream.on('error', () => undefined);
      serve(stream);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  t.after(close);
  return { port: (server.address() as net.AddressInfo).port, headers, close };
}
