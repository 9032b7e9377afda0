// envoy.filters.http.local_ratelimit: token buckets per filter config (or per route, through
// typed_per_filter_config) and per descriptor. The request's descriptors come from the route's
// rate_limits actions (and the virtual host's, per vh_rate_limits) of the filter's stage; a
// matching configured descriptor's bucket is consumed first, then the default bucket (unless
// always_consume_default_token_bucket is false). filter_enabled samples whether the filter runs,
// filter_enforced whether a limited request is refused (status, default 429, flag RL,
// response_headers_to_add, x-envoy-ratelimited). x-ratelimit-limit/-remaining/-reset with
// DRAFT_VERSION_03. With local_rate_limit_per_downstream_connection each connection has its own buckets.
// Stats: <stat_prefix>.http_local_rate_limit.{enabled,enforced,rate_limited,ok}.
import { LOCAL_RATELIMIT_TYPE } from '../../../envoy/index.ts';
import { sample } from '../../config/fractional-percent.ts';
import { ResponseFlag } from '../../response-flags.ts';
import { ActionKind } from '../../routing/route-config.ts';
import type { Stats } from '../../stats/stats.ts';
import { FilterStatus, type HeaderMap, type HttpFilter, type HttpFilterFactory, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import { bucketsFor, rateLimitStats, readLocalRateLimit, type LimitDescriptor, type LocalRateLimitSettings, type RateLimitStats } from './local-ratelimit-config.ts';
import { descriptorsFor, routePolicies, type DescriptorEntry } from '../../routing/rate-limit-actions.ts';
import type { TokenBucket } from './token-bucket.ts';

export const LOCAL_RATELIMIT_FILTER_NAME = 'envoy.filters.http.local_ratelimit';

export interface LocalRateLimitFilterConfig {
  readonly name: string;
  readonly settings: LocalRateLimitSettings;
  readonly root: Stats;
}

function statsOf(s: LocalRateLimitSettings, root: Stats): RateLimitStats {
  return (s.stats ??= rateLimitStats(root, s.statPrefix));
}

function sameEntries(a: readonly DescriptorEntry[], b: readonly DescriptorEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].key !== b[i].key || a[i].value !== b[i].value) return false;
  return true;
}

class LocalRateLimitFilter implements HttpFilter {
  private readonly c: LocalRateLimitFilterConfig;
  private readonly cb: StreamCallbacks;
  private s: LocalRateLimitSettings | undefined;
  /** The bucket whose state the x-ratelimit-* headers report. */
  private reported: TokenBucket | undefined;

  constructor(c: LocalRateLimitFilterConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    const s = this.cb.perRouteConfig<LocalRateLimitSettings>(this.c.name) ?? this.c.settings;
    const st = statsOf(s, this.c.root);
    if (!sample(s.filterEnabled)) return FilterStatus.Continue;
    st.enabled.value++;
    const b = bucketsFor(s, this.cb.connection);
    const matched = b.descriptors.length ? this.matchDescriptors(s, b.descriptors, head) : [];
    let allowed = true;
    for (const d of matched) {
      this.reported ??= d.bucket;
      if (!d.bucket.consume()) {
        allowed = false;
        this.reported = d.bucket;
        break;
      }
    }
    if (allowed && b.bucket && (!matched.length || s.alwaysConsumeDefault)) {
      this.reported ??= b.bucket;
      if (!b.bucket.consume()) {
        allowed = false;
        this.reported = b.bucket;
      }
    }
    if (s.xRateLimitHeaders) this.s = s;
    if (allowed) {
      st.ok.value++;
      return FilterStatus.Continue;
    }
    st.rateLimited.value++;
    if (!sample(s.filterEnforced)) {
      if (!s.requestOpsWhenNotEnforced.empty) s.requestOpsWhenNotEnforced.apply(head.headers, this.cb.streamInfo, head);
      return FilterStatus.Continue;
    }
    st.enforced.value++;
    const headers: HeaderMap = { 'x-envoy-ratelimited': 'true' };
    if (!s.responseOps.empty) s.responseOps.apply(headers, this.cb.streamInfo, head);
    this.cb.sendLocalReply({ status: s.status, body: 'local_rate_limited', headers, flags: ResponseFlag.RateLimited, details: 'local_rate_limited', grpcStatus: s.resourceExhausted ? 8 : 14 });
    return FilterStatus.StopIteration;
  }

  private matchDescriptors(s: LocalRateLimitSettings, configured: readonly LimitDescriptor[], head: RequestHead): LimitDescriptor[] {
    const route = this.cb.matchedRoute();
    if (!route) return [];
    const policies = routePolicies(route.rateLimits, route.vhostRateLimits, s.vhRateLimits);
    if (!policies.length) return [];
    const cluster = route.action === ActionKind.Weighted ? '' : route.cluster;
    const out: LimitDescriptor[] = [];
    for (const req of descriptorsFor(policies, s.stage, { head, remoteIp: this.cb.streamInfo.downstreamRemoteIp ?? this.cb.connection.remoteAddress, cluster })) {
      for (const d of configured) if (sameEntries(d.entries, req) && !out.includes(d)) out.push(d);
    }
    return out;
  }

  encodeHeaders(head: ResponseHead): void {
    const b = this.reported;
    if (!this.s || !b) return;
    head.headers['x-ratelimit-limit'] = String(b.maxTokens);
    head.headers['x-ratelimit-remaining'] = String(b.remaining());
    head.headers['x-ratelimit-reset'] = String(b.resetSeconds());
  }
}

export const localRateLimitFilterFactory: HttpFilterFactory<LocalRateLimitFilterConfig, LocalRateLimitSettings> = {
  name: LOCAL_RATELIMIT_FILTER_NAME,
  typeUrls: [LOCAL_RATELIMIT_TYPE],
  perRouteTypeUrls: [LOCAL_RATELIMIT_TYPE],
  compile(r, ctx) {
    const settings = readLocalRateLimit(r, ctx.runtime);
    statsOf(settings, ctx.stats);
    return { name: ctx.name, settings, root: ctx.stats };
  },
  compilePerRoute: (r, ctx) => readLocalRateLimit(r, ctx.runtime),
  create: (c, cb) => new LocalRateLimitFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(localRateLimitFilterFactory);
}
