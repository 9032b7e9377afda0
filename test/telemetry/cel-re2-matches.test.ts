// CEL's matches() is RE2's, in Telemetry tag overrides as everywhere Istio takes CEL: the POSIX
// class of Istio's Classifying Metrics task (`^/reviews/[[:alnum:]]*$`) and a `(?i)` flag group
// classify requests as RE2 would. As an ECMAScript RegExp the class reads as `[[:alnum:]` followed
// by `]*`, which matches `/reviews/:` and not `/reviews/1`. rig proxy in process, real sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';
import { telemetryOf } from '../../src/proxy/telemetry/index.ts';

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

test('a tag override classifies requests with RE2 matches(): POSIX classes and flag groups', async (t) => {
  const up = await startUpstream('reviews');
  const h = await startTestRuntime(t, [up]);
  const dimensions = {
    request_operation: "request.url_path.matches('^/reviews/[[:alnum:]]*$') ? 'GetReview' : (matches(request.url_path, '(?i)^/HEALTH') ? 'Health' : 'other')",
  };
  const stats = { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: { reporter: 'SERVER', metrics: [{ name: 'requests_total', dimensions }] } } };
  await configure(h, {
    clusters: [staticCluster('inbound|9080||', [up.port])],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'inbound|9080||' } }])],
    listeners: [httpListener('l', 'r', { stat_prefix: 'inbound_0.0.0.0_9080', http_filters: [stats, ROUTER] })],
  });
  for (const path of ['/reviews/1', '/reviews/abc2', '/reviews/:', '/health']) assert.equal((await request(h.port('l'), { path })).status, 200);

  let requests: string[] = [];
  for (let i = 0; i < 50; i++) {
    requests = telemetryOf(h.rt.stats)!.metrics.render().split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    if (requests.length >= 3) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const count = (op: string) => requests.filter((l) => l.includes(`request_operation="${op}"`)).map((l) => Number(l.split(' ').pop()));
  assert.deepEqual(count('GetReview'), [2], requests.join('\n'));
  assert.deepEqual(count('other'), [1], requests.join('\n'));
  assert.deepEqual(count('Health'), [1], requests.join('\n'));
});
