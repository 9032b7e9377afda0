// OTLP over gRPC (Istio's default for an opentelemetry provider without `http`): the control
// plane emits OpenTelemetryConfig.grpc_service to the collector cluster with the collector's host
// as authority (as Istio), the sidecars call TraceService/Export through that cluster on a real
// grpc-js collector, which decodes the ExportTraceServiceRequest: one trace, client and server
// spans, parent link, W3C propagation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { startMesh, SERVICES_YAML, viaProxy } from './mesh.ts';
import { flushSpans } from '../../src/proxy/telemetry/index.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';
import { decodeTraceRequest } from '../helpers/otlp-collector.ts';

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
  const authorities = new Set<string>();
  const raw = (b: Buffer) => b;
  const port = await startGrpcServer(
    t,
    { Export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        authorities.add(call.getHost());
        for (const s of decodeTraceRequest(call.request, 'protobuf')) {
          got.push({ traceId: s.traceId, id: s.spanId, parentId: s.parentSpanId, name: s.name, kind: s.kind, service: String(s.resource['service.name'] ?? ''), tags: Object.fromEntries(Object.entries(s.attributes).map(([k, v]) => [k, String(v)])) });
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
  assert.deepEqual([...authorities], ['otel-collector.istio-system.svc.cluster.local']);
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
