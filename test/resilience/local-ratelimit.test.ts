// Local rate limits through the real proxy: the HTTP filter's token buckets (filter-wide, per
// route, per descriptor from route rate_limits actions) and the network filter.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster, ROUTER, HCM, type Harness } from '../proxy/harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

const LRL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const ON = { default_value: { numerator: 100, denominator: 'HUNDRED' }, runtime_key: 'rl.enabled' };

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

function limit(extra: object): object {
  return { '@type': LRL, stat_prefix: 'rl', filter_enabled: ON, filter_enforced: ON, ...extra };
}

async function setup(t: { after(fn: () => unknown): void }, filterConfig: object, routes: object[]) {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [staticCluster('up', [up.port])],
    routes: [routeConfig('r', routes as never)],
    listeners: [httpListener('l', 'r', { http_filters: [{ name: 'envoy.filters.http.local_ratelimit', typed_config: filterConfig }, ROUTER] })],
  });
  return { h, up, port: h.port('l') };
}

test('a bucket of N tokens lets N requests through, then 429 RL with x-ratelimit-* headers; it refills after the interval', async (t) => {
  const cfg = limit({
    token_bucket: { max_tokens: 5, tokens_per_fill: 5, fill_interval: '3600s' },
    enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
    response_headers_to_add: [{ header: { key: 'x-limited-by', value: 'rig' } }],
  });
  const fast = { '@type': LRL, stat_prefix: 'fast', filter_enabled: ON, filter_enforced: ON, token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: '0.2s' } };
  const { h, up, port } = await setup(t, cfg, [
    { match: { prefix: '/fast' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.local_ratelimit': fast } },
    { match: { prefix: '/' }, route: { cluster: 'up' } },
  ]);
  const replies = [];
  for (let i = 0; i < 8; i++) replies.push(await request(port));
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200, 429, 429, 429]);
  assert.deepEqual(replies.map((r) => r.headers['x-ratelimit-remaining']), ['4', '3', '2', '1', '0', '0', '0', '0']);
  assert.equal(replies[0].headers['x-ratelimit-limit'], '5');
  assert.ok(Number(replies[0].headers['x-ratelimit-reset']) > 3000);
  assert.equal(replies[7].body, 'local_rate_limited');
  assert.equal(replies[7].headers['x-limited-by'], 'rig');
  assert.equal(replies[7].headers['x-envoy-ratelimited'], 'true');
  assert.equal(replies[0].headers['x-limited-by'], undefined, 'only on limited responses');
  assert.equal(up.requests.length, 5);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'RL');
  assert.deepEqual(['enabled', 'ok', 'rate_limited', 'enforced'].map((s) => stat(h, `rl.http_local_rate_limit.${s}`)), [8, 5, 3, 3]);

  // The per-route bucket (2 per 0.2 s) is separate: exhausted by a burst, then refilled.
  let limited = 0;
  for (let i = 0; i < 100 && !limited; i++) if ((await request(port, { path: '/fast' })).status === 429) limited++;
  assert.equal(limited, 1, 'the per-route bucket runs dry');
  assert.equal(stat(h, 'fast.http_local_rate_limit.rate_limited'), 1);
  let after = 0;
  for (let i = 0; i < 200 && after !== 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = (await request(port, { path: '/fast' })).status;
  }
  assert.equal(after, 200, 'tokens come back after fill_interval');
  assert.equal((await request(port)).status, 429, 'the filter-wide bucket is still empty');
});

test('descriptors from route rate_limits actions get their own buckets; gRPC requests get UNAVAILABLE', async (t) => {
  const cfg = limit({
    token_bucket: { max_tokens: 1000, fill_interval: '3600s' },
    descriptors: [
      { entries: [{ key: 'user', value: 'alice' }], token_bucket: { max_tokens: 2, fill_interval: '3600s' } },
      { entries: [{ key: 'tier', value: 'free' }, { key: 'user', value: 'bob' }], token_bucket: { max_tokens: 1, fill_interval: '3600s' } },
    ],
  });
  const { up, port } = await setup(t, cfg, [
    {
      match: { prefix: '/' },
      route: {
        cluster: 'up',
        rate_limits: [{ actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'user' } }] }, { actions: [{ generic_key: { descriptor_key: 'tier', descriptor_value: 'free' } }, { request_headers: { header_name: 'x-user', descriptor_key: 'user' } }] }],
      },
    },
  ]);
  const as = async (user: string) => (await request(port, { headers: { 'x-user': user } })).status;
  assert.deepEqual([await as('alice'), await as('alice'), await as('alice')], [200, 200, 429]);
  assert.deepEqual([await as('bob'), await as('bob')], [200, 429], 'the two-entry descriptor matches bob');
  assert.deepEqual([await as('carol'), await as('carol'), await as('carol')], [200, 200, 200], 'no descriptor: the default bucket');
  assert.equal((await request(port)).status, 200, 'no header: no descriptor');
  const g = await request(port, { method: 'POST', body: '', headers: { 'x-user': 'alice', 'content-type': 'application/grpc' } });
  assert.equal(g.status, 200);
  assert.equal(g.headers['grpc-status'], '14');
  assert.equal(up.requests.filter((q) => q.headers['x-user'] === 'alice').length, 2);
});

test('masked_remote_address limits a whole client subnet', async (t) => {
  const cfg = limit({
    token_bucket: { max_tokens: 1000, fill_interval: '3600s' },
    descriptors: [{ entries: [{ key: 'masked_remote_address', value: '127.0.0.0/24' }], token_bucket: { max_tokens: 2, fill_interval: '3600s' } }],
  });
  const { port } = await setup(t, cfg, [{ match: { prefix: '/' }, route: { cluster: 'up', rate_limits: [{ actions: [{ masked_remote_address: { v4_prefix_mask_len: 24 } }] }] } }]);
  assert.deepEqual([(await request(port)).status, (await request(port)).status, (await request(port)).status], [200, 200, 429]);
});

test('filter_enforced 0% only counts, and adds request_headers_to_add_when_not_enforced', async (t) => {
  const cfg = limit({
    token_bucket: { max_tokens: 1, fill_interval: '3600s' },
    filter_enforced: { default_value: { numerator: 0 } },
    request_headers_to_add_when_not_enforced: [{ header: { key: 'x-would-limit', value: 'true' } }],
  });
  const { h, port } = await setup(t, cfg, [{ match: { prefix: '/' }, route: { cluster: 'up' } }]);
  const a = await request(port);
  const b = await request(port);
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  assert.equal(a.json().headers['x-would-limit'], undefined);
  assert.equal(b.json().headers['x-would-limit'], 'true');
  assert.deepEqual(['rate_limited', 'enforced'].map((s) => stat(h, `rl.http_local_rate_limit.${s}`)), [1, 0]);
});

test('local_rate_limit_per_downstream_connection gives every connection its own bucket', async (t) => {
  const cfg = limit({ token_bucket: { max_tokens: 2, fill_interval: '3600s' }, local_rate_limit_per_downstream_connection: true });
  const { port } = await setup(t, cfg, [{ match: { prefix: '/' }, route: { cluster: 'up' } }]);
  const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const b = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => {
    a.destroy();
    b.destroy();
  });
  const on = async (agent: http.Agent) => (await request(port, { agent })).status;
  assert.deepEqual([await on(a), await on(a), await on(a)], [200, 200, 429]);
  assert.deepEqual([await on(b), await on(b), await on(b)], [200, 200, 429], 'a second connection starts full');
});

test('invalid limits and unsupported actions are refused (NACK)', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const errs = h.apply('type.googleapis.com/envoy.config.listener.v3.Listener', [
    httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up', rate_limits: [{ actions: [{ source_cluster: {} }] }] } }]), {
      http_filters: [{ name: 'envoy.filters.http.local_ratelimit', typed_config: limit({ token_bucket: { max_tokens: 0, fill_interval: '0s' } }) }, ROUTER],
    }),
  ]);
  const all = errs.join('\n');
  assert.match(all, /max_tokens must be a positive integer/);
  assert.match(all, /fill_interval must be a positive duration/);
  assert.match(all, /rate limit action "source_cluster" is not supported/);
});

test('the network filter closes connections beyond its bucket before the HTTP connection manager sees them', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  const netLimit = {
    name: 'envoy.filters.network.local_ratelimit',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit', stat_prefix: 'tcp_rl', token_bucket: { max_tokens: 2, fill_interval: '3600s' } },
  };
  const l = httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]));
  const chain = (l.filter_chains as { filters: object[] }[])[0];
  chain.filters = [netLimit, ...chain.filters];
  assert.equal((chain.filters[1] as { typed_config: { '@type': string } }).typed_config['@type'], HCM);
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [l] });
  const port = h.port('l');
  assert.equal((await request(port)).status, 200);
  assert.equal((await request(port)).status, 200);
  await assert.rejects(request(port), /ECONNRESET|socket hang up/);
  assert.equal(stat(h, 'local_ratelimit.tcp_rl.rate_limited'), 1);
  assert.equal(up.requests.length, 2);
});
