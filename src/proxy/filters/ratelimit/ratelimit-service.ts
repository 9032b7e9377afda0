// The rate limit service: envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit, a unary call
// through the service's cluster as Envoy's envoy_grpc client makes it (cluster-grpc.ts). OK and
// OVER_LIMIT answers carry the service's descriptor statuses and headers; a failed call (transport
// error, timeout, non-OK grpc-status, an undecodable message, overall_code UNKNOWN) is an error.
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { callGrpcService, type GrpcMethod } from '../../upstream/cluster-grpc.ts';
import type { GrpcServiceConfig } from '../../config/grpc-service.ts';
import type { DescriptorEntry } from '../../routing/rate-limit-actions.ts';

const SHOULD_RATE_LIMIT: GrpcMethod = {
  path: '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit',
  request: 'envoy.service.ratelimit.v3.RateLimitRequest',
  response: 'envoy.service.ratelimit.v3.RateLimitResponse',
};

type Json = Record<string, unknown>;

/** `timeout: 0s` means no timeout, as in Envoy: the call is bounded only by the stream it serves (setTimeout's largest delay). */
const NO_TIMEOUT_MS = 2_147_483_647;

/** RateLimitResponse.DescriptorStatus as decoded (proto JSON names; zero values absent). */
export interface DescriptorStatus {
  readonly code?: string;
  readonly current_limit?: { readonly requests_per_unit?: number; readonly unit?: string; readonly name?: string };
  readonly limit_remaining?: number;
  /** A proto JSON duration, e.g. "30s". */
  readonly duration_until_reset?: string;
}

export type HeaderPair = readonly [string, string];

export interface LimitAnswer {
  readonly kind: 'ok' | 'over_limit';
  readonly statuses: readonly DescriptorStatus[];
  /** response_headers_to_add: added to the client's response (the local reply when over the limit). */
  readonly responseHeaders: readonly HeaderPair[];
  /** request_headers_to_add: appended to the request before it goes on (ok). */
  readonly requestHeaders: readonly HeaderPair[];
  /** raw_body: the local reply's body when over the limit. */
  readonly body: string;
  readonly dynamicMetadata?: Json;
}

export interface LimitError {
  readonly kind: 'error';
  readonly message: string;
}

export type LimitResult = LimitAnswer | LimitError;

function headerPairs(list: unknown): HeaderPair[] {
  const out: HeaderPair[] = [];
  for (const h of (Array.isArray(list) ? list : []) as { key?: string; value?: string; raw_value?: string }[]) {
    const key = h.key?.toLowerCase();
    if (key) out.push([key, h.value ?? (h.raw_value ? Buffer.from(h.raw_value, 'base64').toString('latin1') : '')]);
  }
  return out;
}

export async function shouldRateLimit(clusters: ClusterManager, s: GrpcServiceConfig, domain: string, descriptors: readonly (readonly DescriptorEntry[])[], signal: AbortSignal): Promise<LimitResult> {
  const answer = await callGrpcService(clusters, s, SHOULD_RATE_LIMIT, { domain, descriptors: descriptors.map((entries) => ({ entries })) }, s.timeoutMs || NO_TIMEOUT_MS, signal);
  if ('error' in answer) return { kind: 'error', message: answer.error };
  const r = answer.response as Json;
  const code = r.overall_code;
  if (code !== 'OK' && code !== 'OVER_LIMIT') return { kind: 'error', message: `ShouldRateLimit answered overall_code ${String(code ?? 'UNKNOWN')}` };
  return {
    kind: code === 'OK' ? 'ok' : 'over_limit',
    statuses: (r.statuses ?? []) as DescriptorStatus[],
    responseHeaders: headerPairs(r.response_headers_to_add),
    requestHeaders: headerPairs(r.request_headers_to_add),
    body: r.raw_body ? Buffer.from(String(r.raw_body), 'base64').toString() : '',
    dynamicMetadata: r.dynamic_metadata as Json | undefined,
  };
}
