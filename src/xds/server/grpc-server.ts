// The control plane's one gRPC server. ADS is registered here; the CA's certificate service
// (and ADS over TLS on 15012) attach to the same server: `addService(definition, impl)` and
// `bindTls(port, credentials)`.
import * as grpc from '@grpc/grpc-js';
import { BaseServerInterceptingCall } from '@grpc/grpc-js/build/src/server-interceptors.js';
import { EncodedResponse } from './encoded-response.ts';
import { decodeDiscoveryRequest } from './request-decoder.ts';

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/**
 * Whether grpc-js writes an EncodedResponse's frame to the HTTP/2 stream as is. grpc-js frames
 * each serialized message into a fresh buffer (allocate + copy: for a 523 KB route table pushed to
 * 2000 proxies, 1 GB allocated, copied and held by the write queues); an EncodedResponse already
 * is that frame and is shared by every stream that gets it. The hook sits on grpc-js's internal
 * serializeMessage (checked here; tested in test/xds/response-encoder.test.ts): without it the
 * serializer below hands grpc-js the unframed body, which works at the cost of the copies.
 */
export const framesSentAsIs = sendFramesAsIs();

function sendFramesAsIs(): boolean {
  const proto = BaseServerInterceptingCall.prototype as unknown as { serializeMessage?: (value: unknown) => Buffer };
  const original = proto.serializeMessage;
  if (typeof original !== 'function') return false;
  proto.serializeMessage = function serializeMessage(this: unknown, value: unknown): Buffer {
    return value instanceof EncodedResponse ? value.frame : original.call(this, value);
  };
  return true;
}

/** The ADS service definition (state of the world; delta xDS is answered UNIMPLEMENTED by grpc-js), requests decoded with src/envoy's protobuf types, responses pre-encoded (EncodedResponse). */
export function adsServiceDefinition(): grpc.ServiceDefinition {
  const method = (path: string, originalName: string) => ({
    path,
    requestStream: true,
    responseStream: true,
    originalName,
    requestDeserialize: decodeDiscoveryRequest,
    requestSerialize: () => Buffer.alloc(0),
    responseSerialize: (msg: EncodedResponse) => msg.body,
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
