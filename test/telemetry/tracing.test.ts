// Distributed tracing through control-plane-configured sidecars: a test collector receives
// Zipkin v2 JSON (mesh-wide provider) and OTLP/HTTP protobuf (workload-level Telemetry for ratings);
// productpage -> reviews -> ratings yields one trace with correct parents, kinds and tags;
// sampling 0% / 100% / the caller's decision; a collector that is down costs requests nothing.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startMesh, SERVICES_YAML, viaProxy, type Mesh } from './mesh.ts';
import { flushSpans } from '../../src/proxy/telemetry/index.ts';
import { answerTraceExport } from '../helpers/otlp-collector.ts';

interface Span {
  traceId: string;
  id: string;
  parentId?: string;
  kind: string;
  name: string;
  tags: Record<string, string>;
  via: 'zipkin' | 'otlp';
}

interface Collector {
  port: number;
  spans: Span[];
  close(): Promise<void>;
}

const OTLP_KINDS = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];

async function startCollector(): Promise<Collector> {
  const c: Collector = { port: 0, spans: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/api/v2/spans') {
        for (const s of JSON.parse(body.toString()) as { traceId: string; id: string; parentId?: string; kind: string; name: string; tags?: Record<string, string> }[]) c.spans.push({ traceId: s.traceId, id: s.id, parentId: s.parentId, kind: s.kind, name: s.name, tags: s.tags ?? {}, via: 'zipkin' });
        res.end();
      } else if (req.url === '/v1/traces') {
        for (const s of answerTraceExport(req, body, res)?.spans ?? []) c.spans.push({ traceId: s.traceId, id: s.spanId, parentId: s.parentSpanId || undefined, kind: OTLP_KINDS[s.kind], name: s.name, tags: Object.fromEntries(Object.entries(s.attributes).map(([k, v]) => [k, String(v)])), via: 'otlp' });
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.port = (server.address() as AddressInfo).port;
  c.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return c;
}

const TRACE_HEADERS = ['traceparent', 'tracestate', 'x-request-id', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags', 'b3'];

function collectorYaml(port: number): string {
  const se = (name: string, host: string, number: number) =>
    `---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: ${name}, namespace: istio-system }\nspec:\n  hosts: [${host}]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n  ports: [{ number: ${number}, name: http, protocol: HTTP }]\n  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} } }]\n`;
  return se('zipkin', 'zipkin.istio-system.svc.cluster.local', 9411) + se('otel', 'otel-collector.istio-system.svc.cluster.local', 4318);
}

// Zipkin writes W3C beside B3 so the OpenTelemetry tracer of ratings (W3C only, as Envoy's) continues
// the trace, and a W3C caller is read by the Zipkin tracers (B3 first, W3C as the fallback).
const PROVIDERS = [
  { name: 'zipkin', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411, traceContextOption: 'USE_B3_WITH_W3C_PROPAGATION' } },
  { name: 'otel', opentelemetry: { service: 'otel-collector.istio-system.svc.cluster.local', port: 4318, http: { path: '/v1/traces', timeout: '5s' } } },
];

/** productpage -> reviews -> ratings; the reviews app forwards the trace headers as Bookinfo does. */
async function bookinfoChain(collectorPort: number, sampling: number, extraYaml = ''): Promise<Mesh> {
  const ref = { reviewsOutbound: 0 };
  const telemetry = `---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: mesh-default, namespace: istio-system }\nspec:\n  tracing: [{ providers: [{ name: zipkin }], randomSamplingPercentage: ${sampling} }]\n---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: ratings-otel, namespace: default }\nspec:\n  selector: { matchLabels: { app: ratings } }\n  tracing: [{ providers: [{ name: otel }] }]\n`;
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['productpage', 'reviews', 'ratings']) + collectorYaml(collectorPort) + telemetry + extraYaml,
    mesh: { extensionProviders: PROVIDERS },
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, sa: 'bookinfo-productpage' },
      {
        name: 'reviews-v1',
        labels: { app: 'reviews', version: 'v1' },
        sa: 'bookinfo-reviews',
        app: (q, s) => {
          const h: http.OutgoingHttpHeaders = {};
          for (const k of TRACE_HEADERS) if (q.headers[k] !== undefined) h[k] = q.headers[k];
          viaProxy(ref.reviewsOutbound, 'http://ratings:9080/ratings/0', h).then(
            (r) => s.end(`reviews(${r.body})`),
            () => s.writeHead(502).end(),
          );
        },
      },
      { name: 'ratings-v1', labels: { app: 'ratings', version: 'v1' }, sa: 'bookinfo-ratings', app: (_q, s) => s.end('5 stars') },
    ],
  });
  ref.reviewsOutbound = mesh.sidecars['reviews-v1'].outbound;
  return mesh;
}

async function flushAll(mesh: Mesh): Promise<void> {
  await Promise.all(Object.values(mesh.sidecars).map((s) => flushSpans(s.rt.stats)));
}

async function waitForSpans(c: Collector, n: number, traceId?: string): Promise<Span[]> {
  const pick = () => c.spans.filter((s) => !traceId || s.traceId === traceId);
  for (let i = 0; i < 100 && pick().length < n; i++) await new Promise((r) => setTimeout(r, 50));
  return pick();
}

test('one trace across three hops: parents, kinds, names and tags; Zipkin and OTLP; collector down', async (t) => {
  const collector = await startCollector();
  t.after(() => collector.close());
  const mesh = await bookinfoChain(collector.port, 100);
  t.after(() => mesh.close());
  const pp = mesh.sidecars['productpage-v1'];

  const r = await viaProxy(pp.outbound, 'http://reviews:9080/reviews/0', { 'user-agent': 'trace-test' });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'reviews(5 stars)');
  await flushAll(mesh);
  const spans = await waitForSpans(collector, 4);
  assert.equal(spans.length, 4, JSON.stringify(spans, null, 1));
  assert.equal(new Set(spans.map((s) => s.traceId)).size, 1, 'one trace');
  const root = spans.find((s) => !s.parentId)!;
  const childOf = (p: Span) => spans.filter((s) => s.parentId === p.id);
  assert.equal(root.kind, 'CLIENT');
  assert.equal(root.via, 'zipkin');
  assert.equal(root.name, 'reviews.default.svc.cluster.local:9080/*');
  assert.equal(root.tags.component, 'proxy');
  assert.match(root.tags.node_id, /^sidecar~127\.0\.0\.1~productpage-v1-0\.default~/);
  assert.equal(root.tags.upstream_cluster, 'outbound|9080||reviews.default.svc.cluster.local');
  assert.equal(root.tags['http.method'], 'GET');
  assert.equal(root.tags['http.url'], 'http://reviews:9080/reviews/0');
  assert.equal(root.tags['http.status_code'], '200');
  assert.equal(root.tags.response_flags, '-');
  assert.equal(root.tags.user_agent, 'trace-test');
  assert.equal(root.tags['istio.canonical_service'], 'productpage');

  const [reviewsServer] = childOf(root);
  assert.equal(reviewsServer.kind, 'SERVER');
  assert.equal(reviewsServer.name, 'reviews.default.svc.cluster.local:9080/*');
  assert.equal(reviewsServer.tags['peer.principal'], 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage');
  assert.equal(reviewsServer.tags.upstream_cluster, 'inbound|9080||');
  const [reviewsClient] = childOf(reviewsServer);
  assert.equal(reviewsClient.kind, 'CLIENT');
  assert.equal(reviewsClient.name, 'ratings.default.svc.cluster.local:9080/*');
  assert.equal(reviewsClient.tags['http.url'], 'http://ratings:9080/ratings/0');
  const [ratingsServer] = childOf(reviewsClient);
  assert.equal(ratingsServer.kind, 'SERVER');
  assert.equal(ratingsServer.via, 'otlp', 'the workload-level Telemetry sends ratings spans over OTLP');
  assert.equal(ratingsServer.tags['istio.canonical_service'], 'ratings');
  assert.equal(ratingsServer.tags['peer.principal'], 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');

  // The caller's "not sampled" is honoured at 100%: no spans, the decision travels on.
  collector.spans.length = 0;
  const unsampled = await viaProxy(pp.outbound, 'http://reviews:9080/reviews/1', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' });
  assert.equal(unsampled.status, 200);
  await flushAll(mesh);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(collector.spans.length, 0);

  // Collector down: requests are unaffected, dropped spans are counted.
  await collector.close();
  for (let i = 0; i < 3; i++) assert.equal((await viaProxy(pp.outbound, 'http://reviews:9080/reviews/2')).status, 200);
  await flushSpans(pp.rt.stats);
  const stat = (name: string) => pp.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
  assert.equal(stat('tracing.zipkin.spans_dropped'), 3);
  assert.ok(stat('tracing.zipkin.reports_failed') >= 1);
  assert.equal(stat('tracing.zipkin.spans_sent'), 1);
});

test('a VirtualService route names its spans as Istio (host:port + path); the server span takes the name the client propagated', async (t) => {
  const collector = await startCollector();
  t.after(() => collector.close());
  const vs = `---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: reviews-route, namespace: default }\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{ uri: { prefix: /reviews } }]\n    route: [{ destination: { host: reviews } }]\n`;
  const mesh = await bookinfoChain(collector.port, 100, vs);
  t.after(() => mesh.close());
  const r = await viaProxy(mesh.sidecars['productpage-v1'].outbound, 'http://reviews:9080/reviews/7');
  assert.equal(r.status, 200);
  await flushAll(mesh);
  const spans = await waitForSpans(collector, 4);
  const root = spans.find((s) => !s.parentId)!;
  assert.equal(root.name, 'reviews.default.svc.cluster.local:9080/reviews*');
  const [reviewsServer] = spans.filter((s) => s.parentId === root.id);
  assert.equal(reviewsServer.kind, 'SERVER');
  assert.equal(reviewsServer.name, 'reviews.default.svc.cluster.local:9080/reviews*', 'x-envoy-decorator-operation from the client');
  const ratingsServer = spans.find((s) => s.kind === 'SERVER' && s.tags['istio.canonical_service'] === 'ratings')!;
  assert.equal(ratingsServer.name, 'ratings.default.svc.cluster.local:9080/*', 'no VirtualService: the default route decorator');
});

test('enableIstioTags: false drops the istio.* span tags, the most specific Telemetry setting it wins', async (t) => {
  const collector = await startCollector();
  t.after(() => collector.close());
  const telemetry = (name: string, selector: string, tracing: string) => `---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: ${name}, namespace: default }\nspec:\n${selector}  tracing: [${tracing}]\n`;
  // Namespace: off; reviews' own Telemetry turns them back on; ratings' (providers only) inherits off.
  const yaml = telemetry('ns-tags', '', '{ enableIstioTags: false, customTags: { team: { literal: { value: books } } } }') + telemetry('reviews-tags', '  selector: { matchLabels: { app: reviews } }\n', '{ enableIstioTags: true }');
  const mesh = await bookinfoChain(collector.port, 100, yaml);
  t.after(() => mesh.close());
  assert.equal((await viaProxy(mesh.sidecars['productpage-v1'].outbound, 'http://reviews:9080/reviews/0')).status, 200);
  await flushAll(mesh);
  const spans = await waitForSpans(collector, 4);
  assert.equal(spans.length, 4);
  const istioTags = (s: Span) => Object.keys(s.tags).filter((k) => k.startsWith('istio.'));
  const byService = (upstream: string, kind: string) => spans.find((s) => s.kind === kind && s.tags.upstream_cluster.includes(upstream))!;
  const pp = byService('reviews.default', 'CLIENT');
  assert.deepEqual(istioTags(pp), []);
  assert.equal(pp.tags.team, 'books', 'the custom tags stay');
  const reviews = spans.find((s) => s.kind === 'SERVER' && s.via === 'zipkin')!;
  assert.equal(reviews.tags['istio.canonical_service'], 'reviews');
  assert.equal(reviews.tags['istio.canonical_revision'], 'v1');
  assert.equal(reviews.tags['istio.namespace'], 'default');
  assert.equal(reviews.tags['istio.cluster_id'], 'Kubernetes');
  const ratings = spans.find((s) => s.via === 'otlp')!;
  assert.deepEqual(istioTags(ratings), []);
});

test('sampling 0%: nothing without a decision; a sampled caller (W3C or B3) is honoured', async (t) => {
  const collector = await startCollector();
  t.after(() => collector.close());
  const mesh = await bookinfoChain(collector.port, 0);
  t.after(() => mesh.close());
  const pp = mesh.sidecars['productpage-v1'];

  for (let i = 0; i < 5; i++) assert.equal((await viaProxy(pp.outbound, 'http://reviews:9080/reviews/0')).status, 200);
  await flushAll(mesh);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(collector.spans.length, 0);

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  assert.equal((await viaProxy(pp.outbound, 'http://reviews:9080/reviews/0', { traceparent: `00-${traceId}-00f067aa0ba902b7-01` })).status, 200);
  await flushAll(mesh);
  const w3c = await waitForSpans(collector, 4, traceId);
  assert.equal(w3c.length, 4);
  assert.equal(w3c.find((s) => s.kind === 'CLIENT' && s.tags.upstream_cluster?.includes('reviews'))?.parentId, '00f067aa0ba902b7', 'the caller span is the parent');

  const b3Trace = '80f198ee56343ba864fe8b2a57d3eff7';
  assert.equal((await viaProxy(pp.outbound, 'http://reviews:9080/reviews/0', { b3: `${b3Trace}-e457b5a2e4d86bd1-1` })).status, 200);
  await flushAll(mesh);
  assert.equal((await waitForSpans(collector, 4, b3Trace)).length, 4);
});
