// Envoy's RetryPolicy (route or virtual host), compiled once: retry_on as a bit set.
import type { Reader } from '../config/reader.ts';
import { readHeaderMatcher, type HeaderMatcher } from './header-matcher.ts';

export const RetryOn = {
  S5xx: 1 << 0,
  GatewayError: 1 << 1,
  Reset: 1 << 2,
  ConnectFailure: 1 << 3,
  Retriable4xx: 1 << 4,
  RefusedStream: 1 << 5,
  RetriableStatusCodes: 1 << 6,
  RetriableHeaders: 1 << 7,
  GrpcCancelled: 1 << 8,
  GrpcDeadlineExceeded: 1 << 9,
  GrpcResourceExhausted: 1 << 10,
  GrpcUnavailable: 1 << 11,
  GrpcInternal: 1 << 12,
  ResetBeforeRequest: 1 << 13,
  EnvoyRateLimited: 1 << 14,
} as const;

const NAMES: Record<string, number> = {
  '5xx': RetryOn.S5xx,
  'gateway-error': RetryOn.GatewayError,
  reset: RetryOn.Reset,
  'connect-failure': RetryOn.ConnectFailure,
  'retriable-4xx': RetryOn.Retriable4xx,
  'refused-stream': RetryOn.RefusedStream,
  'retriable-status-codes': RetryOn.RetriableStatusCodes,
  'retriable-headers': RetryOn.RetriableHeaders,
  cancelled: RetryOn.GrpcCancelled,
  'deadline-exceeded': RetryOn.GrpcDeadlineExceeded,
  'resource-exhausted': RetryOn.GrpcResourceExhausted,
  unavailable: RetryOn.GrpcUnavailable,
  internal: RetryOn.GrpcInternal,
  'reset-before-request': RetryOn.ResetBeforeRequest,
  'envoy-ratelimited': RetryOn.EnvoyRateLimited,
};

/** The reset reasons Envoy's RetryStateImpl::wouldRetryFromReset tells apart. */
export const ResetReason = {
  /** The router reset the attempt itself: a per-try timeout (LocalReset). */
  Local: 0,
  ConnectFailure: 1,
  RefusedStream: 2,
  /** A remote reset, a closed connection, a protocol error. */
  Other: 3,
} as const;

const RETRY_ANY_RESET = RetryOn.Reset | RetryOn.S5xx | RetryOn.GatewayError;

/**
 * Envoy's RetryStateImpl::wouldRetryFromReset (retry_state_impl.cc): reset, 5xx and gateway-error
 * retry any reset; refused-stream and connect-failure only their own; reset-before-request any
 * reset while no attempt of the request has sent anything upstream (`requestStarted`: router.cc
 * upstream_request_started_, sticky across attempts). A per-try timeout is a local reset (router.cc
 * onPerTryTimeoutCommon → maybeRetryReset(LocalReset)), so Istio's default
 * connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes never retries one.
 */
export function wouldRetryFromReset(retryOn: number, reason: number, requestStarted: boolean): boolean {
  if (reason === ResetReason.ConnectFailure && retryOn & RetryOn.ConnectFailure) return true;
  if (retryOn & RetryOn.ResetBeforeRequest && !requestStarted) return true;
  if (retryOn & RETRY_ANY_RESET) return true;
  return reason === ResetReason.RefusedStream && (retryOn & RetryOn.RefusedStream) !== 0;
}

export interface RetryPolicy {
  readonly retryOn: number;
  readonly numRetries: number;
  readonly perTryTimeoutMs: number;
  /** per_try_idle_timeout: an attempt without upstream progress for this long ends as a per-try timeout (0: none). */
  readonly perTryIdleTimeoutMs: number;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly retriableHeaders: readonly HeaderMatcher[];
  /** retry_host_predicate envoy.retry_host_predicates.previous_hosts */
  readonly avoidPreviousHosts: boolean;
  /** retry_priority envoy.retry_priorities.previous_priorities update_frequency (0: no retry priority). */
  readonly previousPrioritiesFrequency: number;
}

export function parseRetryOn(text: string, path: string, r: Reader): number {
  let bits = 0;
  for (const part of text.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const b = NAMES[p];
    if (b === undefined) r.issues.error(path, `unknown retry_on value "${p}"; expected one of ${Object.keys(NAMES).join(', ')}`);
    else bits |= b;
  }
  return bits;
}

export function readRetryPolicy(r: Reader): RetryPolicy {
  const retryOn = parseRetryOn(r.str('retry_on'), r.at('retry_on'), r);
  const numRetries = r.num('num_retries', 1);
  const perTryTimeoutMs = r.durationMs('per_try_timeout', 0);
  const perTryIdleTimeoutMs = r.durationMs('per_try_idle_timeout', 0);
  // Without retry_back_off, Envoy's runtime defaults (upstream.base_retry_backoff_ms 25, max 10 × base).
  let baseIntervalMs = 25;
  let maxIntervalMs = 250;
  const bo = r.obj('retry_back_off');
  if (bo) ({ baseIntervalMs, maxIntervalMs } = readRetryBackOff(bo));
  const retriableStatusCodes = new Set(r.list('retriable_status_codes').map(Number));
  const retriableHeaders = r.objs('retriable_headers').map(readHeaderMatcher);
  let avoidPreviousHosts = false;
  for (const p of r.objs('retry_host_predicate')) {
    const name = p.str('name');
    const t = p.get('typed_config') as Record<string, unknown> | undefined;
    if (name === 'envoy.retry_host_predicates.previous_hosts' || String(t?.['@type'] ?? '').endsWith('PreviousHostsPredicate')) avoidPreviousHosts = true;
    else p.issues.error(p.path, `unsupported retry host predicate ${name || String(t?.['@type'])}; supported: envoy.retry_host_predicates.previous_hosts`);
  }
  // The load balancer picks among the hosts not yet attempted directly, so there is nothing to
  // re-draw: host_selection_retry_max_attempts needs no handling.
  r.accept('host_selection_retry_max_attempts');
  let previousPrioritiesFrequency = 0;
  const rp = r.obj('retry_priority');
  if (rp) {
    const t = rp.get('typed_config') as Record<string, unknown> | undefined;
    const name = rp.str('name');
    if (name === 'envoy.retry_priorities.previous_priorities' || String(t?.['@type'] ?? '').endsWith('PreviousPrioritiesConfig')) {
      previousPrioritiesFrequency = Math.max(1, Number(t?.update_frequency ?? 1) || 1);
    } else rp.issues.error(rp.path, `unsupported retry priority ${name || String(t?.['@type'])}; supported: envoy.retry_priorities.previous_priorities`);
    rp.done();
  }
  r.done();
  return { retryOn, numRetries, perTryTimeoutMs, perTryIdleTimeoutMs, baseIntervalMs, maxIntervalMs, retriableStatusCodes, retriableHeaders, avoidPreviousHosts, previousPrioritiesFrequency };
}

/**
 * A route's retry_back_off as Envoy takes it (RetryPolicyImpl; validate rules of RetryBackOff):
 * base_interval required and > 0, max_interval > 0 (default 10 × base); a sub-millisecond interval
 * counts as 1 ms, and max_interval below base_interval is refused.
 */
function readRetryBackOff(bo: Reader): { baseIntervalMs: number; maxIntervalMs: number } {
  if (!bo.has('base_interval')) bo.issues.error(bo.at('base_interval'), 'retry_back_off needs a base_interval (greater than 0), e.g. "0.025s"');
  const base = bo.durationMs('base_interval', 25);
  if (base <= 0) bo.issues.error(bo.at('base_interval'), 'must be greater than 0s');
  const baseIntervalMs = Math.max(1, base);
  const max = bo.durationMs('max_interval', baseIntervalMs * 10);
  if (max <= 0) bo.issues.error(bo.at('max_interval'), 'must be greater than 0s');
  const maxIntervalMs = Math.max(1, max);
  if (max > 0 && maxIntervalMs < baseIntervalMs) bo.issues.error(bo.at('max_interval'), `max_interval (${maxIntervalMs} ms) must be at least base_interval (${baseIntervalMs} ms)`);
  bo.done();
  return { baseIntervalMs, maxIntervalMs };
}

/** Full-jitter exponential backoff as Envoy does it: random in [0, min(base * 2^n, max)). */
export function backoffMs(p: Pick<RetryPolicy, 'baseIntervalMs' | 'maxIntervalMs'>, attempt: number): number {
  const ceiling = Math.min(p.baseIntervalMs * 2 ** attempt, p.maxIntervalMs);
  return Math.random() * ceiling;
}
