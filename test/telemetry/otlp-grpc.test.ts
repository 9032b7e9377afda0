// OTLP over gRPC (Istio's default for an opentelemetry provider without `http`): the control
// plane emits OpenTelemetryConfig.grpc_service to the collector cluster, the sidecars export
// through @opentelemetry/exporter-trace-otlp-grpc to a real grpc-js collector, which decodes the
// ExportTraceServiceRequest: one trace, client and server spans, parent link, W3C propagation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { startMesh, SERVICES_YAML, viaProxy } from './mesh.ts';
import { flushSpans } from '../../src/proxy/telemetry/index.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';

// The fields of OTLP's trace protos this test reads (opentelemetry/proto/{collector/trace,trace}/v1).
const OTLP = protobuf.parse(`syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { repeated Span spans = 2; }
message Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6; repeated KeyValue attributes = 9; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { string string_value = 1; }
`, { keepCase: true }).root.lookupType('ExportTraceServiceRequest');

interface Got {
  traceId: string;
  id: string;
  parentId: string;
  name: string;
  kind: number;
  service: string;
  tags: Record<string, string>;
}

test('OTLP/gRPC export: spans of a two-sidecar request reach a gRPC collector', async (t) => {
  const got: Got[] = [];
  const raw = (b: Buffer) => b;
  const port = await startGrpcServer(
    t,
    { Export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const req = OTLP.toObject(OTLP.decode(call.request), { bytes: String, defaults: true }) as { resource_spans: { resource: { attributes: { key: string; value: { string_value: string } }[] }; scope_spans: { spans: { trace_id: string; span_id: string; parent_span_id: string; name: string; kind: number; attributes: { key: string; value: { string_value: string } }[] }[] }[] }[] };
        for (const rs of req.resource_spans) {
          const service = rs.resource?.attributes.find((a) => a.key === 'service.name')?.value?.string_value ?? '';
          for (const ss of rs.scope_spans) {
            for (const s of ss.spans) {
              const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');
              got.push({ traceId: hex(s.trace_id), id: hex(s.span_id), parentId: hex(s.parent_span_id), name: s.name, kind: s.kind, service, tags: Object.fromEntries(s.attributes.map((a) => [a.key, a.value?.string_value ?? ''])) });
            }
          }
        }
        cb(null, Buffer.alloc(0));
      },
    },
  );

  const yaml =
    SERVICES_YAML(['productpage', 'reviews']) +
    `---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: otel, namespace: istio-system }\nspec:\n  hosts: [otel-collector.istio-system.svc.cluster.local]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n  ports: [{ number: 4317, name: grpc, protocol: GRPC }]\n  endpoints: [{ address: 127.0.0.1, ports: { grpc: ${port} } }]\n` +
    `---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: mesh-default, namespace: istio-system }\nspec:\n  tracing: [{ providers: [{ name: otel }], randomSamplingPercentage: 100 }]\n`;
  let seenByApp: string | undefined;
  const mesh = await startMesh({
    yaml,
    mesh: { extensionProviders: [{ name: 'otel', opentelemetry: { service: 'otel-collector.istio-system.svc.cluster.local', port: 4317 } }] },
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage' }, sa: 'bookinfo-productpage' },
      {
        name: 'reviews-v1',
        labels: { app: 'reviews' },
        sa: 'bookinfo-reviews',
        app: (q, s) => {
          seenByApp = String(q.headers.traceparent);
          s.end(q.headers['x-b3-traceid'] === undefined ? 'w3c only' : 'b3 too');
        },
      },
    ],
  });
  t.after(() => mesh.close());
  const r = await viaProxy(mesh.sidecars['productpage-v1'].outbound, 'http://reviews:9080/r');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'w3c only', 'the OpenTelemetry tracer propagates W3C trace context');
  await Promise.all(Object.values(mesh.sidecars).map((s) => flushSpans(s.rt.stats)));
  for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(got.length, 2, JSON.stringify(got));
  const client = got.find((s) => s.kind === 3)!;
  const srv = got.find((s) => s.kind === 2)!;
  assert.ok(client && srv, 'a CLIENT and a SERVER span');
  assert.equal(client.traceId, srv.traceId);
  assert.equal(srv.parentId, client.id);
  assert.equal(client.parentId, '');
  assert.equal(client.name, 'reviews.default.svc.cluster.local:9080/*');
  assert.equal(client.service, 'productpage.default');
  assert.equal(srv.service, 'reviews.default');
  assert.equal(srv.tags['http.status_code'], '200');
  assert.match(seenByApp ?? '', new RegExp(`^00-${srv.traceId}-${srv.id}-01$`));
  const stats = new Map(mesh.sidecars['reviews-v1'].rt.stats.all().map((s) => [s.name, s.value]));
  assert.equal(stats.get('tracing.opentelemetry.spans_sent'), 1);
});
