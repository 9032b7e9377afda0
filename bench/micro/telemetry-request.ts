// Micro-benchmark of what telemetry adds to one HTTP request (not part of the tests):
//   node bench/micro/telemetry-request.ts
// The istio.stats HTTP filter's whole life (create, decode/encode headers, a body chunk, destroy →
// recordHttp) and the tracer at Istio's default 1% sampling (startSpan, injectContext into the
// upstream headers, finish): the per-request work of bench case rig-1hop-telemetry-on.
import { bench, do_not_optimize, run } from 'mitata';
import { Stats } from '../../src/proxy/stats/stats.ts';
import { newStreamInfo } from '../../src/proxy/stream-info.ts';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { attachTelemetry } from '../../src/proxy/telemetry/proxy-telemetry.ts';
import { httpStatsFilterFactory } from '../../src/proxy/telemetry/stats-filter.ts';
import { otelTracerFactory } from '../../src/proxy/telemetry/otel-tracer.ts';
import type { ProxyContext } from '../../src/proxy/context.ts';
import type { FilterCompileContext, RequestHead, ResponseHead, StreamCallbacks } from '../../src/proxy/filters/filter.ts';
import type { TracerContext } from '../../src/proxy/http/tracer.ts';
import { DEFAULT_REQUEST_ID } from '../../src/proxy/http/request-id.ts';
import { NO_RUNTIME } from '../../src/proxy/envoy-runtime/envoy-runtime.ts';

const stats = new Stats();
const ctx = { node: { id: 'sidecar~10.0.0.1~bench-0.default~default.svc.cluster.local', cluster: 'bench', metadata: {} }, stats, clusters: { get: () => undefined }, secrets: undefined, observers: [], runtime: NO_RUNTIME } as unknown as ProxyContext;
attachTelemetry(ctx);
const issues = new Issues();
const statsConfig = httpStatsFilterFactory.compile(
  new Reader({ '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: {} }, 'istio.stats', issues),
  { stats, issues, statPrefix: 'bench_ingress', name: 'istio.stats' } as unknown as FilterCompileContext,
);
const tracing = {
  random_sampling: { value: 1 },
  provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig', http_service: { http_uri: { uri: 'http://127.0.0.1:4318/v1/traces', cluster: 'c', timeout: '1s' } }, service_name: 'bench.default' } },
};
const tracer = otelTracerFactory.compile(new Reader(tracing, 'tracing', issues), { proxy: ctx, issues, direction: 'inbound', statPrefix: 'bench_ingress', requestId: DEFAULT_REQUEST_ID } as unknown as TracerContext);
if (issues.errors.length) throw new Error(issues.errors.join('\n'));

const headers = () => ({ host: 'bench', 'user-agent': 'wrk', accept: '*/*', 'x-request-id': '4f6c7f4e-2a4b-4b8e-9a7e-1d2c3b4a5f60', 'x-forwarded-proto': 'http' });
const res: ResponseHead = { status: 200, headers: { 'content-type': 'text/plain', 'content-length': '612' } };
const chunk = Buffer.alloc(612);

bench('istio.stats filter: one request (create → onDestroy)', () => {
  const info = newStreamInfo('inbound', 'HTTP/1.1');
  info.upstreamCluster = 'bench_upstream';
  info.responseCode = 200;
  info.durationMs = 0.4;
  info.bytesSent = 612;
  const head: RequestHead = { method: 'GET', path: '/', authority: 'bench', scheme: 'http', headers: headers() };
  const f = httpStatsFilterFactory.create(statsConfig, { streamInfo: info } as unknown as StreamCallbacks);
  f.decodeHeaders?.(head, true);
  f.encodeHeaders?.(res, false);
  f.encodeData?.(chunk, true);
  f.onDestroy?.();
});

bench('tracer at 1%: startSpan + injectContext + finish', () => {
  const info = newStreamInfo('inbound', 'HTTP/1.1');
  const head: RequestHead = { method: 'GET', path: '/', authority: 'bench', scheme: 'http', headers: headers() };
  const span = tracer.startSpan(head, info);
  span?.injectContext(head);
  span?.finish(info, head, res);
  do_not_optimize(head);
});

bench('baseline: stream info + request head', () => {
  const info = newStreamInfo('inbound', 'HTTP/1.1');
  do_not_optimize({ info, head: { method: 'GET', path: '/', authority: 'bench', scheme: 'http', headers: headers() } });
});
await run();
