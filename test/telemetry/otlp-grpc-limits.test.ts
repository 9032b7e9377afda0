// OTLP/gRPC export fields of GrpcService beyond the target: envoy_grpc.max_receive_message_length
// fails an export whose response message is larger (Envoy: RESOURCE_EXHAUSTED), counted in
// reports_failed; grpc_service.retry_policy without retry_on is a warning naming the field (no
// condition, no retry: otlp-grpc-retry.test.ts); envoy_grpc.retry_policy (xDS streams only in Envoy) is quiet; exports carry
// x-envoy-internal and x-forwarded-for unless envoy_grpc.skip_envoy_headers.
// Real sockets: the in-process proxy runtime and a grpc-js TraceService collector.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { flushSpans } from '../../src/proxy/telemetry/index.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';
import { waitFor } from '../helpers/wait.ts';
import { configure, httpListener, LISTENER_TYPE, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';

const OTEL = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
const raw = (b: Buffer) => b;
const TRACE_SERVICE = { Export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } };
// An ExportTraceServiceResponse with partial_success.error_message of 38 bytes: 42 bytes in all.
const RESPONSE = Buffer.from([0x0a, 40, 0x12, 38, ...Buffer.from('x'.repeat(38))]);

test('OTLP/gRPC: max_receive_message_length fails larger responses; retry_policy without retry_on is warned about; skip_envoy_headers', async (t) => {
  let calls = 0;
  const metadata: grpc.Metadata[] = [];
  const port = await startGrpcServer(t, TRACE_SERVICE, {
    Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      calls++;
      metadata.push(call.metadata);
      cb(null, RESPONSE);
    },
  });
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const listener = (name: string, grpcService: Record<string, unknown>) =>
    httpListener(name, routeConfig(name, [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), {
      tracing: { random_sampling: { value: 100 }, provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': OTEL, grpc_service: grpcService } } },
    });
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('otel-small', [port], { http2_protocol_options: {} }), staticCluster('otel-large', [port], { http2_protocol_options: {} })],
    listeners: [
      listener('small', { envoy_grpc: { cluster_name: 'otel-small', max_receive_message_length: 41 } }),
      listener('large', {
        envoy_grpc: { cluster_name: 'otel-large', max_receive_message_length: 42, retry_policy: { num_retries: 3 }, skip_envoy_headers: true },
        retry_policy: { retry_back_off: { base_interval: '0.1s' }, num_retries: 2 },
      }),
    ],
  });
  const warnings = (h.rt.warnings.get(LISTENER_TYPE) ?? []).join('\n');
  assert.match(warnings, /listener "large": filter_chains\[0\]\.filters\[0\]\.typed_config\.tracing\.provider\.typed_config\.grpc_service\.retry_policy\.retry_on: no retry_on conditions: span exports are not retried/);
  assert.doesNotMatch(warnings, /envoy_grpc\.(retry_policy|skip_envoy_headers|max_receive_message_length)/);

  const stat = (name: string) => h.rt.stats.all().find((s) => s.name === `tracing.opentelemetry.${name}`)?.value ?? 0;
  // A span ends as its stream closes, which may come just after the client has the response.
  const exportedOnce = (what: string, done: () => boolean) =>
    waitFor(what, async () => {
      await flushSpans(h.rt.stats);
      return done() || undefined;
    });
  assert.equal((await request(h.port('small'))).status, 200);
  await exportedOnce('the first export', () => calls === 1 && stat('reports_failed') + stat('reports_sent') === 1);
  assert.equal(calls, 1, 'the collector answered');
  assert.equal(stat('reports_failed'), 1, 'a 42-byte response above a 41-byte limit fails the export');
  assert.equal(stat('spans_dropped'), 1);
  assert.deepEqual(metadata[0].get('x-envoy-internal'), ['true']);
  assert.equal(metadata[0].get('x-forwarded-for').length, 1, "the proxy's address");

  assert.equal((await request(h.port('large'))).status, 200);
  await exportedOnce('the second export', () => calls === 2 && stat('reports_failed') + stat('reports_sent') === 2);
  assert.equal(calls, 2);
  assert.equal(stat('reports_sent'), 1, 'a response at the limit is accepted');
  assert.equal(stat('spans_sent'), 1);
  assert.deepEqual(metadata[1].get('x-envoy-internal'), [], 'skip_envoy_headers');
  assert.deepEqual(metadata[1].get('x-forwarded-for'), []);
  assert.equal(stat('reports_failed'), 1);
});
