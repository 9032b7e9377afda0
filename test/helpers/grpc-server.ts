// A real gRPC server for tests (an upstream, a collector, a health service): on 127.0.0.1
// (plaintext unless given credentials), port picked by the OS, shut down when the test ends.
import * as grpc from '@grpc/grpc-js';

/** Serves `service` with `handlers`; returns the port. */
export async function startGrpcServer(
  t: { after(fn: () => unknown): void },
  service: grpc.ServiceDefinition,
  handlers: grpc.UntypedServiceImplementation,
  credentials = grpc.ServerCredentials.createInsecure(),
): Promise<number> {
  const server = new grpc.Server();
  server.addService(service, handlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (e, p) => (e ? reject(e) : resolve(p))));
  t.after(() => server.forceShutdown());
  return port;
}
