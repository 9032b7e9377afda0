// RouteConfiguration fields that used to be accepted without effect: include_vh_rate_limits (the
// virtual host's rate_limits also apply to the route, as with the filter's vh_rate_limits INCLUDE),
// max_direct_response_body_size_bytes (a larger direct_response body rejects the configuration;
// Envoy's default 4096 when absent),
// and the ones rig cannot honour (validate_clusters: true, a mirror's trace_sampled), which warn.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster, ROUTER } from './harness.ts';
import { runRig } from '../helpers/cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { compileRouteConfig } from '../../src/proxy/routing/route-config.ts';

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
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

test('max_direct_response_body_size_bytes limits direct_response bodies, 4096 bytes by default as Envoy', async (t) => {
  const big = 'x'.repeat(5000);
  const direct = (body: string) => [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: body } } }];
  const error = 'r.virtual_hosts[0].routes[0].direct_response.body: response body size is 5000 bytes; maximum is 4096';
  for (const extra of [{ max_direct_response_body_size_bytes: 4096 }, {}]) {
    const issues = new Issues();
    compileRouteConfig(routeConfig('r', direct(big), ['*'], extra), 'r', issues);
    assert.deepEqual(issues.errors, [error], JSON.stringify(extra));
  }
  const atLimit = new Issues();
  compileRouteConfig(routeConfig('r', direct('x'.repeat(4096)), ['*']), 'r', atLimit);
  assert.deepEqual(atLimit.errors, []);
  const ok = new Issues();
  compileRouteConfig(routeConfig('r', direct(big), ['*'], { max_direct_response_body_size_bytes: 8192 }), 'r', ok);
  assert.deepEqual([ok.errors, ok.warnings], [[], []]);

  const h = await startTestRuntime(t);
  await configure(h, { listeners: [httpListener('l', routeConfig('r', direct(big), ['*'], { max_direct_response_body_size_bytes: { value: 6000 } }))] });
  const r = await request(h.port('l'));
  assert.equal(r.body, big);

  // A static bootstrap whose inline route configuration leaves the field out: refused at start.
  const dir = tempDir(t, 'rig-direct-body-');
  const file = path.join(dir, 'bootstrap.yaml');
  const hcm = { '@type': HCM_TYPE, stat_prefix: 'in', route_config: routeConfig('r', direct(big), ['*']), http_filters: [ROUTER] };
  const listener = { name: 'l', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] };
  fs.writeFileSync(file, stringify({ static_resources: { listeners: [listener] } }));
  const run = await runRig(['proxy', '-c', file, '--admin-port', '0', '--ready-port', '0', '--stats-port', '0']);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /response body size is 5000 bytes; maximum is 4096/);
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
