// envoy.filters.http.csrf: origin verification for state-changing requests (POST, PUT, DELETE,
// PATCH), as Envoy's CSRF filter. The policy is the route's (else virtual host's) CsrfPolicy, else
// the filter's. With filter_enabled sampled on, a request whose source origin (Origin, else Referer)
// is missing or is neither its authority nor one of additional_origins gets 403 "Invalid origin";
// with only shadow_enabled on, it is counted and passes. Stats: http.<stat_prefix>.csrf.
// missing_source_origin, request_invalid, request_valid.
import { sample } from '../../config/fractional-percent.ts';
import { firstHeaderValue } from '../../http/first-header-value.ts';
import type { Stat } from '../../stats/stats.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type RequestHead, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import { hostAndPort, originValid, readCsrfPolicy, type CsrfPolicy } from './csrf-policy.ts';

export const CSRF_FILTER_NAME = 'envoy.filters.http.csrf';
export const CSRF_POLICY_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy';

export interface CsrfFilterConfig {
  readonly name: string;
  readonly policy: CsrfPolicy;
  readonly missingSourceOrigin: Stat;
  readonly requestInvalid: Stat;
  readonly requestValid: Stat;
}

class CsrfFilter implements HttpFilter {
  private readonly c: CsrfFilterConfig;
  private readonly cb: StreamCallbacks;

  constructor(c: CsrfFilterConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    const m = head.method;
    if (m !== 'POST' && m !== 'PUT' && m !== 'DELETE' && m !== 'PATCH') return FilterStatus.Continue;
    const c = this.c;
    const p = this.cb.perRouteConfig<CsrfPolicy>(c.name) ?? c.policy;
    const enabled = sample(p.filterEnabled);
    if (!enabled && !sample(p.shadowEnabled)) return FilterStatus.Continue;
    let valid = true;
    const source = hostAndPort(firstHeaderValue(head.headers.origin)) || hostAndPort(firstHeaderValue(head.headers.referer));
    if (!source) {
      valid = false;
      c.missingSourceOrigin.value++;
    }
    if (!originValid(p, source, head.authority)) {
      valid = false;
      c.requestInvalid.value++;
    }
    if (valid) {
      c.requestValid.value++;
      return FilterStatus.Continue;
    }
    if (!enabled) return FilterStatus.Continue;
    this.cb.sendLocalReply({ status: 403, body: 'Invalid origin', details: 'csrf_origin_mismatch' });
    return FilterStatus.StopIteration;
  }
}

export const csrfFilterFactory: HttpFilterFactory<CsrfFilterConfig, CsrfPolicy> = {
  name: CSRF_FILTER_NAME,
  typeUrls: [CSRF_POLICY_TYPE],
  perRouteTypeUrls: [CSRF_POLICY_TYPE],
  compile(r, ctx) {
    const p = `http.${ctx.statPrefix}.csrf.`;
    return {
      name: ctx.name,
      policy: readCsrfPolicy(r, ctx.runtime),
      missingSourceOrigin: ctx.stats.counter(`${p}missing_source_origin`),
      requestInvalid: ctx.stats.counter(`${p}request_invalid`),
      requestValid: ctx.stats.counter(`${p}request_valid`),
    };
  },
  compilePerRoute: (r, ctx) => readCsrfPolicy(r, ctx.runtime),
  create: (c, cb) => new CsrfFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(csrfFilterFactory);
}
