// Istio's standard metrics end to end: control-plane config for two sidecars with STRICT mTLS,
// known traffic between them, and Debian's Prometheus scraping both Prometheus endpoints; PromQL
// returns the series with Istio's labels (workloads, principals, mutual_tls, codes).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { startMesh, SERVICES_YAML, viaProxy, scrape } from './mesh.ts';
import { startPrometheus, PROMETHEUS_BIN } from './prometheus.ts';

const STRICT = `---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: istio-system }\nspec: { mtls: { mode: STRICT } }\n`;

test('two sidecars report Istio metrics that Prometheus scrapes and PromQL aggregates', { skip: !fs.existsSync(PROMETHEUS_BIN) && 'prometheus is not installed (apt-get install prometheus)' }, async (t) => {
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['productpage', 'reviews']) + STRICT,
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, sa: 'bookinfo-productpage' },
      {
        name: 'reviews-v2',
        labels: { app: 'reviews', version: 'v2' },
        sa: 'bookinfo-reviews',
        app: (q, s) => {
          s.writeHead(q.url === '/fail' ? 503 : 200, { 'content-type': 'text/plain' });
          s.end(q.url === '/fail' ? 'down' : 'reviews-body-of-some-length');
        },
      },
    ],
  });
  t.after(() => mesh.close());
  const pp = mesh.sidecars['productpage-v1'];
  const rv = mesh.sidecars['reviews-v2'];
  for (let i = 0; i < 5; i++) assert.equal((await viaProxy(pp.outbound, 'http://reviews:9080/ok')).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await viaProxy(pp.outbound, 'http://reviews:9080/fail')).status, 503);

  // The application never sees the exchanged metadata; the client sidecar strips the server's.
  const direct = await viaProxy(pp.outbound, 'http://reviews:9080/ok');
  assert.equal(direct.headers['x-envoy-peer-metadata'], undefined);

  // The exposition itself: histogram buckets as Istio's, Envoy stats and process metrics alongside.
  const text = await scrape(rv.stats);
  assert.match(text, /^istio_request_duration_milliseconds_bucket\{.*le="0\.5".*\} \d+$/m);
  assert.match(text, /^istio_request_bytes_bucket\{.*le="100000000".*\} \d+$/m);
  assert.equal(/^envoy_cluster_upstream_rq_total\{envoy_cluster_name="inbound\|9080\|\|"\} (\d+)$/m.exec(text)?.[1], '15', 'Istio retries 503 twice by default: 6 + 3 x 3 attempts');
  assert.match(text, /^process_resident_memory_bytes \d+/m);
  assert.match(text, /^nodejs_eventloop_lag_seconds \d/m);

  const prom = await startPrometheus({ productpage: pp.stats, reviews: rv.stats });
  t.after(() => prom.stop());
  await prom.waitForScrapes(Date.now());

  const byCode = await prom.query('sum(istio_requests_total{reporter="destination"}) by (destination_service, response_code)');
  const got = Object.fromEntries(byCode.map((s) => [`${s.metric.destination_service} ${s.metric.response_code}`, Number(s.value[1])]));
  assert.deepEqual(got, { 'reviews.default.svc.cluster.local 200': 6, 'reviews.default.svc.cluster.local 503': 9 });
  // The client reports one request per call; the retried failures carry URX (retry limit exceeded).
  const srcFlags = await prom.query('sum(istio_requests_total{reporter="source"}) by (response_code, response_flags)');
  assert.deepEqual(Object.fromEntries(srcFlags.map((x) => [`${x.metric.response_code} ${x.metric.response_flags}`, Number(x.value[1])])), { '200 -': 6, '503 URX': 3 });

  const dest = await prom.query('istio_requests_total{reporter="destination",response_code="503"}');
  assert.equal(dest.length, 1);
  const l = dest[0].metric;
  assert.equal(l.job, 'reviews');
  assert.equal(l.source_workload, 'productpage-v1');
  assert.equal(l.source_workload_namespace, 'default');
  assert.equal(l.source_principal, 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage');
  assert.equal(l.source_app, 'productpage');
  assert.equal(l.source_version, 'v1');
  assert.equal(l.destination_workload, 'reviews-v2');
  assert.equal(l.destination_principal, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
  assert.equal(l.destination_version, 'v2');
  assert.equal(l.destination_service_name, 'reviews');
  assert.equal(l.destination_service_namespace, 'default');
  assert.equal(l.connection_security_policy, 'mutual_tls');
  assert.equal(l.request_protocol, 'http');
  assert.equal(l.response_flags, '-');
  assert.equal(l.grpc_response_status, undefined, 'empty label values are absent in Prometheus');

  // The client side reports too, with the server's labels learned from the response metadata.
  const src = await prom.query('sum(istio_requests_total{reporter="source",source_workload="productpage-v1",destination_workload="reviews-v2",destination_version="v2"}) by (connection_security_policy)');
  assert.deepEqual(src.map((s) => [s.metric.connection_security_policy, s.value[1]]), [['unknown', '9']]);

  const bytes = await prom.query('sum(istio_response_bytes_sum{reporter="destination",response_code="200"})');
  assert.equal(Number(bytes[0].value[1]), 6 * 'reviews-body-of-some-length'.length);
  const count = await prom.query('sum(istio_request_duration_milliseconds_count{reporter="source"})');
  assert.equal(Number(count[0].value[1]), 9);
});
