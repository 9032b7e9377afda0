// envoy.filters.http.health_check on real sockets: the filter answers /healthz itself (200, then
// 503 + LH + x-envoy-immediate-health-check-fail after the admin's POST /healthcheck/fail),
// cluster_min_healthy_percentages, pass-through mode with cache_time, the access log's
// not_health_check_filter, and config errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { createAdminHandler, listen } from '../../src/proxy/admin/admin-server.ts';
import { LogLevels } from '../../src/proxy/admin/logging.ts';
import { silentLogger } from '../../src/core/log.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';
import { FILE_ACCESS_LOG_TYPE } from '../../src/envoy/index.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';
import { configure, deadPort, httpListener, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const HC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck';
const ROUTE = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);

function hcListener(cfg: Record<string, unknown>) {
  return httpListener('l', ROUTE, { http_filters: [{ name: 'envoy.filters.http.health_check', typed_config: { '@type': HC_TYPE, headers: [{ name: ':path', string_match: { exact: '/healthz' } }], ...cfg } }, ROUTER] });
}

test('health_check answers /healthz itself: 200, and 503 with LH while the admin says the server fails', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [hcListener({ pass_through_mode: false })] });
  const admin = http.createServer(createAdminHandler({ runtime: h.rt, bootstrap: {}, commandLine: [], onQuit: () => undefined, logLevels: new LogLevels(silentLogger.child({})) }));
  const adminPort = await listen(admin, '127.0.0.1', 0);
  t.after(() => admin.close());
  const port = h.port('l');
  const last = () => h.streams.at(-1)!;

  const ok = await request(port, { path: '/healthz' });
  assert.equal(ok.status, 200);
  assert.equal(ok.body, '');
  assert.equal(last().responseCodeDetails, 'health_check_ok');
  assert.equal(last().healthCheck, true);
  assert.equal((await request(port, { path: '/other' })).status, 200);
  assert.equal(last().healthCheck, undefined);
  assert.equal(app.requests.length, 1, 'only /other reached the upstream');

  assert.equal((await request(adminPort, { path: '/healthcheck/fail', method: 'POST' })).status, 200);
  const failing = await request(port, { path: '/healthz' });
  assert.equal(failing.status, 503);
  assert.equal(failing.headers['x-envoy-immediate-health-check-fail'], 'true');
  assert.equal(formatResponseFlags(last().responseFlags), 'LH');
  assert.equal(last().responseCodeDetails, 'health_check_failed');
  assert.equal((await request(port, { path: '/other' })).status, 200, 'other requests are still served');

  await request(adminPort, { path: '/healthcheck/ok', method: 'POST' });
  assert.equal((await request(port, { path: '/healthz' })).status, 200);
  assert.equal(formatResponseFlags(last().responseFlags), '-');
});

test('health_check cluster_min_healthy_percentages: 503 LH when a cluster is empty, missing or too unhealthy', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const empty = { name: 'empty', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'empty', endpoints: [] } };
  const dead = await deadPort();
  // One of two hosts fails its active health check: 50% healthy.
  const half = staticCluster('half', [app.port, dead], { health_checks: [{ timeout: '1s', interval: '0.05s', unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {} }] });
  await configure(h, { clusters: [staticCluster('app', [app.port]), empty, half], listeners: [hcListener({ pass_through_mode: false, cluster_min_healthy_percentages: { app: { value: 100 } } })] });
  const port = () => h.port('l');
  assert.equal((await request(port(), { path: '/healthz' })).status, 200);
  assert.equal(h.streams.at(-1)!.responseCodeDetails, 'health_check_cluster_healthy');
  for (const [pct, status, details] of [
    [{ empty: { value: 10 } }, 503, 'health_check_failed_cluster_empty'],
    [{ empty: { value: 0 } }, 200, 'health_check_cluster_healthy'],
    [{ nope: { value: 10 } }, 503, 'health_check_no_cluster_found'],
    [{ half: { value: 50 } }, 200, 'health_check_cluster_healthy'],
    [{ half: { value: 75 } }, 503, 'health_check_failed_cluster_unhealthy'],
  ] as const) {
    await configure(h, { listeners: [hcListener({ pass_through_mode: false, cluster_min_healthy_percentages: pct })] });
    for (let i = 0; i < 100 && h.rt.stats.all().find((s) => s.name === 'cluster.half.membership_healthy')?.value !== 1; i++) await new Promise((r) => setTimeout(r, 20));
    const r = await request(port(), { path: '/healthz' });
    assert.equal(r.status, status, JSON.stringify(pct));
    assert.equal(h.streams.at(-1)!.responseCodeDetails, details);
    assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), status === 503 ? 'LH' : '-');
  }
});

test('health_check pass-through mode: checks go upstream; with cache_time the answer is replayed', async (t) => {
  let status = 200;
  const app = await startUpstream('app', (_req, res) => {
    res.writeHead(status);
    res.end();
    return true;
  });
  const h = await startTestRuntime(t, [app]);
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [hcListener({ pass_through_mode: true, cache_time: '60s' })] });
  const port = h.port('l');
  assert.equal((await request(port, { path: '/healthz' })).status, 200);
  status = 500;
  assert.equal((await request(port, { path: '/healthz' })).status, 200, 'the cached answer');
  assert.equal(h.streams.at(-1)!.responseCodeDetails, 'health_check_cached');
  assert.equal(app.requests.length, 1);
  await configure(h, { listeners: [hcListener({ pass_through_mode: true })] });
  assert.equal((await request(h.port('l'), { path: '/healthz' })).status, 500, 'without cache_time every check goes upstream');
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), '-');
});

test('health_check config errors NACK with the field path', async (t) => {
  const h = await startTestRuntime(t);
  assert.match(h.apply(LISTENER_TYPE, [hcListener({})]).join('\n'), /pass_through_mode: pass_through_mode is required/);
  assert.match(h.apply(LISTENER_TYPE, [hcListener({ pass_through_mode: false, cluster_min_healthy_percentages: { a: { value: 150 } } })]).join('\n'), /cluster_min_healthy_percentages.a.value: a percentage from 0 to 100/);
});

test('not_health_check_filter keeps the requests the health_check filter marked out of the access log', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const file = path.join(tempDir(t, 'rig-hc-log-'), 'access.log');
  const accessLog = { name: 'envoy.access_loggers.file', filter: { not_health_check_filter: {} }, typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: file, log_format: { text_format_source: { inline_string: '%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\n' } } } };
  const l = hcListener({ pass_through_mode: false });
  (l.filter_chains as { filters: { typed_config: Record<string, unknown> }[] }[])[0].filters[0].typed_config.access_log = [accessLog];
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [l] });
  h.rt.healthCheckFailed = true;
  assert.equal((await request(h.port('l'), { path: '/healthz' })).status, 503);
  assert.equal((await request(h.port('l'), { path: '/other' })).status, 200);
  await until('the access log line of /other', () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('/other'));
  assert.equal(fs.readFileSync(file, 'utf8'), '/other 200 -\n');
});
