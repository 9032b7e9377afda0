// GrpcService.retry_policy on OTLP/gRPC span exports, as Envoy's envoy_grpc client converts it:
// retry_on conditions (here unavailable: a trailers-only grpc-status 14), num_retries, full-jitter
// backoff from retry_back_off, counted in the collector cluster's upstream_rq_retry* stats. A
// status in trailers is not retried (as Envoy); a policy without retry_on retries nothing and is
// warned about; connect-failure retries a collector that refuses connections until num_retries.
// Real sockets: the in-process proxy runtime and grpc-js collectors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { flushSpans } from '../../src/proxy/telemetry/index.ts';
import { decodeTraceRequest } from '../helpers/otlp-collector.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';
import { waitFor } from '../helpers/wait.ts';
import { byName, configure, deadPort, httpListener, LISTENER_TYPE, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';

const OTEL = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
const raw = (b: Buffer) => b;
const TRACE_SERVICE = { Export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } };
const FAST = { retry_back_off: { base_interval: '0.02s', max_interval: '2s' } };

type Handler = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => void;

/** A collector whose n-th call (0-based) is answered by `answers[n]`, later ones accepted; it keeps every request body. */
async function collector(t: { after(fn: () => unknown): void }, answers: Handler[]) {
  const bodies: Buffer[] = [];
  const port = await startGrpcServer(t, TRACE_SERVICE, {
    Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const n = bodies.length;
      bodies.push(call.request);
      (answers[n] ?? ((_c, done) => done(null, Buffer.alloc(0))))(call, cb);
    },
  });
  return { port, bodies };
}

const unavailable: Handler = (_call, cb) => cb({ code: grpc.status.UNAVAILABLE, details: 'collector warming up' });
const unavailableInTrailers: Handler = (call, cb) => {
  call.sendMetadata(new grpc.Metadata());
  cb({ code: grpc.status.UNAVAILABLE, details: 'after headers' });
};

test('OTLP/gRPC: an UNAVAILABLE export is retried per grpc_service.retry_policy and its spans arrive once', async (t) => {
  const retried = await collector(t, [unavailable]);
  const trailers = await collector(t, [unavailableInTrailers]);
  const noConditions = await collector(t, [unavailable]);
  const refused = await deadPort();
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const listener = (name: string, cluster: string, retryPolicy: Record<string, unknown>) =>
    httpListener(name, routeConfig(name, [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), {
      tracing: { random_sampling: { value: 100 }, provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': OTEL, grpc_service: { envoy_grpc: { cluster_name: cluster }, retry_policy: retryPolicy } } } },
    });
  const h2 = { http2_protocol_options: {} };
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('otel-a', [retried.port], h2), staticCluster('otel-b', [trailers.port], h2), staticCluster('otel-c', [noConditions.port], h2), staticCluster('otel-d', [refused], h2)],
    listeners: [
      listener('retried', 'otel-a', { retry_on: 'unavailable', num_retries: 2, ...FAST }),
      listener('trailers', 'otel-b', { retry_on: 'unavailable', ...FAST }),
      listener('unset', 'otel-c', { num_retries: 3, ...FAST }),
      listener('refused', 'otel-d', { retry_on: 'connect-failure,refused-stream', num_retries: 2, ...FAST }),
    ],
  });
  const warnings = (h.rt.warnings.get(LISTENER_TYPE) ?? []).join('\n');
  assert.match(warnings, /listener "unset": .*grpc_service\.retry_policy\.retry_on: no retry_on conditions: span exports are not retried/);
  assert.match(warnings, /listener "refused": .*retry_policy\.retry_on: refused-stream .* never applies to span exports/);
  assert.doesNotMatch(warnings, /listener "retried"/);

  const stat = (name: string) => h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
  const exported = (what: string, done: () => boolean) =>
    waitFor(what, async () => {
      await flushSpans(h.rt.stats);
      return done() || undefined;
    });
  const reports = () => stat('tracing.opentelemetry.reports_sent') + stat('tracing.opentelemetry.reports_failed');

  assert.equal((await request(h.port('retried'))).status, 200);
  await exported('the retried export', () => reports() === 1);
  assert.equal(retried.bodies.length, 2, 'the first call failed with UNAVAILABLE, the retry was accepted');
  assert.deepEqual(retried.bodies[1], retried.bodies[0], 'the same batch');
  assert.equal(decodeTraceRequest(retried.bodies[1], 'protobuf').length, 1);
  assert.equal(stat('tracing.opentelemetry.reports_sent'), 1);
  assert.equal(stat('tracing.opentelemetry.spans_sent'), 1, 'the span counted once');
  assert.equal(stat('tracing.opentelemetry.reports_failed'), 0);
  assert.equal(stat('cluster.otel-a.upstream_rq_retry'), 1);
  assert.equal(stat('cluster.otel-a.upstream_rq_retry_success'), 1);

  assert.equal((await request(h.port('trailers'))).status, 200);
  await exported('the export failing in trailers', () => reports() === 2);
  assert.equal(trailers.bodies.length, 1, 'a grpc-status in trailers is not retried, as Envoy');
  assert.equal(stat('tracing.opentelemetry.reports_failed'), 1);

  assert.equal((await request(h.port('unset'))).status, 200);
  await exported('the export without retry_on', () => reports() === 3);
  assert.equal(noConditions.bodies.length, 1, 'no conditions, no retry');
  assert.equal(stat('tracing.opentelemetry.reports_failed'), 2);

  assert.equal((await request(h.port('refused'))).status, 200);
  await exported('the export to a refusing collector', () => reports() === 4);
  assert.equal(stat('cluster.otel-d.upstream_rq_retry'), 2, 'connect-failure: two retries');
  assert.equal(stat('cluster.otel-d.upstream_rq_retry_limit_exceeded'), 1);
  assert.equal(stat('tracing.opentelemetry.reports_failed'), 3);
  assert.equal(stat('tracing.opentelemetry.spans_sent'), 1);
});

test('OTLP/gRPC retry_policy: a bad num_retries or retry_back_off is refused by path, as in a remote fetch\'s retry_policy', async (t) => {
  const h = await startTestRuntime(t);
  const errorsOf = (policy: object) =>
    h.rt
      .apply(
        LISTENER_TYPE,
        byName([
          httpListener('bad', routeConfig('bad', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]), {
            tracing: { provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': OTEL, grpc_service: { envoy_grpc: { cluster_name: 'otel' }, retry_policy: { retry_on: 'unavailable', ...policy } } } } },
          }),
        ]),
      )
      .join('\n');
  assert.match(errorsOf({ retry_back_off: { base_interval: '2s', max_interval: '1s' } }), /retry_policy\.retry_back_off\.max_interval: max_interval \(1000 ms\) must be at least base_interval \(2000 ms\)/);
  assert.match(errorsOf({ retry_back_off: { max_interval: '1s' } }), /retry_policy\.retry_back_off\.base_interval: retry_back_off needs a base_interval/);
  assert.match(errorsOf({ retry_back_off: { base_interval: '0s' } }), /retry_policy\.retry_back_off\.base_interval: must be at least 1ms/);
  // A UInt32Value in Envoy: exports read it as the fetches do.
  assert.match(errorsOf({ num_retries: 1.5 }), /retry_policy\.num_retries: must be a whole number of retries, 0 or more \(got 1\.5\)/);
  assert.match(errorsOf({ num_retries: -1 }), /retry_policy\.num_retries: must be a whole number of retries/);
});
