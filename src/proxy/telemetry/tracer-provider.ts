// The HCM tracing provider's typed_config read into where and how spans are exported
// (span-export.ts) and which context the tracer writes: Envoy's ZipkinConfig (collector_service,
// or the older collector_cluster / collector_endpoint / collector_hostname; trace_id_128bit;
// shared_span_context; trace_context_option) and OpenTelemetryConfig (http_service or grpc_service with its
// authority, timeout and initial_metadata; resource_detectors). Anything the proxy cannot do is an error or a warning
// naming the field.
import type { Reader } from '../config/reader.ts';
import type { TracerContext } from '../http/tracer.ts';
import { compileFormatter } from '../routing/header-ops.ts';
import { newStreamInfo } from '../stream-info.ts';
import { readHttpServiceHeaders } from './http-service-headers.ts';
import { readExportRetryPolicy } from './export-retry.ts';
import { readResourceDetectors } from './otel-resource-detectors.ts';
import type { ExportTarget } from './span-export.ts';
import { Propagation } from './trace-context.ts';

export const ZIPKIN_CONFIG_TYPE = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';
export const OTEL_CONFIG_TYPE = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';

export interface TracerProvider {
  readonly target: Omit<ExportTarget, 'serviceName'>;
  readonly propagation: Propagation;
  /** Zipkin: a server span shares its caller's span context. */
  readonly sharedSpanContext?: boolean;
}

type HttpTarget = Pick<ExportTarget, 'cluster' | 'path' | 'hostname' | 'timeoutMs' | 'headers'>;

/**
 * An HttpService (OpenTelemetry http_service, Zipkin collector_service): http_uri's cluster, its
 * timeout (required, as Envoy's HttpUri) and uri — a full URI gives the path and the Host header,
 * a bare path (Zipkin) keeps the cluster name as Host — and request_headers_to_add. Closes `hs`.
 */
function readHttpService(hs: Reader, defaultPath: string): HttpTarget {
  const uri = hs.obj('http_uri');
  if (!uri) hs.issues.error(hs.at('http_uri'), 'http_uri { uri, cluster, timeout } is required');
  const raw = uri?.str('uri') ?? '';
  const cluster = uri?.str('cluster') ?? '';
  if (uri && !uri.has('timeout')) hs.issues.error(uri.at('timeout'), 'a timeout is required (Envoy\'s HttpUri.timeout), e.g. "10s"');
  const timeoutMs = uri?.durationMs('timeout', 10_000) ?? 10_000;
  uri?.done();
  if (uri && !cluster) hs.issues.error(hs.at('http_uri'), 'http_uri.cluster names the collector cluster');
  let path = defaultPath;
  let hostname: string | undefined;
  if (raw.startsWith('/')) path = raw;
  else if (raw) {
    try {
      const u = new URL(/^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`);
      if (u.pathname && u.pathname !== '/') path = u.pathname + u.search;
      hostname = u.host || undefined;
    } catch {
      hs.issues.error(hs.at('http_uri'), `invalid uri ${JSON.stringify(raw)}`);
    }
  }
  const headers = readHttpServiceHeaders(hs);
  hs.done();
  return { cluster, path, hostname, timeoutMs, headers };
}

/**
 * GrpcService.initial_metadata: HeaderValue key and value (a format string, as request headers),
 * or raw_value. Resolved once, when the config is compiled: Envoy evaluates it per call against
 * the calling stream's info, which a span export has none of (%START_TIME% would be the only
 * command to differ; http_service headers are evaluated per export, http-service-headers.ts).
 */
function readInitialMetadata(gs: Reader): [string, string][] {
  const out: [string, string][] = [];
  for (const h of gs.objs('initial_metadata')) {
    const key = h.str('key').toLowerCase();
    if (!key) h.issues.error(h.at('key'), 'missing metadata name');
    else if (key.startsWith(':') || key.startsWith('grpc-') || key === 'content-type' || key === 'te') h.issues.error(h.at('key'), `${key} is set by gRPC itself and cannot be configured`);
    let value = '';
    if (h.has('value') && h.str('value') !== '') value = compileFormatter(h.str('value'), h.at('value'), h).format(newStreamInfo('outbound', 'HTTP/2'), undefined);
    else if (h.has('raw_value')) value = Buffer.from(h.str('raw_value'), 'base64').toString('latin1');
    h.done();
    if (key) out.push([key, value]);
  }
  return out;
}

function readZipkin(tc: Reader): TracerProvider {
  const version = tc.str('collector_endpoint_version', 'HTTP_JSON');
  if (version !== 'HTTP_JSON') tc.issues.error(tc.at('collector_endpoint_version'), `only HTTP_JSON (Zipkin v2 JSON) is supported, got ${version}`);
  let http: HttpTarget;
  const cs = tc.obj('collector_service');
  if (cs) {
    // Envoy: collector_service takes precedence over the older fields.
    http = readHttpService(cs, '/api/v2/spans');
    for (const k of ['collector_cluster', 'collector_endpoint', 'collector_hostname']) {
      if (tc.has(k)) tc.issues.warn(tc.at(k), 'has no effect beside collector_service, which takes precedence (as in Envoy)');
    }
  } else {
    const cluster = tc.str('collector_cluster');
    if (!cluster) tc.issues.error(tc.at('collector_cluster'), 'the Zipkin tracer needs collector_service or collector_cluster');
    // Envoy's Zipkin reporter waits 5 s for the collector.
    http = { cluster, path: tc.str('collector_endpoint', '/api/v2/spans'), hostname: tc.str('collector_hostname') || undefined, timeoutMs: 5_000 };
  }
  // Envoy's defaults: 64-bit trace ids, client and server sharing one span context.
  const traceId64 = !tc.bool('trace_id_128bit', false);
  const sharedSpanContext = tc.bool('shared_span_context', true);
  if (tc.bool('split_spans_for_request', false)) tc.issues.warn(tc.at('split_spans_for_request'), 'has no effect: each proxy already reports its own span per request');
  const option = tc.str('trace_context_option', 'USE_B3');
  if (option !== 'USE_B3' && option !== 'USE_B3_WITH_W3C_PROPAGATION') tc.issues.error(tc.at('trace_context_option'), `must be USE_B3 or USE_B3_WITH_W3C_PROPAGATION, got ${option}`);
  tc.done();
  return { target: { kind: 'zipkin', ...http, traceId64 }, propagation: option === 'USE_B3_WITH_W3C_PROPAGATION' ? Propagation.B3_W3C : Propagation.B3, sharedSpanContext };
}

function readOpenTelemetry(tc: Reader): TracerProvider | undefined {
  // Read by the tracer factory (the exported resource's service.name).
  tc.accept('service_name');
  if (tc.has('sampler')) tc.issues.error(tc.at('sampler'), 'sampler extensions are not supported; use the HCM random_sampling');
  const resource = readResourceDetectors(tc);
  const gs = tc.obj('grpc_service');
  const hs = tc.obj('http_service');
  let target: Omit<ExportTarget, 'serviceName'> | undefined;
  if (gs && hs) tc.issues.error(tc.at('http_service'), 'set grpc_service or http_service, not both');
  if (gs) {
    // OTLP/gRPC to the collector cluster (Istio: an opentelemetry provider without `http`, with
    // the collector's host as authority). No timeout: no grpc-timeout, as Envoy's client.
    const eg = gs.obj('envoy_grpc');
    const cluster = eg?.str('cluster_name') ?? '';
    const authority = eg?.str('authority') || undefined;
    if (!eg) tc.issues.error(gs.at('envoy_grpc'), 'grpc_service needs envoy_grpc { cluster_name } (google_grpc is not supported)');
    else if (!cluster) tc.issues.error(eg.at('cluster_name'), 'envoy_grpc needs cluster_name');
    // A response message above it fails the export (Envoy: RESOURCE_EXHAUSTED); 0 is unlimited.
    const maxReceiveBytes = eg?.num('max_receive_message_length', 0) || undefined;
    // Envoy applies envoy_grpc.retry_policy to xDS streams only, never to a tracer's exports.
    eg?.accept('retry_policy');
    const skipEnvoyHeaders = eg?.bool('skip_envoy_headers', false) || undefined;
    eg?.done();
    const timeoutMs = gs.durationMs('timeout', 0);
    const metadata = readInitialMetadata(gs);
    const rp = gs.obj('retry_policy');
    const retry = rp ? readExportRetryPolicy(rp) : undefined;
    gs.done();
    target = { kind: 'opentelemetry', grpc: true, cluster, authority, path: '', timeoutMs, metadata, maxReceiveBytes, skipEnvoyHeaders, retry, resource };
  } else if (hs) target = { kind: 'opentelemetry', ...readHttpService(hs, '/v1/traces'), resource };
  else tc.issues.error(tc.path, 'the OpenTelemetry tracer needs grpc_service (OTLP/gRPC) or http_service (OTLP/HTTP)');
  tc.done();
  return target && { target, propagation: Propagation.W3C };
}

/** The provider of an HCM `tracing` block; undefined (with an error) when it cannot export. */
export function readTracerProvider(tracing: Reader, ctx: TracerContext): TracerProvider | undefined {
  const p = tracing.obj('provider');
  if (!p) {
    ctx.issues.error(tracing.at('provider'), 'a tracing provider is required');
    return undefined;
  }
  // The tracer is chosen by typed_config's type, as Envoy's; the name only labels it.
  p.accept('name');
  const tc = p.obj('typed_config');
  p.done();
  if (!tc) {
    ctx.issues.error(p.at('typed_config'), 'the provider needs a typed_config');
    return undefined;
  }
  const t = tc.str('@type');
  if (t === ZIPKIN_CONFIG_TYPE) return readZipkin(tc);
  return readOpenTelemetry(tc);
}
