// The HCM tracer for Envoy's envoy.tracers.zipkin (ZipkinConfig) and envoy.tracers.opentelemetry
// (OpenTelemetryConfig, http_service or grpc_service) providers, built on OpenTelemetry's SDK. Per request:
// extract the caller's context in the formats the tracer reads (trace-context.ts), honour its
// sampling decision (or x-envoy-force-trace), else the connection manager's (http/request-id.ts:
// random_sampling by x-request-id, a reason packed by an earlier hop, x-client-trace-id); a sampled
// request gets a SERVER span (inbound) or a CLIENT span (outbound, gateway) named as Istio's route
// decorator (`<service host>:<port>/*`), tagged with Istio's/Envoy's span tags; the context is
// injected into the upstream request. Unsampled requests still propagate the decision (sampled=0).
// A Zipkin SERVER span shares the caller's span context (ZipkinConfig.shared_span_context, true
// unless set false, as Istio does): it takes the caller's span id and parent, as Envoy's Zipkin
// tracer, and is reported with Zipkin's `shared: true`.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Span as OtelSpan } from '@opentelemetry/api';
import type { Reader } from '../config/reader.ts';
import type { RequestHead, ResponseHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import { formatResponseFlags } from '../response-flags.ts';
import { registerTracer, type Span, type Tracer, type TracerFactory } from '../http/tracer.ts';
import { MALFORMED, Propagation, extractContext, injectContext, newSpanId, newTraceId, newTraceId64, type TraceContext } from './trace-context.ts';
import { spanPipeline, startSpanWithIds, type SpanPipeline } from './span-export.ts';
import { OTEL_CONFIG_TYPE, readTracerProvider, ZIPKIN_CONFIG_TYPE } from './tracer-provider.ts';
import { attachTelemetry } from './proxy-telemetry.ts';
import { traceDecision, type RequestIdConfig, type TraceSampling } from '../http/request-id.ts';
import { serviceOfAuthority, serviceOfCluster } from './istio-metrics.ts';
import type { LocalPeer } from './peer-metadata.ts';
import { firstHeaderValue } from '../http/first-header-value.ts';
import type { EnvoyRuntime } from '../envoy-runtime/index.ts';

type CustomTag = (req: RequestHead, info: StreamInfo) => string | undefined;

interface TracerConfig {
  readonly pipeline: SpanPipeline;
  /** random_sampling, overall_sampling and client_sampling (runtime handles), decided by request id as Envoy. */
  readonly sampling: TraceSampling;
  readonly requestId: RequestIdConfig;
  readonly kind: SpanKind;
  readonly maxPathLength: number;
  readonly customTags: readonly (readonly [string, CustomTag])[];
  readonly nodeId: string;
  readonly local: LocalPeer;
  readonly direction: StreamInfo['direction'];
  readonly propagation: Propagation;
  /** New traces get 64-bit ids (Zipkin without trace_id_128bit). */
  readonly traceId64: boolean;
  /** A SERVER span takes the caller's span id (Zipkin's shared_span_context). */
  readonly sharedSpanContext: boolean;
}

const DECORATOR_HEADER = 'x-envoy-decorator-operation';

/**
 * The span name, as Envoy: a server span takes the caller's x-envoy-decorator-operation, else the
 * route's decorator; without one, Istio's `<service host>:<port>/*` of the destination.
 */
function spanName(c: TracerConfig, info: StreamInfo, req: RequestHead): string {
  if (c.kind === SpanKind.SERVER) {
    const propagated = firstHeaderValue(req.headers[DECORATOR_HEADER]);
    if (propagated) return propagated;
  }
  if (info.routeDecorator) return info.routeDecorator.operation;
  const cluster = info.upstreamCluster ?? '';
  const svc = serviceOfCluster(cluster) ?? serviceOfAuthority(req.authority, c.direction === 'inbound' ? c.local.labels.namespace : 'unknown');
  const parts = cluster.split('|');
  const port = parts.length === 4 && parts[1] ? parts[1] : (/:(\d+)$/.exec(req.authority)?.[1] ?? '');
  return svc.host === 'unknown' ? `${req.authority || '-'}/*` : `${svc.host}${port ? ':' + port : ''}/*`;
}

class RecordingSpan implements Span {
  private readonly c: TracerConfig;
  private readonly span: OtelSpan;
  private readonly ctx: TraceContext | undefined;
  private readonly info: StreamInfo;
  private readonly parentSpanId: string | undefined;

  constructor(c: TracerConfig, span: OtelSpan, ctx: TraceContext | undefined, info: StreamInfo, parentSpanId: string | undefined) {
    this.c = c;
    this.span = span;
    this.ctx = ctx;
    this.info = info;
    this.parentSpanId = parentSpanId;
  }

  injectContext(head: RequestHead): void {
    const d = this.info.routeDecorator;
    if (d?.propagate && this.c.kind === SpanKind.CLIENT) head.headers[DECORATOR_HEADER] = d.operation;
    const sc = this.span.spanContext();
    injectContext(head.headers, this.c.propagation, sc.traceId, sc.spanId, this.parentSpanId, true, this.ctx?.tracestate, this.ctx?.b3Single ?? false);
  }

  finish(info: StreamInfo, req: RequestHead, res: ResponseHead | undefined): void {
    const c = this.c;
    const s = this.span;
    let url = `${req.scheme}://${req.authority}${info.path ?? req.path}`;
    if (url.length > c.maxPathLength) url = url.slice(0, c.maxPathLength);
    const peer = c.direction === 'inbound' ? info.downstreamPeer : info.upstreamPeer;
    s.updateName(spanName(c, info, req));
    s.setAttributes({
      node_id: c.nodeId,
      zone: '',
      component: 'proxy',
      'upstream_cluster': info.upstreamCluster ?? '-',
      'upstream_cluster.name': info.upstreamCluster ?? '-',
      'http.method': req.method,
      'http.url': url,
      'http.protocol': info.protocol,
      'http.status_code': String(info.responseCode),
      response_flags: formatResponseFlags(info.responseFlags),
      response_size: String(info.bytesSent),
      request_size: String(info.bytesReceived),
      downstream_cluster: firstHeaderValue(req.headers['x-envoy-downstream-service-cluster']) ?? '-',
      user_agent: info.userAgent ?? '-',
      'guid:x-request-id': info.requestId ?? '',
      // As Envoy's downstream span: the connection's peer, not the address taken from x-forwarded-for.
      'peer.address': info.downstreamDirectRemoteAddress ?? '',
    });
    if (peer?.principal) s.setAttribute('peer.principal', peer.principal);
    if (info.upstreamHost) s.setAttribute('upstream_host', info.upstreamHost);
    if (info.isGrpc && info.grpcStatus !== undefined) s.setAttribute('grpc.status_code', String(info.grpcStatus));
    for (const [tag, get] of c.customTags) {
      const v = get(req, info);
      if (v !== undefined) s.setAttribute(tag, v);
    }
    if (info.responseCode >= 500 || info.responseCode === 0 || (info.isGrpc && (info.grpcStatus ?? 0) !== 0)) {
      s.setAttribute('error', 'true');
      s.setStatus({ code: SpanStatusCode.ERROR });
    }
    s.end(info.startTime + (info.durationMs ?? 0));
    void res;
  }
}

/** Propagates a "not sampled" decision downstream. */
class UnsampledSpan implements Span {
  private readonly propagation: Propagation;
  private readonly traceId: string;
  private readonly spanId: string;
  private readonly parentSpanId: string | undefined;
  private readonly ctx: TraceContext | undefined;

  constructor(propagation: Propagation, traceId: string, ctx: TraceContext | undefined, shared: boolean) {
    this.propagation = propagation;
    this.traceId = traceId;
    this.ctx = ctx;
    this.spanId = shared && ctx?.parentSpanId ? ctx.parentSpanId : newSpanId();
    this.parentSpanId = shared ? ctx?.callerParentId : ctx?.parentSpanId;
  }

  injectContext(head: RequestHead): void {
    injectContext(head.headers, this.propagation, this.traceId, this.spanId, this.parentSpanId, false, this.ctx?.tracestate, this.ctx?.b3Single ?? false);
  }

  finish(): void {}
}

class OtelHcmTracer implements Tracer {
  private readonly c: TracerConfig;

  constructor(c: TracerConfig) {
    this.c = c;
  }

  startSpan(head: RequestHead, info: StreamInfo): Span | undefined {
    const c = this.c;
    const incoming = extractContext(head.headers, c.propagation);
    if (incoming === MALFORMED) return undefined;
    // The connection manager's decision (it may pack its reason into x-request-id); a sampling
    // flag the caller sent still wins.
    const traced = traceDecision(head.headers, c.requestId, c.sampling);
    const rid = head.headers['x-request-id'];
    info.requestId = Array.isArray(rid) ? rid[0] : rid;
    let sampled = incoming?.sampled;
    if (head.headers['x-envoy-force-trace'] !== undefined) sampled = true;
    sampled ??= traced;
    info.sampled = sampled;
    const shared = c.sharedSpanContext && c.kind === SpanKind.SERVER && incoming?.parentSpanId !== undefined;
    if (!sampled) {
      // A caller's trace continues; a decision without a trace (sampled=0 alone) starts one of ours.
      const traceId = incoming?.parentSpanId ? incoming.traceId : c.traceId64 ? newTraceId64() : newTraceId();
      info.traceId = traceId;
      return new UnsampledSpan(c.propagation, traceId, incoming, shared);
    }
    const opts = { kind: c.kind, startTime: info.startTime };
    const name = `${head.authority}/*`;
    let span: OtelSpan;
    let parentSpanId = incoming?.parentSpanId;
    if (shared && incoming?.parentSpanId) {
      // One span for both sides of the call: the caller's id, under the caller's parent.
      parentSpanId = incoming.callerParentId;
      const parent = parentSpanId ? trace.setSpanContext(ROOT_CONTEXT, { traceId: incoming.traceId, spanId: parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true }) : ROOT_CONTEXT;
      span = startSpanWithIds(c.pipeline, name, opts, parent, incoming.traceId, incoming.parentSpanId);
    } else {
      const parent = incoming?.parentSpanId ? trace.setSpanContext(ROOT_CONTEXT, { traceId: incoming.traceId, spanId: incoming.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true }) : ROOT_CONTEXT;
      span = c.pipeline.tracer.startSpan(name, opts, parent);
    }
    const sc = span.spanContext();
    info.traceId = sc.traceId;
    info.spanId = sc.spanId;
    info.parentSpanId = parentSpanId;
    return new RecordingSpan(c, span, incoming, info, parentSpanId);
  }
}

/** The samplings as Envoy's connection manager scales them, each the default of its runtime key. */
function traceSampling(tracing: Reader, runtime: EnvoyRuntime): TraceSampling {
  return {
    random: runtime.fraction('tracing.random_sampling', { numerator: Math.round(percent(tracing, 'random_sampling', 100) * 100), denominator: 10_000 }),
    overall: runtime.fraction('tracing.global_enabled', { numerator: Math.floor(percent(tracing, 'overall_sampling', 100)), denominator: 100 }),
    client: runtime.fraction('tracing.client_enabled', { numerator: Math.floor(percent(tracing, 'client_sampling', 100)), denominator: 100 }),
  };
}

function percent(r: Reader, key: string, def: number): number {
  const o = r.obj(key);
  if (!o) return def;
  const v = o.num('value', def);
  o.done();
  if (v < 0 || v > 100) {
    r.issues.error(r.at(key), `must be a percentage between 0 and 100, got ${v}`);
    return def;
  }
  return v;
}

/**
 * A `metadata` custom tag of kind `request`: the value at `metadata_key.path` in the stream's dynamic
 * metadata of filter `metadata_key.key` (e.g. Istio's dry-run tags from the RBAC filter's
 * istio_dry_run_deny_shadow_effective_policy_id), else `default_value`; no tag when neither is set.
 */
function requestMetadataTag(m: Reader): CustomTag {
  const kind = m.obj('kind');
  if (kind && !kind.has('request')) m.issues.error(kind.path, 'only request metadata tags are supported (route, cluster and host metadata are not)');
  kind?.done();
  const mk = m.obj('metadata_key');
  const filter = mk?.str('key') ?? '';
  const path = (mk?.objs('path') ?? []).map((seg) => {
    const k = seg.str('key');
    seg.done();
    return k;
  });
  mk?.done();
  const def = m.str('default_value') || undefined;
  return (_req, info) => {
    let v: unknown = info.filterState?.[filter];
    for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (v === undefined || v === null) return def;
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  };
}

function compileCustomTags(r: Reader): [string, CustomTag][] {
  const out: [string, CustomTag][] = [];
  for (const t of r.objs('custom_tags')) {
    const tag = t.str('tag');
    const lit = t.obj('literal');
    const env = t.obj('environment');
    const hdr = t.obj('request_header');
    const meta = t.obj('metadata');
    if (lit) {
      const v = lit.str('value');
      out.push([tag, () => v]);
      lit.done();
    } else if (env) {
      const name = env.str('name');
      const def = env.str('default_value') || undefined;
      const v = process.env[name] ?? def;
      out.push([tag, () => v]);
      env.done();
    } else if (hdr) {
      const name = hdr.str('name').toLowerCase();
      const def = hdr.str('default_value') || undefined;
      out.push([tag, (req) => firstHeaderValue(req.headers[name]) ?? def]);
      hdr.done();
    } else if (meta) {
      out.push([tag, requestMetadataTag(meta)]);
      meta.done();
    } else t.issues.error(t.path, 'a custom tag needs literal, environment, request_header or metadata');
    t.done();
  }
  return out;
}

export const otelTracerFactory: TracerFactory = {
  name: 'envoy.tracers.opentelemetry',
  typeUrls: [ZIPKIN_CONFIG_TYPE, OTEL_CONFIG_TYPE],
  compile(tracing, ctx) {
    const t = attachTelemetry(ctx.proxy);
    const local = t.local;
    const otelName = tracing.obj('provider')?.obj('typed_config')?.raw.service_name;
    const provider = readTracerProvider(tracing, ctx);
    const target = provider?.target ?? { kind: 'zipkin', cluster: '', path: '/api/v2/spans', timeoutMs: 10_000 };
    // Envoy's Zipkin tracer names the local endpoint by the node's cluster (--service-cluster).
    const serviceName =
      target.kind === 'zipkin' && t.node.cluster ? t.node.cluster : typeof otelName === 'string' && otelName ? otelName : `${local.labels.canonicalService}.${local.labels.namespace}`;
    // Envoy's gRPC client would speak HTTP/1.1 to such a cluster and every export would fail.
    if (target.grpc && t.clusters.get(target.cluster)?.config.http2 === false) {
      ctx.issues.warn(tracing.at('provider.typed_config.grpc_service.envoy_grpc.cluster_name'), `the collector cluster ${target.cluster} is not HTTP/2: OTLP/gRPC exports will fail until it has http2_protocol_options (or explicit_http_config.http2_protocol_options)`);
    }
    const config: TracerConfig = {
      pipeline: spanPipeline(t.stats, t.clusters, { ...target, serviceName }, ctx.proxy.log),
      sampling: traceSampling(tracing, ctx.proxy.runtime),
      requestId: ctx.requestId,
      kind: ctx.direction === 'inbound' ? SpanKind.SERVER : SpanKind.CLIENT,
      maxPathLength: tracing.num('max_path_tag_length', 256),
      customTags: compileCustomTags(tracing),
      nodeId: t.node.id,
      local,
      direction: ctx.direction,
      propagation: provider?.propagation ?? Propagation.B3,
      traceId64: target.traceId64 ?? false,
      sharedSpanContext: provider?.sharedSpanContext ?? false,
    };
    if (tracing.bool('verbose', false)) tracing.issues.warn(tracing.at('verbose'), 'spans carry no stream event logs in rig proxy; ignored');
    if (tracing.bool('spawn_upstream_span', false)) tracing.issues.warn(tracing.at('spawn_upstream_span'), 'rig proxy makes one span per request, not one more per upstream attempt; ignored');
    tracing.done();
    return new OtelHcmTracer(config);
  },
};

export function setupTracers(): void {
  registerTracer(otelTracerFactory);
}
