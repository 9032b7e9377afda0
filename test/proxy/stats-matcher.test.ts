// Envoy's stats_config.stats_matcher on a real `rig proxy -c`: the inclusion list (every
// StringMatcher form: prefix, suffix, exact, contains, safe_regex, ignore_case), the exclusion
// list and reject_all decide which stats exist, in /stats and /stats/prometheus alike, while the
// proxy's own logic (here the health check filter's cluster_min_healthy_percentages, which reads
// a cluster's membership) behaves as without a matcher.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { request, startUpstream } from './harness.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const HEALTH_CHECK = {
  name: 'envoy.filters.http.health_check',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck',
    pass_through_mode: false,
    headers: [{ name: ':path', string_match: { exact: '/healthz' } }],
    cluster_min_healthy_percentages: { app: { value: 100 } },
  },
};

function bootstrapFile(t: TestContext, statsMatcher: unknown, appPort: number): string {
  const file = path.join(tempDir(t, 'stats-matcher-'), 'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify({
    stats_config: statsMatcher === undefined ? {} : { stats_matcher: statsMatcher },
    static_resources: {
      listeners: [{
        name: 'l',
        address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
        filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'ingress_http', route_config: { virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }, http_filters: [HEALTH_CHECK, ROUTER] } }] }],
      }],
      clusters: [{ name: 'app', type: 'STATIC', load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: appPort } } } }] }] } }],
    },
  }));
  return file;
}

async function proxyWith(t: TestContext, statsMatcher: unknown) {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const file = bootstrapFile(t, statsMatcher, app.port);
  const { ports } = await startRigProxyFromFile(t, file);
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`http://127.0.0.1:${ports.listeners.l}/`)).status, 200);
  const healthz = await fetch(`http://127.0.0.1:${ports.listeners.l}/healthz`);
  const names = ((await (await fetch(`http://127.0.0.1:${ports.admin}/stats?format=json`)).json()) as { stats: { name: string; histograms?: unknown }[] }).stats.filter((s) => !s.histograms).map((s) => s.name);
  const histograms = ((await (await fetch(`http://127.0.0.1:${ports.admin}/stats?format=json`)).json()) as { stats: { histograms?: { computed_quantiles: { name: string }[] } }[] }).stats.flatMap((s) => s.histograms?.computed_quantiles.map((q) => q.name) ?? []);
  const text = await (await fetch(`http://127.0.0.1:${ports.admin}/stats`)).text();
  const prom = await (await fetch(`http://127.0.0.1:${ports.admin}/stats/prometheus`)).text();
  return { names, histograms, text, prom, healthz: healthz.status };
}

test('without a matcher every stat exists (the baseline the matcher cuts down)', async (t) => {
  const p = await proxyWith(t, undefined);
  for (const n of ['cluster.app.upstream_cx_total', 'cluster.app.upstream_rq_total', 'http.ingress_http.downstream_rq_2xx', 'runtime.num_keys', 'listener.127.0.0.1_0.downstream_cx_total']) assert.ok(p.names.includes(n), n);
  assert.equal(p.healthz, 200);
});

test('inclusion_list: only names some pattern matches exist, in /stats and /stats/prometheus; each StringMatcher form', async (t) => {
  const patterns = [
    { prefix: 'cluster.app.upstream_rq_' },
    { suffix: '.downstream_rq_total' },
    { exact: 'http.ingress_http.downstream_cx_total' },
    { contains: '.membership_' },
    { safe_regex: { regex: String.raw`listener\.127\.0\.0\.1_\d+\.downstream_cx_[a-z]+` } },
    { prefix: 'RUNTIME.NUM_', ignore_case: true },
  ];
  const p = await proxyWith(t, { inclusion_list: { patterns } });
  const want = [
    'cluster.app.upstream_rq_total', 'cluster.app.upstream_rq_200', 'cluster.app.upstream_rq_2xx', // prefix
    'http.ingress_http.downstream_rq_total', // suffix
    'http.ingress_http.downstream_cx_total', // exact
    'cluster.app.membership_total', 'cluster.app.membership_healthy', // contains
    'listener.127.0.0.1_0.downstream_cx_total', 'listener.127.0.0.1_0.downstream_cx_active', // safe_regex (the whole name)
    'runtime.num_keys', 'runtime.num_layers', // ignore_case (stats the runtime made before the bootstrap's stats_config applied)
  ];
  for (const n of want) assert.ok(p.names.includes(n), `${n} in ${p.names.join(' ')}`);
  const matches = (n: string) => n.startsWith('cluster.app.upstream_rq_') || n.endsWith('.downstream_rq_total') || n === 'http.ingress_http.downstream_cx_total' || n.includes('.membership_') || /^listener\.127\.0\.0\.1_\d+\.downstream_cx_[a-z]+$/.test(n) || n.toLowerCase().startsWith('runtime.num_');
  assert.deepEqual(p.names.filter((n) => !matches(n)), [], 'nothing else exists');
  assert.deepEqual(p.histograms.filter((n) => !matches(n)), [], 'no other histogram exists');
  assert.ok(p.histograms.includes('cluster.app.upstream_rq_time'), 'a histogram the prefix includes');
  assert.match(p.prom, /^envoy_cluster_upstream_rq\{envoy_response_code="200",envoy_cluster_name="app"\} 3$/m);
  assert.match(p.prom, /^envoy_cluster_upstream_rq_time_bucket\{envoy_cluster_name="app",le="\+Inf"\} 3$/m);
  assert.doesNotMatch(p.prom, /^envoy_cluster_upstream_cx_total/m);
  assert.doesNotMatch(p.prom, /^envoy_http_downstream_rq_xx/m);
  assert.doesNotMatch(p.text, /^cluster\.app\.upstream_cx_/m);
  assert.equal(p.healthz, 200, 'the health check filter reads the cluster membership, shown or not');
});

test('patterns see a stat\'s whole name before tag extraction; safe_regex must match all of it', async (t) => {
  const p = await proxyWith(t, { inclusion_list: { patterns: [{ prefix: 'cluster.app.upstream_cx_total' }, { safe_regex: { regex: 'upstream_rq_200' } }] } });
  assert.deepEqual(p.names, ['cluster.app.upstream_cx_total'], 'safe_regex matches the whole name, not a part of it');
});

test('exclusion_list: every name but those matched exists', async (t) => {
  const p = await proxyWith(t, { exclusion_list: { patterns: [{ prefix: 'cluster.' }, { suffix: '_2xx' }] } });
  assert.ok(p.names.includes('http.ingress_http.downstream_rq_total'));
  assert.ok(p.names.includes('runtime.num_keys'));
  assert.deepEqual(p.names.filter((n) => n.startsWith('cluster.') || n.endsWith('_2xx')), []);
  assert.deepEqual(p.histograms.filter((n) => n.startsWith('cluster.')), []);
  assert.equal(p.healthz, 200);
});

test('reject_all: no stat exists, the proxy works as before (routing, the health check filter on the cluster membership)', async (t) => {
  const p = await proxyWith(t, { reject_all: true });
  assert.deepEqual(p.names, []);
  assert.deepEqual(p.histograms, []);
  assert.doesNotMatch(p.prom, /^envoy_/m, 'no Envoy stat in /stats/prometheus');
  assert.equal(p.healthz, 200, 'cluster_min_healthy_percentages still sees the cluster\'s one healthy host');
});

test('reject_all: SIGTERM still waits for the request in flight (drain reads the active requests, shown or not)', async (t) => {
  let release: (() => void) | undefined;
  const app = await startUpstream('app', (_q, res) => {
    release = () => res.end('finished');
    return true;
  });
  t.after(() => app.close());
  const proxy = await startRigProxyFromFile(t, bootstrapFile(t, { reject_all: true }, app.port), ['--drain-timeout', '60']);
  const port = proxy.ports.listeners.l;
  const pending = request(port, { path: '/slow' });
  while (!release) await new Promise((r) => setTimeout(r, 5));
  proxy.process.kill('SIGTERM');
  // Draining (it logs so once its listeners stopped accepting); the request in flight goes on.
  while (!proxy.log().includes('draining')) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(proxy.process.exitCode, null, 'the proxy waits for the request in flight');
  release();
  const done = await pending;
  assert.equal(done.status, 200);
  assert.equal(done.body, 'finished');
  assert.equal(await new Promise((resolve) => proxy.process.once('exit', resolve)), 0);
});
