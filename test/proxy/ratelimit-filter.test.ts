// envoy.filters.http.ratelimit against a real gRPC rate limit service (@grpc/grpc-js, counting per
// descriptor): descriptors from the route's and virtual host's rate_limits actions, 429 past the
// limit, failure_mode_deny with the service gone, the call's timeout, x-ratelimit-* headers, the
// service's headers and body, per-route config, stats, config errors and warnings. The first test
// runs `rig proxy -c` on a static bootstrap; the others feed an in-process runtime.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { RATELIMIT_PER_ROUTE_TYPE, RATELIMIT_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { freePort } from '../../src/local/ports.ts';
import { ResponseFlag } from '../../src/proxy/response-flags.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { addr, configure, HCM, request, ROUTER, staticCluster, startTestRuntime, startUpstream, type Harness } from './harness.ts';
import { descriptorKey, startRateLimitService } from './rate-limit-service.ts';

const FILTER = 'envoy.filters.http.ratelimit';

function rateLimitFilter(extra: EnvoyJson = {}): EnvoyJson {
  return { name: FILTER, typed_config: { '@type': RATELIMIT_TYPE, domain: 'edge', rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: 'rls' } }, transport_api_version: 'V3' }, timeout: '5s', ...extra } };
}

/** Routes: /users limited per x-user (and x-beta users together), /shared per client address, /free not at all. */
const ROUTES: EnvoyJson[] = [
  {
    match: { prefix: '/users' },
    route: {
      cluster: 'app',
      rate_limits: [
        { actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'user' } }] },
        { actions: [{ header_value_match: { descriptor_value: 'beta', headers: [{ name: 'x-beta', present_match: true }] } }] },
      ],
    },
  },
  { match: { prefix: '/shared' }, route: { cluster: 'app', rate_limits: [{ actions: [{ generic_key: { descriptor_value: 'shared' } }, { remote_address: {} }] }] } },
  { match: { prefix: '/free' }, route: { cluster: 'app' } },
];

function listener(name: string, filter: EnvoyJson, vhost: EnvoyJson = {}, routes = ROUTES): EnvoyJson {
  return {
    name,
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, route_config: { name, virtual_hosts: [{ name: 'vh', domains: ['*'], routes, ...vhost }] }, http_filters: [filter, ROUTER] } }] }],
  };
}

const rlsCluster = (port: number) => staticCluster('rls', [port], { http2_protocol_options: {} });
const stat = (h: Harness, n: string) => h.rt.stats.all().find((s) => s.name === n)?.value;

test('static bootstrap: request_headers, header_value_match, generic_key and remote_address descriptors; 429 past the limit; stats on the route cluster', async (t) => {
  const rls = await startRateLimitService(2);
  const app = await startUpstream('app');
  t.after(async () => {
    rls.close();
    await app.close();
  });
  const dir = tempDir(t, 'rig-ratelimit-');
  const port = await freePort();
  const bootstrap = {
    static_resources: {
      listeners: [{ ...listener('edge', rateLimitFilter()), address: addr(port) }],
      clusters: [staticCluster('app', [app.port]), rlsCluster(rls.port)],
    },
  };
  const file = path.join(dir, 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(bootstrap));
  const { ports } = await startRigProxyFromFile(t, file);

  const alice = async () => (await request(port, { path: '/users', headers: { 'x-user': 'alice' } })).status;
  assert.deepEqual([await alice(), await alice(), await alice()], [200, 200, 429]);
  assert.equal((await request(port, { path: '/users', headers: { 'x-user': 'bob' } })).status, 200, 'bob has his own descriptor');
  assert.deepEqual(rls.requests[0], { domain: 'edge', descriptors: [{ entries: [{ key: 'user', value: 'alice' }] }] });
  const refused = await request(port, { path: '/users', headers: { 'x-user': 'alice' } });
  assert.equal(refused.status, 429);
  assert.equal(refused.headers['x-envoy-ratelimited'], 'true');
  assert.equal(refused.body, '');

  // Without x-user the first rate limit's descriptor is dropped, so no call at all.
  const calls = rls.requests.length;
  assert.equal((await request(port, { path: '/users' })).status, 200);
  assert.equal(rls.requests.length, calls, 'no descriptor, no call');
  // With x-beta: the second rate limit's descriptor (header_match=beta), shared by every beta user.
  await request(port, { path: '/users', headers: { 'x-user': 'carol', 'x-beta': '1' } });
  assert.deepEqual(rls.requests.at(-1)!.descriptors, [{ entries: [{ key: 'user', value: 'carol' }] }, { entries: [{ key: 'header_match', value: 'beta' }] }]);
  await request(port, { path: '/users', headers: { 'x-user': 'dave', 'x-beta': '1' } });
  assert.equal((await request(port, { path: '/users', headers: { 'x-user': 'erin', 'x-beta': '1' } })).status, 429, 'the third beta request is over the beta limit');

  for (const expected of [200, 200, 429]) assert.equal((await request(port, { path: '/shared' })).status, expected);
  assert.equal(rls.hits.get(descriptorKey([{ key: 'generic_key', value: 'shared' }, { key: 'remote_address', value: '127.0.0.1' }])), 3);
  assert.equal((await request(port, { path: '/free' })).status, 200);
  assert.equal(app.requests.filter((r) => r.url === '/free').length, 1);

  const stats = await (await fetch(`http://127.0.0.1:${ports.admin}/stats?filter=ratelimit`)).text();
  assert.match(stats, /^cluster\.app\.ratelimit\.ok: 7$/m);
  assert.match(stats, /^cluster\.app\.ratelimit\.over_limit: 4$/m);
  assert.match(stats, /^cluster\.app\.ratelimit\.error: 0$/m);
  const codes = await (await fetch(`http://127.0.0.1:${ports.admin}/stats?filter=upstream_rq_429`)).text();
  assert.match(codes, /^cluster\.app\.upstream_rq_429: 4$/m, 'a refused request counts as a 429 of the route cluster');
});

test('failure_mode_deny: with the rate limit service stopped, 500 with RLSE when set, allowed when not', async (t) => {
  const rls = await startRateLimitService(5);
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), rlsCluster(rls.port)],
    listeners: [listener('deny', rateLimitFilter({ failure_mode_deny: true })), listener('allow', rateLimitFilter())],
  });
  assert.equal((await request(h.port('deny'), { path: '/shared' })).status, 200, 'the service answers');
  rls.close();
  const denied = await request(h.port('deny'), { path: '/shared', headers: { 'x-request-id': 'denied' } });
  assert.equal(denied.status, 500);
  const info = h.streams.find((s) => s.requestId === 'denied');
  assert.equal(info?.responseCodeDetails, 'rate_limiter_error');
  assert.ok((info?.responseFlags ?? 0) & ResponseFlag.RateLimitServiceError, 'RLSE');
  const allowed = await request(h.port('allow'), { path: '/shared' });
  assert.equal(allowed.status, 200);
  assert.equal(stat(h, 'cluster.app.ratelimit.error'), 2);
  assert.equal(stat(h, 'cluster.app.ratelimit.failure_mode_allowed'), 1);
  assert.equal(stat(h, 'cluster.app.ratelimit.ok'), 1);
  assert.equal(app.requests.length, 2);
});

test('timeout: a service slower than the timeout is an error (allowed, or status_on_error with failure_mode_deny)', async (t) => {
  const rls = await startRateLimitService(5);
  rls.delayMs = 1000;
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  t.after(() => rls.close());
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), rlsCluster(rls.port)],
    listeners: [
      listener('open', rateLimitFilter({ timeout: '0.05s' })),
      listener('closed', rateLimitFilter({ timeout: '0.05s', failure_mode_deny: true, status_on_error: { code: 'ServiceUnavailable' } })),
      listener('unbounded', rateLimitFilter({ timeout: '0s', failure_mode_deny: true })),
    ],
  });
  assert.equal((await request(h.port('open'), { path: '/shared' })).status, 200);
  assert.equal((await request(h.port('closed'), { path: '/shared' })).status, 503);
  assert.equal(stat(h, 'cluster.app.ratelimit.error'), 2);
  assert.equal(stat(h, 'cluster.app.ratelimit.failure_mode_allowed'), 1);
  assert.equal(rls.requests.length, 2, 'both calls reached the service, which answered too late');
  assert.equal((await request(h.port('unbounded'), { path: '/shared' })).status, 200, 'timeout 0s: no timeout, the late answer counts');
  assert.equal(stat(h, 'cluster.app.ratelimit.ok'), 1);
  assert.deepEqual(rls.hadDeadline, [true, true, false], 'grpc-timeout only with a timeout');
});

test("x-ratelimit headers (DRAFT_VERSION_03), the service's headers, raw_body and dynamic metadata, rate_limited_status, response_headers_to_add, disable_x_envoy_ratelimited_header", async (t) => {
  const rls = await startRateLimitService(1);
  rls.responseHeaders = [{ key: 'x-rls', value: 'seen' }];
  rls.requestHeaders = [{ key: 'x-rls-request', value: 'added' }];
  rls.body = 'slow down';
  rls.dynamicMetadata = { fields: { tier: { stringValue: 'gold' } } };
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  t.after(() => rls.close());
  const extra = {
    enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
    disable_x_envoy_ratelimited_header: true,
    rate_limited_status: { code: 'ServiceUnavailable' },
    response_headers_to_add: [{ header: { key: 'x-limited', value: 'yes' } }],
  };
  await configure(h, { clusters: [staticCluster('app', [app.port]), rlsCluster(rls.port)], listeners: [listener('edge', rateLimitFilter(extra))] });
  const ok = await request(h.port('edge'), { path: '/users', headers: { 'x-user': 'alice' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-ratelimit-limit'], '1, 1;w=60');
  assert.equal(ok.headers['x-ratelimit-remaining'], '0');
  assert.equal(ok.headers['x-ratelimit-reset'], '42');
  assert.equal(ok.headers['x-rls'], 'seen');
  assert.equal(ok.headers['x-limited'], undefined, 'response_headers_to_add is for limited requests');
  assert.equal(ok.json().headers['x-rls-request'], 'added', "the service's request_headers_to_add reach the upstream");
  assert.deepEqual(h.streams.at(-1)?.filterState?.['envoy.filters.http.ratelimit'], { tier: 'gold' }, "the service's dynamic_metadata");

  const limited = await request(h.port('edge'), { path: '/users', headers: { 'x-user': 'alice', 'x-request-id': 'limited' } });
  assert.equal(limited.status, 503);
  assert.equal(limited.body, 'slow down');
  assert.equal(limited.headers['x-limited'], 'yes');
  assert.equal(limited.headers['x-rls'], 'seen');
  assert.equal(limited.headers['x-ratelimit-remaining'], '0');
  assert.equal(limited.headers['x-envoy-ratelimited'], undefined);
  const info = h.streams.find((s) => s.requestId === 'limited');
  assert.equal(info?.responseCodeDetails, 'request_rate_limited');
  assert.ok((info?.responseFlags ?? 0) & ResponseFlag.RateLimited, 'RL');
  assert.equal(app.requests.length, 1);
});

test('virtual host rate_limits (vh_rate_limits OVERRIDE/INCLUDE/IGNORE), stages, per-route rate_limits and domain, request_type', async (t) => {
  const rls = await startRateLimitService(100);
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  t.after(() => rls.close());
  const perRoute = (v: EnvoyJson) => ({ typed_per_filter_config: { [FILTER]: { '@type': RATELIMIT_PER_ROUTE_TYPE, ...v } } });
  const own = [{ actions: [{ generic_key: { descriptor_value: 'own' } }] }, { stage: 1, actions: [{ generic_key: { descriptor_value: 'stage1' } }] }];
  const routes: EnvoyJson[] = [
    { match: { prefix: '/none' }, route: { cluster: 'app' } },
    { match: { prefix: '/own' }, route: { cluster: 'app', rate_limits: own } },
    { match: { prefix: '/include' }, route: { cluster: 'app', rate_limits: own }, ...perRoute({ vh_rate_limits: 'INCLUDE' }) },
    { match: { prefix: '/legacy' }, route: { cluster: 'app', rate_limits: own, include_vh_rate_limits: true }, ...perRoute({ vh_rate_limits: 'INCLUDE' }) },
    { match: { prefix: '/ignore' }, route: { cluster: 'app' }, ...perRoute({ vh_rate_limits: 'IGNORE' }) },
    { match: { prefix: '/replaced' }, route: { cluster: 'app', rate_limits: own }, ...perRoute({ domain: 'other', rate_limits: [{ actions: [{ request_headers: { header_name: ':path', descriptor_key: 'PATH' } }] }] }) },
  ];
  const vh = { rate_limits: [{ actions: [{ generic_key: { descriptor_value: 'vh' } }] }] };
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), rlsCluster(rls.port)],
    listeners: [listener('edge', rateLimitFilter(), vh, routes), listener('internal', rateLimitFilter({ request_type: 'internal' }), vh, routes)],
  });
  const sent = async (p: string, port = h.port('edge')) => {
    const before = rls.requests.length;
    assert.equal((await request(port, { path: p })).status, 200);
    return rls.requests.slice(before).map((r) => `${r.domain}:` + r.descriptors.map((d) => descriptorKey(d.entries)).join(' '));
  };
  assert.deepEqual(await sent('/none'), ['edge:generic_key=vh'], 'OVERRIDE: the virtual host limits a route without its own');
  assert.deepEqual(await sent('/own'), ['edge:generic_key=own'], 'OVERRIDE: the route has its own; stage 1 is another filter’s');
  assert.deepEqual(await sent('/include'), ['edge:generic_key=own generic_key=vh']);
  assert.deepEqual(await sent('/legacy'), ['edge:generic_key=own generic_key=vh'], 'include_vh_rate_limits and INCLUDE send the virtual host’s once');
  assert.deepEqual(await sent('/ignore'), []);
  assert.deepEqual(await sent('/replaced'), ['other:PATH=/replaced']);
  assert.deepEqual(await sent('/own', h.port('internal')), [], 'request_type internal: an external request is not limited');
});

test('config: a missing domain or rate_limit_service and unsupported actions are refused; grpc_service.timeout gets a warning', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const bad = async (filter: EnvoyJson, routes = ROUTES) => {
    await assert.rejects(configure(h, { clusters: [staticCluster('app', [app.port]), rlsCluster(1)], listeners: [listener('bad', filter, {}, routes)] }), (e: Error) => {
      return /rejected/.test(e.message) ? ((bad.last = e.message), true) : false;
    });
    return bad.last;
  };
  bad.last = '';
  assert.match(await bad({ name: FILTER, typed_config: { '@type': RATELIMIT_TYPE, rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: 'rls' } } } } }), /domain/);
  assert.match(await bad({ name: FILTER, typed_config: { '@type': RATELIMIT_TYPE, domain: 'd' } }), /rate_limit_service/);
  assert.match(await bad(rateLimitFilter(), [{ match: { prefix: '/' }, route: { cluster: 'app', rate_limits: [{ actions: [{ source_cluster: {} }] }] } }]), /source_cluster/);
  await configure(h, { clusters: [staticCluster('app', [app.port]), rlsCluster(1)], listeners: [listener('ok', rateLimitFilter({ rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: 'rls' }, timeout: '1s' } } }))] });
  const warnings = [...h.rt.warnings.values()].flat();
  assert.ok(warnings.some((w) => /grpc_service\.timeout: not used for the rate limit call/.test(w)), warnings.join('\n'));
});

test('runtime: a rate limit disable_key, ratelimit.http_filter_enabled and ratelimit.http_filter_enforcing', async (t) => {
  const rls = await startRateLimitService(0);
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  t.after(() => rls.close());
  const routes: EnvoyJson[] = [{ match: { prefix: '/' }, route: { cluster: 'app', rate_limits: [{ disable_key: 'drill.rl_off', actions: [{ generic_key: { descriptor_value: 'all' } }] }] } }];
  await configure(h, { clusters: [staticCluster('app', [app.port]), rlsCluster(rls.port)], listeners: [listener('edge', rateLimitFilter(), {}, routes)] });
  const modify = (k: string, v: string) => h.rt.ctx.runtime.modify([[k, v]]);
  const status = async () => (await request(h.port('edge'), { path: '/x' })).status;
  assert.equal(await status(), 429, 'a limit of 0: every request is over it');
  modify('drill.rl_off', '0');
  assert.equal(await status(), 200, 'disable_key at 0 %: the policy gives no descriptor');
  assert.equal(rls.requests.length, 1);
  modify('drill.rl_off', '100');
  modify('ratelimit.http_filter_enabled', '0');
  assert.equal(await status(), 200);
  assert.equal(rls.requests.length, 1, 'the filter is off: no call');
  modify('ratelimit.http_filter_enabled', '100');
  modify('ratelimit.http_filter_enforcing', '0');
  assert.equal(await status(), 200, 'not enforced: over the limit, let through');
  assert.equal(rls.requests.length, 2);
  assert.equal(stat(h, 'cluster.app.ratelimit.over_limit'), 2);
});
