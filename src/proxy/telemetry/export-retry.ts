// GrpcService.retry_policy (config.core.v3.RetryPolicy) on a tracer's OTLP/gRPC exports, turned
// into a retry policy as Envoy's envoy_grpc client turns it into its router's
// (Http::Utility::convertCoreToRouteRetryPolicy): num_retries (default 1), retry_back_off (base
// default 1 s, max default 10 × base; full-jitter exponential backoff), a per-try timeout of the
// max interval. num_retries and retry_back_off are read by readCoreRetry, as for the fetches
// filters make (Envoy gives both the same defaults and backoff). The conditions are retry_on's,
// with the route's names. Envoy's conversion for envoy_grpc leaves them empty, so a policy without
// retry_on retries nothing, there as here (a warning says so). What each condition means for one export call (a unary call, its message
// buffered):
//   cancelled, deadline-exceeded, internal, resource-exhausted, unavailable: that grpc-status in the
//     response headers (a trailers-only response; as Envoy, a status in trailers is not retried);
//   5xx: an HTTP 5xx or no response at all (reset, connect failure, per-try timeout);
//   gateway-error: 502, 503, 504 or no response; reset: no response; retriable-4xx: 409;
//   connect-failure, reset-before-request: no connection could be made.
// refused-stream, retriable-status-codes, retriable-headers and envoy-ratelimited cannot match an
// export here (an HTTP/2 REFUSED_STREAM is not told apart from other resets; the core policy has no
// status or header lists; no rate limit filter on exports): they are warned about.
import type { Reader } from '../config/reader.ts';
import { readCoreRetry, type CoreRetry } from '../filters/remote-fetch-retry.ts';
import { parseRetryOn, RetryOn } from '../routing/retry-policy.ts';
import type { GrpcCallError } from '../upstream/cluster-grpc.ts';

export interface ExportRetryPolicy extends CoreRetry {
  readonly retryOn: number;
  /** Envoy's conversion: the max interval. */
  readonly perTryTimeoutMs: number;
}

const GRPC_STATUS_BITS: Readonly<Record<number, number>> = {
  1: RetryOn.GrpcCancelled,
  4: RetryOn.GrpcDeadlineExceeded,
  8: RetryOn.GrpcResourceExhausted,
  13: RetryOn.GrpcInternal,
  14: RetryOn.GrpcUnavailable,
};

const NEVER_ON_EXPORTS: readonly [number, string][] = [
  [RetryOn.RefusedStream, 'refused-stream (an HTTP/2 REFUSED_STREAM reset is not told apart from other resets: use reset)'],
  [RetryOn.RetriableStatusCodes, 'retriable-status-codes (the core RetryPolicy has no retriable_status_codes)'],
  [RetryOn.RetriableHeaders, 'retriable-headers (the core RetryPolicy has no retriable_headers)'],
  [RetryOn.EnvoyRateLimited, 'envoy-ratelimited (no rate limit filter runs on span exports)'],
];

export function readExportRetryPolicy(r: Reader): ExportRetryPolicy {
  const retryOn = parseRetryOn(r.str('retry_on'), r.at('retry_on'), r);
  if (retryOn === 0) r.issues.warn(r.at('retry_on'), 'no retry_on conditions: span exports are not retried (Envoy converts this policy without any); e.g. retry_on: unavailable');
  for (const [bit, what] of NEVER_ON_EXPORTS) if (retryOn & bit) r.issues.warn(r.at('retry_on'), `${what} never applies to span exports`);
  const { numRetries, baseIntervalMs, maxIntervalMs } = readCoreRetry(r);
  // Host selection and priorities: one collector call picks its host from the cluster's load balancer each time.
  for (const k of ['retry_priority', 'retry_host_predicate', 'host_selection_retry_max_attempts']) {
    if (r.has(k)) r.issues.warn(r.at(k), 'has no effect on span exports: each attempt picks a host from the collector cluster\'s load balancer');
  }
  r.accept('retry_priority', 'retry_host_predicate', 'host_selection_retry_max_attempts');
  r.done();
  return { retryOn, numRetries, baseIntervalMs, maxIntervalMs, perTryTimeoutMs: maxIntervalMs };
}

/** Whether a failed export call meets one of the policy's conditions. */
export function exportRetriable(p: ExportRetryPolicy, e: GrpcCallError): boolean {
  const on = p.retryOn;
  if (e.httpStatus === 0) {
    if (on & (RetryOn.Reset | RetryOn.S5xx | RetryOn.GatewayError)) return true;
    return e.connectFailure && (on & (RetryOn.ConnectFailure | RetryOn.ResetBeforeRequest)) !== 0;
  }
  if (e.httpStatus >= 500 && on & RetryOn.S5xx) return true;
  if (e.httpStatus >= 502 && e.httpStatus <= 504 && on & RetryOn.GatewayError) return true;
  if (e.httpStatus === 409 && on & RetryOn.Retriable4xx) return true;
  return e.statusInHeaders && e.grpcStatus !== undefined && ((GRPC_STATUS_BITS[e.grpcStatus] ?? 0) & on) !== 0;
}
