// Span export off the request path: an OpenTelemetry BasicTracerProvider per (provider, collector
// cluster, endpoint, service name) and proxy, batching spans (BatchSpanProcessor) to the collector
// cluster. OTLP/HTTP goes through the cluster itself, as Envoy's tracers use their cluster (its load
// balancer, pools and transport socket); Zipkin v2 JSON and OTLP/gRPC go through the OpenTelemetry
// exporters to the cluster's first host, resolved at each export. A collector that is down or a full
// queue only drop spans, counted in the proxy's stats: tracing.<zipkin|opentelemetry>.spans_sent /
// spans_dropped / reports_sent / reports_failed / reports_skipped_no_cluster.
import { createRequire } from 'node:module';
import type * as SdkTraceBase from '@opentelemetry/sdk-trace-base';
import type { BatchSpanProcessor, ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type * as OtelCore from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import type * as OtelResources from '@opentelemetry/resources';
import type { Context, Span, Tracer as OtelTracer } from '@opentelemetry/api';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { requestThroughCluster } from '../upstream/cluster-request.ts';
import type { Stat, Stats } from '../stats/stats.ts';

export type ExportKind = 'zipkin' | 'opentelemetry';

export interface ExportTarget {
  readonly kind: ExportKind;
  /** OTLP over gRPC (OpenTelemetryConfig.grpc_service) instead of HTTP. */
  readonly grpc?: boolean;
  readonly cluster: string;
  /** Path on the collector (/api/v2/spans, /v1/traces; unused over gRPC). */
  readonly path: string;
  /** Host header for the collector (HTTP exports), when the config names one. */
  readonly hostname?: string;
  readonly serviceName: string;
  readonly timeoutMs: number;
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

interface TraceSerializer {
  serializeRequest(spans: ReadableSpan[]): Uint8Array | undefined;
}

let otlpJson: TraceSerializer | undefined;

/**
 * OTLP/HTTP's JSON encoding of a batch, from the OpenTelemetry transformer's trace module alone:
 * its package entry point also loads the metrics and logs SDKs (130 modules). The OTLP/HTTP exporter
 * that this replaces, with its own HTTP client, cost the bench's telemetry-on proxy ~8 MB RSS.
 */
function otlpJsonSerializer(): TraceSerializer {
  otlpJson ??= (createRequire(import.meta.url)('@opentelemetry/otlp-transformer/build/src/trace/json/trace.js') as { JsonTraceSerializer: TraceSerializer }).JsonTraceSerializer;
  return otlpJson;
}

const MAX_QUEUE = 2048;
export const FLUSH_INTERVAL_MS = 1000;

/** Sends to the current address of the collector cluster; one delegate exporter per URL. */
class ClusterExporter implements SpanExporter {
  private readonly t: ExportTarget;
  private readonly clusters: ClusterManager;
  private readonly s: ExportStats;
  private readonly byUrl = new Map<string, Promise<SpanExporter>>();
  pending = 0;

  constructor(t: ExportTarget, clusters: ClusterManager, s: ExportStats) {
    this.t = t;
    this.clusters = clusters;
    this.s = s;
  }

  private url(): string | undefined {
    const host = this.clusters.get(this.t.cluster)?.hosts()[0];
    if (!host) return undefined;
    const addr = host.address.includes(':') ? `[${host.address}]` : host.address;
    return `http://${addr}:${host.port}${this.t.grpc ? '' : this.t.path}`;
  }

  // Exporters load on the first export, off the request path: a proxy that never samples a span
  // (most sidecars at Istio's 1% default between exports) does not carry them (~3 MB RSS, 1.3 MB heap).
  private delegate(url: string): Promise<SpanExporter> {
    let e = this.byUrl.get(url);
    if (!e) {
      const headers = this.t.hostname ? { host: this.t.hostname } : undefined;
      const { grpc, serviceName, timeoutMs } = this.t;
      if (grpc) e = import('@opentelemetry/exporter-trace-otlp-grpc').then((m) => new m.OTLPTraceExporter({ url, timeoutMillis: timeoutMs }));
      else e = import('@opentelemetry/exporter-zipkin').then((m) => new m.ZipkinExporter({ url, headers, serviceName }));
      this.byUrl.set(url, e);
    }
    return e;
  }

  /** One OTLP/HTTP request through the collector cluster; any 2xx is a success (OTLP's partial success still is). */
  private exportOtlpHttp(spans: ReadableSpan[], finish: (r: ExportResult) => void): void {
    const { ExportResultCode } = otelSdk().core;
    const { cluster, path, hostname, timeoutMs } = this.t;
    const body = otlpJsonSerializer().serializeRequest(spans);
    if (!body) {
      finish({ code: ExportResultCode.FAILED, error: new Error('spans could not be serialized') });
      return;
    }
    const headers = { host: hostname ?? cluster, 'content-type': 'application/json' };
    requestThroughCluster(this.clusters, { cluster, method: 'POST', path, headers, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength), timeoutMs }).then(
      (res) => finish(res.status >= 200 && res.status < 300 ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: new Error(`collector answered ${res.status}`) }),
      (error: Error) => finish({ code: ExportResultCode.FAILED, error }),
    );
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const { ExportResultCode } = otelSdk().core;
    const n = spans.length;
    const finish = (r: ExportResult) => {
      this.pending -= n;
      if (r.code === ExportResultCode.SUCCESS) {
        this.s.spansSent.value += n;
        this.s.reportsSent.value++;
      } else {
        this.s.spansDropped.value += n;
        this.s.reportsFailed.value++;
      }
      done(r);
    };
    if (this.t.kind === 'opentelemetry' && !this.t.grpc) {
      if (this.clusters.get(this.t.cluster)?.hosts().length) this.exportOtlpHttp(spans, finish);
      else {
        this.s.reportsSkipped.value++;
        finish({ code: ExportResultCode.FAILED, error: new Error(`collector cluster ${this.t.cluster} has no endpoint`) });
      }
      return;
    }
    const url = this.url();
    if (!url) {
      this.s.reportsSkipped.value++;
      finish({ code: ExportResultCode.FAILED, error: new Error(`collector cluster ${this.t.cluster} has no endpoint`) });
      return;
    }
    this.delegate(url).then(
      (e) => e.export(spans, finish),
      (error: Error) => finish({ code: ExportResultCode.FAILED, error }),
    ).catch((error: Error) => finish({ code: ExportResultCode.FAILED, error }));
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.byUrl.values()].map(async (e) => (await e).shutdown()));
  }
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
export function spanPipeline(stats: Stats, clusters: ClusterManager, t: ExportTarget): SpanPipeline {
  let m = pipelines.get(stats);
  if (!m) pipelines.set(stats, (m = new Map()));
  const key = `${t.kind}|${t.grpc ? 'grpc' : 'http'}|${t.cluster}|${t.path}|${t.hostname ?? ''}|${t.serviceName}|${t.timeoutMs}`;
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
  const exporter = new ClusterExporter(t, clusters, s);
  const { trace, resources } = otelSdk();
  const provider = new trace.BasicTracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': t.serviceName }),
    spanProcessors: [new BoundedProcessor(exporter, s.spansDropped)],
  });
  p = { tracer: provider.getTracer('rigging-proxy'), flush: () => provider.forceFlush() };
  m.set(key, p);
  return p;
}

/** Flushes every span pipeline of a proxy (tests, shutdown); failed exports are already counted, not thrown. */
export async function flushSpans(stats: Stats): Promise<void> {
  await Promise.allSettled([...(pipelines.get(stats)?.values() ?? [])].map((p) => p.flush()));
}
