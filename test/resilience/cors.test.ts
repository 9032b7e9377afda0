// envoy.filters.http.cors through the real proxy, with the CorsPolicy per route as the control
// plane generates it from a VirtualService corsPolicy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster, ROUTER, ROUTE_TYPE, type Harness } from '../proxy/harness.ts';

const CORS = { name: 'envoy.filters.http.cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } };
const POLICY = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

const policy = {
  '@type': POLICY,
  allow_origin_string_match: [{ exact: 'https://app.example.com' }, { prefix: 'https://dev-' }, { suffix: '.trusted.io' }, { safe_regex: { regex: 'https://[a-z]+\\.corp\\.net' } }],
  allow_methods: 'GET,POST,PUT',
  allow_headers: 'x-custom,authorization',
  expose_headers: 'x-trace',
  max_age: '600',
  allow_credentials: true,
};

async function setup(t: { after(fn: () => unknown): void }) {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  const routes = [
    { match: { prefix: '/strict' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.cors': { ...policy, forward_not_matching_preflights: false } } },
    { match: { prefix: '/shadow' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.cors': { ...policy, filter_enabled: { default_value: { numerator: 0 } }, shadow_enabled: { default_value: { numerator: 100 } } } } },
    { match: { prefix: '/plain' }, route: { cluster: 'up' } },
    { match: { prefix: '/' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.cors': policy } },
  ];
  await configure(h, { clusters: [staticCluster('up', [up.port])], routes: [routeConfig('r', routes as never)], listeners: [httpListener('l', 'r', { http_filters: [CORS, ROUTER] })] });
  return { h, up, port: h.port('l') };
}

const preflight = (origin: string) => ({ method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-custom' } });

test('preflights from allowed origins get a direct 200 with the policy headers', async (t) => {
  const { h, up, port } = await setup(t);
  for (const origin of ['https://app.example.com', 'https://dev-42.example.com', 'https://api.trusted.io', 'https://build.corp.net']) {
    const r = await request(port, { path: '/api', ...preflight(origin) });
    assert.equal(r.status, 200, origin);
    assert.equal(r.headers['access-control-allow-origin'], origin);
    assert.equal(r.headers['access-control-allow-methods'], 'GET,POST,PUT');
    assert.equal(r.headers['access-control-allow-headers'], 'x-custom,authorization');
    assert.equal(r.headers['access-control-max-age'], '600');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
  }
  assert.equal(up.requests.length, 0, 'preflights are answered by the proxy');
  assert.equal(stat(h, 'http.l.cors.origin_valid'), 4);
});

test('preflights from other origins are forwarded, or refused without CORS headers when forward_not_matching_preflights is false', async (t) => {
  const { h, up, port } = await setup(t);
  let r = await request(port, { path: '/api', ...preflight('https://evil.example.org') });
  assert.equal(r.json().method, 'OPTIONS', 'forwarded to the upstream');
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  r = await request(port, { path: '/strict', ...preflight('https://app.example.com.evil.org') });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(up.requests.length, 1);
  assert.equal(stat(h, 'http.l.cors.origin_invalid'), 2);
  // OPTIONS without Access-Control-Request-Method is no preflight.
  r = await request(port, { path: '/api', method: 'OPTIONS', headers: { origin: 'https://app.example.com' } });
  assert.equal(r.json().method, 'OPTIONS');
});

test('actual requests get Allow-Origin, credentials and expose headers only for allowed origins', async (t) => {
  const { port } = await setup(t);
  let r = await request(port, { path: '/api', headers: { origin: 'https://app.example.com' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.equal(r.headers['access-control-expose-headers'], 'x-trace');
  r = await request(port, { path: '/api', headers: { origin: 'https://evil.example.org' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  r = await request(port, { path: '/plain', headers: { origin: 'https://app.example.com' } });
  assert.equal(r.headers['access-control-allow-origin'], undefined, 'no policy on the route');
});

test('shadow mode counts but does not act; a bad policy is refused', async (t) => {
  const { h, port } = await setup(t);
  const r = await request(port, { path: '/shadow', ...preflight('https://app.example.com') });
  assert.equal(r.json().method, 'OPTIONS', 'forwarded: the filter is not enabled');
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(stat(h, 'http.l.cors.origin_valid'), 1);
  const errs = h.apply(ROUTE_TYPE, [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.cors': { ...policy, allow_origin_string_match: [{ safe_regex: { regex: '(' } }], max_age: 'ten' } } }])]);
  assert.match(errs.join('\n'), /invalid regular expression/);
  assert.match(errs.join('\n'), /max_age must be a number of seconds/);
});
