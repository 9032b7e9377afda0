// envoy.filters.http.cors: answers CORS preflights (OPTIONS with Origin and
// Access-Control-Request-Method) directly with 200 and the policy's Access-Control-* headers, and
// adds Access-Control-Allow-Origin / -Credentials / -Expose-Headers to responses of actual CORS
// requests from allowed origins. The policy comes from the route (else virtual host)
// typed_per_filter_config; without one, or when filter_enabled samples false, nothing happens
// (shadow_enabled only counts). Stats: http.<stat_prefix>.cors.origin_valid|origin_invalid.
import { CORS_TYPE } from '../../../envoy/index.ts';
import { sample } from '../../config/fractional-percent.ts';
import type { Stat } from '../../stats/stats.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import { originAllowed, readCorsPolicy, type CorsPolicy } from './cors-policy.ts';
import { firstHeaderValue } from '../../http/first-header-value.ts';

export const CORS_FILTER_NAME = 'envoy.filters.http.cors';
export const CORS_POLICY_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

export interface CorsFilterConfig {
  readonly name: string;
  readonly originValid: Stat;
  readonly originInvalid: Stat;
}

class CorsFilter implements HttpFilter {
  private readonly c: CorsFilterConfig;
  private readonly cb: StreamCallbacks;
  /** Set for an actual (non-preflight) CORS request from an allowed origin, when enforced. */
  private policy: CorsPolicy | undefined;
  private origin = '';

  constructor(c: CorsFilterConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    const p = this.cb.perRouteConfig<CorsPolicy>(this.c.name);
    if (!p) return FilterStatus.Continue;
    const enabled = sample(p.filterEnabled);
    if (!enabled && !sample(p.shadowEnabled)) return FilterStatus.Continue;
    const origin = firstHeaderValue(head.headers.origin);
    if (!origin) return FilterStatus.Continue;
    const allowed = originAllowed(p, origin);
    (allowed ? this.c.originValid : this.c.originInvalid).value++;
    const preflight = head.method === 'OPTIONS' && !!firstHeaderValue(head.headers['access-control-request-method']);
    if (!preflight) {
      if (allowed && enabled) {
        this.policy = p;
        this.origin = origin;
      }
      return FilterStatus.Continue;
    }
    if ((!allowed && p.forwardNotMatchingPreflights) || !enabled) return FilterStatus.Continue;
    const headers: Record<string, string> = {};
    if (allowed) {
      headers['access-control-allow-origin'] = origin;
      if (p.allowCredentials) headers['access-control-allow-credentials'] = 'true';
      if (p.allowMethods) headers['access-control-allow-methods'] = p.allowMethods;
      if (p.allowHeaders) headers['access-control-allow-headers'] = p.allowHeaders;
      if (p.maxAge) headers['access-control-max-age'] = p.maxAge;
      if (p.allowPrivateNetworkAccess && firstHeaderValue(head.headers['access-control-request-private-network']) === 'true') headers['access-control-allow-private-network'] = 'true';
    }
    this.cb.sendLocalReply({ status: 200, headers, details: allowed ? 'cors_preflight' : 'cors_preflight_origin_not_allowed' });
    return FilterStatus.StopIteration;
  }

  encodeHeaders(head: ResponseHead): void {
    const p = this.policy;
    if (!p) return;
    head.headers['access-control-allow-origin'] = this.origin;
    if (p.allowCredentials) head.headers['access-control-allow-credentials'] = 'true';
    if (p.exposeHeaders) head.headers['access-control-expose-headers'] = p.exposeHeaders;
  }
}

export const corsFilterFactory: HttpFilterFactory<CorsFilterConfig, CorsPolicy> = {
  name: CORS_FILTER_NAME,
  typeUrls: [CORS_TYPE],
  perRouteTypeUrls: [CORS_POLICY_TYPE],
  compile(r, ctx) {
    r.done();
    const p = `http.${ctx.statPrefix}.cors.`;
    return { name: ctx.name, originValid: ctx.stats.counter(`${p}origin_valid`), originInvalid: ctx.stats.counter(`${p}origin_invalid`) };
  },
  compilePerRoute: (r, ctx) => readCorsPolicy(r, ctx.runtime),
  create: (c, cb) => new CorsFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(corsFilterFactory);
}
