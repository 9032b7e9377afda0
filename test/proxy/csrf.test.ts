// envoy.filters.http.csrf in `rig proxy -c`: cross-origin state-changing requests get 403 "Invalid
// origin" and never reach the upstream; same-origin ones (Origin, else Referer; host and port
// compared, the scheme not), additional_origins, safe methods, a route in shadow mode and a route
// with the check off pass; http.<stat_prefix>.csrf.* count them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { request, startUpstream } from './harness.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const CSRF = 'type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy';
const percent = (n: number) => ({ default_value: { numerator: n, denominator: 'HUNDRED' }, runtime_key: 'csrf.enabled' });

function bootstrap(appPort: number) {
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: 'web',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM,
                    stat_prefix: 'ingress_http',
                    http_filters: [
                      { name: 'envoy.filters.http.csrf', typed_config: { '@type': CSRF, filter_enabled: percent(100), additional_origins: [{ exact: 'trusted.example' }, { suffix: '.partner.example' }] } },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                    route_config: {
                      name: 'local_route',
                      virtual_hosts: [
                        {
                          name: 'app',
                          domains: ['*'],
                          routes: [
                            { match: { prefix: '/shadow' }, route: { cluster: 'app' }, typed_per_filter_config: { 'envoy.filters.http.csrf': { '@type': CSRF, filter_enabled: percent(0), shadow_enabled: percent(100) } } },
                            { match: { prefix: '/off' }, route: { cluster: 'app' }, typed_per_filter_config: { 'envoy.filters.http.csrf': { '@type': CSRF, filter_enabled: percent(0) } } },
                            { match: { prefix: '/' }, route: { cluster: 'app' } },
                          ],
                        },
                      ],
                    },
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'app',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: appPort } } } }] }] },
        },
      ],
    },
  };
}

test('csrf: cross-origin POST/PUT/DELETE/PATCH get 403 "Invalid origin"; same origin, additional_origins, GET, shadow and disabled routes pass; stats', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const dir = tempDir(t, 'csrf-');
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap(app.port)));
  const { ports } = await startRigProxyFromFile(t, file);
  const port = ports.listeners.web;
  const self = `127.0.0.1:${port}`;
  const post = (p: string, headers: Record<string, string>, method = 'POST') => request(port, { path: p, method, headers, body: 'x' });

  // Cross-origin: refused before the upstream.
  const r = await post('/form', { origin: 'http://evil.example' });
  assert.equal(r.status, 403);
  assert.equal(r.body, 'Invalid origin');
  for (const m of ['PUT', 'DELETE', 'PATCH']) assert.equal((await post('/form', { origin: 'https://evil.example' }, m)).status, 403, m);
  // No Origin nor Referer: missing, and invalid.
  assert.equal((await post('/form', {})).status, 403);
  // The same host but another port (here: none) is another origin.
  assert.equal((await post('/form', { origin: 'http://127.0.0.1' })).status, 403);
  assert.equal(app.requests.length, 0, 'no refused request reached the upstream');

  // Same origin: by Origin (the scheme is not compared), else by Referer.
  assert.equal((await post('/form', { origin: `http://${self}` })).status, 200);
  assert.equal((await post('/form', { origin: `https://${self}` })).status, 200);
  assert.equal((await post('/form', { referer: `http://${self}/page?x=1` })).status, 200);
  // additional_origins match the source's host[:port].
  assert.equal((await post('/form', { origin: 'https://trusted.example' })).status, 200);
  assert.equal((await post('/form', { origin: 'https://a.partner.example' })).status, 200);
  // Safe methods are not checked.
  assert.equal((await request(port, { path: '/form', headers: { origin: 'http://evil.example' } })).status, 200);
  assert.equal(app.requests.length, 6);

  // The route's policy: shadow mode counts and passes; filter_enabled 0 without shadow checks nothing.
  assert.equal((await post('/shadow', { origin: 'http://evil.example' })).status, 200);
  assert.equal((await post('/off', { origin: 'http://evil.example' })).status, 200);
  assert.equal(app.requests.length, 8);

  const stats = (await request(ports.admin, { path: '/stats' })).body;
  const stat = (name: string) => Number(new RegExp(`^http\\.ingress_http\\.csrf\\.${name}: (\\d+)$`, 'm').exec(stats)?.[1]);
  assert.equal(stat('missing_source_origin'), 1);
  // 4 cross-origin, 1 without source, 1 other port, 1 in shadow mode.
  assert.equal(stat('request_invalid'), 7);
  assert.equal(stat('request_valid'), 5);
});

test("csrf: filter_enabled's runtime key turns the check off and on (POST /runtime_modify)", async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const file = path.join(tempDir(t, 'csrf-'), 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap(app.port)));
  const { ports } = await startRigProxyFromFile(t, file);
  const crossOrigin = () => request(ports.listeners.web, { path: '/form', method: 'POST', headers: { origin: 'http://evil.example' }, body: 'x' });
  const modify = async (value: string) => assert.equal((await request(ports.admin, { path: `/runtime_modify?csrf.enabled=${value}`, method: 'POST' })).status, 200);
  assert.equal((await crossOrigin()).status, 403);
  await modify('0');
  assert.equal((await crossOrigin()).status, 200, 'csrf.enabled = 0%: not checked');
  await modify('');
  assert.equal((await crossOrigin()).status, 403, 'the override removed: default_value 100% again');
});

test('csrf: filter_enabled is required', async (t) => {
  const dir = tempDir(t, 'csrf-bad-');
  const file = path.join(dir, 'envoy.json');
  const boot = bootstrap(1);
  const hcm = boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  hcm.http_filters[0] = { name: 'envoy.filters.http.csrf', typed_config: { '@type': CSRF } } as (typeof hcm.http_filters)[0];
  fs.writeFileSync(file, JSON.stringify(boot));
  await assert.rejects(startRigProxyFromFile(t, file), /http_filters\[0\]\.typed_config\.filter_enabled: filter_enabled is required/);
});
