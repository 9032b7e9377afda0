// A grpc.health.v1 server on node:http2 (h2c) answering every Check with SERVING: unlike a grpc-js
// server, its 'connection' event hands over each accepted socket (peer address, socket options).
import http2 from 'node:http2';
import { HealthCheckResponse, SERVING } from '../../src/proxy/upstream/health-check-grpc.ts';

/** `onCheck` sees the request headers of each call (:authority, metadata). */
export function grpcHealthServer(onCheck?: (headers: http2.IncomingHttpHeaders) => void): http2.Http2Server {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.resume();
    onCheck?.(headers);
    if (headers[':path'] !== '/grpc.health.v1.Health/Check') return void stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
    const msg = HealthCheckResponse.encode(HealthCheckResponse.create({ status: SERVING })).finish();
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt32BE(msg.length, 1);
    frame.set(msg, 5);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  });
  return server;
}
