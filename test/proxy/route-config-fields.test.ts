// RouteConfiguration fields that used to be accepted without effect: include_vh_rate_limits (the
// virtual host's rate_limits also apply to the route, as with the filter's vh_rate_limits INCLUDE),
// max_direct_response_body_size_bytes (a larger direct_response body rejects the configuration),
// and the ones rig cannot honour (validate_clusters: true, a mirror's trace_sampled), which warn.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster, ROUTER } from './harness.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { compileRouteConfig } from '../../src/proxy/routing/route-config.ts';

const LRL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const ON = { default_value: { numerator: 100, denominator: 'HUNDRED' } };

test('include_vh_rate_limits: the virtual host rate_limits descriptors also count for a route with its own rate_limits', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  const filter = {
    '@type': LRL,
    stat_prefix: 'rl',
    filter_enabled: ON,
    filter_enforced: ON,
    token_bucket: { max_tokens: 1000, fill_interval: '3600s' },
    descriptors: [{ entries: [{ key: 'scope', value: 'vhost' }], token_bucket: { max_tokens: 1, fill_interval: '3600s' } }],
  };
  const own = [{ actions: [{ generic_key: { descriptor_key: 'scope', descriptor_value: 'route' } }] }];
  const route = (prefix: string, include: boolean) => ({ match: { prefix }, route: { cluster: 'up', rate_limits: own, ...(include ? { include_vh_rate_limits: true } : {}) } });
  await configure(h, {
    clusters: [staticCluster('up', [up.port])],
    routes: [{ name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], rate_limits: [{ actions: [{ generic_key: { descriptor_key: 'scope', descriptor_value: 'vhost' } }] }], routes: [route('/include', true), route('/', false)] }] }],
    listeners: [httpListener('l', 'r', { http_filters: [{ name: 'envoy.filters.http.local_ratelimit', typed_config: filter }, ROUTER] })],
  });
  const port = h.port('l');
  const statuses = async (path: string) => [(await request(port, { path })).status, (await request(port, { path })).status];
  assert.deepEqual(await statuses('/own'), [200, 200], 'the route own rate_limits override the virtual host ones');
  assert.deepEqual(await statuses('/include'), [200, 429], 'with include_vh_rate_limits the 1-token virtual host descriptor applies');
});

test('max_direct_response_body_size_bytes limits direct_response bodies when set', async (t) => {
  const big = 'x'.repeat(5000);
  const direct = (body: string) => [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: body } } }];
  const issues = new Issues();
  compileRouteConfig(routeConfig('r', direct(big), ['*'], { max_direct_response_body_size_bytes: 4096 }), 'r', issues);
  assert.deepEqual(issues.errors, ['r.virtual_hosts[0].routes[0].direct_response.body: response body size is 5000 bytes; max_direct_response_body_size_bytes is 4096']);
  const ok = new Issues();
  compileRouteConfig(routeConfig('r', direct(big), ['*'], { max_direct_response_body_size_bytes: 8192 }), 'r', ok);
  assert.deepEqual([ok.errors, ok.warnings], [[], []]);

  const h = await startTestRuntime(t);
  await configure(h, { listeners: [httpListener('l', routeConfig('r', direct(big), ['*'], { max_direct_response_body_size_bytes: { value: 6000 } }))] });
  const r = await request(h.port('l'));
  assert.equal(r.body, big);
});

test('validate_clusters: true and a mirror trace_sampled warn; the values a control plane sends stay quiet', () => {
  const routes = [{ match: { prefix: '/' }, route: { cluster: 'c', request_mirror_policies: [{ cluster: 'm', trace_sampled: false, runtime_fraction: { default_value: { numerator: 50 }, runtime_key: 'k' } }] } }];
  const issues = new Issues();
  compileRouteConfig(routeConfig('r', routes, ['*'], { validate_clusters: true, ignore_port_in_host_matching: true }), 'r', issues);
  assert.deepEqual(issues.errors, []);
  assert.deepEqual(issues.warnings.map((w) => w.split(': ')[0]), ['r.validate_clusters', 'r.virtual_hosts[0].routes[0].route.request_mirror_policies[0].trace_sampled']);
  const quiet = new Issues();
  compileRouteConfig(routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c' } }], ['*'], { validate_clusters: false, ignore_port_in_host_matching: true }), 'r', quiet);
  assert.deepEqual([quiet.errors, quiet.warnings], [[], []]);
});
