// The proxy's own address, as Envoy's LocalInfo has it (Network::Utility::getLocalAddress for IPv4,
// its default): the first non-loopback IPv4 address of the machine's interfaces, else 127.0.0.1.
// Envoy puts it in x-forwarded-for on the gRPC calls it makes itself (envoy_grpc without
// skip_envoy_headers). Read once, as Envoy reads it at start.
import os from 'node:os';

let cached: string | undefined;

export function localAddress(): string {
  if (cached === undefined) {
    const ipv4 = Object.values(os.networkInterfaces())
      .flatMap((list) => list ?? [])
      .filter((a) => a.family === 'IPv4');
    cached = ipv4.find((a) => !a.internal)?.address ?? '127.0.0.1';
  }
  return cached;
}
