// Runtime keys taking effect in compiled configs of a running proxy (admin layer values set as
// POST /runtime_modify does): the fault filter's keys (default names, *_runtime names, per
// downstream cluster), local_ratelimit filter_enabled, weighted_clusters runtime_key_prefix and
// the access log runtime_filter; upstream.healthy_panic_threshold and the slow start aggression in
// the balancer; the tracing keys.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE, HCM, LISTENER_TYPE, ROUTER, addr, request, staticCluster, startTestRuntime, startUpstream } from './harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { createLoadBalancer } from '../../src/proxy/upstream/lb/index.ts';
import { EnvoyRuntime } from '../../src/proxy/envoy-runtime/index.ts';
import { countPicks, host, seeded } from './upstream/hosts.ts';

const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const LOCAL_RATELIMIT = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

function listener(httpFilters: EnvoyJson[], routes: EnvoyJson[], extra: EnvoyJson = {}): EnvoyJson {
  return {
    name: 'l',
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'l', route_config: { name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes }] }, http_filters: [...httpFilters, ROUTER], ...extra } }] }],
  };
}

async function setup(t: Parameters<typeof startTestRuntime>[0], httpFilters: EnvoyJson[], routes: EnvoyJson[] = [{ match: { prefix: '/' }, route: { cluster: 'up' } }], extra: EnvoyJson = {}) {
  const up = await startUpstream('up');
  const other = await startUpstream('other');
  const h = await startTestRuntime(t, [up, other]);
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('up', [up.port]), staticCluster('other', [other.port])]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener(httpFilters, routes, extra)]), []);
  await h.rt.settled();
  const modify = (k: string, v: string) => h.rt.ctx.runtime.modify([[k, v]]);
  return { h, port: h.port('l'), modify };
}

const statuses = async (port: number, headers: Record<string, string> = {}, n = 10) => new Set(await Promise.all(Array.from({ length: n }, async () => (await request(port, { headers })).status)));

test('fault filter: the default keys, a *_runtime name and the downstream cluster keys override the configured abort', async (t) => {
  const fault = { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT, abort: { http_status: 500, percentage: { numerator: 0 } }, abort_percent_runtime: 'drill.abort' } };
  const { port, modify } = await setup(t, [fault]);
  assert.deepEqual(await statuses(port), new Set([200]));
  modify('fault.http.abort.abort_percent', '100');
  assert.deepEqual(await statuses(port), new Set([200]), 'abort_percent_runtime renames the key');
  modify('drill.abort', '100');
  assert.deepEqual(await statuses(port), new Set([500]));
  modify('fault.http.abort.http_status', '418');
  assert.deepEqual(await statuses(port), new Set([418]), 'fault.http.abort.http_status replaces the configured status');
  // With x-envoy-downstream-service-cluster, its own keys decide (the configured 0% when unset).
  assert.deepEqual(await statuses(port, { 'x-envoy-downstream-service-cluster': 'web' }), new Set([200]));
  modify('fault.http.web.abort.abort_percent', '100');
  modify('fault.http.web.abort.http_status', '429');
  assert.deepEqual(await statuses(port, { 'x-envoy-downstream-service-cluster': 'web' }), new Set([429]));
  modify('drill.abort', '');
  assert.deepEqual(await statuses(port), new Set([200]), 'removing the override restores the configured 0%');
});

test('fault filter: fault.http.max_active_faults caps the delayed requests', async (t) => {
  const fault = { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT, delay: { fixed_delay: '60s', percentage: { numerator: 100 } } } };
  const { h, port, modify } = await setup(t, [fault]);
  modify('fault.http.max_active_faults', '0');
  assert.deepEqual(await statuses(port, {}, 3), new Set([200]), 'no fault may be active: requests pass undelayed');
  assert.equal(h.rt.stats.counter('http.l.fault.faults_overflow').value, 3);
  modify('fault.http.delay.fixed_duration_ms', '0');
  modify('fault.http.max_active_faults', '');
  assert.deepEqual(await statuses(port, {}, 3), new Set([200]), 'a 0 ms runtime duration injects no delay');
  assert.equal(h.rt.stats.counter('http.l.fault.delays_injected').value, 0);
});

test('local_ratelimit: filter_enabled follows its runtime key', async (t) => {
  const rl = { name: 'envoy.filters.http.local_ratelimit', typed_config: { '@type': LOCAL_RATELIMIT, stat_prefix: 'rl', token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: '3600s' }, filter_enabled: { runtime_key: 'rl.enabled', default_value: { numerator: 100 } }, filter_enforced: { runtime_key: 'rl.enforced', default_value: { numerator: 100 } } } };
  const { port, modify } = await setup(t, [rl]);
  assert.deepEqual(await statuses(port, {}, 3), new Set([200, 429]));
  modify('rl.enabled', '0');
  assert.deepEqual(await statuses(port, {}, 5), new Set([200]));
});

test('weighted_clusters: runtime_key_prefix weights replace the configured ones', async (t) => {
  const routes = [{ match: { prefix: '/' }, route: { weighted_clusters: { runtime_key_prefix: 'split', clusters: [{ name: 'up', weight: 100 }, { name: 'other', weight: 0 }] } } }];
  const { port, modify } = await setup(t, [], routes);
  const servers = async () => new Set(await Promise.all(Array.from({ length: 10 }, async () => (await request(port)).json().server)));
  assert.deepEqual(await servers(), new Set(['up']));
  modify('split.up', '0');
  modify('split.other', '100');
  assert.deepEqual(await servers(), new Set(['other']));
});

test('access log runtime_filter: nothing sampled by default, every request at 100 through its key', async (t) => {
  const file = path.join(tempDir(t, 'runtime-log-'), 'access.log');
  const log = { name: 'envoy.access_loggers.file', filter: { runtime_filter: { runtime_key: 'log.sample' } }, typed_config: { '@type': FILE_LOG, path: file, log_format: { text_format_source: { inline_string: '%REQ(:PATH)%\n' } } } };
  const { port, modify } = await setup(t, [], undefined, { access_log: [log] });
  await request(port, { path: '/before' });
  modify('log.sample', '100');
  await request(port, { path: '/after' });
  let text = '';
  for (let i = 0; i < 500 && !text.includes('/after'); i++) {
    await new Promise((r) => setTimeout(r, 10));
    text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  }
  assert.equal(text, '/after\n');
});

test('upstream.healthy_panic_threshold: above the healthy share, the next host update puts the cluster in panic (every host gets traffic)', async (t) => {
  const healthy = await startUpstream('healthy');
  const unhealthy = await startUpstream('unhealthy');
  const h = await startTestRuntime(t, [healthy, unhealthy]);
  const eds = { name: 'eds', type: 'EDS', connect_timeout: '1s', eds_cluster_config: { eds_config: { ads: {} } } };
  const assignment = { cluster_name: 'eds', endpoints: [{ lb_endpoints: [{ endpoint: { address: addr(healthy.port) } }, { endpoint: { address: addr(unhealthy.port) }, health_status: 'UNHEALTHY' }] }] };
  assert.deepEqual(h.apply(CLUSTER_TYPE, [eds]), []);
  assert.deepEqual(h.apply(ENDPOINT_TYPE, [assignment]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener([], [{ match: { prefix: '/' }, route: { cluster: 'eds' } }])]), []);
  await h.rt.settled();
  const servers = async () => new Set(await Promise.all(Array.from({ length: 20 }, async () => (await request(h.port('l'))).json().server)));
  assert.deepEqual(await servers(), new Set(['healthy']), '50% healthy is not below the default threshold of 50');
  h.rt.ctx.runtime.modify([['upstream.healthy_panic_threshold', '80']]);
  assert.deepEqual(h.apply(ENDPOINT_TYPE, [{ ...assignment }]), []);
  assert.deepEqual(await servers(), new Set(['healthy', 'unhealthy']));
});

test('tracing.random_sampling and tracing.global_enabled override the connection manager samplings (the reason packed in x-request-id shows the decision)', async (t) => {
  const up = await startUpstream('up');
  const zipkin = await startUpstream('zipkin');
  const h = await startTestRuntime(t, [up, zipkin]);
  const tracing = { random_sampling: { value: 0 }, provider: { name: 'envoy.tracers.zipkin', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig', collector_cluster: 'zipkin', collector_endpoint: '/api/v2/spans', collector_endpoint_version: 'HTTP_JSON' } } };
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('up', [up.port]), staticCluster('zipkin', [zipkin.port])]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener([], [{ match: { prefix: '/' }, route: { cluster: 'up' } }], { tracing })]), []);
  await h.rt.settled();
  // 0x00000400 = 1024: in a sample of more than 10.24 % (out of 10000).
  const reason = async () => (await request(h.port('l'), { headers: { 'x-request-id': '00000400-1111-4222-8333-444444444444' } })).json().headers['x-request-id']?.[14];
  assert.equal(await reason(), '4', 'random_sampling 0: not sampled');
  h.rt.ctx.runtime.modify([['tracing.random_sampling', '{numerator: 2000, denominator: TEN_THOUSAND}']]);
  assert.equal(await reason(), '9', 'the runtime samples 20 %: 1024 is in');
  h.rt.ctx.runtime.modify([['tracing.global_enabled', '0']]);
  assert.equal(await reason(), '4', 'overall 0 %: nothing is traced');
});

test('slow start: the aggression runtime_key (upstream.warmup.aggression, as Istio sends it) replaces default_value at the next balancer build', () => {
  const runtime = new EnvoyRuntime([{ name: 'admin', kind: 'admin' }]);
  for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST']) {
    let now = 0;
    const key = policy === 'ROUND_ROBIN' ? 'round_robin_lb_config' : 'least_request_lb_config';
    const cluster = { [key]: { slow_start_config: { slow_start_window: '60s', aggression: { default_value: 2, runtime_key: 'upstream.warmup.aggression' } } } };
    const old = host(1);
    createLoadBalancer(policy, [old], cluster, { now: () => now, runtime });
    now = 100_000;
    const fresh = host(2);
    const share = () => {
      const lb = createLoadBalancer(policy, [old, fresh], cluster, { now: () => now, random: seeded(9), runtime });
      return (countPicks(() => lb.pick(), 20000).get(fresh) ?? 0) / 20000;
    };
    const expect = (f: number) => f / (1 + f);
    runtime.modify([['upstream.warmup.aggression', '']]);
    assert.ok(Math.abs(share() - expect(Math.pow(1 / 60, 1 / 2))) < 0.02, `${policy}: default_value 2`);
    runtime.modify([['upstream.warmup.aggression', '4']]);
    assert.ok(Math.abs(share() - expect(Math.pow(1 / 60, 1 / 4))) < 0.02, `${policy}: the runtime's 4`);
  }
});
