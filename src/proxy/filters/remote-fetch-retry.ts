// The retry_policy (config.core.v3.RetryPolicy) of the fetches filters make themselves through a
// cluster, as Envoy applies it to them (RemoteAsyncDataProvider for Wasm code.remote, the JWKS
// fetcher of jwt_authn remote_jwks): a failed try the caller deems retriable is tried again up to
// num_retries times after a jittered exponential backoff (retry_back_off:
// base_interval, required there; max_interval, default 10 × base; without retry_back_off 1 s and
// 10 s). num_retries defaults to 1 in a retry_policy; without one, the caller's default (Wasm
// code: 1, a JWKS: 0). Which failures are retried differs: RemoteAsyncDataProvider retries every
// failed try (no answer, a status other than 200, content that does not check), while the JWKS
// fetcher hands the policy to its async client converted with retry_on
// "5xx,gateway-error,connect-failure,reset" (jwks_fetcher.cc, convertCoreToRouteRetryPolicy): a
// 404 or 401, an empty or bad 200 are final there. Timeouts differ too: a Wasm fetch gives each try
// the whole http_uri.timeout, a JWKS fetch cuts each try at max_interval (the converted policy's
// per_try_timeout) and gives up at http_uri.timeout (its async client's timeout, retries included).
// Envoy reads nothing else of the policy there:
// retry_on (the conversion sets its own), retry_priority, retry_host_predicate and
// host_selection_retry_max_attempts are warned about. A fetch whose
// listener version was dropped while warming stops (no further try; the try under way aborted).
// readCoreRetry is the one reader of a core RetryPolicy's num_retries and retry_back_off: span
// exports' retry_policy (telemetry/export-retry.ts) has the same defaults and backoff in Envoy
// (convertCoreToRouteRetryPolicy); what differs, which failures are retried, stays with each caller.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Reader } from '../config/reader.ts';
import { backoffMs } from '../routing/retry-policy.ts';

/** A core RetryPolicy's num_retries and retry_back_off (BackoffStrategy), in milliseconds. */
export interface CoreRetry {
  readonly numRetries: number;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
}

export type FetchRetry = CoreRetry;

/**
 * The backoff without retry_back_off: 1 s, up to 10 s, in both places Envoy reads a core
 * RetryPolicy (a remote data source; convertCoreToRouteRetryPolicy for async clients: span exports,
 * a JWKS fetch).
 */
const BASE_INTERVAL_MS = 1000;
const UNREAD = ['retry_on', 'retry_priority', 'retry_host_predicate', 'host_selection_retry_max_attempts'];

/**
 * num_retries (default 1) and retry_back_off of a core RetryPolicy, as Envoy reads them wherever it
 * takes one: base_interval required, at least 1 ms; max_interval default 10 × base, not below it.
 * The other fields are the caller's (`r` is left open).
 */
export function readCoreRetry(r: Reader): CoreRetry {
  const numRetries = r.num('num_retries', 1);
  if (!Number.isInteger(numRetries) || numRetries < 0) r.issues.error(r.at('num_retries'), `must be a whole number of retries, 0 or more (got ${numRetries})`);
  let baseIntervalMs = BASE_INTERVAL_MS;
  let maxIntervalMs = BASE_INTERVAL_MS * 10;
  const bo = r.obj('retry_back_off');
  if (bo) {
    if (!bo.has('base_interval')) bo.issues.error(bo.at('base_interval'), 'retry_back_off needs a base_interval, e.g. "0.5s"');
    baseIntervalMs = bo.durationMs('base_interval', BASE_INTERVAL_MS);
    if (baseIntervalMs < 1) bo.issues.error(bo.at('base_interval'), 'must be at least 1ms');
    maxIntervalMs = bo.durationMs('max_interval', baseIntervalMs * 10);
    if (maxIntervalMs < baseIntervalMs) bo.issues.error(bo.at('max_interval'), `max_interval (${maxIntervalMs} ms) must be at least base_interval (${baseIntervalMs} ms)`);
    bo.done();
  }
  return { numRetries: Math.max(0, Math.floor(numRetries)), baseIntervalMs, maxIntervalMs };
}

/** Reads a retry_policy (`r`, undefined when absent: `absentRetries` retries with the default backoff); `what` names the fetches in warnings. */
export function readFetchRetry(r: Reader | undefined, absentRetries: number, what: string): FetchRetry {
  if (!r) return { numRetries: absentRetries, baseIntervalMs: BASE_INTERVAL_MS, maxIntervalMs: BASE_INTERVAL_MS * 10 };
  const retry = readCoreRetry(r);
  for (const k of UNREAD) {
    if (r.has(k)) r.issues.warn(r.at(k), `not supported for ${what} (as Envoy: the fetch sets which failures are retried; each try goes to a host the cluster's load balancer picks); ignored`);
  }
  r.accept(...UNREAD);
  r.done();
  return retry;
}

/** A failed try that is not tried again (e.g. a JWKS server's 404: Envoy's JWKS fetcher retries only 5xx and resets). */
export class FinalFetchError extends Error {}

/**
 * Runs `attempt` until it resolves, trying again after each failure but a FinalFetchError (up to
 * `p.numRetries` times) once a jittered backoff passed, and not past `deadline` (performance.now()
 * time: a retry whose backoff would end after it is not made, as when Envoy's async client times
 * the whole request out during a backoff). Rejects with the last failure, its message telling how
 * many tries were made; or with `signal`'s reason once it aborted (during a try, which `attempt`
 * should abort with it, or a backoff).
 */
export async function withFetchRetries<T>(p: FetchRetry, attempt: () => Promise<T>, signal?: AbortSignal, deadline?: number): Promise<T> {
  for (let n = 0; ; n++) {
    signal?.throwIfAborted();
    try {
      return await attempt();
    } catch (e) {
      signal?.throwIfAborted();
      const wait = backoffMs(p, n);
      const late = deadline !== undefined && performance.now() + wait >= deadline;
      if (n >= p.numRetries || late || e instanceof FinalFetchError) throw n === 0 && !late ? e : new Error(`${(e as Error).message} (${n + 1} ${n ? 'tries' : 'try'}${late ? ', then the timeout' : ''})`, { cause: e });
      await sleep(wait, undefined, { ref: false, signal });
    }
  }
}
