// When a STRICT_DNS / LOGICAL_DNS cluster resolves its names again, as Envoy's DNS cluster decides
// it: after a good answer, dns_refresh_rate (or the answer's TTL with respect_dns_ttl, a TTL of 0
// leaving the refresh rate) plus a random share of dns_jitter; after a failure, dns_failure_refresh_rate's
// jittered exponential backoff (reset by the next good answer), or dns_refresh_rate without it.
import type { Reader } from '../config/reader.ts';
import { backoffMs } from '../routing/retry-policy.ts';

export interface DnsRefresh {
  readonly refreshMs: number;
  readonly respectTtl: boolean;
  /** Upper bound (exclusive) of the random delay added after a good answer; 0: none. */
  readonly jitterMs: number;
  readonly failure?: { readonly baseIntervalMs: number; readonly maxIntervalMs: number };
}

/** setTimeout's longest delay; a TTL of up to 2^31 - 1 s would overflow it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The cluster's DNS refresh fields, with Envoy's validation (durations over 1 ms, max_interval >= base_interval). */
export function readDnsRefresh(r: Reader): DnsRefresh {
  const over1ms = (x: Reader, key: string, def: number): number => {
    const ms = x.durationMs(key, def);
    if (x.has(key) && !(ms > 1)) x.issues.error(x.at(key), 'must be greater than 1ms');
    return Math.max(1, ms);
  };
  const refreshMs = over1ms(r, 'dns_refresh_rate', 5000);
  const jitterMs = r.durationMs('dns_jitter', 0);
  if (jitterMs < 0) r.issues.error(r.at('dns_jitter'), 'must not be negative');
  let failure: DnsRefresh['failure'];
  const f = r.obj('dns_failure_refresh_rate');
  if (f) {
    if (!f.has('base_interval')) f.issues.error(f.at('base_interval'), 'dns_failure_refresh_rate needs a base_interval, e.g. "1s"');
    const baseIntervalMs = over1ms(f, 'base_interval', refreshMs);
    const maxIntervalMs = over1ms(f, 'max_interval', baseIntervalMs * 10);
    if (maxIntervalMs < baseIntervalMs) f.issues.error(f.at('max_interval'), `max_interval (${maxIntervalMs} ms) must be at least base_interval (${baseIntervalMs} ms)`);
    f.done();
    failure = { baseIntervalMs, maxIntervalMs };
  }
  return { refreshMs, respectTtl: r.bool('respect_dns_ttl', false), jitterMs: Math.max(0, jitterMs), failure };
}

/** The delay after a good answer whose shortest TTL is `ttlSec` (0: none known). */
export function refreshAfterAnswerMs(d: DnsRefresh, ttlSec: number): number {
  const base = d.respectTtl && ttlSec > 0 ? ttlSec * 1000 : d.refreshMs;
  return Math.min(base + Math.floor(Math.random() * d.jitterMs), MAX_TIMER_MS);
}

/** The delay after the `failures`-th failure in a row (1 for the first). */
export function refreshAfterFailureMs(d: DnsRefresh, failures: number): number {
  return Math.min(d.failure ? backoffMs(d.failure, failures - 1) : d.refreshMs, MAX_TIMER_MS);
}
