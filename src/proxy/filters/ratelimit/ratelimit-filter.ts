// envoy.filters.http.ratelimit: global rate limiting. A request whose route (and virtual host, per
// vh_rate_limits / include_vh_rate_limits; or the RateLimitPerRoute's own rate_limits) has
// rate_limits entries of the filter's stage whose actions produce descriptors is held while the
// rate limit service (ShouldRateLimit, gRPC through its cluster) decides:
// - OK: the request goes on with the service's request_headers_to_add appended; its
//   response_headers_to_add (and x-ratelimit-* with DRAFT_VERSION_03) go on the response.
// - OVER_LIMIT: a local reply with rate_limited_status (429), the service's raw_body and headers,
//   x-envoy-ratelimited (unless disabled), response_headers_to_add; flag RL, details
//   request_rate_limited (runtime ratelimit.http_filter_enforcing, default 100%, samples it).
// - error or timeout (timeout, default 20 ms): allowed, unless failure_mode_deny: status_on_error
//   (500), flag RLSE, details rate_limiter_error.
// Only requests of request_type (x-envoy-internal) are limited; runtime ratelimit.http_filter_enabled
// samples whether the filter runs. Stats, as Envoy, in the route's target cluster:
// `cluster.<route cluster>.[<stat_prefix>.]ratelimit.ok|over_limit|error|failure_mode_allowed`, and
// a refused request counts as that cluster's upstream_rq_<status>.
import { RATELIMIT_PER_ROUTE_TYPE, RATELIMIT_TYPE } from '../../../envoy/index.ts';
import { ALWAYS, sample, type FractionalPercent } from '../../config/fractional-percent.ts';
import { ResponseFlag } from '../../response-flags.ts';
import { descriptorsFor, routePolicies, VhRateLimits } from '../../routing/rate-limit-actions.ts';
import type { Stat, Stats } from '../../stats/stats.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import type { Cluster } from '../../upstream/cluster.ts';
import { FilterStatus, type HeaderMap, type HttpFilter, type HttpFilterFactory, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import { readRateLimitConfig, readRateLimitPerRoute, RequestType, type RateLimitConfig, type RateLimitPerRoute } from './ratelimit-config.ts';
import { shouldRateLimit, type HeaderPair, type LimitResult } from './ratelimit-service.ts';
import { xRateLimitHeaders } from './x-ratelimit-headers.ts';

export const RATELIMIT_FILTER_NAME = 'envoy.filters.http.ratelimit';

type Outcome = 'ok' | 'over_limit' | 'error' | 'failure_mode_allowed';

interface Compiled {
  readonly c: RateLimitConfig;
  readonly name: string;
  readonly stats: Stats;
  /** The counters of each route cluster seen, made on its first request. */
  readonly clusterStats: Map<string, Record<Outcome, Stat>>;
  readonly clusters: ClusterManager;
  readonly enabled: FractionalPercent;
  readonly enforcing: FractionalPercent;
}

function appendHeader(h: HeaderMap, key: string, value: string): void {
  const cur = h[key];
  h[key] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value];
}

class RateLimitFilter implements HttpFilter {
  private readonly x: Compiled;
  private readonly cb: StreamCallbacks;
  private head: RequestHead | undefined;
  private cluster: string | undefined;
  private abort: AbortController | undefined;
  /** What goes on the response: the service's response_headers_to_add and x-ratelimit-*. */
  private responseHeaders: readonly HeaderPair[] | undefined;
  private localReply = false;

  constructor(x: Compiled, cb: StreamCallbacks) {
    this.x = x;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    const c = this.x.c;
    if (c.requestType !== RequestType.Both && (head.headers['x-envoy-internal'] === 'true') !== (c.requestType === RequestType.Internal)) return FilterStatus.Continue;
    if (!sample(this.x.enabled)) return FilterStatus.Continue;
    const route = this.cb.matchedRoute();
    const cluster = this.cb.streamInfo.upstreamCluster;
    // As Envoy: no route entry (none, or a direct response) or an unknown cluster, no call.
    if (!route || !cluster || !this.x.clusters.get(cluster)) return FilterStatus.Continue;
    const perRoute = this.cb.perRouteConfig<RateLimitPerRoute>(this.x.name);
    const policies = perRoute?.rateLimits ?? routePolicies(route.rateLimits, route.vhostRateLimits, perRoute?.vhRateLimits ?? VhRateLimits.Override);
    if (!policies.length) return FilterStatus.Continue;
    const descriptors = descriptorsFor(policies, c.stage, { head, remoteIp: this.cb.streamInfo.downstreamRemoteIp ?? this.cb.connection.remoteAddress, cluster });
    if (!descriptors.length) return FilterStatus.Continue;
    this.head = head;
    this.cluster = cluster;
    const ac = (this.abort = new AbortController());
    shouldRateLimit(this.x.clusters, c.service, perRoute?.domain ?? c.domain, descriptors, ac.signal).then(
      (r) => this.onResult(r),
      (e: unknown) => this.onResult({ kind: 'error', message: (e as Error).message }),
    );
    return FilterStatus.StopIteration;
  }

  private onResult(r: LimitResult): void {
    if (this.abort?.signal.aborted) return;
    const c = this.x.c;
    this.count(r.kind);
    if (r.kind === 'error') {
      if (!c.failureModeDeny) {
        this.count('failure_mode_allowed');
        this.cb.continueDecoding();
        return;
      }
      this.cb.sendLocalReply({ status: c.statusOnError, flags: ResponseFlag.RateLimitServiceError, details: 'rate_limiter_error' });
      return;
    }
    if (r.dynamicMetadata && Object.keys(r.dynamicMetadata).length) {
      (this.cb.streamInfo.filterState ??= {})[RATELIMIT_FILTER_NAME] = r.dynamicMetadata;
    }
    const response = c.xRateLimitHeaders ? [...r.responseHeaders, ...xRateLimitHeaders(r.statuses)] : r.responseHeaders;
    if (response.length) this.responseHeaders = response;
    if (r.kind === 'over_limit') {
      const cluster = this.x.clusters.get(this.cluster!);
      if (cluster) this.chargeResponse(cluster, c.rateLimitedStatus);
      if (sample(this.x.enforcing)) {
        const headers: HeaderMap = {};
        if (c.xEnvoyRateLimitedHeader) headers['x-envoy-ratelimited'] = 'true';
        if (!c.limitedResponseOps.empty) c.limitedResponseOps.apply(headers, this.cb.streamInfo, this.head);
        this.localReply = true;
        this.cb.sendLocalReply({ status: c.rateLimitedStatus, body: r.body, headers, flags: ResponseFlag.RateLimited, details: 'request_rate_limited', grpcStatus: c.resourceExhausted ? 8 : undefined });
        return;
      }
    }
    for (const [k, v] of r.requestHeaders) appendHeader(this.head!.headers, k, v);
    this.cb.continueDecoding();
  }

  /** `cluster.<route cluster>.[<stat_prefix>.]ratelimit.<outcome>`. */
  private count(outcome: Outcome): void {
    const { clusterStats, stats, c } = this.x;
    const name = this.cluster!;
    let s = clusterStats.get(name);
    if (!s) {
      const p = `cluster.${name}.${c.statPrefix}`;
      s = { ok: stats.counter(p + 'ok'), over_limit: stats.counter(p + 'over_limit'), error: stats.counter(p + 'error'), failure_mode_allowed: stats.counter(p + 'failure_mode_allowed') };
      clusterStats.set(name, s);
    }
    s[outcome].value++;
  }

  /** A refused request counts as a response of the route's cluster, as Envoy charges it. */
  private chargeResponse(cluster: Cluster, status: number): void {
    cluster.s.rqCompleted.value++;
    cluster.s.codes.record(status);
  }

  encodeHeaders(head: ResponseHead): void {
    const add = this.responseHeaders;
    if (!add) return;
    this.responseHeaders = undefined;
    // On its own local reply the service's content-type replaces the reply's, as in Envoy.
    for (const [k, v] of add) {
      if (this.localReply && k === 'content-type') head.headers[k] = v;
      else appendHeader(head.headers, k, v);
    }
  }

  onDestroy(): void {
    this.abort?.abort();
  }
}

export const rateLimitFilterFactory: HttpFilterFactory<Compiled, RateLimitPerRoute> = {
  name: RATELIMIT_FILTER_NAME,
  typeUrls: [RATELIMIT_TYPE],
  perRouteTypeUrls: [RATELIMIT_PER_ROUTE_TYPE],
  compile(r, ctx) {
    const c = readRateLimitConfig(r);
    return {
      c,
      name: ctx.name,
      stats: ctx.stats,
      clusterStats: new Map(),
      clusters: ctx.clusters,
      enabled: ctx.runtime.fraction('ratelimit.http_filter_enabled', ALWAYS),
      enforcing: ctx.runtime.fraction('ratelimit.http_filter_enforcing', ALWAYS),
    };
  },
  compilePerRoute: (r, ctx) => readRateLimitPerRoute(r, ctx.runtime),
  create: (x, cb) => new RateLimitFilter(x, cb),
};

export function setup(): void {
  registerHttpFilter(rateLimitFilterFactory);
}
