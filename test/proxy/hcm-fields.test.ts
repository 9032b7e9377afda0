// HttpConnectionManager and router fields that used to be accepted without effect:
// path_with_escaped_slashes_action (REJECT_REQUEST 400, UNESCAPE_AND_REDIRECT 307, UNESCAPE_AND_FORWARD
// decoded before routing), the router's respect_expected_rq_timeout (an internal request's
// x-envoy-expected-rq-timeout-ms is its timeout), and the fields rig cannot honour, which warn by
// path only when set to something other than Envoy's default.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster, LISTENER_TYPE, HCM, ROUTER } from './harness.ts';

const ROUTER_TYPE = ROUTER.typed_config['@type'];

test('path_with_escaped_slashes_action: reject, redirect and forward %2F / %5C; KEEP_UNCHANGED leaves them', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  const routes = routeConfig('r', [{ match: { prefix: '/a/b' }, route: { cluster: 'up' } }, { match: { prefix: '/' }, direct_response: { status: 404 } }]);
  const hcm = (action: string) => httpListener(action, routes, { path_with_escaped_slashes_action: action });
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: ['REJECT_REQUEST', 'UNESCAPE_AND_REDIRECT', 'UNESCAPE_AND_FORWARD', 'KEEP_UNCHANGED'].map(hcm) });
  const path = '/a%2Fb%5cc?q=%2F';
  assert.equal((await request(h.port('REJECT_REQUEST'), { path })).status, 400);
  assert.equal(h.streams.at(-1)!.responseCodeDetails, 'path_normalization_failed');
  const redirect = await request(h.port('UNESCAPE_AND_REDIRECT'), { path });
  assert.equal(redirect.status, 307);
  assert.equal(redirect.headers.location, '/a/b\\c?q=%2F');
  const forwarded = await request(h.port('UNESCAPE_AND_FORWARD'), { path });
  assert.equal(forwarded.status, 200, 'the decoded path matches the /a/b route');
  assert.equal(up.requests.at(-1)!.url, '/a/b\\c?q=%2F');
  assert.equal((await request(h.port('KEEP_UNCHANGED'), { path })).status, 404, 'kept encoded, /a%2Fb does not match /a/b');
  assert.equal((await request(h.port('REJECT_REQUEST'), { path: '/a/b?x=%2F' })).status, 200, 'an escaped slash in the query is no reason to reject');
});

test('respect_expected_rq_timeout: an internal request x-envoy-expected-rq-timeout-ms sets its timeout', async (t) => {
  const held: http.ServerResponse[] = [];
  const up = await startUpstream('up', (req, res) => {
    if (req.url !== '/hang') return false;
    held.push(res);
    return true;
  });
  t.after(() => held.forEach((r) => r.destroy()));
  const h = await startTestRuntime(t, [up]);
  const routes = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up', timeout: '60s' } }]);
  const router = (respect: boolean) => ({ http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE, respect_expected_rq_timeout: respect } }] });
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('respect', routes, router(true)), httpListener('plain', routes, router(false))] });
  // One trusted hop from a private address: an internal request, whose x-envoy-* headers are kept.
  const expected = { 'x-envoy-expected-rq-timeout-ms': '150', 'x-forwarded-for': '10.0.0.1' };
  const timedOut = await request(h.port('respect'), { path: '/hang', headers: expected });
  assert.equal(timedOut.status, 504, 'the 150 ms from the header, not the route 60 s');
  await request(h.port('respect'), { path: '/echo', headers: expected });
  assert.equal(up.requests.at(-1)!.headers['x-envoy-expected-rq-timeout-ms'], '150');
  await request(h.port('plain'), { path: '/echo', headers: expected });
  assert.equal(up.requests.at(-1)!.headers['x-envoy-expected-rq-timeout-ms'], '60000', 'without the option the route timeout applies');
});

test('connection manager fields rig cannot honour warn by path; their defaults stay quiet', async (t) => {
  const h = await startTestRuntime(t);
  const listener = (name: string, hcm: Record<string, unknown>, router: Record<string, unknown> = {}) => ({
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: name, route_config: routeConfig('r', []), http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE, ...router } }], ...hcm } }] }],
  });
  const quiet = listener('quiet', {
    path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
    http_protocol_options: { enable_trailers: false, allow_chunked_length: false },
    upgrade_configs: [{ upgrade_type: 'websocket' }],
    delayed_close_timeout: '1s',
    stream_error_on_invalid_http_message: false,
  }, { dynamic_stats: true, start_child_span: false, upstream_log: [] });
  const loud = listener('loud', {
    http_protocol_options: { header_key_format: { proper_case_words: {} }, allow_chunked_length: true },
    upgrade_configs: [{ upgrade_type: 'websocket', filters: [{ name: 'x' }] }],
    early_header_mutation_extensions: [{ name: 'm' }],
    stream_error_on_invalid_http_message: true,
  }, { start_child_span: true, upstream_log: [{ name: 'l' }] });
  assert.deepEqual(h.apply(LISTENER_TYPE, [quiet, loud]), []);
  const warnings = [...h.rt.warnings.values()].flat();
  assert.equal(warnings.filter((w) => w.startsWith('listener "quiet"')).length, 0, warnings.join('\n'));
  const loudPaths = warnings.map((w) => /^listener "loud": filter_chains\[0\]\.filters\[0\]\.typed_config\.(\S+): /.exec(w)?.[1] ?? w);
  assert.deepEqual(loudPaths.sort(), [
    'early_header_mutation_extensions',
    'http_filters[0].typed_config.start_child_span',
    'http_filters[0].typed_config.upstream_log',
    'http_protocol_options.allow_chunked_length',
    'stream_error_on_invalid_http_message',
    'upgrade_configs[0].filters',
  ]);
});
