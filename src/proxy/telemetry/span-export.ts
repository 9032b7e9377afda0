// Span export off the request path: an OpenTelemetry BasicTracerProvider per (provider, collector
// cluster, endpoint, service name) and proxy, batching spans (BatchSpanProcessor) to the collector
// cluster. Every export goes through the cluster itself, as Envoy's tracers use their collector
// cluster (its load balancer, pools and transport socket), encoded by the OpenTelemetry packages'
// own transforms. OTLP/HTTP is sent as Envoy sends it: a POST of a binary protobuf
// ExportTraceServiceRequest (content-type application/x-protobuf), an OTLP exporter User-Agent,
// then http_service.request_headers_to_add. OTLP/gRPC is the same message in a unary
// TraceService/Export call on the cluster's HTTP/2 pool, as Envoy's envoy_grpc client sends it
// (upstream/cluster-grpc.ts). A collector that is down or a full queue only drop spans, counted in
// the proxy's stats: tracing.<zipkin|opentelemetry>.spans_sent / spans_dropped / reports_sent /
// reports_failed / reports_skipped_no_cluster, and logged once per outage (a warning with the
// first failure's reason, then debug lines until an export succeeds again).
import { createRequire } from 'node:module';
import type * as SdkTraceBase from '@opentelemetry/sdk-trace-base';
import type { BatchSpanProcessor, ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type * as OtelCore from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import type * as OtelResources from '@opentelemetry/resources';
import type { Context, Span, SpanOptions, Tracer as OtelTracer } from '@opentelemetry/api';
import type { Logger } from '../../core/log.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { requestThroughCluster } from '../upstream/cluster-request.ts';
import { GrpcCallError, grpcCallThroughCluster } from '../upstream/cluster-grpc.ts';
import type { Stat, Stats } from '../stats/stats.ts';
import { VERSION } from '../../core/version.ts';
import { newSpanId, newTraceId, newTraceId64 } from './trace-context.ts';
import { detachedString } from '../../core/detached-string.ts';
import { exportRetriable, type ExportRetryPolicy } from './export-retry.ts';
import { backoffMs } from '../routing/retry-policy.ts';
import { serviceHeaderValue, type ServiceHeader } from './http-service-headers.ts';

export type ExportKind = 'zipkin' | 'opentelemetry';

export interface ExportTarget {
  readonly kind: ExportKind;
  /** OTLP over gRPC (OpenTelemetryConfig.grpc_service) instead of HTTP. */
  readonly grpc?: boolean;
  readonly cluster: string;
  /** :authority of OTLP/gRPC exports (envoy_grpc.authority); default: the cluster name, as Envoy. */
  readonly authority?: string;
  /** Path on the collector (/api/v2/spans, /v1/traces; unused over gRPC). */
  readonly path: string;
  /** Host header for the collector (HTTP exports), when the config names one. */
  readonly hostname?: string;
  readonly serviceName: string;
  /** The export's deadline; over gRPC the service timeout (sent as grpc-timeout), 0 when it has none. */
  readonly timeoutMs: number;
  /** Headers set on each HTTP export, evaluated then, replacing any of the same name (http_service / collector_service request_headers_to_add). */
  readonly headers?: readonly ServiceHeader[];
  /** Metadata on each OTLP/gRPC export (grpc_service.initial_metadata). */
  readonly metadata?: readonly (readonly [string, string])[];
  /** OTLP/gRPC: a larger response message fails the export (envoy_grpc.max_receive_message_length). */
  readonly maxReceiveBytes?: number;
  /** OTLP/gRPC: no x-envoy-internal / x-forwarded-for on exports (envoy_grpc.skip_envoy_headers). */
  readonly skipEnvoyHeaders?: boolean;
  /** OTLP/gRPC: failed calls retried by grpc_service.retry_policy. */
  readonly retry?: ExportRetryPolicy;
  /** Resource attributes besides service.name (OTLP: resource_detectors), replacing it when they name it. */
  readonly resource?: Readonly<Record<string, string>>;
  /** New traces get 64-bit ids (Zipkin without trace_id_128bit), the upper half of the OpenTelemetry id zero. */
  readonly traceId64?: boolean;
}

interface ExportStats {
  spansSent: Stat;
  spansDropped: Stat;
  reportsSent: Stat;
  reportsFailed: Stat;
  reportsSkipped: Stat;
}

interface Sdk {
  trace: typeof SdkTraceBase;
  core: typeof OtelCore;
  resources: typeof OtelResources;
}

let sdk: Sdk | undefined;

/**
 * The OpenTelemetry SDK, loaded with the first span pipeline (a tracing provider in the config):
 * a proxy without one does not carry it (with its semantic conventions: 1.5 MB heap, ~3 MB RSS).
 */
function otelSdk(): Sdk {
  if (sdk) return sdk;
  const require = createRequire(import.meta.url);
  return (sdk = {
    trace: require('@opentelemetry/sdk-trace-base') as typeof SdkTraceBase,
    core: require('@opentelemetry/core') as typeof OtelCore,
    resources: require('@opentelemetry/resources') as typeof OtelResources,
  });
}

type Encoder = (spans: ReadableSpan[], serviceName: string) => Uint8Array | string | undefined;

const CONTENT_TYPE: Record<ExportKind, string> = { zipkin: 'application/json', opentelemetry: 'application/x-protobuf' };
/** The OTLP exporter User-Agent (OTLP specification: `OTel-OTLP-Exporter-<name>/<version>`; Envoy names itself). */
const OTLP_USER_AGENT = `OTel-OTLP-Exporter-Rigging/${VERSION}`;

// The encoders load with the first export, from the modules that hold them: the packages' entry
// points also load HTTP clients (OTLP/HTTP: the metrics and logs SDKs as well, 130 modules) that
// this export does not use. Those clients cost the bench's telemetry-on proxy ~8 MB RSS. The OTLP
// protobuf serializer is the package's own small writer (9 modules, no protobufjs).
const encoders: Partial<Record<ExportKind, Encoder>> = {};

function encoder(kind: ExportKind): Encoder {
  const cached = encoders[kind];
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  if (kind === 'opentelemetry') {
    const { ProtobufTraceSerializer } = require('@opentelemetry/otlp-transformer/build/src/trace/protobuf/trace.js') as { ProtobufTraceSerializer: { serializeRequest(s: ReadableSpan[]): Uint8Array | undefined } };
    return (encoders[kind] = (spans) => ProtobufTraceSerializer.serializeRequest(spans));
  }
  // As the Zipkin exporter: a span's own service.name attribute wins, then the tracer's.
  const { toZipkinSpan, defaultStatusCodeTagName, defaultStatusErrorTagName } = require('@opentelemetry/exporter-zipkin/build/src/transform.js') as {
    toZipkinSpan(span: ReadableSpan, serviceName: string, codeTag: string, errorTag: string): object;
    defaultStatusCodeTagName: string;
    defaultStatusErrorTagName: string;
  };
  // A 64-bit trace id travels as 16 hex digits (Zipkin's own normalisation of a zero upper half).
  const zipkinSpan = (span: ReadableSpan, serviceName: string) => {
    const z = toZipkinSpan(span, String(span.attributes['service.name'] || serviceName), defaultStatusCodeTagName, defaultStatusErrorTagName) as { traceId: string };
    if (z.traceId.startsWith(ZERO_HALF)) z.traceId = z.traceId.slice(16);
    return z;
  };
  return (encoders[kind] = (spans, serviceName) => JSON.stringify(spans.map((span) => (sharedSpans.has(span) ? { ...zipkinSpan(span, serviceName), shared: true } : zipkinSpan(span, serviceName)))));
}

/** Server spans that took their caller's span id (Zipkin's `shared`). */
const sharedSpans = new WeakSet<object>();

// The next span's ids, when the tracer dictates them (a shared span context): read by the id
// generator inside the synchronous startSpan call that set them.
let forced: { traceId: string; spanId: string } | undefined;

/** Starts a span with the given trace and span ids (a server span sharing its caller's span context). */
export function startSpanWithIds(p: SpanPipeline, name: string, opts: SpanOptions, parent: Context, traceId: string, spanId: string): Span {
  forced = { traceId, spanId };
  try {
    const span = p.tracer.startSpan(name, opts, parent);
    sharedSpans.add(span);
    return span;
  } finally {
    forced = undefined;
  }
}

const ZERO_HALF = '0'.repeat(16);
const MAX_QUEUE = 2048;
export const FLUSH_INTERVAL_MS = 1000;

const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
/** Bounds an OTLP/gRPC export when grpc_service has no timeout (the batch processor's export timeout). */
const EXPORT_TIMEOUT_MS = 10_000;

/** Sends each batch through the collector cluster. */
class ClusterExporter implements SpanExporter {
  private readonly t: ExportTarget;
  private readonly clusters: ClusterManager;
  private readonly s: ExportStats;
  private readonly log: Logger;
  private failing = false;
  pending = 0;

  constructor(t: ExportTarget, clusters: ClusterManager, s: ExportStats, log: Logger) {
    this.t = t;
    this.clusters = clusters;
    this.s = s;
    this.log = log;
  }

  private failed(error: Error): void {
    const fields = { tracer: this.t.kind, cluster: this.t.cluster, err: error.message };
    if (this.failing) this.log.debug(fields, 'span export failed');
    else this.log.warn(fields, 'span export failed; spans are dropped until the collector accepts them again');
    this.failing = true;
  }

  /** One POST of the batch; any 2xx is a success (so is OTLP's partial success). */
  private exportOverHttp(body: Buffer): Promise<void> {
    const { kind, cluster, path, hostname, timeoutMs, headers: extra } = this.t;
    const headers: Record<string, string> = { host: hostname ?? cluster, 'content-type': CONTENT_TYPE[kind] };
    if (kind === 'opentelemetry') headers['user-agent'] = OTLP_USER_AGENT;
    if (extra) for (const h of extra) headers[h.name] = serviceHeaderValue(h);
    return requestThroughCluster(this.clusters, { cluster, method: 'POST', path, headers, body, timeoutMs }).then((res) => {
      if (res.status < 200 || res.status >= 300) throw new Error(`collector answered ${res.status}`);
    });
  }

  /**
   * A TraceService/Export call, a success only with grpc-status 0 (OTLP's partial success
   * included), retried as grpc_service.retry_policy says within the export's deadline (the service
   * timeout, else EXPORT_TIMEOUT_MS), counted as the router counts retries in the cluster's stats.
   */
  private async exportOverGrpc(body: Buffer): Promise<void> {
    const { cluster, authority, timeoutMs, metadata, maxReceiveBytes, skipEnvoyHeaders, retry } = this.t;
    const call = { cluster, path: TRACE_EXPORT_PATH, authority: authority || cluster, timeoutMs, deadlineMs: EXPORT_TIMEOUT_MS, metadata, userAgent: OTLP_USER_AGENT, maxReceiveBytes, skipEnvoyHeaders, tryTimeoutMs: retry?.perTryTimeoutMs };
    if (!retry) {
      await grpcCallThroughCluster(this.clusters, call, body);
      return;
    }
    const deadline = Date.now() + (timeoutMs > 0 ? timeoutMs : EXPORT_TIMEOUT_MS);
    for (let n = 0; ; n++) {
      try {
        // A retry's grpc-timeout and bound: what is left of the export's deadline.
        const left = Math.max(1, deadline - Date.now());
        await grpcCallThroughCluster(this.clusters, { ...call, timeoutMs: n === 0 || timeoutMs === 0 ? timeoutMs : left, deadlineMs: left }, body);
        if (n > 0) {
          const s = this.clusterStats();
          if (s) s.rqRetrySuccess.value++;
        }
        return;
      } catch (err) {
        if (!(err instanceof GrpcCallError) || !exportRetriable(retry, err)) throw err;
        const stats = this.clusterStats();
        if (n >= retry.numRetries) {
          if (stats) stats.rqRetryLimitExceeded.value++;
          throw err;
        }
        const wait = backoffMs(retry, n);
        // No time left for another try: the export fails with this attempt's error.
        if (Date.now() + wait >= deadline) throw err;
        if (stats) stats.rqRetry.value++;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private clusterStats() {
    return this.clusters.get(this.t.cluster)?.s;
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const { ExportResultCode } = otelSdk().core;
    const n = spans.length;
    const finish = (r: ExportResult) => {
      this.pending -= n;
      if (r.code === ExportResultCode.SUCCESS) {
        this.s.spansSent.value += n;
        this.s.reportsSent.value++;
        if (this.failing) this.log.info({ tracer: this.t.kind, cluster: this.t.cluster }, 'span export resumed');
        this.failing = false;
      } else {
        this.s.spansDropped.value += n;
        this.s.reportsFailed.value++;
        this.failed(r.error ?? new Error('export failed'));
      }
      done(r);
    };
    if (!this.clusters.get(this.t.cluster)?.hosts()[0]) {
      this.s.reportsSkipped.value++;
      finish({ code: ExportResultCode.FAILED, error: new Error(`collector cluster ${this.t.cluster} has no endpoint: no collector runs there; run one (a Service and a Workload for that host and port), or turn tracing off (meshConfig enableTracing: false, or a Telemetry with tracing: [{ disableSpanReporting: true }])`) });
      return;
    }
    const encoded = encoder(this.t.kind)(spans, this.t.serviceName);
    if (encoded === undefined) {
      finish({ code: ExportResultCode.FAILED, error: new Error('spans could not be encoded') });
      return;
    }
    const body = typeof encoded === 'string' ? Buffer.from(encoded) : Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
    (this.t.grpc ? this.exportOverGrpc(body) : this.exportOverHttp(body)).then(
      () => finish({ code: ExportResultCode.SUCCESS }),
      (error: Error) => finish({ code: ExportResultCode.FAILED, error }),
    );
  }

  async shutdown(): Promise<void> {}
}

type AttributeValue = ReadableSpan['attributes'][string];

function detachedValue(v: AttributeValue): AttributeValue {
  if (typeof v === 'string') return detachedString(v);
  if (Array.isArray(v) && v.some((x) => typeof x === 'string')) return v.map((x: unknown) => (typeof x === 'string' ? detachedString(x) : x)) as AttributeValue;
  return v;
}

/**
 * A finished span waits for its batch's export (up to FLUSH_INTERVAL_MS, longer while the collector
 * is slow), long enough for V8 to move it to the old generation with all it references. Its strings
 * are mostly views of larger ones: ids cut from the 8 KB pool of trace-context.ts, header values
 * and the URL cut from the request's head. Each held span kept such a pool: on the benchmark's
 * telemetry-on proxy at 1000 rps (1% sampled) the old generation grew 92 KB/s, against 32 without
 * tracing. The span is the SDK's own object; its fields are rewritten in place.
 */
function detachSpanStrings(span: ReadableSpan): void {
  const s = span as { -readonly [K in keyof ReadableSpan]: ReadableSpan[K] };
  s.name = detachedString(s.name);
  for (const ctx of [span.spanContext(), span.parentSpanContext]) {
    if (!ctx) continue;
    ctx.traceId = detachedString(ctx.traceId);
    ctx.spanId = detachedString(ctx.spanId);
  }
  const attrs = span.attributes as Record<string, AttributeValue>;
  for (const k in attrs) attrs[k] = detachedValue(attrs[k]);
  if (s.status.message !== undefined) s.status = { ...s.status, message: detachedString(s.status.message) };
}

/** Drops (and counts) spans beyond the queue bound instead of letting the batch processor drop them silently. */
class BoundedProcessor implements SpanProcessor {
  private readonly inner: BatchSpanProcessor;
  private readonly exporter: ClusterExporter;
  private readonly dropped: Stat;

  constructor(exporter: ClusterExporter, dropped: Stat) {
    this.exporter = exporter;
    this.dropped = dropped;
    this.inner = new (otelSdk().trace.BatchSpanProcessor)(exporter, { maxQueueSize: MAX_QUEUE, maxExportBatchSize: 512, scheduledDelayMillis: FLUSH_INTERVAL_MS, exportTimeoutMillis: 10_000 });
  }

  onStart(span: Span, ctx: Context): void {
    this.inner.onStart(span as never, ctx);
  }

  onEnd(span: ReadableSpan): void {
    if (this.exporter.pending >= MAX_QUEUE) {
      this.dropped.value++;
      return;
    }
    this.exporter.pending++;
    detachSpanStrings(span);
    this.inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

export interface SpanPipeline {
  readonly tracer: OtelTracer;
  flush(): Promise<void>;
}

const pipelines = new WeakMap<Stats, Map<string, SpanPipeline>>();

/** The pipeline for a target, shared by every connection manager of the proxy that uses it. */
export function spanPipeline(stats: Stats, clusters: ClusterManager, t: ExportTarget, log: Logger): SpanPipeline {
  let m = pipelines.get(stats);
  if (!m) pipelines.set(stats, (m = new Map()));
  const key = `${t.kind}|${t.grpc ? 'grpc' : 'http'}|${t.cluster}|${t.authority ?? ''}|${t.path}|${t.hostname ?? ''}|${t.serviceName}|${t.timeoutMs}|${t.maxReceiveBytes ?? 0}|${t.skipEnvoyHeaders ? 'skip' : ''}|${JSON.stringify(t.retry ?? null)}|${t.traceId64 ? 64 : 128}|${JSON.stringify([t.headers?.map((h) => [h.name, h.source]) ?? [], t.metadata ?? [], t.resource ?? {}])}`;
  let p = m.get(key);
  if (p) return p;
  const pre = `tracing.${t.kind}.`;
  const s: ExportStats = {
    spansSent: stats.counter(pre + 'spans_sent'),
    spansDropped: stats.counter(pre + 'spans_dropped'),
    reportsSent: stats.counter(pre + 'reports_sent'),
    reportsFailed: stats.counter(pre + 'reports_failed'),
    reportsSkipped: stats.counter(pre + 'reports_skipped_no_cluster'),
  };
  const exporter = new ClusterExporter(t, clusters, s, log);
  const { trace, resources } = otelSdk();
  const provider = new trace.BasicTracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': t.serviceName, ...t.resource }),
    spanProcessors: [new BoundedProcessor(exporter, s.spansDropped)],
    idGenerator: { generateTraceId: () => forced?.traceId ?? (t.traceId64 ? newTraceId64() : newTraceId()), generateSpanId: () => forced?.spanId ?? newSpanId() },
  });
  p = { tracer: provider.getTracer('rigging-proxy'), flush: () => provider.forceFlush() };
  m.set(key, p);
  return p;
}

/** Flushes every span pipeline of a proxy (tests, shutdown); failed exports are already counted, not thrown. */
export async function flushSpans(stats: Stats): Promise<void> {
  await Promise.allSettled([...(pipelines.get(stats)?.values() ?? [])].map((p) => p.flush()));
}
