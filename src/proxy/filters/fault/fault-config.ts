// Compiles envoy.extensions.filters.http.fault.v3.HTTPFault (the filter's typed_config and, as
// Istio generates it, the per-route typed_per_filter_config of the same type) into FaultSettings.
// The configured percentages, delay, statuses and max_active_faults are the defaults of Envoy's
// runtime keys (fault.http.*, or the names the *_runtime fields give), held as runtime handles.
import type { Reader } from '../../config/reader.ts';
import { NEVER, readFractionalPercent, type FractionalPercent } from '../../config/fractional-percent.ts';
import { readHeaderMatcher, type HeaderMatcher } from '../../routing/header-matcher.ts';
import type { EnvoyRuntime, RuntimeFraction, RuntimeUint } from '../../envoy-runtime/index.ts';

export interface FaultDelay {
  /** Fixed delay in ms; undefined when the delay comes from x-envoy-fault-delay-request. */
  readonly fixedMs?: number;
  readonly fromHeader: boolean;
  readonly percentage: FractionalPercent;
}

export interface FaultAbort {
  readonly httpStatus?: number;
  readonly grpcStatus?: number;
  /** Status from x-envoy-fault-abort-request / x-envoy-fault-abort-grpc-request. */
  readonly fromHeader: boolean;
  readonly percentage: FractionalPercent;
}

/** The fault filter's runtime keys, each with the configured value as its default. */
export interface FaultRuntime {
  readonly delayPercent: RuntimeFraction;
  /** fixed_duration_ms; valueOr() for a delay from x-envoy-fault-delay-request. */
  readonly delayMs: RuntimeUint;
  readonly abortPercent: RuntimeFraction;
  readonly abortHttpStatus: RuntimeUint;
  readonly abortGrpcStatus: RuntimeUint;
  /** Unlimited (MAX_SAFE_INTEGER) by default when max_active_faults is unset. */
  readonly maxActiveFaults: RuntimeUint;
}

export interface FaultSettings {
  readonly delay?: FaultDelay;
  readonly abort?: FaultAbort;
  readonly upstreamCluster?: string;
  readonly headers: readonly HeaderMatcher[];
  readonly downstreamNodes?: ReadonlySet<string>;
  /** Unlimited when undefined. */
  readonly maxActiveFaults?: number;
  readonly downstreamClusterStats: boolean;
  /** Dynamic metadata set (under the filter's name) when a fault is injected. */
  readonly filterMetadata?: Readonly<Record<string, unknown>>;
  readonly runtime: FaultRuntime;
}

function readDelay(r: Reader): FaultDelay {
  const percentage = readFractionalPercent(r.obj('percentage'), NEVER);
  const fixed = r.has('fixed_delay');
  const header = r.has('header_delay');
  if (fixed === header) r.issues.error(r.path, 'a fault delay needs exactly one of fixed_delay, header_delay');
  r.obj('header_delay')?.done();
  const fixedMs = fixed ? r.durationMs('fixed_delay', 0) : undefined;
  if (fixedMs !== undefined && fixedMs < 0) r.issues.error(r.at('fixed_delay'), 'the delay must not be negative');
  r.done();
  return { fixedMs, fromHeader: header, percentage };
}

function readAbort(r: Reader): FaultAbort {
  const percentage = readFractionalPercent(r.obj('percentage'), NEVER);
  const kinds = ['http_status', 'grpc_status', 'header_abort'].filter((k) => r.has(k));
  if (kinds.length !== 1) r.issues.error(r.path, `a fault abort needs exactly one of http_status, grpc_status, header_abort (got ${kinds.join(', ') || 'none'})`);
  let httpStatus: number | undefined;
  let grpcStatus: number | undefined;
  if (r.has('http_status')) {
    httpStatus = r.num('http_status', 503);
    if (!Number.isInteger(httpStatus) || httpStatus < 200 || httpStatus >= 600) r.issues.error(r.at('http_status'), 'http_status must be in [200, 600)');
  }
  if (r.has('grpc_status')) {
    grpcStatus = r.num('grpc_status', 2);
    if (!Number.isInteger(grpcStatus) || grpcStatus < 0) r.issues.error(r.at('grpc_status'), 'grpc_status must be a non-negative integer');
  }
  r.obj('header_abort')?.done();
  r.done();
  return { httpStatus, grpcStatus, fromHeader: kinds.includes('header_abort'), percentage };
}

function runtimeKey(r: Reader, field: string, def: string): string {
  return r.str(field) || def;
}

export function readFaultSettings(r: Reader, rt: EnvoyRuntime): FaultSettings {
  const dr = r.obj('delay');
  const ar = r.obj('abort');
  const delay = dr ? readDelay(dr) : undefined;
  const abort = ar ? readAbort(ar) : undefined;
  const upstreamCluster = r.str('upstream_cluster') || undefined;
  const headers = r.objs('headers').map((h) => readHeaderMatcher(h));
  const nodes = r.strs('downstream_nodes');
  let maxActiveFaults: number | undefined;
  if (r.has('max_active_faults')) maxActiveFaults = r.num('max_active_faults', 0);
  if (r.has('response_rate_limit')) r.issues.error(r.at('response_rate_limit'), 'response_rate_limit (bandwidth limiting) is not supported by rig proxy; use delay or abort');
  const runtime: FaultRuntime = {
    delayPercent: rt.fraction(runtimeKey(r, 'delay_percent_runtime', 'fault.http.delay.fixed_delay_percent'), delay?.percentage ?? NEVER),
    delayMs: rt.uint(runtimeKey(r, 'delay_duration_runtime', 'fault.http.delay.fixed_duration_ms'), delay?.fixedMs ?? 0),
    abortPercent: rt.fraction(runtimeKey(r, 'abort_percent_runtime', 'fault.http.abort.abort_percent'), abort?.percentage ?? NEVER),
    abortHttpStatus: rt.uint(runtimeKey(r, 'abort_http_status_runtime', 'fault.http.abort.http_status'), abort?.httpStatus ?? 0),
    abortGrpcStatus: rt.uint(runtimeKey(r, 'abort_grpc_status_runtime', 'fault.http.abort.grpc_status'), abort?.grpcStatus ?? 0),
    maxActiveFaults: rt.uint(runtimeKey(r, 'max_active_faults_runtime', 'fault.http.max_active_faults'), maxActiveFaults ?? Number.MAX_SAFE_INTEGER),
  };
  // Its key only changes response_rate_limit, which is refused above.
  r.accept('response_rate_limit_percent_runtime');
  const downstreamClusterStats = !r.bool('disable_downstream_cluster_stats', false);
  const filterMetadata = r.opaque('filter_metadata') as Record<string, unknown> | undefined;
  r.done();
  return { delay, abort, upstreamCluster, headers, downstreamNodes: nodes.length ? new Set(nodes) : undefined, maxActiveFaults, downstreamClusterStats, filterMetadata, runtime };
}
