// The control plane's one gRPC server. ADS is registered here; the CA's certificate service
// (and ADS over TLS on 15012) attach to the same server: `addService(definition, impl)` and
// `bindTls(port, credentials)`.
import * as grpc from '@grpc/grpc-js';
import { decodeMessage } from '../../envoy/index.ts';
import type { DiscoveryResponseJson } from './ads-connection.ts';
import type { DiscoveryRequestJson } from './discovery-server.ts';
import { encodeDiscoveryResponseTransient } from './response-encoder.ts';

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/** The ADS service definition (state of the world; delta xDS is answered UNIMPLEMENTED by grpc-js), requests decoded with src/envoy's protobuf types, responses assembled from per-resource pieces encoded once. */
export function adsServiceDefinition(): grpc.ServiceDefinition {
  const method = (path: string, originalName: string) => ({
    path,
    requestStream: true,
    responseStream: true,
    originalName,
    requestDeserialize: (buf: Buffer) => decodeMessage('envoy.service.discovery.v3.DiscoveryRequest', buf) as DiscoveryRequestJson,
    requestSerialize: () => Buffer.alloc(0),
    // grpc-js copies the serialized bytes into its framed message at once (server-interceptors serializeMessage).
    responseSerialize: (msg: DiscoveryResponseJson) => encodeDiscoveryResponseTransient(msg),
    responseDeserialize: (buf: Buffer) => buf as never,
  });
  return {
    StreamAggregatedResources: method(ADS_PATH, 'streamAggregatedResources'),
  } as unknown as grpc.ServiceDefinition;
}

export function createGrpcServer(): grpc.Server {
  return new grpc.Server({
    'grpc.max_receive_message_length': 64 << 20,
    'grpc.max_send_message_length': 256 << 20,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  });
}

export function bindServer(server: grpc.Server, host: string, port: number, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(`${host}:${port}`, creds, (err, bound) => (err ? reject(err) : resolve(bound))));
}
