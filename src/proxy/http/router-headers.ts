// The x-envoy-* request headers that steer Envoy's router for one request (they only survive on
// internal requests: header-sanitizing.ts strips them from external ones), consumed here so that
// they do not reach the upstream:
//   x-envoy-upstream-rq-timeout-ms          replaces the route timeout (0: none)
//   x-envoy-upstream-rq-per-try-timeout-ms  replaces the per-try timeout (ignored unless below the timeout)
//   x-envoy-retry-on / x-envoy-retry-grpc-on added to the route's retry_on (a route without a retry
//                                           policy gets Envoy's default one: 1 retry, 25 ms backoff)
//   x-envoy-max-retries                     replaces num_retries (only when some retry_on applies)
//   x-envoy-retriable-status-codes          added to retriable_status_codes
import type { HeaderMap } from '../filters/filter.ts';
import { RetryOn, type RetryPolicy } from '../routing/retry-policy.ts';

export const HTTP_RETRY_ON: Readonly<Record<string, number>> = {
  '5xx': RetryOn.S5xx,
  'gateway-error': RetryOn.GatewayError,
  reset: RetryOn.Reset,
  'reset-before-request': RetryOn.ResetBeforeRequest,
  'connect-failure': RetryOn.ConnectFailure,
  'envoy-ratelimited': RetryOn.EnvoyRateLimited,
  'retriable-4xx': RetryOn.Retriable4xx,
  'refused-stream': RetryOn.RefusedStream,
  'retriable-status-codes': RetryOn.RetriableStatusCodes,
  'retriable-headers': RetryOn.RetriableHeaders,
  // No HTTP/3 upstreams here: accepted, never applies.
  'http3-post-connect-failure': 0,
};

export const GRPC_RETRY_ON: Readonly<Record<string, number>> = {
  cancelled: RetryOn.GrpcCancelled,
  'deadline-exceeded': RetryOn.GrpcDeadlineExceeded,
  internal: RetryOn.GrpcInternal,
  'resource-exhausted': RetryOn.GrpcResourceExhausted,
  unavailable: RetryOn.GrpcUnavailable,
};

const DEFAULT_POLICY: RetryPolicy = {
  retryOn: 0,
  numRetries: 1,
  perTryTimeoutMs: 0,
  perTryIdleTimeoutMs: 0,
  baseIntervalMs: 25,
  maxIntervalMs: 250,
  retriableStatusCodes: new Set(),
  retriableHeaders: [],
  avoidPreviousHosts: false,
  previousPrioritiesFrequency: 0,
};

/** Whether some header is named x-envoy-*: one look at a request's few names, where each x-envoy- lookup is a keyed load of its own. */
export function hasEnvoyHeader(h: HeaderMap): boolean {
  for (const k in h) if (k.startsWith('x-envoy-')) return true;
  return false;
}

function take(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  if (v === undefined) return undefined;
  delete h[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function uint(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,15}$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

/** Unknown names are skipped, as Envoy does (strict_check_headers refuses them before). */
function retryBits(v: string | undefined, names: Readonly<Record<string, number>>): number {
  let bits = 0;
  if (v) for (const p of v.split(',')) bits |= names[p.trim()] ?? 0;
  return bits;
}

function peek(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/**
 * Whether this request may be retried (Envoy's RetryState enabled: some retry_on and retries left)
 * under the route's policy merged with its retry headers, which are left in place. The router
 * buffers the request body for replay only then, as Envoy does.
 */
export function retriesEnabled(h: HeaderMap, route: RetryPolicy | undefined): boolean {
  const on = peek(h, 'x-envoy-retry-on');
  const grpcOn = peek(h, 'x-envoy-retry-grpc-on');
  const retryOn = (route?.retryOn ?? 0) | retryBits(on, HTTP_RETRY_ON) | retryBits(grpcOn, GRPC_RETRY_ON);
  if (retryOn === 0) return false;
  return (uint(peek(h, 'x-envoy-max-retries')) ?? (route ?? DEFAULT_POLICY).numRetries) > 0;
}

/**
 * The request's global timeout: the header's, else the route's (`routeMs`). With the router's
 * respect_expected_rq_timeout, x-envoy-expected-rq-timeout-ms (set by the proxy before this one)
 * comes first and x-envoy-upstream-rq-timeout-ms then stays, as in Envoy.
 */
export function takeTimeoutHeader(h: HeaderMap, routeMs: number, respectExpected = false): number {
  if (respectExpected) {
    const expected = uint(peek(h, 'x-envoy-expected-rq-timeout-ms'));
    if (expected !== undefined) return expected;
  }
  return uint(take(h, 'x-envoy-upstream-rq-timeout-ms')) ?? routeMs;
}

/** The retry policy of this request: the route's merged with the retry headers, which are removed. */
export function takeRetryHeaders(h: HeaderMap, route: RetryPolicy | undefined, timeoutMs: number): RetryPolicy | undefined {
  const on = take(h, 'x-envoy-retry-on');
  const grpcOn = take(h, 'x-envoy-retry-grpc-on');
  const max = uint(take(h, 'x-envoy-max-retries'));
  const codes = take(h, 'x-envoy-retriable-status-codes');
  const perTry = uint(take(h, 'x-envoy-upstream-rq-per-try-timeout-ms'));
  if (on === undefined && grpcOn === undefined && max === undefined && codes === undefined && perTry === undefined) return route;
  const base = route ?? DEFAULT_POLICY;
  const retryOn = base.retryOn | retryBits(on, HTTP_RETRY_ON) | retryBits(grpcOn, GRPC_RETRY_ON);
  let retriableStatusCodes = base.retriableStatusCodes;
  if (codes) {
    const add = codes.split(',').map((c) => Number(c.trim())).filter((c) => Number.isInteger(c) && c >= 100 && c <= 599);
    if (add.length) retriableStatusCodes = new Set([...retriableStatusCodes, ...add]);
  }
  let perTryTimeoutMs = perTry ?? base.perTryTimeoutMs;
  if (perTry !== undefined && timeoutMs > 0 && perTry >= timeoutMs) perTryTimeoutMs = base.perTryTimeoutMs;
  if (retryOn === 0 && !route) return perTryTimeoutMs ? { ...DEFAULT_POLICY, numRetries: 0, perTryTimeoutMs } : undefined;
  return { ...base, retryOn, numRetries: retryOn !== 0 && max !== undefined ? max : base.numRetries, retriableStatusCodes, perTryTimeoutMs };
}
