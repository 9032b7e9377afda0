// Compiles envoy.extensions.filters.http.ratelimit.v3.RateLimit (the filter's typed_config) and
// RateLimitPerRoute (typed_per_filter_config), once per LDS/RDS update.
import type { Reader } from '../../config/reader.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';
import { readGrpcService, type GrpcServiceConfig } from '../../config/grpc-service.ts';
import { readHeaderOps, type HeaderOps } from '../../routing/header-ops.ts';
import { readRateLimits, readVhRateLimits, type RateLimitPolicy, type VhRateLimits } from '../../routing/rate-limit-actions.ts';
import { httpStatus } from '../ext-authz/ext-authz-config.ts';

/** request_type: which requests the filter applies to, by x-envoy-internal. */
export const RequestType = { Both: 0, Internal: 1, External: 2 } as const;
export type RequestType = (typeof RequestType)[keyof typeof RequestType];

export interface RateLimitConfig {
  readonly domain: string;
  readonly stage: number;
  readonly requestType: RequestType;
  /** The service's gRPC call; its timeoutMs is the filter's `timeout` (default 20 ms; 0: none). */
  readonly service: GrpcServiceConfig;
  readonly failureModeDeny: boolean;
  /** gRPC requests refused for the limit get RESOURCE_EXHAUSTED instead of UNAVAILABLE. */
  readonly resourceExhausted: boolean;
  readonly xRateLimitHeaders: boolean;
  readonly xEnvoyRateLimitedHeader: boolean;
  readonly rateLimitedStatus: number;
  readonly statusOnError: number;
  /** response_headers_to_add: on responses to rate limited requests. */
  readonly limitedResponseOps: HeaderOps;
  /** `ratelimit.` or `<stat_prefix>.ratelimit.`, after `cluster.<route cluster>.`. */
  readonly statPrefix: string;
}

export interface RateLimitPerRoute {
  readonly vhRateLimits: VhRateLimits;
  /** rate_limits of the per-route config: used instead of the route's and virtual host's. */
  readonly rateLimits?: readonly RateLimitPolicy[];
  /** Replaces the filter's domain for this route. */
  readonly domain?: string;
}

const DEFAULT_TIMEOUT_MS = 20;
const NO_SERVICE: GrpcServiceConfig = { kind: 'grpc', cluster: '', authority: '', timeoutMs: 0, initialMetadata: [], maxReceiveBytes: 0, skipEnvoyHeaders: false };

function readRequestType(r: Reader): RequestType {
  const t = r.str('request_type', 'both');
  if (t === 'internal') return RequestType.Internal;
  if (t === 'external') return RequestType.External;
  if (t !== 'both' && t !== '') r.issues.error(r.at('request_type'), `unknown request_type "${t}" (internal, external or both)`);
  return RequestType.Both;
}

function readService(r: Reader, timeoutMs: number): GrpcServiceConfig {
  const rls = r.obj('rate_limit_service');
  if (!rls) {
    r.issues.error(r.at('rate_limit_service'), 'the rate limit filter needs rate_limit_service.grpc_service (envoy_grpc.cluster_name: the cluster of the rate limit service)');
    return NO_SERVICE;
  }
  const api = rls.str('transport_api_version', 'V3');
  if (api !== 'V3' && api !== 'AUTO') rls.issues.error(rls.at('transport_api_version'), `only V3 is supported, got ${api}`);
  const gs = rls.obj('grpc_service');
  if (!gs) rls.issues.error(rls.at('grpc_service'), 'required (envoy_grpc.cluster_name: the cluster of the rate limit service)');
  const service = gs ? readGrpcService(gs, 'rate limit', undefined) : NO_SERVICE;
  rls.done();
  return { ...service, timeoutMs };
}

export function readRateLimitConfig(r: Reader): RateLimitConfig {
  const domain = r.str('domain');
  if (!domain) r.issues.error(r.at('domain'), 'the rate limit filter needs a domain (the rate limit service keys its configuration by it)');
  const stage = r.num('stage', 0);
  if (!Number.isInteger(stage) || stage < 0 || stage > 10) r.issues.error(r.at('stage'), 'must be an integer in [0, 10]');
  const xr = r.str('enable_x_ratelimit_headers', 'OFF');
  if (xr !== 'OFF' && xr !== 'DRAFT_VERSION_03') r.issues.error(r.at('enable_x_ratelimit_headers'), `unknown value "${xr}" (OFF or DRAFT_VERSION_03)`);
  const limitedResponseOps = readHeaderOps(r, 'response');
  if (limitedResponseOps.adds.length > 10) r.issues.error(r.at('response_headers_to_add'), 'at most 10 headers');
  const prefix = r.str('stat_prefix');
  const c: RateLimitConfig = {
    domain,
    stage,
    requestType: readRequestType(r),
    service: readService(r, r.durationMs('timeout', DEFAULT_TIMEOUT_MS)),
    failureModeDeny: r.bool('failure_mode_deny', false),
    resourceExhausted: r.bool('rate_limited_as_resource_exhausted', false),
    xRateLimitHeaders: xr === 'DRAFT_VERSION_03',
    xEnvoyRateLimitedHeader: !r.bool('disable_x_envoy_ratelimited_header', false),
    rateLimitedStatus: httpStatus(r.obj('rate_limited_status'), 429),
    statusOnError: httpStatus(r.obj('status_on_error'), 500),
    limitedResponseOps,
    statPrefix: prefix ? `${prefix}.ratelimit.` : 'ratelimit.',
  };
  for (const [k, s] of [['rate_limited_status', c.rateLimitedStatus], ['status_on_error', c.statusOnError]] as const) {
    if (r.has(k) && (s < 400 || s > 599)) r.issues.error(r.at(k), `must be a 4xx or 5xx status, got ${s}`);
  }
  if (r.has('rate_limits')) r.issues.error(r.at('rate_limits'), 'filter-level rate_limits are not supported by rig proxy; put rate_limits on the routes or virtual hosts, or in RateLimitPerRoute');
  r.accept('rate_limits');
  r.done();
  return c;
}

export function readRateLimitPerRoute(r: Reader, runtime: EnvoyRuntime): RateLimitPerRoute {
  const vhRateLimits = readVhRateLimits(r);
  // override_option picks which `limit` overrides apply; rig proxy refuses `limit` in rate_limits,
  // so every option means the same here.
  const o = r.str('override_option', 'DEFAULT');
  if (!['DEFAULT', 'OVERRIDE_POLICY', 'INCLUDE_POLICY', 'IGNORE_POLICY'].includes(o)) r.issues.error(r.at('override_option'), `unknown value "${o}" (DEFAULT, OVERRIDE_POLICY, INCLUDE_POLICY or IGNORE_POLICY)`);
  const rateLimits = readRateLimits(r, runtime);
  const domain = r.str('domain') || undefined;
  r.done();
  return { vhRateLimits, rateLimits: rateLimits?.length ? rateLimits : undefined, domain };
}
