// Per-route stats (Route.stat_prefix) through a real `rig proxy` from a static bootstrap: Envoy's
// vhost.<virtual host>.route.<stat_prefix>.upstream_rq_* (the virtual cluster stats: total, codes,
// completed, retry, retry_limit_exceeded, timeout, time) in /stats and on the Prometheus port, and
// none for a route without a stat_prefix.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { request } from './harness.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

test('routes with a stat_prefix keep vhost.<vhost>.route.<prefix>.upstream_rq_* stats, in /stats and Prometheus; others keep none', async (t) => {
  const held = new Set<http.ServerResponse>();
  const app = http.createServer((req, res) => {
    if (req.url!.startsWith('/fail')) res.writeHead(503).end('down');
    else if (req.url!.startsWith('/slow')) held.add(res); // never answered: the route times out
    else res.writeHead(200).end('ok');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const res of held) res.destroy();
    app.closeAllConnections();
    return new Promise<void>((r) => app.close(() => r()));
  });
  const appPort = (app.address() as AddressInfo).port;
  const routes = [
    { match: { prefix: '/fail' }, stat_prefix: 'fail', route: { cluster: 'app', retry_policy: { retry_on: '5xx', num_retries: 1 } } },
    { match: { prefix: '/slow' }, stat_prefix: 'slow', route: { cluster: 'app', timeout: '0.2s' } },
    { match: { prefix: '/ok' }, stat_prefix: 'ok', route: { cluster: 'app' } },
    { match: { prefix: '/' }, route: { cluster: 'app' } },
  ];
  const boot = {
    static_resources: {
      listeners: [
        {
          name: 'http',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'ingress', route_config: { name: 'local', virtual_hosts: [{ name: 'shop', domains: ['*'], routes }] }, http_filters: [ROUTER] } }] }],
        },
      ],
      clusters: [{ name: 'app', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: appPort } } } }] }] } }],
    },
  };
  const file = path.join(tempDir(t, 'rig-route-stats-'), 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(boot));
  const { ports } = await startRigProxyFromFile(t, file);
  const port = ports.listeners.http;

  assert.equal((await request(port, { path: '/ok/1' })).status, 200);
  assert.equal((await request(port, { path: '/ok/2' })).status, 200);
  assert.equal((await request(port, { path: '/fail' })).status, 503);
  assert.equal((await request(port, { path: '/slow' })).status, 504);
  assert.equal((await request(port, { path: '/other' })).status, 200);

  const stats = async () => {
    const body = JSON.parse(await (await fetch(`http://127.0.0.1:${ports.admin}/stats?format=json&filter=${encodeURIComponent('^vhost\\.')}`)).text()) as { stats: { name?: string; value?: number; histograms?: { computed_quantiles: { name: string }[] } }[] };
    const out: Record<string, number> = {};
    for (const s of body.stats) if (s.name !== undefined) out[s.name] = s.value!;
    const hist = body.stats.find((s) => s.histograms)?.histograms?.computed_quantiles.map((q) => q.name) ?? [];
    return { counters: out, histograms: hist };
  };
  const got = await waitFor('the route stats', async () => {
    const s = await stats();
    return s.counters['vhost.shop.route.slow.upstream_rq_timeout'] === 1 ? s : undefined;
  });
  const route = (prefix: string) => Object.fromEntries(Object.entries(got.counters).filter(([k]) => k.startsWith(`vhost.shop.route.${prefix}.`)).map(([k, v]) => [k.slice(`vhost.shop.route.${prefix}.`.length), v]));
  const ok = route('ok');
  assert.equal(ok.upstream_rq_total, 2);
  assert.equal(ok.upstream_rq_200, 2);
  assert.equal(ok.upstream_rq_2xx, 2);
  assert.equal(ok.upstream_rq_completed, 2);
  assert.equal(ok.upstream_rq_retry, 0);
  const fail = route('fail');
  assert.equal(fail.upstream_rq_total, 2, 'the first attempt and its retry');
  // The retried 503 is charged to cluster.app.retry.upstream_rq_503 only, as Envoy's router does.
  assert.equal(fail.upstream_rq_503, 1);
  assert.equal(fail.upstream_rq_5xx, 1);
  assert.equal(fail.upstream_rq_completed, 1);
  assert.equal(fail.upstream_rq_retry, 1);
  assert.equal(fail.upstream_rq_retry_limit_exceeded, 1);
  assert.equal(fail.upstream_rq_retry_success, 0);
  const slow = route('slow');
  assert.equal(slow.upstream_rq_total, 1);
  assert.equal(slow.upstream_rq_timeout, 1);
  assert.equal(slow.upstream_rq_504, 1, 'the route timeout is charged 504 (router.cc chargeUpstreamAbort)');
  // Only the three routes with a stat_prefix have stats.
  assert.deepEqual([...new Set(Object.keys(got.counters).map((k) => k.split('.')[3]))].sort(), ['fail', 'ok', 'slow']);
  assert.ok(got.histograms.includes('vhost.shop.route.ok.upstream_rq_time'), `histograms: ${got.histograms.join(', ')}`);

  // Prometheus, as Envoy names them with its default tags (envoy.virtual_host, envoy.route, envoy.response_code).
  const prom = await (await fetch(`http://127.0.0.1:${ports.stats}/stats/prometheus`)).text();
  assert.match(prom, /^envoy_vhost_route_upstream_rq_total\{envoy_virtual_host="shop",envoy_route="ok"\} 2$/m);
  assert.match(prom, /^envoy_vhost_route_upstream_rq\{envoy_response_code="503",envoy_virtual_host="shop",envoy_route="fail"\} 1$/m);
  assert.match(prom, /^envoy_vhost_route_upstream_rq_time_count\{envoy_virtual_host="shop",envoy_route="ok"\} 2$/m);
});
