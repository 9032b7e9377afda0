// grpc.health.v1 for tests: the service definition a grpc-js server needs, and a server on
// node:http2 (h2c) answering every Check with SERVING: unlike a grpc-js server, its 'connection'
// event hands over each accepted socket (peer address, socket options).
import http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { HealthCheckRequest, HealthCheckResponse, SERVING } from '../../src/proxy/upstream/health-check-grpc.ts';

/** grpc.health.v1.Health/Check for a grpc-js server, with the messages the proxy's checker encodes. */
export const HEALTH_SERVICE: grpc.ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: object) => Buffer.from(HealthCheckRequest.encode(HealthCheckRequest.create(v)).finish()),
    requestDeserialize: (b: Buffer) => HealthCheckRequest.toObject(HealthCheckRequest.decode(b)),
    responseSerialize: (v: object) => Buffer.from(HealthCheckResponse.encode(HealthCheckResponse.create(v)).finish()),
    responseDeserialize: (b: Buffer) => HealthCheckResponse.toObject(HealthCheckResponse.decode(b)),
  },
};

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
