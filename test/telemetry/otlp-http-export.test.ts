// OTLP/HTTP span export as Envoy's OpenTelemetry tracer sends it (http_service): a `rig proxy`
// process POSTs a binary protobuf ExportTraceServiceRequest (application/x-protobuf) to the
// http_uri's path, Host from its authority, with an OTLP User-Agent and the
// http_service.request_headers_to_add; the test collector decodes it with protobufjs from the
// OTLP schema and the span fields are checked one by one. The collector itself is checked against
// the OpenTelemetry packages' own JSON and protobuf encodings of the same spans.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import { decodeTraceRequest, SPAN_KIND, startOtlpCollector } from '../helpers/otlp-collector.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { listenLocal } from '../helpers/listen.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpListener, LISTENER_TYPE, routeConfig, startTestRuntime, staticCluster } from '../proxy/harness.ts';

const require = createRequire(import.meta.url);
type Serializer = { serializeRequest(spans: ReadableSpan[]): Uint8Array | undefined };
const { JsonTraceSerializer } = require('@opentelemetry/otlp-transformer/build/src/trace/json/trace.js') as { JsonTraceSerializer: Serializer };
const { ProtobufTraceSerializer } = require('@opentelemetry/otlp-transformer/build/src/trace/protobuf/trace.js') as { ProtobufTraceSerializer: Serializer };

const OTEL = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';

function post(port: number, headers: http.OutgoingHttpHeaders, body: Buffer | string): Promise<{ status: number; type: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/traces', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Two finished spans (a server span with a remote parent, and its client child) from the OpenTelemetry SDK. */
function sdkSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'shop.default' }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('rigging-proxy');
  const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED, isRemote: true });
  const server = tracer.startSpan('checkout', { kind: SpanKind.SERVER, attributes: { 'http.method': 'GET', retries: 2, ratio: 0.5, cached: false, tags: ['a', 'b'] } }, parent);
  const client = tracer.startSpan('payments:9080/*', { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, server));
  client.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream reset' });
  client.end();
  server.end();
  return exporter.getFinishedSpans();
}

test('the test OTLP collector decodes the OpenTelemetry packages\' protobuf and JSON encodings of the same spans alike', async (t) => {
  const collector = await startOtlpCollector(t);
  const spans = sdkSpans();
  const pb = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);
  const json = Buffer.from(JsonTraceSerializer.serializeRequest(spans)!);

  const a = await post(collector.port, { 'content-type': 'application/x-protobuf' }, pb);
  assert.equal(a.status, 200);
  assert.equal(a.type, 'application/x-protobuf');
  assert.equal(a.body.length, 0, 'an empty ExportTraceServiceResponse');
  const b = await post(collector.port, { 'content-type': 'application/json; charset=utf-8' }, json);
  assert.equal(b.status, 200);
  assert.deepEqual(JSON.parse(b.body.toString()), {});
  const c = await post(collector.port, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }, zlib.gzipSync(pb));
  assert.equal(c.status, 200);
  assert.deepEqual(collector.requests.map((r) => r.encoding), ['protobuf', 'json', 'protobuf']);

  const [fromPb, fromJson, fromGzip] = collector.requests.map((r) => r.spans);
  assert.deepEqual(fromJson, fromPb);
  assert.deepEqual(fromGzip, fromPb);
  const server = fromPb.find((s) => s.kind === SPAN_KIND.SERVER)!;
  const client = fromPb.find((s) => s.kind === SPAN_KIND.CLIENT)!;
  assert.equal(server.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(server.parentSpanId, '00f067aa0ba902b7');
  assert.equal(server.name, 'checkout');
  assert.deepEqual(server.attributes, { 'http.method': 'GET', retries: 2, ratio: 0.5, cached: false, tags: ['a', 'b'] });
  assert.equal(server.resource['service.name'], 'shop.default');
  assert.equal(server.scope.name, 'rigging-proxy');
  assert.equal(client.parentSpanId, server.spanId);
  assert.equal(client.traceId, server.traceId);
  assert.deepEqual(client.status, { code: 2, message: 'upstream reset' });
  assert.ok(server.startTimeUnixNano > 1_600_000_000_000_000_000n && server.endTimeUnixNano >= server.startTimeUnixNano);

  // The Collector's refusals: another media type (415), a body that is not the message (400).
  assert.equal((await post(collector.port, { 'content-type': 'text/plain' }, 'spans')).status, 415);
  assert.equal((await post(collector.port, { 'content-type': 'application/x-protobuf' }, Buffer.from([0x0a, 0x05, 0x01]))).status, 400);
  assert.equal((await post(collector.port, { 'content-type': 'application/json' }, '{"resourceSpans": 7}')).status, 400);
  assert.equal(collector.requests.length, 3);
  assert.throws(() => decodeTraceRequest(Buffer.from('{'), 'json'));
});

test('rig proxy exports spans over OTLP/HTTP as Envoy: protobuf body, http_uri host and path, request_headers_to_add', async (t) => {
  const collector = await startOtlpCollector(t, '/custom/traces');
  const app = http.createServer((q, s) => s.end(`traceparent=${String(q.headers.traceparent)}`));
  const appPort = await listenLocal(app, t);
  const dir = tempDir(t, 'rig-otlp-http-');
  process.env.RIG_TEST_OTLP_TOKEN = 's3cret';
  t.after(() => delete process.env.RIG_TEST_OTLP_TOKEN);

  const tracing = {
    random_sampling: { value: 100 },
    custom_tags: [{ tag: 'tenant', request_header: { name: 'x-tenant', default_value: 'none' } }],
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: {
        '@type': OTEL,
        service_name: 'checkout.shop',
        http_service: {
          http_uri: { uri: `http://otel-collector.observability:4318/custom/traces`, cluster: 'otel', timeout: '2s' },
          request_headers_to_add: [
            { header: { key: 'Authorization', value: 'Bearer %ENVIRONMENT(RIG_TEST_OTLP_TOKEN)%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
            { header: { key: 'x-scope-orgid', value: 'team-a' } },
          ],
        },
      },
    },
  };
  const boot = {
    node: { id: 'sidecar~127.0.0.1~checkout-0.shop~shop.svc.cluster.local', cluster: 'checkout', metadata: { NAMESPACE: 'shop', LABELS: { app: 'checkout' } } },
    static_resources: {
      listeners: [
        {
          ...httpListener('http', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' }, decorator: { operation: 'checkout-op' } }]), { stat_prefix: 'inbound_http', tracing }),
          traffic_direction: 'INBOUND',
        },
      ],
      clusters: [staticCluster('app', [appPort]), staticCluster('otel', [collector.port])],
    },
  };
  fs.writeFileSync(path.join(dir, 'boot.json'), JSON.stringify(boot));
  const proxy = await startRigProxyFromFile(t, path.join(dir, 'boot.json'));

  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const callerSpan = 'b7ad6b7169203331';
  const r = await fetch(`http://127.0.0.1:${proxy.ports.listeners.http}/orders/7?x=1`, { headers: { traceparent: `00-${traceId}-${callerSpan}-01`, 'x-tenant': 'acme', 'user-agent': 'otlp-test' } });
  assert.equal(r.status, 200);
  const upstreamTraceparent = (await r.text()).replace('traceparent=', '');

  const req = await waitFor(() => `an OTLP export (proxy log: ${proxy.log()})`, () => collector.requests[0], 15_000);
  assert.equal(req.method, 'POST');
  assert.equal(req.path, '/custom/traces');
  assert.equal(req.headers['content-type'], 'application/x-protobuf');
  assert.equal(req.encoding, 'protobuf');
  assert.equal(req.headers.host, 'otel-collector.observability:4318');
  assert.match(req.headers['user-agent'] ?? '', /^OTel-OTLP-Exporter-Rigging\/\d+\.\d+\.\d+/);
  assert.equal(req.headers.authorization, 'Bearer s3cret');
  assert.equal(req.headers['x-scope-orgid'], 'team-a');

  assert.equal(req.spans.length, 1);
  const [span] = req.spans;
  assert.equal(span.traceId, traceId);
  assert.equal(span.parentSpanId, callerSpan);
  assert.match(span.spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(span.spanId, callerSpan);
  assert.equal(upstreamTraceparent, `00-${traceId}-${span.spanId}-01`, 'the upstream sees the exported span as its parent');
  assert.equal(span.name, 'checkout-op');
  assert.equal(span.kind, SPAN_KIND.SERVER);
  assert.equal(span.resource['service.name'], 'checkout.shop');
  assert.equal(span.scope.name, 'rigging-proxy');
  assert.ok(span.startTimeUnixNano > 0n && span.endTimeUnixNano >= span.startTimeUnixNano);
  assert.deepEqual(span.status, { code: 0, message: '' });
  const a = span.attributes;
  assert.equal(a['http.method'], 'GET');
  assert.equal(a['http.url'], `http://127.0.0.1:${proxy.ports.listeners.http}/orders/7?x=1`);
  assert.equal(a['http.status_code'], '200');
  assert.equal(a['http.protocol'], 'HTTP/1.1');
  assert.equal(a.component, 'proxy');
  assert.equal(a.node_id, 'sidecar~127.0.0.1~checkout-0.shop~shop.svc.cluster.local');
  assert.equal(a.upstream_cluster, 'app');
  assert.equal(a.response_flags, '-');
  assert.equal(a.user_agent, 'otlp-test');
  assert.equal(a.tenant, 'acme', 'custom tag from a request header');
  assert.equal(a['istio.namespace'], undefined, "as Envoy: the istio.* tags are the control plane's custom_tags, none here");
});

test('OpenTelemetry http_service config: the timeout is required and request_headers_to_add is checked', async (t) => {
  const h = await startTestRuntime(t);
  const listener = (httpService: object) =>
    httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c' } }]), {
      tracing: { provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': OTEL, http_service: httpService } } },
    });
  const uri = { uri: 'http://collector:4318/v1/traces', cluster: 'otel' };
  const bad: [object, RegExp][] = [
    [{ http_uri: uri }, /http_uri\.timeout: a timeout is required/],
    [{ http_uri: { ...uri, timeout: '1s' }, request_headers_to_add: [{ header: { key: 'host', value: 'x' } }] }, /request_headers_to_add\[0\]\.header\.key: header host cannot be set/],
    [{ http_uri: { ...uri, timeout: '1s' }, request_headers_to_add: [{ header: { key: ':path', value: '/x' } }] }, /header :path cannot be set/],
    [{ http_uri: { ...uri, timeout: '1s' }, request_headers_to_add: [{ header: { key: 'x-a', value: '%NOPE%' } }] }, /unsupported substitution %NOPE%/],
    [{ http_uri: { ...uri, timeout: '1s' }, request_headers_to_add: [{ append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] }, /request_headers_to_add\[0\]\.header: missing header/],
  ];
  for (const [hs, msg] of bad) assert.match(h.apply(LISTENER_TYPE, [listener(hs)]).join('\n'), msg);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener({ http_uri: { ...uri, timeout: '1s' }, request_headers_to_add: [{ header: { key: 'x-a', value: 'v' } }] })]), []);
});
