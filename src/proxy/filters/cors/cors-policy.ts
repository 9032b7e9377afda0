// Compiles envoy.extensions.filters.http.cors.v3.CorsPolicy (typed_per_filter_config of a route or
// virtual host, as Istio generates it from a VirtualService corsPolicy).
import type { Reader } from '../../config/reader.ts';
import { ALWAYS, NEVER, readRuntimeFractionalPercent, type FractionalPercent } from '../../config/fractional-percent.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';
import { readStringMatcher, type StringMatcher } from '../../routing/string-matcher.ts';

export interface CorsPolicy {
  readonly allowOrigins: readonly StringMatcher[];
  readonly allowMethods?: string;
  readonly allowHeaders?: string;
  readonly exposeHeaders?: string;
  readonly maxAge?: string;
  readonly allowCredentials: boolean;
  readonly allowPrivateNetworkAccess: boolean;
  readonly forwardNotMatchingPreflights: boolean;
  readonly filterEnabled: FractionalPercent;
  readonly shadowEnabled: FractionalPercent;
}

export function readCorsPolicy(r: Reader, runtime: EnvoyRuntime): CorsPolicy {
  const allowOrigins = r.objs('allow_origin_string_match').map((m) => readStringMatcher(m));
  const opt = (k: string): string | undefined => (r.has(k) ? r.str(k) : undefined);
  const maxAge = opt('max_age');
  if (maxAge !== undefined && !/^\d+$/.test(maxAge)) r.issues.error(r.at('max_age'), `max_age must be a number of seconds, got "${maxAge}"`);
  const policy: CorsPolicy = {
    allowOrigins,
    allowMethods: opt('allow_methods'),
    allowHeaders: opt('allow_headers'),
    exposeHeaders: opt('expose_headers'),
    maxAge,
    allowCredentials: r.bool('allow_credentials', false),
    allowPrivateNetworkAccess: r.bool('allow_private_network_access', false),
    forwardNotMatchingPreflights: r.bool('forward_not_matching_preflights', true),
    filterEnabled: readRuntimeFractionalPercent(r.obj('filter_enabled'), ALWAYS, runtime),
    shadowEnabled: readRuntimeFractionalPercent(r.obj('shadow_enabled'), NEVER, runtime),
  };
  r.done();
  return policy;
}

/** Envoy's rule: an origin is allowed when a matcher matches it, or matches "*". */
export function originAllowed(p: CorsPolicy, origin: string): boolean {
  for (const m of p.allowOrigins) if (m.match('*') || m.match(origin)) return true;
  return false;
}
