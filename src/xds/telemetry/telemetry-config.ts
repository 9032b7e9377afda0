// Envoy config for a proxy's telemetry, from the Telemetry API (telemetry-policy.ts) and the mesh
// config: the HCM's access_log entries and tracing block, the istio.stats filter config
// (TypedStruct stats.PluginConfig, see src/proxy/telemetry/stats-config.ts) and the
// peer metadata filter. Providers come from MeshConfig.extensionProviders plus Istio's built-ins
// "prometheus" (metrics) and "envoy" (access log to /dev/stdout).
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { MetricsOverrides } from '../../api/types/telemetry.ts';
import type { ExtensionProvider, HttpHeader, OpenTelemetryProvider } from '../../telemetry/extension-providers.ts';
import { warnOnce } from '../../model/config-warnings.ts';
import { envoyDuration } from '../translate/duration.ts';
import { effectiveTelemetry, type TrafficMode } from './telemetry-policy.ts';

const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
const FILE_ACCESS_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const CEL_FILTER = 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter';
const ZIPKIN = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';
const OTEL = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';

/** Istio's default text access log format. */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON access log fields. */
export const ISTIO_JSON_FORMAT: Record<string, string> = {
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
};

const METRIC_NAMES: Record<string, string[]> = {
  ALL_METRICS: [],
  REQUEST_COUNT: ['requests_total'],
  REQUEST_DURATION: ['request_duration_milliseconds'],
  REQUEST_SIZE: ['request_bytes'],
  RESPONSE_SIZE: ['response_bytes'],
  GRPC_REQUEST_MESSAGES: ['request_messages_total'],
  GRPC_RESPONSE_MESSAGES: ['response_messages_total'],
  TCP_OPENED_CONNECTIONS: ['tcp_connections_opened_total'],
  TCP_CLOSED_CONNECTIONS: ['tcp_connections_closed_total'],
  TCP_SENT_BYTES: ['tcp_sent_bytes_total'],
  TCP_RECEIVED_BYTES: ['tcp_received_bytes_total'],
};

function typedStruct(typeUrl: string, value: EnvoyJson): EnvoyJson {
  return { '@type': TYPED_STRUCT, type_url: typeUrl, value };
}

function providers(push: PushContext): Map<string, ExtensionProvider> {
  return push.memo('telemetry-providers', () => new Map((push.mesh.extensionProviders as unknown as ExtensionProvider[]).map((p) => [p.name, p])));
}

/** `ns/host` or `host` → the registry's FQDN when known. */
function serviceHost(push: PushContext, service: string): string {
  const host = service.includes('/') ? service.slice(service.indexOf('/') + 1) : service;
  for (const h of [host, `${host}.svc.cluster.local`]) if (push.serviceByHost.has(h)) return h;
  return host;
}

export function modeOf(kind: 'inbound' | 'outbound' | 'gateway'): TrafficMode {
  return kind === 'inbound' ? 'SERVER' : 'CLIENT';
}

// === metrics ===

function statsValue(push: PushContext, overrides: MetricsOverrides[], reporter: 'SERVER' | 'CLIENT', reportingInterval: string | undefined): EnvoyJson {
  const metrics: EnvoyJson[] = [];
  for (const o of overrides) {
    // Custom metrics do not exist in Rigging (a warning from validation and the control plane).
    if (o.match?.customMetric) continue;
    const names = METRIC_NAMES[o.match?.metric ?? 'ALL_METRICS'];
    if (!names) continue;
    const remove: string[] = [];
    const dimensions: Record<string, string> = {};
    for (const [tag, op] of Object.entries(o.tagOverrides ?? {})) {
      if (op.operation === 'REMOVE') remove.push(tag);
      else if (op.value !== undefined) dimensions[tag] = op.value;
    }
    for (const name of names.length ? names : ['']) {
      const m: EnvoyJson = {};
      if (name) m.name = name;
      if (o.disabled) m.drop = true;
      if (remove.length) m.tags_to_remove = remove;
      if (Object.keys(dimensions).length) m.dimensions = dimensions;
      metrics.push(m);
    }
  }
  const v: EnvoyJson = { reporter, rigging_trust_domain: push.mesh.trustDomain };
  if (reportingInterval !== undefined) v.tcp_reporting_duration = reportingInterval;
  if (metrics.length) v.metrics = metrics;
  return v;
}

/** The istio.stats config for a proxy and mode, undefined when no Prometheus provider is active. */
export function statsFilterConfig(push: PushContext, proxy: Proxy, mode: TrafficMode): EnvoyJson | undefined {
  const eff = effectiveTelemetry(push, proxy, mode).metrics;
  const names = eff?.providers.length ? eff.providers : (push.mesh.defaultProviders?.metrics ?? ['prometheus']);
  const all = providers(push);
  const prom = names.some((n) => (n === 'prometheus' && !all.has(n)) || all.get(n)?.prometheus !== undefined);
  if (!prom) return undefined;
  return typedStruct('type.googleapis.com/stats.PluginConfig', statsValue(push, eff?.overrides ?? [], mode, eff?.reportingInterval));
}

export function peerMetadataFilter(mode: TrafficMode, skipExternalClusters = false): EnvoyJson {
  const headers = [{ istio_headers: {} }];
  const propagation = skipExternalClusters ? [{ istio_headers: { skip_external_clusters: true } }] : headers;
  const value = mode === 'SERVER' ? { downstream_discovery: headers, downstream_propagation: headers } : { upstream_discovery: headers, upstream_propagation: propagation };
  return { name: 'envoy.filters.http.peer_metadata', typed_config: typedStruct('type.googleapis.com/io.istio.http.peer_metadata.Config', value) };
}

// === access logs ===

function fileLog(path: string, format: { text?: string; labels?: Record<string, unknown> }, filter: string | undefined, omitEmptyValues = false): EnvoyJson {
  const log_format: EnvoyJson = format.labels ? { json_format: format.labels } : { text_format_source: { inline_string: format.text ?? ISTIO_TEXT_FORMAT } };
  if (omitEmptyValues) log_format.omit_empty_values = true;
  const entry: EnvoyJson = { name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG, path, log_format } };
  if (filter) entry.filter = { extension_filter: { name: 'envoy.access_loggers.extension_filters.cel', typed_config: { '@type': CEL_FILTER, expression: filter } } };
  return entry;
}

/** Mesh accessLogEncoding / accessLogFormat (Istio: JSON format is a JSON object of labels). */
function meshFormat(push: PushContext): { text?: string; labels?: Record<string, unknown> } {
  const f = push.mesh.accessLogFormat;
  if (push.mesh.accessLogEncoding === 'JSON') {
    if (f) {
      try {
        return { labels: JSON.parse(f) as Record<string, unknown> };
      } catch {
        return { labels: ISTIO_JSON_FORMAT };
      }
    }
    return { labels: ISTIO_JSON_FORMAT };
  }
  return { text: f ? (f.endsWith('\n') ? f : f + '\n') : ISTIO_TEXT_FORMAT };
}

export function accessLogEntries(push: PushContext, proxy: Proxy, mode: TrafficMode): EnvoyJson[] {
  const eff = effectiveTelemetry(push, proxy, mode).accessLogs;
  const all = providers(push);
  if (!eff) {
    if (push.mesh.defaultProviders?.accessLogging?.length) return push.mesh.defaultProviders.accessLogging.flatMap((n) => providerLog(push, all, n, undefined));
    return push.mesh.accessLogFile ? [fileLog(push.mesh.accessLogFile, meshFormat(push), undefined)] : [];
  }
  return eff.filter((a) => !a.disabled).flatMap((a) => providerLog(push, all, a.provider, a.filter));
}

/** Istio's filter on listener access logs: only connections no filter chain took (the chains' own logs cover the others). */
const NO_FILTER_CHAIN: EnvoyJson = Object.freeze({ response_flag_filter: { flags: ['NR'] } });

/**
 * Listener.access_log as istiod sets it on every listener: the same logs as the chains', each
 * under the NR filter (with a Telemetry filter expression: both); none with disableEnvoyListenerLog.
 */
export function listenerAccessLogEntries(push: PushContext, proxy: Proxy, mode: TrafficMode): EnvoyJson[] {
  if (push.mesh.disableEnvoyListenerLog) return [];
  return accessLogEntries(push, proxy, mode).map((e) => ({ ...e, filter: e.filter ? { and_filter: { filters: [NO_FILTER_CHAIN, e.filter] } } : NO_FILTER_CHAIN }));
}

function providerLog(push: PushContext, all: Map<string, ExtensionProvider>, name: string, filter: string | undefined): EnvoyJson[] {
  const p = all.get(name);
  const f = p?.envoyFileAccessLog;
  if (name === 'envoy' && !p) return [fileLog(push.mesh.accessLogFile || '/dev/stdout', meshFormat(push), filter)];
  // Istio: an `envoy` provider of one's own without logFormat or omitEmptyValues keeps the mesh's format.
  if (name === 'envoy' && f && !f.logFormat && !f.omitEmptyValues) return [fileLog(f.path || '/dev/stdout', meshFormat(push), filter)];
  if (!f) return [];
  // Istio: `labels: {}` is its default JSON format.
  const labels = f.logFormat?.labels && Object.keys(f.logFormat.labels).length ? f.logFormat.labels : f.logFormat?.labels ? ISTIO_JSON_FORMAT : undefined;
  const format = labels ? { labels } : f.logFormat?.text ? { text: f.logFormat.text.endsWith('\n') ? f.logFormat.text : f.logFormat.text + '\n' } : { text: ISTIO_TEXT_FORMAT };
  return [fileLog(f.path || '/dev/stdout', format, filter, f.omitEmptyValues)];
}

// === tracing ===

const DETECTORS = 'envoy.tracers.opentelemetry.resource_detectors';
const DETECTOR_TYPES = 'type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3';
const ENV_RESOURCE_DETECTOR = { name: `${DETECTORS}.environment`, typed_config: { '@type': `${DETECTOR_TYPES}.EnvironmentResourceDetectorConfig` } };
const DYNATRACE_RESOURCE_DETECTOR = { name: `${DETECTORS}.dynatrace`, typed_config: { '@type': `${DETECTOR_TYPES}.DynatraceResourceDetectorConfig` } };

/**
 * A header's value as Istio sends it: `value` as written (the proxy evaluates it as a format
 * string), `envName` read from the control plane's environment (Istio: istiod's) and sent as a
 * literal (its % escaped); an unset variable is an empty value, as Istio, and a warning.
 */
function headerValue(h: HttpHeader, provider: string): string {
  if (h.value !== undefined) return h.value;
  const v = process.env[h.envName ?? ''];
  if (v === undefined) warnOnce('tracing', `extension provider ${provider}: header ${h.name} takes envName ${h.envName}, which is not set in the control plane's environment; it is sent empty`);
  return (v ?? '').replaceAll('%', '%%');
}

/** HttpService.request_headers_to_add: each header replaces any of its name (Istio: OVERWRITE_IF_EXISTS_OR_ADD). */
function requestHeaders(headers: HttpHeader[] | undefined, provider: string): EnvoyJson[] {
  return (headers ?? []).map((h) => ({ header: { key: h.name, value: headerValue(h, provider) }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }));
}

interface ZipkinOptions {
  cluster: string;
  host: string;
  path: string;
  traceId128: boolean;
  timeout?: string;
  headers?: EnvoyJson[];
  traceContextOption?: string;
}

/** As Istio 1.29+: the collector as an HttpService (Istio's default timeout 5s), 128-bit trace ids unless enable64bitTraceId. */
function zipkinProvider(o: ZipkinOptions): EnvoyJson {
  const collector_service: EnvoyJson = { http_uri: { uri: `http://${o.host}${o.path}`, cluster: o.cluster, timeout: envoyDuration(o.timeout ?? '5s') } };
  if (o.headers?.length) collector_service.request_headers_to_add = o.headers;
  const typed_config: EnvoyJson = { '@type': ZIPKIN, collector_service, collector_endpoint_version: 'HTTP_JSON', trace_id_128bit: o.traceId128, shared_span_context: false };
  if (o.traceContextOption) typed_config.trace_context_option = o.traceContextOption;
  return { name: 'envoy.tracers.zipkin', typed_config };
}

function otelProvider(push: PushContext, proxy: Proxy, name: string, o: OpenTelemetryProvider): EnvoyJson {
  const host = serviceHost(push, o.service);
  const cluster = `outbound|${o.port}||${host}`;
  const typed_config: EnvoyJson = { '@type': OTEL, service_name: tracingServiceName(proxy) };
  if (o.http) {
    // Istio: OTLP/HTTP when the provider sets `http` (HttpService's default timeout 3s).
    const path = o.http.path.startsWith('/') ? o.http.path : '/' + o.http.path;
    const http_service: EnvoyJson = { http_uri: { uri: `http://${host}:${o.port}${path}`, cluster, timeout: envoyDuration(o.http.timeout ?? '3s') } };
    if (o.http.headers?.length) http_service.request_headers_to_add = requestHeaders(o.http.headers, name);
    typed_config.http_service = http_service;
  } else {
    // Istio: the collector's host as :authority (the cluster name, Envoy's default, is no valid authority).
    const grpc_service: EnvoyJson = { envoy_grpc: { cluster_name: cluster, authority: host } };
    if (o.grpc?.timeout) grpc_service.timeout = envoyDuration(o.grpc.timeout);
    if (o.grpc?.initialMetadata?.length) grpc_service.initial_metadata = o.grpc.initialMetadata.map((h) => ({ key: h.name, value: headerValue(h, name) }));
    typed_config.grpc_service = grpc_service;
  }
  // Istio's order: environment, then Dynatrace.
  const detectors = [o.resourceDetectors?.environment && ENV_RESOURCE_DETECTOR, o.resourceDetectors?.dynatrace && DYNATRACE_RESOURCE_DETECTOR].filter((d) => d !== undefined);
  if (detectors.length) typed_config.resource_detectors = detectors;
  return { name: 'envoy.tracers.opentelemetry', typed_config };
}

/** The proxy's canonical service, as Istio's injector labels it (service.istio.io/canonical-name, else app, else its workload). */
function canonicalService(proxy: Proxy): string {
  const l = proxy.labels;
  return l['service.istio.io/canonical-name'] ?? l.app ?? l['app.kubernetes.io/name'] ?? proxy.workloadName;
}

/** The tracer's service name: `<canonical service>.<namespace>`. */
export function tracingServiceName(proxy: Proxy): string {
  return `${canonicalService(proxy)}.${proxy.namespace}`;
}

/**
 * Istio's authorization dry-run span tags: the RBAC filter's shadow verdict and the dry-run policy
 * that decided it, from its dynamic metadata under Istio's stat prefixes.
 */
const DRY_RUN_TAGS: EnvoyJson[] = (['allow', 'deny'] as const).flatMap((action) =>
  (
    [
      ['name', 'shadow_effective_policy_id'],
      ['result', 'shadow_engine_result'],
    ] as const
  ).map(([what, key]) => ({
    tag: `istio.authorization.dry_run.${action}_policy.${what}`,
    metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key: `istio_dry_run_${action}_${key}` }] } },
  })),
);

/** Istio's service span tags: literals naming the proxy (its canonical service and revision, namespace, mesh, cluster). */
function serviceTags(proxy: Proxy): EnvoyJson[] {
  const meshId = typeof proxy.metadata.MESH_ID === 'string' && proxy.metadata.MESH_ID ? proxy.metadata.MESH_ID : 'unknown';
  return [
    ['istio.canonical_revision', proxy.labels['service.istio.io/canonical-revision'] ?? proxy.labels.version ?? proxy.labels['app.kubernetes.io/version'] ?? 'latest'],
    ['istio.canonical_service', canonicalService(proxy) || 'unknown'],
    ['istio.mesh_id', meshId],
    ['istio.namespace', proxy.namespace || 'default'],
    ['istio.cluster_id', proxy.clusterId || 'unknown'],
  ].map(([tag, value]) => ({ tag, literal: { value } }));
}

export function tracingConfig(push: PushContext, proxy: Proxy, mode: TrafficMode): EnvoyJson | undefined {
  const eff = effectiveTelemetry(push, proxy, mode).tracing;
  const all = providers(push);
  const mesh = push.mesh;
  let provider: EnvoyJson | undefined;
  // Istio: a provider's maxTagLength, else defaultConfig.tracing.maxPathTagLength, else Envoy's 256 (0 means unset).
  let maxTag = mesh.defaultConfig.tracing?.maxPathTagLength || 256;
  const names = eff?.providers.length ? eff.providers : (mesh.defaultProviders?.tracing ?? []);
  const p = names.map((n) => all.get(n)).find((x) => x?.zipkin || x?.opentelemetry);
  if (p?.zipkin) {
    const z = p.zipkin;
    const host = serviceHost(push, z.service);
    provider = zipkinProvider({
      cluster: `outbound|${z.port}||${host}`,
      host,
      path: z.path ?? '/api/v2/spans',
      traceId128: !z.enable64bitTraceId,
      timeout: z.timeout,
      headers: requestHeaders(z.headers, p.name),
      traceContextOption: z.traceContextOption,
    });
    // Istio: maxTagLength 0 (unset) keeps the default.
    maxTag = z.maxTagLength || maxTag;
  } else if (p?.opentelemetry) {
    provider = otelProvider(push, proxy, p.name, p.opentelemetry);
    maxTag = p.opentelemetry.maxTagLength || maxTag;
  } else if (!names.length) {
    // Legacy mesh tracing: enableTracing + defaultConfig.tracing.zipkin.address (Istio's default zipkin.istio-system:9411).
    if (!mesh.enableTracing) return undefined;
    const address = mesh.defaultConfig.tracing?.zipkin?.address ?? `zipkin.${mesh.rootNamespace}:9411`;
    const i = address.lastIndexOf(':');
    const host = serviceHost(push, i > 0 ? address.slice(0, i) : address);
    provider = zipkinProvider({ cluster: `outbound|${i > 0 ? address.slice(i + 1) : '9411'}||${host}`, host, path: '/api/v2/spans', traceId128: true });
  } else return undefined;
  let sampling = eff?.randomSamplingPercentage ?? mesh.defaultConfig.tracing?.sampling ?? 1;
  if (eff?.disableSpanReporting) sampling = 0;
  const tracing: EnvoyJson = { client_sampling: { value: 100 }, random_sampling: { value: sampling }, overall_sampling: { value: 100 }, max_path_tag_length: maxTag, provider };
  // Istio: the istio.* tags unless the most specific Telemetry that sets enableIstioTags says false;
  // without any Telemetry tracing, defaultConfig.tracing.enableIstioTags says.
  const istioTags = eff ? eff.enableIstioTags : mesh.defaultConfig.tracing?.enableIstioTags;
  const tags: EnvoyJson[] = istioTags === false ? [] : [...serviceTags(proxy), ...DRY_RUN_TAGS];
  // Istio: the Telemetry's custom tags, else defaultConfig.tracing's.
  const custom = eff?.customTags && Object.keys(eff.customTags).length ? eff.customTags : (mesh.defaultConfig.tracing?.customTags ?? {});
  for (const [tag, t] of Object.entries(custom)) {
    if (t.literal) tags.push({ tag, literal: { value: t.literal.value ?? '' } });
    else if (t.environment) tags.push({ tag, environment: { name: t.environment.name, default_value: t.environment.defaultValue ?? '' } });
    else if (t.header) tags.push({ tag, request_header: { name: t.header.name, default_value: t.header.defaultValue ?? '' } });
  }
  // Istio sorts them by name (its tags come from a map).
  tracing.custom_tags = tags.sort((a, b) => (String(a.tag) < String(b.tag) ? -1 : String(a.tag) > String(b.tag) ? 1 : 0));
  return tracing;
}
