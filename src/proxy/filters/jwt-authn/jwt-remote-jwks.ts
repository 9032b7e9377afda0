// A provider's remote_jwks, fetched as Envoy does: through the cluster named by http_uri.cluster
// (its load balancer, connection pool and transport socket; the URI gives the path and the Host
// header), retried per retry_policy, cached for cache_duration, refreshed on expiry or when a token
// names an unknown kid (rate-limited), the last good keys kept when a refresh fails.
// With async_fetch the keys are fetched when the listener goes in (it warms until the first fetch
// settled, unless fast_listener) and again 5 s before they expire (1 s after a failure by default,
// failed_refetch_duration), so requests do not wait for a fetch.
// A source is shared by the config versions with the same settings and stat prefix (the cache
// survives LDS pushes); it stops its refresh timer and leaves the table when the last of them is
// collected. Every fetch counts in <prefix>jwks_fetch_success or jwks_fetch_failed, as Envoy's.
import type { Reader } from '../../config/reader.ts';
import type { Stat } from '../../stats/stats.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { requestThroughCluster } from '../../upstream/cluster-request.ts';
import { backoffMs } from '../../routing/retry-policy.ts';
import type { InitManager } from '../filter.ts';
import { jose } from './jwt-jose.ts';
import { parseJwks, type JwksSource, type KeyResolver } from './jwt-jwks-source.ts';

/** Most unknown-kid refreshes allowed per cache period (a token with random kids must not flood the JWKS server). */
const MAX_KID_REFRESHES = 10;
/** After a failed on-demand fetch, the next one waits this long (or the cache duration when shorter). */
const RETRY_AFTER_FAILURE_MS = 5000;
/** async_fetch refreshes this long before the keys expire (Envoy's RefetchBeforeExpiredSec). */
const REFRESH_BEFORE_EXPIRY_MS = 5000;

/** retry_policy of one fetch: Envoy's core RetryPolicy as its async client applies it. */
export interface JwksFetchRetry {
  numRetries: number;
  baseIntervalMs: number;
  maxIntervalMs: number;
}

export interface RemoteJwksSettings {
  uri: string;
  cluster: string;
  timeoutMs: number;
  cacheMs: number;
  retry?: JwksFetchRetry;
  /** async_fetch: the pause after a failed fetch; undefined without async_fetch (fetched on demand). */
  failedRefetchMs?: number;
}

class JwksFetchError extends Error {
  readonly retriable: boolean;
  constructor(message: string, retriable: boolean) {
    super(message);
    this.retriable = retriable;
  }
}

/**
 * GETs `uri` through a host of `cluster` picked by its load balancer; resolves with the 200 body.
 * With a retry policy, a 5xx, a connection failure or reset, or a try's timeout (max_interval) is
 * retried after a jittered backoff, all within http_uri.timeout (Envoy's retry_on
 * "5xx,gateway-error,connect-failure,reset").
 */
export async function fetchThroughCluster(clusters: ClusterManager, s: RemoteJwksSettings): Promise<string> {
  const u = new URL(s.uri);
  const deadline = Date.now() + s.timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const left = deadline - Date.now();
    try {
      const res = await requestThroughCluster(clusters, { cluster: s.cluster, method: 'GET', path: u.pathname + u.search, headers: { host: u.host, accept: 'application/json' }, timeoutMs: s.retry ? Math.min(left, s.retry.maxIntervalMs) : left });
      if (res.status === 200) return res.body.toString();
      throw new JwksFetchError(`JWKS server answered ${res.status}`, res.status >= 500);
    } catch (e) {
      const retriable = !(e instanceof JwksFetchError) || e.retriable;
      const pause = s.retry && attempt < s.retry.numRetries && retriable ? backoffMs(s.retry, attempt) : Infinity;
      if (Date.now() + pause >= deadline) throw e;
      await new Promise((r) => setTimeout(r, pause).unref());
    }
  }
}

/** Envoy's jwt_authn counters of JWKS fetches. */
export interface JwksFetchStats {
  readonly success: Stat;
  readonly failed: Stat;
}

export class RemoteJwks implements JwksSource {
  private readonly s: RemoteJwksSettings;
  private readonly clusters: ClusterManager;
  private readonly stats: JwksFetchStats;
  private resolver: KeyResolver | undefined;
  private expiresAt = 0;
  private inflight: Promise<boolean> | undefined;
  private readonly kidsTried = new Set<string>();
  /** Config versions holding this source; the refresh stops at 0. */
  users = 0;
  private refresh: NodeJS.Timeout | undefined;

  constructor(s: RemoteJwksSettings, clusters: ClusterManager, stats: JwksFetchStats) {
    this.s = s;
    this.clusters = clusters;
    this.stats = stats;
  }

  private fetchNow(): Promise<boolean> {
    this.inflight ??= (async () => {
      let ok = false;
      try {
        this.resolver = jose().createLocalJWKSet(parseJwks(await fetchThroughCluster(this.clusters, this.s)));
        this.expiresAt = Date.now() + this.s.cacheMs;
        ok = true;
        this.stats.success.value++;
      } catch {
        this.stats.failed.value++;
        // Keep the last good keys; on demand, try again after a short pause.
        this.expiresAt = Date.now() + Math.min(this.s.cacheMs, RETRY_AFTER_FAILURE_MS);
      } finally {
        this.inflight = undefined;
      }
      this.scheduleRefresh(ok);
      return ok;
    })();
    return this.inflight;
  }

  /** async_fetch: the next background fetch, before the keys expire or after a failure. */
  private scheduleRefresh(ok: boolean): void {
    if (this.s.failedRefetchMs === undefined || this.users === 0) return;
    const cache = this.s.cacheMs;
    const delay = !ok ? this.s.failedRefetchMs : cache > REFRESH_BEFORE_EXPIRY_MS ? cache - REFRESH_BEFORE_EXPIRY_MS : cache;
    clearTimeout(this.refresh);
    this.refresh = setTimeout(() => {
      // A new cache period, a new unknown-kid budget (keys() renews it on expiry, which this refresh forestalls).
      if (ok) this.kidsTried.clear();
      void this.fetchNow();
    }, delay).unref();
  }

  /** async_fetch: fetches now unless the keys are fresh; settles (never rejects) once they are fetched or the fetch failed. */
  fetchAhead(): Promise<unknown> {
    return this.resolver && Date.now() < this.expiresAt ? Promise.resolve() : this.fetchNow();
  }

  /** The last config version using this source is gone. */
  stop(): void {
    clearTimeout(this.refresh);
    this.refresh = undefined;
  }

  async keys(): Promise<KeyResolver | undefined> {
    // No keys yet (the first fetch failed) and a fetch under way: its answer, not a failure now.
    if (!this.resolver && this.inflight) await this.inflight;
    if (Date.now() < this.expiresAt) return this.resolver;
    this.kidsTried.clear();
    if (!this.resolver) await this.fetchNow();
    else void this.fetchNow();
    return this.resolver;
  }

  async refreshForUnknownKid(kid: string | undefined): Promise<boolean> {
    const key = kid ?? '';
    if (this.kidsTried.has(key) || this.kidsTried.size >= MAX_KID_REFRESHES) return false;
    this.kidsTried.add(key);
    return this.fetchNow();
  }
}

/** What one config version holds: the shared source, released when the version is collected. */
class RemoteJwksLease implements JwksSource {
  readonly source: RemoteJwks;
  constructor(source: RemoteJwks) {
    this.source = source;
  }
  keys(): Promise<KeyResolver | undefined> {
    return this.source.keys();
  }
  refreshForUnknownKid(kid: string | undefined): Promise<boolean> {
    return this.source.refreshForUnknownKid(kid);
  }
}

// Shared sources per proxy and settings.
const remotes = new WeakMap<ClusterManager, Map<string, RemoteJwks>>();
const released = new FinalizationRegistry<{ byKey: Map<string, RemoteJwks>; key: string; source: RemoteJwks }>(({ byKey, key, source }) => {
  if (--source.users > 0) return;
  source.stop();
  if (byKey.get(key) === source) byKey.delete(key);
});

function readRetryPolicy(rp: Reader): JwksFetchRetry {
  const numRetries = rp.num('num_retries', 1);
  let baseIntervalMs = 1000;
  let maxIntervalMs = 10_000;
  const bo = rp.obj('retry_back_off');
  if (bo) {
    if (!bo.has('base_interval')) bo.issues.error(bo.at('base_interval'), 'retry_back_off needs a base_interval');
    baseIntervalMs = bo.durationMs('base_interval', 1000);
    maxIntervalMs = bo.durationMs('max_interval', baseIntervalMs * 10);
    if (maxIntervalMs < baseIntervalMs) bo.issues.error(bo.at('max_interval'), `max_interval (${maxIntervalMs} ms) must be at least base_interval (${baseIntervalMs} ms)`);
    bo.done();
  }
  for (const k of ['retry_priority', 'retry_host_predicate', 'host_selection_retry_max_attempts', 'retry_on']) {
    if (rp.has(k)) rp.issues.warn(rp.at(k), `not supported for JWKS fetches (retried on 5xx, connect failure, reset and try timeout, as Envoy's default); ignored`);
    rp.accept(k);
  }
  rp.done();
  return { numRetries, baseIntervalMs, maxIntervalMs };
}

/** Reads a provider's remote_jwks; with async_fetch, adds the first fetch to the listener's warming (unless fast_listener). */
export function readRemoteJwks(remote: Reader, ctx: { clusters: ClusterManager; initManager: InitManager; statPrefix: string; stats: JwksFetchStats }): JwksSource {
  const hu = remote.obj('http_uri');
  const uri = hu?.str('uri') ?? '';
  const cluster = hu?.str('cluster') ?? '';
  const timeoutMs = hu?.durationMs('timeout', 1000) ?? 1000;
  hu?.done();
  if (!/^https?:\/\//.test(uri)) remote.issues.error(remote.at('http_uri.uri'), `remote_jwks needs an http(s) uri, got "${uri}"`);
  if (!cluster) remote.issues.error(remote.at('http_uri.cluster'), 'remote_jwks needs the cluster the JWKS is fetched through (http_uri.cluster)');
  const cacheMs = remote.durationMs('cache_duration', 600_000);
  const rp = remote.obj('retry_policy');
  const retry = rp && readRetryPolicy(rp);
  const af = remote.obj('async_fetch');
  const fastListener = af?.bool('fast_listener', false) ?? false;
  const failedRefetchMs = af?.durationMs('failed_refetch_duration', 1000);
  af?.done();
  remote.done();
  const s: RemoteJwksSettings = { uri, cluster, timeoutMs, cacheMs, retry, failedRefetchMs };
  const key = `${ctx.statPrefix}|${JSON.stringify(s)}`;
  let byKey = remotes.get(ctx.clusters);
  if (!byKey) remotes.set(ctx.clusters, (byKey = new Map()));
  let source = byKey.get(key);
  if (!source) byKey.set(key, (source = new RemoteJwks(s, ctx.clusters, ctx.stats)));
  source.users++;
  const lease = new RemoteJwksLease(source);
  released.register(lease, { byKey, key, source });
  if (failedRefetchMs !== undefined) {
    const ahead = source;
    if (fastListener) void ahead.fetchAhead();
    else ctx.initManager.add(`the JWKS from ${uri}`, () => ahead.fetchAhead());
  }
  return lease;
}
