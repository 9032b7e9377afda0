// The gRPC upstream: a @grpc/grpc-js server with one unary method that answers 1 KB.
// Runs as its own process (`node bench/servers/grpc-server.ts PORT`), pinned like the others.
import * as grpc from '@grpc/grpc-js';

/** One unary method whose messages are raw bytes (no protobuf schema needed). */
export const ECHO_SERVICE = {
  get: {
    path: '/rig.bench.Echo/Get',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;

export const GRPC_PATH = ECHO_SERVICE.get.path;

if (import.meta.main) {
  const port = Number(process.argv[2]);
  const reply = Buffer.alloc(1024, 'x');
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, {
    get: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, reply),
  });
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      process.stderr.write(`grpc-server: ${err.message}\n`);
      process.exit(1);
    }
  });
  process.on('SIGTERM', () => server.forceShutdown());
}
