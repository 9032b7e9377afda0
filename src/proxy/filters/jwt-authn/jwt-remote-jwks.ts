// A provider's remote_jwks, fetched as Envoy does: through the cluster named by http_uri.cluster
// (its load balancer, connection pool and transport socket; the URI gives the path and the Host
// header), retried per retry_policy (remote-fetch-retry.ts; no retry without one) when the try got
// no answer or a 5xx (as Envoy's JWKS fetcher converts the policy: retry_on
// "5xx,gateway-error,connect-failure,reset"; a 404, an empty 200 are final; each try within
// max_interval, the whole fetch within http_uri.timeout), cached for
// cache_duration, refreshed when a token names an unknown kid (rate-limited; the keys stay as they
// were when that fails).
// On demand (without async_fetch), as Envoy: a request that finds no keys, or expired ones, waits
// for a fetch (one at a time, shared by the requests that meet it) and fails with "Jwks remote fetch
// is failed" when that fetch fails; the next such request fetches again.
// With async_fetch the keys are fetched when the listener goes in (it warms until the first fetch
// settled, unless fast_listener) and again 5 s before cache_duration ends (failed_refetch_duration
// after a failure), so requests do not wait for a fetch: keys fetched so do not expire (a failed
// refresh keeps them); only when there are none (every fetch so far failed) does a request fetch
// them on demand, as Envoy.
// A source is shared by the config versions with the same settings and stat prefix (the cache
// survives LDS pushes); it stops its refresh timer and leaves the table when the last of them is
// collected. Every fetch (its retries included) counts once in <prefix>jwks_fetch_success or
// jwks_fetch_failed, as Envoy's.
import type { Reader } from '../../config/reader.ts';
import type { Stat } from '../../stats/stats.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { requestThroughCluster } from '../../upstream/cluster-request.ts';
import type { InitManager } from '../filter.ts';
import { FinalFetchError, readFetchRetry, withFetchRetries, type FetchRetry } from '../remote-fetch-retry.ts';
import { jose } from './jwt-jose.ts';
import { parseJwks, type JwksSource, type KeyResolver } from './jwt-jwks-source.ts';

/** Most unknown-kid refreshes allowed per cache period (a token with random kids must not flood the JWKS server). */
const MAX_KID_REFRESHES = 10;
/** async_fetch refreshes this long before the keys expire (Envoy's RefetchBeforeExpiredSec). */
const REFRESH_BEFORE_EXPIRY_MS = 5000;

export interface RemoteJwksSettings {
  uri: string;
  cluster: string;
  timeoutMs: number;
  cacheMs: number;
  retry: FetchRetry;
  /**
   * With a retry_policy, as Envoy's JWKS fetcher hands it to its async client: http_uri.timeout
   * bounds the whole fetch, retries and backoffs included, and each try is cut at max_interval
   * (convertCoreToRouteRetryPolicy's per_try_timeout). Undefined without one: one try of http_uri.timeout.
   */
  perTryTimeoutMs?: number;
  /** async_fetch: the pause after a failed fetch; undefined without async_fetch (fetched on demand). */
  failedRefetchMs?: number;
}

/** GETs `uri` through a host of `cluster` picked by its load balancer, within http_uri.timeout (retries included); resolves with the 200 body. */
export function fetchThroughCluster(clusters: ClusterManager, s: RemoteJwksSettings): Promise<string> {
  const u = new URL(s.uri);
  const perTry = s.perTryTimeoutMs;
  const deadline = perTry === undefined ? undefined : performance.now() + s.timeoutMs;
  return withFetchRetries(s.retry, async () => {
    const timeoutMs = deadline === undefined ? s.timeoutMs : Math.max(1, Math.min(perTry!, deadline - performance.now()));
    const res = await requestThroughCluster(clusters, { cluster: s.cluster, method: 'GET', path: u.pathname + u.search, headers: { host: u.host, accept: 'application/json' }, timeoutMs });
    if (res.status !== 200) throw new (res.status >= 500 ? Error : FinalFetchError)(`JWKS server answered ${res.status}`);
    if (res.body.length === 0) throw new FinalFetchError('JWKS server answered an empty body');
    return res.body.toString();
  }, undefined, deadline);
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
        // Fetched ahead (async_fetch), the keys are kept until a refresh replaces them.
        this.expiresAt = this.s.failedRefetchMs === undefined ? Date.now() + this.s.cacheMs : Infinity;
        ok = true;
        this.stats.success.value++;
      } catch {
        // The keys (if any) stay as they were: the next request that needs a fetch makes one.
        this.stats.failed.value++;
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
      // A new cache period, a new unknown-kid budget.
      if (ok) this.kidsTried.clear();
      void this.fetchNow();
    }, delay).unref();
  }

  /** async_fetch: fetches now unless there are keys; settles (never rejects) once they are fetched or the fetch failed. */
  fetchAhead(): Promise<unknown> {
    return this.resolver ? Promise.resolve() : this.fetchNow();
  }

  /** The last config version using this source is gone. */
  stop(): void {
    clearTimeout(this.refresh);
    this.refresh = undefined;
  }

  /** The keys; none or expired: those of a fetch made now (or under way), undefined when it failed. */
  async keys(): Promise<KeyResolver | undefined> {
    if (this.resolver && Date.now() < this.expiresAt) return this.resolver;
    if (!this.inflight) this.kidsTried.clear();
    return (await this.fetchNow()) ? this.resolver : undefined;
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
  const retryPolicy = remote.obj('retry_policy');
  const retry = readFetchRetry(retryPolicy, 0, 'JWKS fetches');
  const af = remote.obj('async_fetch');
  const fastListener = af?.bool('fast_listener', false) ?? false;
  const failedRefetchMs = af?.durationMs('failed_refetch_duration', 1000);
  af?.done();
  remote.done();
  const s: RemoteJwksSettings = { uri, cluster, timeoutMs, cacheMs, retry, perTryTimeoutMs: retryPolicy ? retry.maxIntervalMs : undefined, failedRefetchMs };
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
    // The fetch is the shared source's (other config versions may wait for it, or use its keys):
    // a version dropped while warming stops only its own wait (listener-init.ts), not the fetch.
    else ctx.initManager.add(`the JWKS from ${uri}`, () => ahead.fetchAhead());
  }
  return lease;
}
