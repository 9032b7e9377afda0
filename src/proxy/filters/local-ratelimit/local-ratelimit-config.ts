// Compiles envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit (filter typed_config and
// per-route typed_per_filter_config). Each compiled config owns its token buckets: one default
// bucket and one per configured descriptor; a new LDS/RDS update starts with full buckets.
import { Reader, type Issues } from '../../config/reader.ts';
import { NEVER, readRuntimeFractionalPercent, type FractionalPercent } from '../../config/fractional-percent.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';
import { readHeaderOps, type HeaderOps } from '../../routing/header-ops.ts';
import type { Stat, Stats } from '../../stats/stats.ts';
import { readTokenBucket, TokenBucket } from './token-bucket.ts';
import { readVhRateLimits, type DescriptorEntry, type VhRateLimits } from '../../routing/rate-limit-actions.ts';

export interface LimitDescriptor {
  readonly entries: readonly DescriptorEntry[];
  readonly bucket: TokenBucket;
}

export interface RateLimitStats {
  readonly enabled: Stat;
  readonly enforced: Stat;
  readonly rateLimited: Stat;
  readonly ok: Stat;
}

export interface LocalRateLimitSettings {
  readonly statPrefix: string;
  readonly status: number;
  /** Undefined when no token_bucket is configured: only descriptors limit. */
  readonly bucket?: TokenBucket;
  readonly descriptors: readonly LimitDescriptor[];
  readonly stage: number;
  readonly filterEnabled: FractionalPercent;
  readonly filterEnforced: FractionalPercent;
  readonly responseOps: HeaderOps;
  readonly requestOpsWhenNotEnforced: HeaderOps;
  readonly xRateLimitHeaders: boolean;
  readonly vhRateLimits: VhRateLimits;
  readonly alwaysConsumeDefault: boolean;
  readonly resourceExhausted: boolean;
  /** local_rate_limit_per_downstream_connection: every connection gets its own buckets. */
  readonly perConnection: boolean;
  /** Stats, bound on first use (per-route configs are compiled without the stats store). */
  stats?: RateLimitStats;
}

export function rateLimitStats(stats: Stats, statPrefix: string): RateLimitStats {
  const p = `${statPrefix}.http_local_rate_limit.`;
  return { enabled: stats.counter(`${p}enabled`), enforced: stats.counter(`${p}enforced`), rateLimited: stats.counter(`${p}rate_limited`), ok: stats.counter(`${p}ok`) };
}

function readDescriptors(r: Reader, issues: Issues): LimitDescriptor[] {
  return r.objs('descriptors').flatMap((d) => {
    const entries = d.objs('entries').map((e) => {
      const entry = { key: e.str('key'), value: e.str('value') };
      if (!entry.key) e.issues.error(e.at('key'), 'a descriptor entry needs a key');
      e.done();
      return entry;
    });
    if (!entries.length) d.issues.error(d.at('entries'), 'a descriptor needs at least one entry');
    const spec = readTokenBucket(d.obj('token_bucket'), d.at('token_bucket'), issues);
    d.done();
    return spec ? [{ entries, bucket: new TokenBucket(spec.maxTokens, spec.tokensPerFill, spec.fillIntervalMs) }] : [];
  });
}

export interface Buckets {
  readonly bucket?: TokenBucket;
  readonly descriptors: readonly LimitDescriptor[];
}

const connBuckets = new WeakMap<object, WeakMap<LocalRateLimitSettings, Buckets>>();

function fresh(b: TokenBucket): TokenBucket {
  return new TokenBucket(b.maxTokens, b.tokensPerFill, b.fillIntervalMs);
}

/** The buckets a request on `conn` draws from: the config's own, or the connection's copies. */
export function bucketsFor(s: LocalRateLimitSettings, conn: object): Buckets {
  if (!s.perConnection) return s;
  let m = connBuckets.get(conn);
  if (!m) connBuckets.set(conn, (m = new WeakMap()));
  let b = m.get(s);
  if (!b) m.set(s, (b = { bucket: s.bucket && fresh(s.bucket), descriptors: s.descriptors.map((d) => ({ entries: d.entries, bucket: fresh(d.bucket) })) }));
  return b;
}

export function readLocalRateLimit(r: Reader, runtime: EnvoyRuntime): LocalRateLimitSettings {
  const issues = r.issues;
  const statPrefix = r.str('stat_prefix');
  if (!statPrefix) issues.error(r.at('stat_prefix'), 'the local rate limit filter needs a stat_prefix');
  const st = r.obj('status');
  const status = st ? st.num('code', 429) : 429;
  st?.done();
  if (!Number.isInteger(status) || status < 400 || status > 599) issues.error(r.at('status'), 'status must be a 4xx or 5xx code');
  const spec = r.has('token_bucket') ? readTokenBucket(r.obj('token_bucket'), r.at('token_bucket'), issues) : undefined;
  const descriptors = readDescriptors(r, issues);
  const xr = r.str('enable_x_ratelimit_headers', 'OFF');
  if (xr !== 'OFF' && xr !== 'DRAFT_VERSION_03') issues.error(r.at('enable_x_ratelimit_headers'), `unknown value "${xr}" (OFF or DRAFT_VERSION_03)`);
  const vhRateLimits = readVhRateLimits(r);
  const whenNot = r.get('request_headers_to_add_when_not_enforced');
  const notEnforcedOps = readHeaderOps(new Reader(whenNot === undefined ? {} : { request_headers_to_add: whenNot }, r.path, issues), 'request');
  for (const k of ['local_cluster_rate_limit', 'max_dynamic_descriptors']) {
    if (r.has(k) && r.get(k) !== false) issues.error(r.at(k), `${k} is not supported by rig proxy`);
  }
  const s: LocalRateLimitSettings = {
    statPrefix,
    status,
    bucket: spec ? new TokenBucket(spec.maxTokens, spec.tokensPerFill, spec.fillIntervalMs) : undefined,
    descriptors,
    stage: r.num('stage', 0),
    filterEnabled: readRuntimeFractionalPercent(r.obj('filter_enabled'), NEVER, runtime),
    filterEnforced: readRuntimeFractionalPercent(r.obj('filter_enforced'), NEVER, runtime),
    responseOps: readHeaderOps(r, 'response'),
    requestOpsWhenNotEnforced: notEnforcedOps,
    xRateLimitHeaders: xr === 'DRAFT_VERSION_03',
    vhRateLimits,
    alwaysConsumeDefault: r.bool('always_consume_default_token_bucket', true),
    resourceExhausted: r.bool('rate_limited_as_resource_exhausted', false),
    perConnection: r.bool('local_rate_limit_per_downstream_connection', false),
  };
  r.done();
  return s;
}
