// istio.stats behind envoy.filters.http.grpc_web: a gRPC-Web call, which the filter turns into a gRPC
// call, is labelled request_protocol "grpc" as Istio labels it (its stats filter sees the rewritten
// content type), with the call's grpc-status (from its trailers frame, or its head when trailers-only);
// a plain HTTP request beside it stays "http". Real grpc-js server, rig proxy in process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { configure, httpListener, request, routeConfig, startTestRuntime, staticCluster } from '../proxy/harness.ts';
import { telemetryOf } from '../../src/proxy/telemetry/index.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';

const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };
const raw = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
const service: grpc.ServiceDefinition = { Say: { path: '/test.Echo/Say', requestStream: false, responseStream: false, ...raw }, Fail: { path: '/test.Echo/Fail', requestStream: false, responseStream: false, ...raw } };
const STATS = { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: { reporter: 'SERVER' } } };
const GRPC_WEB = { name: 'envoy.filters.http.grpc_web', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb' } };
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

/** One gRPC-Web message frame of a short ASCII message, as a string (every byte below 0x80). */
const frame = (message: string) => String.fromCharCode(0, 0, 0, 0, message.length) + message;

test('a gRPC-Web call through grpc_web is counted by istio.stats as request_protocol grpc, with its grpc-status', async (t) => {
  const gport = await startGrpcServer(t, service, {
    Say: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.concat([Buffer.from('hello '), call.request])),
    Fail: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' }),
  });
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('inbound|9080||', [gport], H2)],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'inbound|9080||' } }])],
    listeners: [httpListener('l', 'r', { stat_prefix: 'inbound_0.0.0.0_9080', http_filters: [GRPC_WEB, STATS, ROUTER] })],
  });
  const web = { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' };
  const ok = await request(h.port('l'), { method: 'POST', path: '/test.Echo/Say', headers: web, body: frame('web') });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /hello web/);
  assert.match(ok.body, /grpc-status:0/);
  const failed = await request(h.port('l'), { method: 'POST', path: '/test.Echo/Fail', headers: web, body: frame('x') });
  // grpc-js answers a failed unary call trailers-only: grpc-status in the head.
  assert.equal(failed.headers['grpc-status'], '5');
  // Not gRPC-Web: the filter leaves it alone, and it is HTTP (the gRPC server answers 415 or the like).
  await request(h.port('l'), { method: 'POST', path: '/test.Echo/Say', headers: { 'content-type': 'text/plain' }, body: 'plain' });

  let text = '';
  for (let i = 0; i < 50 && (text.match(/^istio_requests_total\{/gm)?.length ?? 0) < 3; i++) {
    await new Promise((r) => setTimeout(r, 20));
    text = telemetryOf(h.rt.stats)!.metrics.render();
  }
  const requests = text.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
  assert.equal(requests.length, 3, text);
  assert.equal(requests.filter((l) => /request_protocol="grpc",.*grpc_response_status="0",/.test(l)).length, 1, requests.join('\n'));
  assert.equal(requests.filter((l) => /request_protocol="grpc",.*grpc_response_status="5",/.test(l)).length, 1, requests.join('\n'));
  assert.equal(requests.filter((l) => /request_protocol="http",.*grpc_response_status="",/.test(l)).length, 1, requests.join('\n'));
  // The messages of a gRPC-Web call are not counted (its stats filter was made for an HTTP request): no series at 0.
  assert.doesNotMatch(text, /^istio_request_messages_total\{/m);
});
