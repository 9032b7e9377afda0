// Istio's traffic-management tasks on Bookinfo, end to end through the real processes of
// `rig demo` (control plane, ingress gateway, sidecars, apps), with the YAML of Istio's docs.
// Each task applies its files with `rig apply` and removes them afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Bookinfo, CLUSTER_STATS_MESH_CONFIG, eventually, request, reviewsServedBy } from './bookinfo-mesh.ts';

describe('Istio traffic-management tasks on Bookinfo', () => {
  let bi: Bookinfo;
  before(async () => {
    // The circuit breaking task reads the gateway's cluster stats, which Istio's proxies keep only
    // when their proxyStatsMatcher asks (the task's fortio client has the annotation for it).
    bi = await Bookinfo.start(['--mesh-config', CLUSTER_STATS_MESH_CONFIG]);
  });
  after(async () => {
    await bi?.stop();
  });

  it('ingress: the bookinfo Gateway serves /productpage, /static, /api/v1/products and sign in', async () => {
    const page = await bi.page();
    assert.equal(page.status, 200);
    assert.match(page.body, /The Comedy of Errors/);
    assert.match(page.body, /Book Details/);
    assert.notEqual(reviewsServedBy(page.body), 'none');
    assert.equal((await request(bi.gatewayPort, '/static/bookinfo.css')).status, 200);
    const api = await request(bi.gatewayPort, '/api/v1/products');
    assert.equal(api.status, 200);
    // Not routed by the VirtualService: 404 from the gateway.
    assert.equal((await request(bi.gatewayPort, '/health')).status, 404);
  });

  it('request routing: all traffic to v1, then jason to v2', async () => {
    await bi.apply('virtual-service-all-v1.yaml');
    await eventually('all reviews from v1', async () => ((await bi.servedBy(5))['reviews-v1'] === 5 ? true : undefined));
    assert.deepEqual(await bi.servedBy(10), { 'reviews-v1': 10 });
    await bi.apply('virtual-service-reviews-test-v2.yaml');
    const jason = await bi.login('jason');
    await eventually('jason sees v2', async () => ((await bi.servedBy(3, jason))['reviews-v2'] === 3 ? true : undefined));
    assert.deepEqual(await bi.servedBy(10, jason), { 'reviews-v2': 10 });
    assert.deepEqual(await bi.servedBy(10), { 'reviews-v1': 10 });
    const other = await bi.login('alice');
    assert.deepEqual(await bi.servedBy(5, other), { 'reviews-v1': 5 });
  });

  it('fault injection: an HTTP 500 abort on ratings for jason shows the ratings error', async () => {
    await bi.apply('virtual-service-ratings-test-abort.yaml');
    const jason = await bi.login('jason');
    const page = await eventually('ratings aborted for jason', async () => {
      const p = await bi.page(jason);
      return p.body.includes('Ratings service is currently unavailable') ? p : undefined;
    });
    assert.equal(reviewsServedBy(page.body), 'reviews-v2');
    const anonymous = await bi.page();
    assert.doesNotMatch(anonymous.body, /Ratings service is currently unavailable/);
  });

  it('fault injection: a 7 s delay on ratings for jason makes the reviews unavailable (Bookinfo timeouts)', async () => {
    await bi.apply('virtual-service-ratings-test-delay.yaml');
    const jason = await bi.login('jason');
    const page = await eventually(
      'reviews unavailable for jason',
      async () => {
        const p = await bi.page(jason);
        return reviewsServedBy(p.body) === 'unavailable' ? p : undefined;
      },
      30_000,
    );
    assert.match(page.body, /Sorry, product reviews are currently unavailable for this book\./);
    await bi.delete('virtual-service-ratings-test-delay.yaml');
  });

  it('traffic shifting: 50/50 between v1 and v3, then 100% v3', async () => {
    await bi.delete('virtual-service-reviews-test-v2.yaml');
    await bi.apply('virtual-service-all-v1.yaml');
    await bi.apply('virtual-service-reviews-50-v3.yaml');
    await eventually('v3 appears', async () => ((await bi.servedBy(6))['reviews-v3'] ? true : undefined));
    const counts = await bi.servedBy(100);
    assert.equal((counts['reviews-v1'] ?? 0) + (counts['reviews-v3'] ?? 0), 100, JSON.stringify(counts));
    // Binomial(100, 0.5): 30..70 holds with probability > 99.99%.
    assert.ok(counts['reviews-v1'] >= 30 && counts['reviews-v1'] <= 70, JSON.stringify(counts));
    await bi.apply('virtual-service-reviews-v3.yaml');
    // 20 in a row: under the 50/50 split still in force until the push lands, 5 in a row came from v3 one time in 32.
    await eventually('only v3', async () => ((await bi.servedBy(20))['reviews-v3'] === 20 ? true : undefined));
    assert.deepEqual(await bi.servedBy(20), { 'reviews-v3': 20 });
  });

  it('request timeouts: a 0.5 s timeout on reviews when ratings is delayed 2 s', async () => {
    await bi.apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
`);
    await bi.apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - fault:
      delay:
        percent: 100
        fixedDelay: 2s
    route:
    - destination:
        host: ratings
        subset: v1
`);
    const slow = await eventually('page delayed by about 2 s', async () => {
      const p = await bi.page();
      return p.ms >= 1800 && reviewsServedBy(p.body) === 'reviews-v2' ? p : undefined;
    });
    assert.match(slow.body, /data-color="black"/);
    await bi.apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
    timeout: 0.5s
`);
    const page = await eventually('reviews time out', async () => {
      const p = await bi.page();
      return reviewsServedBy(p.body) === 'unavailable' ? p : undefined;
    });
    assert.match(page.body, /Sorry, product reviews are currently unavailable for this book\./);
  });

  it('mirroring: reviews v1 serves while v2 receives a mirrored copy of each request', async () => {
    await bi.delete('virtual-service-ratings-test-delay.yaml').catch(() => undefined);
    await bi.apply('virtual-service-all-v1.yaml');
    await bi.apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 100
    mirror:
      host: reviews
      subset: v2
    mirrorPercentage:
      value: 100.0
`);
    const mirrored = async () => ((await bi.mesh.rig(['logs', 'reviews-v2'])).stdout.match(/GET \/reviews\/0 200/g) ?? []).length;
    await eventually('mirrored requests reach v2', async () => {
      const before = await mirrored();
      const served = await bi.servedBy(3);
      return served['reviews-v1'] === 3 && (await mirrored()) >= before + 3 ? true : undefined;
    });
  });

  it('circuit breaking: connectionPool limits give 503 UO under concurrent load, counted in the stats', async () => {
    await bi.apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: productpage
spec:
  host: productpage
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
  subsets:
  - name: v1
    labels:
      version: v1
`);
    const overflowed = await eventually(
      '503s under load',
      async () => {
        const results = await Promise.all(Array.from({ length: 20 }, () => request(bi.gatewayPort, '/productpage')));
        const codes = results.map((r) => r.status);
        return codes.includes(503) && codes.includes(200) ? results.filter((r) => r.status === 503) : undefined;
      },
      20_000,
    );
    assert.ok(overflowed.some((r) => r.headers['x-envoy-overloaded'] === 'true' || /overflow/.test(r.body)), 'the 503s are overflows');
    const stats = await bi.stats('istio-ingressgateway');
    const pending = /envoy_cluster_upstream_rq_pending_overflow\{[^}]*cluster_name="outbound\|9080\|\|productpage\.default\.svc\.cluster\.local"[^}]*\} (\d+)/.exec(stats);
    assert.ok(pending && Number(pending[1]) > 0, 'upstream_rq_pending_overflow counted');
    assert.match(stats, /istio_requests_total\{[^}]*response_code="503"[^}]*response_flags="UO"[^}]*\} [1-9]/);
    await bi.apply('destination-rule-all.yaml');
  });
});
