// Istio's gRPC message counts (istio_request_messages_total / istio_response_messages_total):
// real grpc-js client and server through a rig proxy with istio.stats; streaming calls with
// messages larger than a frame, counted each way, labelled with the peer labels only as Istio does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { configure, httpListener, routeConfig, startTestRuntime, staticCluster } from '../proxy/harness.ts';
import { telemetryOf } from '../../src/proxy/telemetry/index.ts';
import { GrpcMessageCounter } from '../../src/proxy/telemetry/grpc-message-counter.ts';
import { localPeer } from '../../src/proxy/telemetry/peer-metadata.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';

const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };
const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({ path: `/test.Chat/${name}`, requestStream, responseStream, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize });
const service: grpc.ServiceDefinition = { Talk: method('Talk', true, true), Say: method('Say', false, false) };
const STATS = { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: { reporter: 'SERVER' } } };

test('GrpcMessageCounter: prefixes and messages split anywhere', () => {
  const msg = (n: number) => Buffer.concat([Buffer.from([0, 0, 0, (n >> 8) & 0xff, n & 0xff]), Buffer.alloc(n, 7)]);
  const wire = Buffer.concat([msg(0), msg(300), msg(1), msg(70000 & 0xffff)]);
  for (const step of [1, 3, 5, 7, 4096, wire.length]) {
    const c = new GrpcMessageCounter();
    for (let i = 0; i < wire.length; i += step) c.feed(wire.subarray(i, i + step));
    assert.equal(c.count, 4, `chunks of ${step}`);
  }
});

test('gRPC message counts through the proxy: bidirectional streaming and unary', async (t) => {
  const gport = await startGrpcServer(t, service, {
    // Answers every message twice, then ends when the client does.
    Talk: (call: grpc.ServerDuplexStream<{ text: string }, { text: string }>) => {
      call.on('data', (m: { text: string }) => {
        call.write({ text: m.text.slice(0, 10) });
        call.write({ text: 'x'.repeat(40_000) });
      });
      call.on('end', () => call.end());
    },
    Say: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { text: 'hi' }),
  });
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('inbound|9080||', [gport], H2)],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'inbound|9080||' } }])],
    listeners: [httpListener('l', 'r', { stat_prefix: 'inbound_0.0.0.0_9080', http_filters: [STATS, { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }] })],
  });
  const Client = grpc.makeGenericClientConstructor(service, 'Chat');
  const client = new Client(`127.0.0.1:${h.port('l')}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
  t.after(() => client.close());

  const got = await new Promise<number>((resolve, reject) => {
    const call = client.Talk() as grpc.ClientDuplexStream<{ text: string }, { text: string }>;
    let n = 0;
    call.on('data', () => n++);
    call.on('end', () => resolve(n));
    call.on('error', reject);
    for (let i = 0; i < 3; i++) call.write({ text: `message ${i} ` + 'y'.repeat(30_000) });
    call.end();
  });
  assert.equal(got, 6);
  await new Promise<void>((resolve, reject) => client.Say({ text: 'hello' }, (e: Error | null) => (e ? reject(e) : resolve())));

  let text = '';
  for (let i = 0; i < 50 && !/^istio_requests_total\{.*\} 2$/m.test(text); i++) {
    await new Promise((r) => setTimeout(r, 20));
    text = telemetryOf(h.rt.stats)!.metrics.render();
  }
  const line = (name: string) => text.split('\n').find((l) => l.startsWith(name + '{'));
  assert.match(line('istio_request_messages_total') ?? '', /^istio_request_messages_total\{reporter="destination",.*destination_service_name="[^"]*",destination_service_namespace="[^"]*",destination_cluster="[^"]*"\} 4$/);
  assert.match(line('istio_response_messages_total') ?? '', /\} 7$/);
  // Istio reports the message counts with the peer labels only.
  assert.doesNotMatch(line('istio_request_messages_total')!, /request_protocol|response_code|response_flags|connection_security_policy/);
  assert.match(line('istio_requests_total')!, /request_protocol="grpc",.*grpc_response_status="0"/);
});

test('gRPC message counts of a long stream are reported every tcp_reporting_duration once the peer is known', async (t) => {
  const gport = await startGrpcServer(t, service, {
    Talk: (call: grpc.ServerDuplexStream<{ text: string }, { text: string }>) => {
      call.on('data', (m: { text: string }) => call.write({ text: m.text }));
      call.on('end', () => call.end());
    },
    Say: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { text: 'hi' }),
  });
  const h = await startTestRuntime(t);
  const periodic = { ...STATS, typed_config: { ...STATS.typed_config, value: { reporter: 'SERVER', tcp_reporting_duration: '0.1s' } } };
  const peerFilter = { name: 'envoy.filters.http.peer_metadata', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/io.istio.http.peer_metadata.Config', value: { downstream_discovery: [{ istio_headers: {} }] } } };
  await configure(h, {
    clusters: [staticCluster('inbound|9080||', [gport], H2)],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'inbound|9080||' } }])],
    listeners: [httpListener('l', 'r', { stat_prefix: 'inbound_0.0.0.0_9080', http_filters: [peerFilter, periodic, { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }] })],
  });
  const Client = grpc.makeGenericClientConstructor(service, 'Chat');
  const client = new Client(`127.0.0.1:${h.port('l')}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
  t.after(() => client.close());
  const md = new grpc.Metadata();
  md.set('x-envoy-peer-metadata', localPeer({ id: 'sidecar~10.0.0.9~productpage-v1-0.default~default.svc.cluster.local', cluster: 'productpage', metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage' } } }).header);
  const call = client.Talk(md) as grpc.ClientDuplexStream<{ text: string }, { text: string }>;
  t.after(() => call.cancel());
  let echoed = 0;
  call.on('data', () => echoed++);
  call.on('error', () => undefined);
  call.write({ text: 'one' });
  call.write({ text: 'two' });
  const line = (name: string) => telemetryOf(h.rt.stats)!.metrics.render().split('\n').find((l) => l.startsWith(name + '{'));
  for (let i = 0; i < 100 && !(echoed === 2 && / 2$/.test(line('istio_response_messages_total') ?? '')); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(line('istio_request_messages_total') ?? '', /source_workload="productpage-v1".* 2$/, 'reported while the stream is open');
  assert.match(line('istio_response_messages_total') ?? '', / 2$/);
  assert.equal(line('istio_requests_total'), undefined, 'the request itself is not finished');
  const ended = new Promise<void>((r) => call.on('end', () => r()));
  call.write({ text: 'three' });
  call.end();
  await ended;
  for (let i = 0; i < 50 && !line('istio_requests_total'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(line('istio_request_messages_total') ?? '', / 3$/, 'the rest at the end, nothing twice');
  assert.match(line('istio_response_messages_total') ?? '', / 3$/);
});
