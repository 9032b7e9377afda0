// The Zipkin tracer reads and shares trace context as Envoy's: B3 (single `b3` first, then x-b3-*),
// W3C traceparent only as a fallback with trace_context_option USE_B3_WITH_W3C_PROPAGATION; a
// malformed B3 header makes no span and leaves the headers as they came (Envoy's NullSpan). With
// shared_span_context (true unless set false) an inbound span takes the caller's span id and
// parent and is reported with Zipkin's `shared: true`; outbound spans are always children. Spans'
// localEndpoint.serviceName is the node's cluster.
// Real sockets: the in-process proxy runtime, an upstream and a Zipkin collector.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { flushSpans } from '../../src/proxy/telemetry/index.ts';
import { waitFor } from '../helpers/wait.ts';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';

const ZIPKIN = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';

interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  kind: string;
  shared?: boolean;
  localEndpoint?: { serviceName?: string };
}

const T = '463ac35c9f6413ad48485a3953bb6124';
const S = 'a2fb4a1d1a96d312';
const P = '0020000000000001';

test('Zipkin tracer: B3 first, W3C only when configured, malformed B3 untouched, shared span context by default', async (t) => {
  const spans: ZipkinSpan[] = [];
  const collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      spans.push(...(JSON.parse(Buffer.concat(chunks).toString()) as ZipkinSpan[]));
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app, { close: () => new Promise<void>((r) => collector.close(() => r())) }]);

  const listener = (name: string, direction: string, zipkin: EnvoyJson) =>
    httpListener(
      name,
      routeConfig(name, [{ match: { prefix: '/' }, route: { cluster: 'app' } }]),
      { tracing: { random_sampling: { value: 100 }, provider: { name: 'envoy.tracers.zipkin', typed_config: { '@type': ZIPKIN, collector_cluster: 'zipkin', collector_endpoint: '/api/v2/spans', collector_endpoint_version: 'HTTP_JSON', trace_id_128bit: true, ...zipkin } } } },
      { traffic_direction: direction },
    );
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('zipkin', [(collector.address() as AddressInfo).port])],
    listeners: [listener('in-default', 'INBOUND', {}), listener('in-unshared', 'INBOUND', { shared_span_context: false }), listener('in-w3c', 'INBOUND', { trace_context_option: 'USE_B3_WITH_W3C_PROPAGATION' }), listener('out', 'OUTBOUND', {})],
  });
  const call = async (listenerName: string, headers: http.OutgoingHttpHeaders) => {
    app.requests.length = 0;
    assert.equal((await request(h.port(listenerName), { headers })).status, 200);
    return app.requests[0].headers;
  };
  // A span ends as its stream closes, which may come just after the client has the response.
  const exported = (traceId: string) =>
    waitFor(`a span of trace ${traceId} at the collector`, async () => {
      await flushSpans(h.rt.stats);
      const of = spans.filter((s) => s.traceId === traceId);
      return of.length ? of : undefined;
    });
  const b3 = (traceId: string) => ({ 'x-b3-traceid': traceId, 'x-b3-spanid': S, 'x-b3-parentspanid': P, 'x-b3-sampled': '1' });

  // Shared (the default): the server span is the caller's span; the app sees the same B3 ids.
  const t1 = T.slice(0, 31) + '1';
  let seen = await call('in-default', b3(t1));
  assert.equal(seen['x-b3-traceid'], t1);
  assert.equal(seen['x-b3-spanid'], S);
  assert.equal(seen['x-b3-parentspanid'], P);
  assert.deepEqual((await exported(t1)).map((s) => [s.kind, s.id, s.parentId, s.shared]), [['SERVER', S, P, true]]);
  // The local endpoint is named by the node's cluster, as Envoy's Zipkin tracer (the harness's node cluster is 'test').
  assert.equal((await exported(t1))[0].localEndpoint?.serviceName, 'test');

  // shared_span_context: false (what Istio sends): a child span of the caller.
  const t2 = T.slice(0, 31) + '2';
  seen = await call('in-unshared', b3(t2));
  assert.notEqual(seen['x-b3-spanid'], S);
  assert.equal(seen['x-b3-parentspanid'], S);
  assert.deepEqual((await exported(t2)).map((s) => [s.kind, s.id, s.parentId, s.shared]), [['SERVER', seen['x-b3-spanid'], S, undefined]]);

  // Outbound spans never share: a CLIENT child of the caller.
  const t3 = T.slice(0, 31) + '3';
  seen = await call('out', b3(t3));
  assert.equal(seen['x-b3-parentspanid'], S);
  assert.deepEqual((await exported(t3)).map((s) => [s.kind, s.parentId, s.shared]), [['CLIENT', S, undefined]]);

  // The single b3 header is read before x-b3-* and rewritten with the shared ids.
  const t4 = T.slice(0, 31) + '4';
  seen = await call('in-default', { b3: `${t4}-${S}-1-${P}`, ...b3(T.slice(0, 31) + 'f') });
  assert.equal(seen.b3, `${t4}-${S}-1-${P}`);
  assert.equal(seen['x-b3-traceid'], t4);

  // USE_B3 (the default) does not read traceparent: a new trace of the tracer's own.
  const w3cTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  seen = await call('in-default', { traceparent: `00-${w3cTrace}-00f067aa0ba902b7-01` });
  assert.notEqual(seen['x-b3-traceid'], w3cTrace);
  assert.equal(seen['x-b3-parentspanid'], undefined, 'a root span');
  // USE_B3_WITH_W3C_PROPAGATION reads it when no B3 header is present...
  seen = await call('in-w3c', { traceparent: `00-${w3cTrace}-00f067aa0ba902b7-01` });
  assert.equal(seen['x-b3-traceid'], w3cTrace);
  assert.equal(seen['x-b3-spanid'], '00f067aa0ba902b7', 'shared with the W3C caller');
  assert.match(String(seen.traceparent), new RegExp(`^00-${w3cTrace}-00f067aa0ba902b7-01$`));
  // ...and B3 wins when both are.
  const t5 = T.slice(0, 31) + '5';
  seen = await call('in-w3c', { traceparent: `00-${w3cTrace}-00f067aa0ba902b7-01`, ...b3(t5) });
  assert.equal(seen['x-b3-traceid'], t5);
  assert.match(String(seen.traceparent), new RegExp(`^00-${t5}-${S}-01$`));

  // A malformed B3 header: no span, the request passes with its headers as they came.
  const t6 = T.slice(0, 31) + '6';
  seen = await call('in-default', { ...b3(t6), 'x-b3-spanid': 'not-a-span-id' });
  assert.equal(seen['x-b3-traceid'], t6);
  assert.equal(seen['x-b3-spanid'], 'not-a-span-id');
  // The next request's span is exported after any span of this one would have been.
  const t7 = T.slice(0, 31) + '7';
  await call('in-default', b3(t7));
  await exported(t7);
  assert.deepEqual(spans.filter((s) => s.traceId === t6), []);
  seen = await call('in-default', { b3: 'x' });
  assert.equal(seen.b3, 'x');
  assert.equal(seen['x-b3-traceid'], undefined);
});
