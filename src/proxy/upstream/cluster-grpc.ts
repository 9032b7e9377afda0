// Unary gRPC calls the proxy makes on its own behalf through one of its clusters, as Envoy's
// envoy_grpc client (GrpcService.envoy_grpc) does: a POST over the cluster's HTTP/2 pool (its load
// balancer, connection pool and transport socket), :authority from envoy_grpc.authority or the
// cluster name, content-type application/grpc, te: trailers, grpc-timeout when the service has a
// timeout, initial_metadata as headers (`-bin` values base64-encoded), x-envoy-internal: true and
// this proxy's address appended to x-forwarded-for (unless envoy_grpc.skip_envoy_headers), and the
// message in gRPC's 5-byte length-prefixed framing. The call succeeds only with HTTP 200 and grpc-status 0, read
// from the trailers or from a trailers-only response's headers. A failed call rejects with a
// GrpcCallError telling what a retry policy needs: the HTTP status (0: no response), the gRPC status
// and whether it came in the response headers (trailers-only), and whether the connection failed.
import type { ClusterManager } from './cluster-manager.ts';
import { decodeMessage, encodeMessage, type EnvoyJson } from '../../envoy/index.ts';
import type { GrpcServiceConfig } from '../config/grpc-service.ts';
import { requestThroughCluster } from './cluster-request.ts';
import { localAddress } from '../local-address.ts';
import { firstHeaderValue } from '../http/first-header-value.ts';

export interface GrpcCall {
  readonly cluster: string;
  /** `/<package>.<Service>/<Method>`. */
  readonly path: string;
  /** :authority (envoy_grpc.authority; Envoy's default is the cluster name). */
  readonly authority: string;
  /** The service timeout, sent as grpc-timeout; 0: none configured. */
  readonly timeoutMs: number;
  /** Bounds the call when the service has no timeout of its own. */
  readonly deadlineMs: number;
  /** GrpcService.initial_metadata, in order; a later entry replaces an earlier one of the same name. */
  readonly metadata?: readonly (readonly [string, string])[];
  /** Set after the metadata, as Envoy's callers set theirs when the stream starts. */
  readonly userAgent?: string;
  /** GrpcService.envoy_grpc.skip_envoy_headers: no x-envoy-internal and x-forwarded-for on the call. */
  readonly skipEnvoyHeaders?: boolean;
  /** GrpcService.envoy_grpc.max_receive_message_length: a longer response message fails the call; 0 or unset: no limit. */
  readonly maxReceiveBytes?: number;
  /** Cancels the call (e.g. the downstream stream or connection that needed it is gone). */
  readonly signal?: AbortSignal;
  /** Bounds this attempt below the service timeout (a retry policy's per-try timeout); unset: none. */
  readonly tryTimeoutMs?: number;
}

/** Socket errors of a connection that never got established (Envoy's connect-failure). */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

export class GrpcCallError extends Error {
  /** The response's HTTP status; 0 when none came (reset, connect failure, timeout). */
  readonly httpStatus: number;
  /** grpc-status of the response, if it had one. */
  readonly grpcStatus: number | undefined;
  /** The status came in the response headers (a trailers-only response), not in trailers. */
  readonly statusInHeaders: boolean;
  /** No connection to the host could be established. */
  readonly connectFailure: boolean;

  constructor(message: string, o: { httpStatus?: number; grpcStatus?: number; statusInHeaders?: boolean; connectFailure?: boolean; cause?: unknown }) {
    super(message, { cause: o.cause });
    this.name = 'GrpcCallError';
    this.httpStatus = o.httpStatus ?? 0;
    this.grpcStatus = o.grpcStatus;
    this.statusInHeaders = o.statusInHeaders ?? false;
    this.connectFailure = o.connectFailure ?? false;
  }
}

/** Whether a request failure (requestThroughCluster's rejection) is a connection that could not be made. */
function isConnectFailure(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && CONNECT_FAILURES.has(e.code)) return true;
  }
  return false;
}

/** gRPC's largest timeout value (8 digits). */
const MAX_TIMEOUT_VALUE = 99_999_999;
const UNITS = ['m', 'S', 'M', 'H'] as const;
const UNIT_STEP = [1000, 60, 60] as const;

/** The grpc-timeout header for `ms`: milliseconds, or the next unit up (rounded up) when that is too many digits. */
export function grpcTimeoutHeader(ms: number): string {
  let value = Math.ceil(ms);
  let unit = 0;
  while (value > MAX_TIMEOUT_VALUE && unit < UNIT_STEP.length) value = Math.ceil(value / UNIT_STEP[unit++]);
  return `${Math.min(value, MAX_TIMEOUT_VALUE)}${UNITS[unit]}`;
}

/** One uncompressed gRPC message: flag 0, 32-bit big-endian length, the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function grpcMessage(v: string | undefined): string {
  if (!v) return '';
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/**
 * Sends `message` to `call.path` through `call.cluster` and resolves with the response message;
 * rejects with a readable Error when the cluster is missing or
 * not HTTP/2, the request fails or times out, or the call ends with a non-OK status.
 */
export async function grpcCallThroughCluster(clusters: ClusterManager, call: GrpcCall, message: Uint8Array): Promise<Buffer> {
  const cluster = clusters.get(call.cluster);
  if (!cluster) throw new Error(`cluster ${call.cluster} is not configured`);
  if (!cluster.config.http2) {
    throw new Error(
      `cluster ${call.cluster} does not speak HTTP/2, which gRPC needs: give it http2_protocol_options, or typed_extension_protocol_options ` +
        '(envoy.extensions.upstreams.http.v3.HttpProtocolOptions) with explicit_http_config.http2_protocol_options',
    );
  }
  const headers: Record<string, string> = { host: call.authority, 'content-type': 'application/grpc', te: 'trailers' };
  if (call.timeoutMs > 0) headers['grpc-timeout'] = grpcTimeoutHeader(call.timeoutMs);
  for (const [name, value] of call.metadata ?? []) headers[name] = name.endsWith('-bin') ? Buffer.from(value, 'latin1').toString('base64') : value;
  if (call.userAgent) headers['user-agent'] = call.userAgent;
  if (!call.skipEnvoyHeaders) {
    // As Envoy's async HTTP stream: set after the metadata, the address appended to any given.
    headers['x-envoy-internal'] = 'true';
    const xff = headers['x-forwarded-for'];
    headers['x-forwarded-for'] = xff ? `${xff},${localAddress()}` : localAddress();
  }
  const bound = call.timeoutMs > 0 ? call.timeoutMs : call.deadlineMs;
  const timeoutMs = call.tryTimeoutMs ? Math.min(bound, call.tryTimeoutMs) : bound;
  const res = await requestThroughCluster(clusters, { cluster: call.cluster, method: 'POST', path: call.path, headers, body: grpcFrame(message), timeoutMs, signal: call.signal }).catch((err: Error) => {
    throw new GrpcCallError(err.message, { connectFailure: isConnectFailure(err), cause: err });
  });
  const inTrailers = firstHeaderValue(res.trailers['grpc-status']);
  const status = inTrailers ?? firstHeaderValue(res.headers['grpc-status']);
  if (res.status !== 200 || status !== '0') {
    const detail = grpcMessage(firstHeaderValue(res.trailers['grpc-message']) ?? firstHeaderValue(res.headers['grpc-message']));
    const grpcStatus = status !== undefined && /^\d+$/.test(status) ? Number(status) : undefined;
    throw new GrpcCallError(`${call.path} through cluster ${call.cluster}: HTTP ${res.status}, grpc-status ${status ?? 'missing'}${detail ? ` (${detail})` : ''}`, { httpStatus: res.status, grpcStatus, statusInHeaders: inTrailers === undefined && grpcStatus !== undefined });
  }
  // As Envoy's unary calls: an OK status without a (well-formed, uncompressed) message is a failure.
  const body = res.body;
  if (body.length === 0) throw new Error(`${call.path} through cluster ${call.cluster}: grpc-status 0 without a response message`);
  if (body.length < 5 || body[0] !== 0 || body.length !== 5 + body.readUInt32BE(1)) throw new Error(`${call.path} through cluster ${call.cluster}: a malformed response message`);
  const max = call.maxReceiveBytes ?? 0;
  if (max > 0 && body.length - 5 > max) throw new Error(`${call.path} through cluster ${call.cluster}: the response message (${body.length - 5} bytes) exceeds max_receive_message_length ${max}`);
  return body.subarray(5);
}

/** A method of a service the proxy calls: its path and its message types. */
export interface GrpcMethod {
  /** `/<package>.<Service>/<Method>`. */
  readonly path: string;
  readonly request: string;
  readonly response: string;
}

/**
 * One unary call to a configured GrpcService (ext_authz's Check, the rate limit service's
 * ShouldRateLimit): the decoded response, or a readable reason for the caller's failure mode.
 */
export async function callGrpcService(clusters: ClusterManager, s: GrpcServiceConfig, method: GrpcMethod, request: EnvoyJson, deadlineMs: number, signal: AbortSignal): Promise<{ response: EnvoyJson } | { error: string }> {
  let bytes: Buffer;
  try {
    const call = { cluster: s.cluster, path: method.path, authority: s.authority, timeoutMs: s.timeoutMs, deadlineMs, metadata: s.initialMetadata, maxReceiveBytes: s.maxReceiveBytes, skipEnvoyHeaders: s.skipEnvoyHeaders, signal };
    bytes = await grpcCallThroughCluster(clusters, call, encodeMessage(method.request, request));
  } catch (e) {
    return { error: (e as Error).message };
  }
  try {
    return { response: decodeMessage(method.response, bytes) };
  } catch (e) {
    const name = method.path.slice(method.path.lastIndexOf('/') + 1);
    return { error: `${name} answered an undecodable ${method.response.slice(method.response.lastIndexOf('.') + 1)}: ${(e as Error).message}` };
  }
}
