// gRPC active health checks (Envoy's grpc_health_check): grpc.health.v1.Health/Check with
// `service_name`, :authority `authority` (the cluster name when empty) and initial_metadata;
// healthy only with HTTP 200, grpc-status 0 and the answer SERVING. Any other answer, HTTP status
// or gRPC status fails the host at once (Envoy's ACTIVE failure); a connection or stream error and
// the timeout are network failures. As Envoy's checker (an HTTP/2 codec client, not a gRPC
// library), the call is one HTTP/2 stream on the host's kept session (health-check-h2.ts), whose
// connection is the cluster's: upstream_bind_config, tcp_keepalive, TLS, PROXY header.
import http2 from 'node:http2';
import protobuf from 'protobufjs';
import type { Host } from './host.ts';
import { CheckResult, withTimeout, type Prober } from './health-check-prober.ts';
import type { CheckConnector } from './health-check-transport.ts';
import { CheckSessions } from './health-check-h2.ts';
import { list, object, string, warnUnsupported, type ConfigIssues, type Json } from './lb/config-fields.ts';

const HEALTH_PROTO = `syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}`;

const root = protobuf.parse(HEALTH_PROTO).root;
export const HealthCheckRequest = root.lookupType('grpc.health.v1.HealthCheckRequest');
export const HealthCheckResponse = root.lookupType('grpc.health.v1.HealthCheckResponse');
export const SERVING = 1;
const CHECK_PATH = '/grpc.health.v1.Health/Check';

export interface GrpcCheckConfig {
  serviceName: string;
  authority: string;
  metadata: [string, string][];
}

export function compileGrpcCheck(o: Json, path: string, clusterName: string, issues: ConfigIssues): GrpcCheckConfig {
  warnUnsupported(o, ['service_name', 'authority', 'initial_metadata'], path, issues);
  const metadata: [string, string][] = [];
  list(o.initial_metadata, `${path}.initial_metadata`, issues).forEach((h, i) => {
    const hp = `${path}.initial_metadata[${i}]`;
    const hv = object(object(h, hp, issues)?.header, `${hp}.header`, issues);
    const key = string(hv, 'key', `${hp}.header`, issues);
    if (key) metadata.push([key.toLowerCase(), string(hv, 'value', `${hp}.header`, issues) ?? '']);
  });
  return { serviceName: string(o, 'service_name', path, issues) ?? '', authority: string(o, 'authority', path, issues) || clusterName, metadata };
}

/** The request message in gRPC's length-prefixed framing (uncompressed). */
function frame(service: string): Buffer {
  const msg = HealthCheckRequest.encode(HealthCheckRequest.create({ service })).finish();
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

/** The answer's ServingStatus; undefined when the body is not one uncompressed HealthCheckResponse. */
function servingStatus(body: Buffer): number | undefined {
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) return undefined;
  try {
    return (HealthCheckResponse.toObject(HealthCheckResponse.decode(body.subarray(5)), { enums: Number }) as { status?: number }).status ?? 0;
  } catch {
    return undefined;
  }
}

export class GrpcProber implements Prober {
  readonly #headers: http2.OutgoingHttpHeaders;
  readonly #request: Buffer;
  readonly #sessions: CheckSessions;

  constructor(config: GrpcCheckConfig, connector: CheckConnector) {
    const headers: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of config.metadata) headers[k] = v;
    // Without a cluster name (a checker made on its own) node:http2 sends the host's address.
    if (config.authority) headers[':authority'] = config.authority;
    this.#headers = { ...headers, ':method': 'POST', ':path': CHECK_PATH, 'content-type': 'application/grpc', te: 'trailers' };
    this.#request = frame(config.serviceName);
    this.#sessions = new CheckSessions(connector);
  }

  probe(host: Host, timeoutMs: number): Promise<CheckResult> {
    let stream: http2.ClientHttp2Stream | undefined;
    return withTimeout(timeoutMs, () => stream?.close(http2.constants.NGHTTP2_CANCEL), (done) => {
      let s;
      try {
        s = this.#sessions.get(host);
      } catch {
        return done(CheckResult.NetworkFailure);
      }
      stream = s.request(this.#headers);
      stream.end(this.#request);
      const chunks: Buffer[] = [];
      let grpcStatus: string | undefined;
      stream.on('response', (h) => {
        // Not gRPC at all: Envoy ends the call here (non-200 HTTP response, invalid content-type).
        if (Number(h[':status']) !== 200 || !String(h['content-type'] ?? '').startsWith('application/grpc')) done(CheckResult.ActiveFailure);
        grpcStatus = h['grpc-status'] as string | undefined; // trailers-only
      });
      stream.on('trailers', (h) => (grpcStatus = h['grpc-status'] as string | undefined));
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('end', () => done(grpcStatus === '0' && servingStatus(Buffer.concat(chunks)) === SERVING ? CheckResult.Success : CheckResult.ActiveFailure));
      // A reset, or the session's connection failing (a no-op after 'end').
      stream.on('close', () => done(CheckResult.NetworkFailure));
      stream.on('error', () => done(CheckResult.NetworkFailure));
    });
  }

  forget(host: Host): void {
    this.#sessions.forget(host);
  }

  close(): void {
    this.#sessions.close();
  }
}
